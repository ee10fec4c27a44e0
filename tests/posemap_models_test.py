"""Morphable-model loaders (BFM .mat schema, 3DDFA, Surrey), projection and the T.1 edits."""

import numpy as np
import pytest

from animojax import posemap
from animojax.posemap import camera
from animojax.posemap import cereal
from animojax.posemap import semantic_edits
from animojax.synthetic import face_model
from tests.conftest import shared_file
from tests.helpers import NUM_FAKE_VERTICES
from tests.helpers import write_fake_bfm

def test_bfm_front_schema(tmp_path):
  path = str(tmp_path / 'BFM_model_front.mat')
  ids, vertices = write_fake_bfm(path)
  model = posemap.load_bfm_front(path)
  fm = face_model.load_face_model()
  centre = vertices.mean(0)  # Deep3DFaceRecon re-centres the mean shape on load.
  np.testing.assert_allclose(model.mean, fm.mean * 0.7 - centre, atol=1e-5)
  np.testing.assert_allclose(model.exp_basis, fm.exp_basis * 0.7, atol=1e-6)
  assert model.id_basis.shape == (68, 3, 80) and model.num_exp == 64
  assert model.triangles.min() >= 0 and model.triangles.shape == (40, 3)
  np.testing.assert_array_equal(model.keypoints[:, 0], ids)
  np.testing.assert_allclose(model.vertices[ids], model.mean, atol=1e-6)
  unshifted = posemap.load_bfm_front(path, recenter=False)
  np.testing.assert_allclose(unshifted.mean, fm.mean * 0.7, atol=1e-5)
  assert posemap.load_model(f'bfm:{path}').name == 'bfm'


def test_bfm_front_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='BFM_model_front'):
    posemap.load_bfm_front(tmp_path / 'BFM_model_front.mat')
  path = str(tmp_path / 'no_exbase.mat')
  write_fake_bfm(path, drop='exBase')
  with pytest.raises(ValueError, match=r"no_exbase.mat: missing field\(s\) \['exBase'\]"):
    posemap.load_bfm_front(path)
  path = str(tmp_path / 'bad_keypoints.mat')
  write_fake_bfm(path, keypoints_field=np.r_[np.arange(1, 68), NUM_FAKE_VERTICES + 1])
  with pytest.raises(ValueError, match="bad_keypoints.mat: field 'keypoints'"):
    posemap.load_bfm_front(path)
  (tmp_path / 'junk.mat').write_bytes(b'not a mat file at all')
  with pytest.raises(ValueError, match='Could not read'):
    posemap.load_bfm_front(tmp_path / 'junk.mat')
  with pytest.raises(ValueError, match='Model spec'):
    posemap.load_model('flame:/x')


def _check_orientation(model):
  """iBUG-68 with x to the subject's left, y up, z toward the camera, in decimetres."""
  m = model.mean
  iod = np.linalg.norm(m[45] - m[36])
  assert 0.7 < iod < 1.1, iod  # Adult outer-canthal distance, 7-11 cm.
  assert m[45, 0] > m[36, 0] and m[16, 0] > m[0, 0]  # Subject's left eye / jaw at +x.
  assert m[8, 1] < m[33, 1] < m[27, 1] < m[19, 1]  # Chin < nose base < bridge < brow.
  assert m[30, 2] > m[36, 2]  # The nose tip is nearer the camera than the eye corners.


def test_3ddfa_bases():
  model = posemap.load_3ddfa(shared_file('3ddfa', 'u_base.txt').rsplit('/', 1)[0])
  assert (model.num_id, model.num_exp) == (40, 10)
  np.testing.assert_allclose(model.exp_std, np.loadtxt(shared_file('3ddfa', 'param_std.txt'))[52:],
                             rtol=1e-6)
  np.testing.assert_allclose(model.mean[8] * 1e5,
                             np.loadtxt(shared_file('3ddfa', 'u_base.txt'))[24:27], rtol=1e-5)
  _check_orientation(model)
  assert model.vertices is None and model.landmark_valid.all()


def test_surrey_face_model():
  directory = shared_file('sfm', 'sfm_shape_3448.bin').rsplit('/', 1)[0]
  for name in ('expression_blendshapes_3448.bin', 'ibug_to_sfm.txt', 'sfm_model_contours.json'):
    shared_file('sfm', name)
  model = posemap.load_sfm(directory)
  assert (model.num_id, model.num_exp) == (63, 6)
  assert model.exp_names == ('anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise')
  assert model.vertices.shape == (3448, 3) and model.triangles.shape == (6736, 3)
  assert model.triangles.min() == 0 and model.triangles.max() == 3447
  _check_orientation(model)
  # iBUG 61 / 65 (inner mouth corners) are not defined on the SFM; everything else is.
  np.testing.assert_array_equal(np.flatnonzero(~model.landmark_valid), [60, 64])
  np.testing.assert_allclose(model.keypoint_weights.sum(1), 1.0, rtol=1e-6)
  # Jaw contour points run from the eye line down to the chin, mirror-symmetric.
  jaw = model.mean[:17]
  assert np.all(np.diff(jaw[:9, 1]) < 0) and np.all(np.diff(jaw[8:, 1]) > 0)
  eye_y = model.mean[[36, 45], 1].mean()
  assert abs(jaw[0, 1] - eye_y) < 0.01 and abs(jaw[16, 1] - eye_y) < 0.01
  np.testing.assert_allclose(jaw[:8, 0], -jaw[16:8:-1, 0], atol=0.05)  # Within 5 mm.
  # The shape basis is eos's rescaled basis: orthonormal columns times sqrt(eigenvalue).
  shape = cereal.read_shape_model(f'{directory}/sfm_shape_3448.bin')
  np.testing.assert_allclose(np.linalg.norm(shape.orthonormal_basis, axis=0), 1.0, atol=1e-4)


def test_cereal_errors(tmp_path):
  data = open(shared_file('sfm', 'sfm_shape_3448.bin'), 'rb').read()
  (tmp_path / 'cut.bin').write_bytes(data[:5000])
  with pytest.raises(ValueError, match=r'cut.bin: file ends at byte 5000 while reading '
                                       r'shape_model.mean'):
    cereal.read_shape_model(tmp_path / 'cut.bin')
  (tmp_path / 'v3.bin').write_bytes(b'\x03\x00\x00\x00' + data[4:])
  with pytest.raises(ValueError, match='v3.bin: MorphableModel version 3'):
    cereal.read_shape_model(tmp_path / 'v3.bin')
  with pytest.raises(FileNotFoundError, match='Surrey Face Model'):
    posemap.load_sfm(tmp_path)


def test_deep3d_camera_conventions():
  f, c = camera.FOCAL, camera.PRINCIPAL_POINT
  points = np.array([[0.0, 0.0, 0.0], [0.1, 0.2, 0.0], [0.1, 0.0, 1.0]], np.float32)
  uv = np.asarray(camera.project(points, 'perspective'))
  np.testing.assert_allclose(uv, [[c, c], [c + f * 0.01, c + f * 0.02], [c + f * 0.1 / 9, c]],
                             rtol=1e-6)
  np.testing.assert_allclose(camera.to_image_xy(uv)[1], [c + f * 0.01, 223 - c - f * 0.02])
  weak = np.asarray(camera.project(points, 'weak_perspective'))
  np.testing.assert_allclose(weak[2], [c + f * 0.01, c], rtol=1e-6)  # No depth division.
  # R = Rz Ry Rx: a positive yaw turns the nose (+z) toward +x (image right), a positive pitch
  # tilts it down (-y), a positive roll turns +x toward +y.
  nose = np.array([0.0, 0.0, 1.0], np.float32)
  yaw, pitch, roll = camera.view_rotations([(0, 30, 0), (30, 0, 0), (0, 0, 30)])
  assert np.asarray(camera.project(nose, 'perspective', yaw))[0] > c
  assert np.asarray(camera.project(nose, 'perspective', pitch))[1] < c
  assert np.asarray(camera.project(np.array([1.0, 0, 0], np.float32), 'landmarks3d', roll))[1] > 0
  with pytest.raises(ValueError, match='Unknown camera'):
    camera.project(points, 'fisheye')


def test_semantic_edits_reproduce_the_generator_and_transfer_equivariantly():
  fm = face_model.load_face_model()
  targets = posemap.semantic_targets(fm.mean)
  np.testing.assert_allclose(targets, fm.mean + fm.semantic_offsets, atol=1e-6)
  # Moving, turning and scaling the neutral face moves the edits with it.
  rotation = camera.view_rotations([(10, -25, 5)])[0].astype(np.float64)
  moved = 0.3 * fm.mean @ rotation.T + np.array([1.0, -2.0, 0.5])
  expected = 0.3 * targets @ rotation.T + np.array([1.0, -2.0, 0.5])
  np.testing.assert_allclose(posemap.semantic_targets(moved), expected, atol=1e-5)
  # On a face with half-height eyes "eye closed" closes the same fraction of the (smaller) lid
  # opening, measured along the face's vertical axis.
  squashed = fm.mean.copy()
  for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
    mid = 0.5 * (squashed[upper] + squashed[lower])
    squashed[upper] = mid + 0.25 * (fm.mean[upper] - fm.mean[lower])
    squashed[lower] = mid - 0.25 * (fm.mean[upper] - fm.mean[lower])
  closed = semantic_edits.SEMANTIC_NAMES.index('eye_closed_left')

  def remaining_opening(neutral):
    up = semantic_edits.face_frame(neutral)[1]
    edited = posemap.semantic_targets(neutral)[closed]
    gap = lambda points: (points[[43, 44]] - points[[47, 46]]) @ up
    return gap(edited) / gap(neutral)

  np.testing.assert_allclose(remaining_opening(squashed), remaining_opening(fm.mean), atol=1e-5)
  assert np.all(np.abs(remaining_opening(fm.mean)) < 0.1)
  with pytest.raises(ValueError, match=r'\[68, 3\]'):
    posemap.semantic_targets(fm.mean[:60])

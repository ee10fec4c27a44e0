"""Tests of the 3-D face conventions (animojax.face3d) and of the package graph around them."""

import ast
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from animojax.face3d import cameras
from animojax.face3d import embedded
from animojax.face3d import ibug68
from animojax.face3d import layouts
from animojax.face3d import make_embedded_model
from animojax.face3d import rotations
from animojax.face3d import semantics

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'animojax'

# Outputs of the two Euler implementations face3d replaced (synthetic/face_model.py's float32
# `rotation_matrix` and data/coeffs.py's float64 `euler_to_matrix`) at (0.3, -0.2, 0.1), and of
# data/coeffs.py's Rodrigues / matrix_to_euler, recorded before they were merged.
_OLD_ROTATION_F32 = [
    [0.9751703143119812, -0.15379199385643005, -0.15934507548809052],
    [0.09784339368343353, 0.9447025060653687, -0.31299182772636414],
    [0.19866932928562164, 0.2896294891834259, 0.936293363571167]]
_OLD_EULER_F64 = [
    [0.975170327201816, -0.1537919979889642, -0.1593450793079779],
    [0.09784339500725571, 0.9447024859948943, -0.31299182578546797],
    [0.19866933079506122, 0.28962947762551555, 0.9362933635841992]]
_OLD_RODRIGUES = [
    [0.9788428062071254, -0.0595199734937639, -0.1957655063893064],
    [0.03960732051223486, 0.9937772959432721, -0.10410545725138103],
    [0.20074366963468865, 0.0941491307606165, 0.9751091837730888]]
_OLD_RODRIGUES_EULER = [0.09625403362940241, -0.20211698431166197, 0.04044135102969735]


# ---- Rotations ---------------------------------------------------------------------------------


def test_rotations_are_proper_and_orthonormal():
  angles = np.random.default_rng(0).uniform(-np.pi, np.pi, (64, 3))
  for rot, atol in ((rotations.euler_to_matrix(angles), 1e-12),
                    (rotations.rotation_matrix(*angles.T), 1e-6),
                    (rotations.axis_angle_to_matrix(angles), 1e-12)):
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2),
                               np.broadcast_to(np.eye(3), rot.shape), atol=atol)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=atol)


def test_euler_convention_against_hand_built_matrices():
  pitch, yaw, roll = 0.3, -0.2, 0.1
  c, s = np.cos, np.sin
  rx = np.array([[1, 0, 0], [0, c(pitch), -s(pitch)], [0, s(pitch), c(pitch)]])
  ry = np.array([[c(yaw), 0, s(yaw)], [0, 1, 0], [-s(yaw), 0, c(yaw)]])
  rz = np.array([[c(roll), -s(roll), 0], [s(roll), c(roll), 0], [0, 0, 1]])
  np.testing.assert_allclose(rotations.euler_to_matrix([pitch, yaw, roll]), rz @ ry @ rx,
                             atol=1e-15)
  # Quarter turns, one axis at a time (x = subject's left, y up, z toward the camera).
  quarter = np.pi / 2
  nose, left = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
  np.testing.assert_allclose(rotations.euler_to_matrix([0, quarter, 0]) @ nose, [1, 0, 0],
                             atol=1e-15)  # Yaw > 0: the nose turns to image right.
  np.testing.assert_allclose(rotations.euler_to_matrix([quarter, 0, 0]) @ nose, [0, -1, 0],
                             atol=1e-15)  # Pitch > 0: the nose goes down.
  np.testing.assert_allclose(rotations.euler_to_matrix([0, 0, quarter]) @ left, [0, 1, 0],
                             atol=1e-15)  # Roll > 0: counter-clockwise on screen.


def test_rotations_agree_with_the_replaced_implementations():
  np.testing.assert_allclose(rotations.euler_to_matrix([0.3, -0.2, 0.1]), _OLD_EULER_F64,
                             rtol=0, atol=1e-15)
  new_f32 = rotations.rotation_matrix(0.3, -0.2, 0.1)
  assert new_f32.dtype == np.float32
  np.testing.assert_allclose(new_f32, np.float32(_OLD_ROTATION_F32), rtol=0, atol=6e-8)
  rodrigues = rotations.axis_angle_to_matrix([0.1, -0.2, 0.05])
  np.testing.assert_allclose(rodrigues, _OLD_RODRIGUES, rtol=0, atol=1e-15)
  np.testing.assert_allclose(rotations.matrix_to_euler(rodrigues), _OLD_RODRIGUES_EULER, rtol=0,
                             atol=1e-15)


def test_float32_and_float64_entry_points_are_one_implementation():
  angles = np.random.default_rng(1).uniform(-1.5, 1.5, (32, 3))
  np.testing.assert_array_equal(rotations.rotation_matrix(*angles.T),
                                rotations.euler_to_matrix(angles).astype(np.float32))
  # Broadcasting: a scalar pitch against vectors of yaw and roll.
  mixed = rotations.rotation_matrix(0.2, angles[:, 1], angles[:, 2])
  full = rotations.rotation_matrix(np.full(32, 0.2), angles[:, 1], angles[:, 2])
  np.testing.assert_array_equal(mixed, full)


def test_axis_angle_and_euler_round_trips():
  rng = np.random.default_rng(2)
  rotvec = rng.normal(0, 0.4, (50, 3))
  rot = rotations.axis_angle_to_matrix(rotvec)
  np.testing.assert_allclose(rotations.euler_to_matrix(rotations.matrix_to_euler(rot)), rot,
                             atol=1e-12)
  angles = rng.uniform([-3, -1.5, -3], [3, 1.5, 3], (50, 3))  # |yaw| < 90 degrees.
  np.testing.assert_allclose(rotations.matrix_to_euler(rotations.euler_to_matrix(angles)), angles,
                             atol=1e-10)
  # A rotation vector about one axis is that Euler angle alone; the zero vector is the identity.
  for axis in range(3):
    single = np.zeros(3)
    single[axis] = 0.3
    np.testing.assert_allclose(rotations.axis_angle_to_matrix(single),
                               rotations.euler_to_matrix(single), atol=1e-15)
  np.testing.assert_array_equal(rotations.axis_angle_to_matrix(np.zeros(3)), np.eye(3))
  with pytest.raises(ValueError, match='pitch, yaw, roll'):
    rotations.euler_to_matrix(np.zeros((2, 4)))


# ---- Layouts -----------------------------------------------------------------------------------


@pytest.mark.parametrize('layout, dim', [
    (layouts.DEEP3D, 257), (layouts.DECA, 156), (layouts.TDDFA, 62), (layouts.MOTION, 70),
    (layouts.DECA_MOTION, 56), (layouts.ANIME_POSE, 20)])
def test_layout_blocks_cover_the_vector_exactly(layout, dim):
  assert layout.dim == dim
  slices = layout.slices
  covered = np.concatenate([np.arange(dim)[slices[name]] for name, _ in layout.blocks])
  np.testing.assert_array_equal(covered, np.arange(dim))
  for block, parts in layout.parts:
    inside = np.concatenate([np.arange(dim)[slices[name]] for name, _ in parts])
    np.testing.assert_array_equal(inside, np.arange(dim)[slices[block]])


def test_published_offsets():
  deep3d = layouts.DEEP3D.slices
  assert [(deep3d[k].start, deep3d[k].stop) for k in deep3d] == [
      (0, 80), (80, 144), (144, 224), (224, 227), (227, 254), (254, 257)]
  deca = layouts.DECA.slices
  assert list(deca) == ['shape', 'exp', 'pose', 'global_pose', 'jaw_pose']
  assert (deca['exp'], deca['global_pose'], deca['jaw_pose']) == (
      slice(100, 150), slice(150, 153), slice(153, 156))
  tddfa = layouts.TDDFA.slices
  assert (tddfa['pose'], tddfa['shape'], tddfa['exp']) == (
      slice(0, 12), slice(12, 52), slice(52, 62))
  assert layouts.MOTION.slices['angle'] == slice(64, 67)
  assert layouts.DECA_MOTION.slices['jaw'] == slice(53, 56)


@pytest.mark.parametrize('layout', [layouts.DEEP3D, layouts.DECA, layouts.TDDFA, layouts.MOTION])
def test_split_join_round_trip(layout):
  vector = np.random.default_rng(3).normal(size=(4, layout.dim)).astype(np.float32)
  parts = layout.split(vector)
  assert set(parts) == set(layout.slices)
  np.testing.assert_array_equal(layout.join(parts), vector)
  jax_parts = layout.split(jnp.asarray(vector))
  joined = layout.join(jax_parts)
  assert isinstance(joined, type(jnp.zeros(1)))
  np.testing.assert_array_equal(np.asarray(joined), vector)
  with pytest.raises(ValueError, match=str(layout.dim)):
    layout.split(vector[:, 1:])
  first = layout.blocks[0][0]
  with pytest.raises(ValueError, match=first):
    layout.join({**parts, first: parts[first][:, 1:]})


def test_motion_is_taken_from_deep3d_blocks():
  coeff = np.arange(257, dtype=np.float32)
  d = layouts.DEEP3D.split(coeff)
  motion = layouts.MOTION.join({'exp': d['exp'], 'angle': d['angle'], 'trans': d['trans']})
  np.testing.assert_array_equal(motion, np.r_[80:144, 224:227, 254:257])


def test_tddfa_pose_matrix():
  param = np.zeros(62, np.float32)
  scaled_rotation = 2.0 * rotations.euler_to_matrix([0.1, 0.2, 0.3])
  param[:12] = np.concatenate([scaled_rotation, [[5.0], [6.0], [7.0]]], axis=1).reshape(-1)
  rot, offset = layouts.tddfa_pose(param)
  np.testing.assert_allclose(rot, scaled_rotation, atol=1e-6)
  np.testing.assert_array_equal(offset, [5, 6, 7])
  rot_batch, offset_batch = layouts.tddfa_pose(np.stack([param, param]))
  assert rot_batch.shape == (2, 3, 3) and offset_batch.shape == (2, 3)


def test_layout_rejects_inconsistent_definitions():
  with pytest.raises(ValueError, match='do not cover'):
    layouts.Layout('bad', (('a', 3),), parts=(('a', (('b', 2),)),))
  with pytest.raises(ValueError, match='duplicate'):
    layouts.Layout('bad', (('a', 3), ('a', 1)))


# ---- Semantics, cameras, landmarks -------------------------------------------------------------


def test_semantics():
  assert semantics.NUM_MORPHS == 17 and semantics.NUM_SEMANTICS == 20
  assert len(set(semantics.SEMANTIC_NAMES)) == 20
  assert semantics.NUM_MORPHS == layouts.ANIME_POSE.slices['angles'].start
  assert semantics.ANGLE_SLICE == layouts.ANIME_POSE.slices['angles']
  groups = ((semantics.EYE_SLICE, 'eye_'), (semantics.BROW_SLICE, 'brow_'),
            (semantics.MOUTH_SLICE, 'mouth_'))
  assert sum(s.stop - s.start for s, _ in groups) == semantics.NUM_MORPHS
  for group, prefix in groups:
    assert all(n.startswith(prefix) for n in semantics.MORPH_NAMES[group])
  assert semantics.MORPH_NAMES[semantics.MOUTH_SLICE] == tuple(
      f'mouth_{v}' for v in semantics.VOWELS)
  perm = list(semantics.ANIMO_ANGLE_PERMUTATION)
  assert [perm[p] for p in perm] == [0, 1, 2]  # Its own inverse.
  assert semantics.ANIME_ANGLE_COLUMNS == ('pitch', 'roll', 'yaw')
  assert semantics.morph_index('yaw') == 18
  with pytest.raises(ValueError, match='mouth_x'):
    semantics.morph_index('mouth_x')


def test_deep3d_camera():
  f, c = cameras.FOCAL, cameras.PRINCIPAL_POINT
  points = np.array([[0.0, 0.0, 0.0], [0.1, 0.2, 0.0], [0.1, 0.2, 5.0]])
  np.testing.assert_allclose(cameras.perspective(points),
                             [[c, c], [c + f * 0.01, c + f * 0.02], [c + f * 0.02, c + f * 0.04]])
  # At z = 0 the weak-perspective camera is the perspective one.
  np.testing.assert_allclose(cameras.weak_perspective(points[:2]), cameras.perspective(points[:2]))
  np.testing.assert_allclose(cameras.landmarks3d(points)[2], points[2] * f / 10)
  np.testing.assert_allclose(cameras.to_image_xy([[c, c + 10]]), [[c, 223 - c - 10]])


def test_ibug68_groups_partition_the_landmarks():
  groups = (ibug68.JAW, ibug68.BROW_RIGHT, ibug68.BROW_LEFT, ibug68.NOSE_BRIDGE, ibug68.NOSE_BASE,
            ibug68.EYE_RIGHT, ibug68.EYE_LEFT, ibug68.LIPS_OUTER, ibug68.LIPS_INNER)
  np.testing.assert_array_equal(np.concatenate(groups), np.arange(ibug68.NUM_LANDMARKS))
  mean = embedded.load_face_model().mean
  # "right" is the subject's right: image left, x < 0.
  assert mean[ibug68.EYE_RIGHT, 0].max() < 0 < mean[ibug68.EYE_LEFT, 0].min()
  assert ibug68.CHIN in ibug68.JAW and mean[ibug68.CHIN, 1] == mean[:, 1].min()


def test_embedded_model_npz_regenerates_bit_exactly(tmp_path):
  out = tmp_path / 'embedded_model.npz'
  make_embedded_model.main(['--output', str(out)])
  packaged = make_embedded_model.default_output_path().read_bytes()
  assert out.read_bytes() == packaged, (
      'embedded_model.npz differs from its generator; rerun '
      '`python -m animojax.face3d.make_embedded_model` and commit the result.')
  assert len(packaged) < 1_000_000
  model = embedded.load_face_model()
  assert model.true_phi.shape == (semantics.NUM_MORPHS, embedded.NUM_EXP)
  assert model.semantic_offsets.shape == (semantics.NUM_MORPHS, ibug68.NUM_LANDMARKS, 3)


# ---- Package graph -----------------------------------------------------------------------------


def _animojax_imports(path: pathlib.Path) -> set[str]:
  """Dotted animojax modules a source file imports, at any nesting level."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name.split('.')[0] == 'animojax')
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
        node.module.split('.')[0] == 'animojax'):
      # `from animojax import posemap` imports animojax.posemap; `from animojax.x import y`
      # imports animojax.x (y may be a module or a name in it; both depend on animojax.x).
      if node.module == 'animojax':
        found.update(f'animojax.{a.name}' for a in node.names)
      else:
        found.add(node.module)
    elif isinstance(node, ast.ImportFrom) and node.level > 0:
      found.add(f'<relative import in {path.name}>')
  return found


def _package_imports(package: str) -> dict[str, set[str]]:
  files = sorted((PACKAGE / package).glob('*.py'))
  assert files, f'no sources found under {PACKAGE / package}'
  return {f.name: _animojax_imports(f) for f in files}


def test_import_graph_parser_sees_imports():
  # posemap does import other packages: if the parser found none, the tests below would pass
  # vacuously.
  found = set().union(*_package_imports('posemap').values())
  assert 'animojax.face3d' in found and 'animojax.convert' in found


def test_face3d_is_a_leaf():
  bad = {name: sorted(m for m in mods if not (m == 'animojax.face3d' or
                                              m.startswith('animojax.face3d.')))
         for name, mods in _package_imports('face3d').items()}
  assert not any(bad.values()), f'face3d must import nothing else from animojax: {bad}'


def test_posemap_does_not_import_synthetic():
  bad = {name: sorted(m for m in mods if m == 'animojax.synthetic' or
                      m.startswith('animojax.synthetic.'))
         for name, mods in _package_imports('posemap').items()}
  assert not any(bad.values()), f'posemap (a library) imports the data generator: {bad}'

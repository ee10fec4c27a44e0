"""Motion fit (`animojax.mocap.motion`) on captures with known answers, built from the REAL 3DDFA
bases and parameter statistics (../shared/testdata/3ddfa); no network runs here."""

import types

import numpy as np
import pytest

from animojax.convert import tddfa as tddfa_convert
from animojax.face3d import rotations
from animojax.mocap import motion
from animojax.nets import tddfa
from tests import conftest


@pytest.fixture(scope='module')
def weights():
  stats = tddfa_convert.read_param_mean_std(
      conftest.shared_file('3ddfa', 'param_mean_std_62d_120x120.pkl'))
  bases = tddfa_convert.read_bases(
      [conftest.shared_file('3ddfa', f'{n}.txt') for n in tddfa_convert.BASES])
  return types.SimpleNamespace(**stats, **bases)


def _captures(weights, angles_deg, exp, shift_px=(0.0, 0.0), zoom=1.0):
  """Capture dicts for frames posed by Deep3DFaceRecon angles with 3DDFA expressions."""
  n = len(angles_deg)
  rot = rotations.euler_to_matrix(np.radians(angles_deg))
  scale = weights.param_mean[0] * np.asarray(zoom, np.float64) * np.ones(n)
  param = np.tile(weights.param_mean, (n, 1)).astype(np.float64)
  param[:, :12] = np.concatenate([rot * scale[:, None, None],
                                  np.tile([[[60.0], [70.0], [-60.0]]], (n, 1, 1))],
                                 -1).reshape(n, 12)
  param[:, 52:] = exp
  roi = np.tile([[10.0, 20.0, 250.0, 260.0]], (n, 1))  # 2 frame pixels per crop pixel.
  roi[:, :2] += np.asarray(shift_px)
  roi[:, 2:] += np.asarray(shift_px)
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  pose = tddfa.decompose_pose(jnp.asarray(param, jnp.float32))
  return {'param': param.astype(np.float32), 'roi': roi, 'found': np.ones(n, bool),
          'rotation': np.array(pose['rotation']), 'scale': np.array(pose['scale'])}


def test_fit_into_3ddfa_space_recovers_expression_pose_and_translation(weights):
  rng = np.random.default_rng(0)
  exp = rng.normal(0, 1, (4, 10)) * weights.param_std[52:]
  angles = np.array([[0, 0, 0], [10, -20, 5], [-5, 15, -10], [3, 3, 3]], np.float64)
  captured = _captures(weights, angles, exp)
  captured['roi'][1] += [20, -10, 20, -10]  # Frame 1 moves right and up by 20 / 10 px.
  fitter = motion.make_fitter('3ddfa', weights, reg=1e-8)
  out = fitter(captured)['motion']
  assert out.shape == (4, 16)
  std = weights.param_std[52:]
  np.testing.assert_allclose(out[:, :10] / std, exp / std, atol=1e-3)
  np.testing.assert_allclose(np.degrees(out[:, 10:13]), angles, atol=1e-3)
  # 20 px right / 10 px up at 2 px per crop pixel and scale s crop pixels per micrometre.
  px_per_dm = weights.param_mean[0] * 2 / 1e-5
  np.testing.assert_allclose(out[1, 13:15], [20 / px_per_dm, 10 / px_per_dm], rtol=1e-3)
  np.testing.assert_allclose(out[[0, 2, 3], 13:], 0, atol=1e-6)


def test_zoom_is_depth_under_the_targets_camera(weights):
  captured = _captures(weights, np.zeros((4, 3)), np.zeros((4, 10)), zoom=[1.0, 1.25, 1, 1])
  out = motion.make_fitter('embedded', weights)(captured)['motion']
  np.testing.assert_allclose(out[1, -1], 10 * (1 - 1 / 1.25), rtol=1e-4)  # Closer: z grows.


def test_embedded_fit_explains_the_expression_frame_by_frame(weights):
  rng = np.random.default_rng(1)
  exp = rng.normal(0, 1, (4, 10)) * weights.param_std[52:]
  fitter = motion.make_fitter('embedded', weights)
  assert fitter.motion_dim == 70
  batched = fitter.expression(exp)
  swapped = fitter.expression(exp[::-1])[::-1]  # Each frame's fit is its own.
  np.testing.assert_allclose(swapped, batched, rtol=1e-4, atol=1e-5)
  # Through the precomputed linear map, as the least-squares solve itself gives it.
  np.testing.assert_allclose(batched, fitter.solve_expression(exp), rtol=1e-4, atol=1e-5)
  shift = np.einsum('lck,nk->nlc', fitter.source_model.exp_basis, exp) * fitter.face_ratio
  fitted = np.einsum('lck,nk->nlc', fitter.model.exp_basis, batched)
  residual = np.sqrt(np.mean((fitted - shift) ** 2)) / np.sqrt(np.mean(shift ** 2))
  assert residual < 0.35, residual  # The embedded basis spans most of 3DDFA's expressions.


def test_frames_without_a_face_hold_the_last_motion(weights):
  rng = np.random.default_rng(2)
  captured = _captures(weights, rng.normal(0, 5, (5, 3)), np.zeros((5, 10)))
  captured['found'] = np.array([False, True, False, True, False])
  for key in ('param', 'rotation', 'scale', 'roi'):  # Whatever was there must not be used.
    captured[key][[0, 2, 4]] = np.nan
  out = motion.make_fitter('3ddfa', weights)(captured)
  m = out['motion']
  np.testing.assert_array_equal(m[0], m[1])
  np.testing.assert_array_equal(m[2], m[1])
  np.testing.assert_array_equal(m[4], m[3])
  assert np.isfinite(m).all()
  captured['found'][:] = False
  with pytest.raises(ValueError, match='no face'):
    motion.make_fitter('3ddfa', weights)(captured)


def test_drive_relative_and_absolute():
  rng = np.random.default_rng(3)
  driving = np.concatenate([rng.normal(0, 1, (4, 5)), rng.normal(0, 0.2, (4, 3)),
                            rng.normal(0, 0.1, (4, 3))], -1)
  source = np.concatenate([rng.normal(0, 1, 5), rng.normal(0, 0.2, 3), rng.normal(0, 0.1, 3)])
  relative = motion.drive(driving, source)
  np.testing.assert_allclose(relative[0], source, atol=1e-5)  # The first frame is the source.
  np.testing.assert_allclose(relative[:, :5], source[:5] + driving[:, :5] - driving[0, :5],
                             atol=1e-5)
  expected = (rotations.euler_to_matrix(driving[2, 5:8])
              @ rotations.euler_to_matrix(driving[0, 5:8]).T @ rotations.euler_to_matrix(source[5:8]))
  np.testing.assert_allclose(rotations.euler_to_matrix(relative[2, 5:8]), expected, atol=1e-5)
  absolute = motion.drive(driving, source, relative=False)
  np.testing.assert_allclose(absolute[:, :8], driving[:, :8], atol=1e-6)
  np.testing.assert_allclose(motion.smooth(relative, 3)[1], relative[:3].mean(0), atol=1e-6)
  np.testing.assert_allclose(motion.smooth(relative, 1), relative, atol=1e-6)


def test_synthetic_reenact_inputs():
  from animojax.synthetic import reenact_inputs  # pylint: disable=g-import-not-at-top
  character = reenact_inputs.source_character()
  assert character.shape == (256, 256, 4) and character.dtype == np.uint8
  assert character[0, 0, 3] == 0 and character[128, 128, 3] == 255  # Transparent background.
  semantic = reenact_inputs.driving_semantics()
  assert semantic.shape == (100, 20)
  assert 15 < semantic[:, 18].max() <= 18 and semantic[:, :17].min() >= 0
  assert semantic[:, :17].max() <= 1


def test_bfm_target_reads_the_users_model(weights, tmp_path):
  """A BFM_model_front.mat whose landmarks are the embedded model's (tests/helpers.py) gives the
  embedded fit's expression, and its translation in decimetres instead of 7 cm units."""
  from tests import helpers  # pylint: disable=g-import-not-at-top
  helpers.write_fake_bfm(str(tmp_path / 'bfm.mat'))
  rng = np.random.default_rng(4)
  captured = _captures(weights, rng.normal(0, 5, (4, 3)), rng.normal(0, 1, (4, 10))
                       * weights.param_std[52:])
  captured['roi'][2] += [12, 7, 12, 7]
  bfm = motion.make_fitter(f'bfm:{tmp_path / "bfm.mat"}', weights)(captured)['motion']
  emb = motion.make_fitter('embedded', weights)(captured)['motion']
  assert bfm.shape == emb.shape == (4, 70)
  np.testing.assert_allclose(bfm[:, :67], emb[:, :67], rtol=1e-3, atol=1e-4)
  np.testing.assert_allclose(bfm[:, 67:69], emb[:, 67:69] * 0.7, rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(bfm[:, 69], emb[:, 69], rtol=1e-5)

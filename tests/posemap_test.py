"""The pose mapping T and the released Φ file."""

import numpy as np
import jax.numpy as jnp
import pytest

from animojax import posemap
from tests.conftest import shared_file


def test_anime_pose_to_3dmm_layout():
  rng = np.random.default_rng(0)
  phi = rng.normal(size=(17, 64)).astype(np.float32)
  pose = np.concatenate([rng.uniform(size=(5, 17)), rng.uniform(-20, 20, (5, 3))], -1)
  motion = posemap.anime_pose_to_3dmm(pose.astype(np.float32), phi)
  assert motion.shape == (5, 70)
  np.testing.assert_allclose(motion[:, :64], pose[:, :17] @ phi, rtol=1e-5, atol=1e-5)
  # AniMo's permutation (0, 2, 1): 3DMM (pitch, yaw, roll) = CSV columns (0, 2, 1).
  np.testing.assert_allclose(motion[:, 64:67], np.deg2rad(pose[:, [17, 19, 18]]), rtol=1e-6)
  np.testing.assert_array_equal(motion[:, 67:], 0)
  edtn = posemap.anime_pose_to_3dmm(pose.astype(np.float32), phi, angle_permutation=(1, 2, 0))
  np.testing.assert_allclose(edtn[:, 64:67], np.deg2rad(pose[:, [18, 19, 17]]), rtol=1e-6)
  # jax arrays give the same numbers.
  np.testing.assert_allclose(posemap.anime_pose_to_3dmm(jnp.asarray(pose, jnp.float32), phi),
                             motion, rtol=1e-5, atol=1e-5)


def test_deep3d_coeff_slices():
  coeff = np.arange(257, dtype=np.float32)
  motion = posemap.deep3d_coeff_to_motion(coeff)
  np.testing.assert_array_equal(motion, np.concatenate([coeff[80:144], coeff[224:227],
                                                        coeff[254:257]]))
  with pytest.raises(ValueError, match='257'):
    posemap.deep3d_coeff_to_motion(np.zeros(70))


def test_released_phi_loads_from_full_coefficients():
  phi = posemap.load_phi(shared_file('animeceleb', 'pose_coeffs.npy'))
  full = np.load(shared_file('animeceleb', 'pose_coeffs.npy'))
  assert phi.shape == (17, 64)
  np.testing.assert_array_equal(phi, full[:, 80:144])


def test_phi_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='pose_coeffs'):
    posemap.load_phi(tmp_path / 'missing.npy')
  np.save(tmp_path / 'bad.npy', np.zeros((16, 64)))
  with pytest.raises(ValueError, match=r'\(17, K\)'):
    posemap.load_phi(tmp_path / 'bad.npy')
  nan = np.zeros((17, 64)); nan[3, 3] = np.nan
  np.save(tmp_path / 'nan.npy', nan)
  with pytest.raises(ValueError, match='NaN'):
    posemap.load_phi(tmp_path / 'nan.npy')
  (tmp_path / 'corrupt.npy').write_bytes(b'not a numpy file')
  with pytest.raises(ValueError, match='Could not read'):
    posemap.load_phi(tmp_path / 'corrupt.npy')
  with pytest.raises(ValueError, match='20 entries'):
    posemap.anime_pose_to_3dmm(np.zeros((2, 19)), np.zeros((17, 64)))

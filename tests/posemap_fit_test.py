"""Fitting Φ: closed loop on the embedded model, real 3DMMs, gradients, the CLI and the pipeline."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from animojax import posemap
from animojax.data import pairs
from animojax.data import samplers
from animojax.data import pipeline
from animojax.posemap import __main__ as cli
from animojax.posemap import camera
from animojax.posemap import sheet
from animojax.synthetic import face_model
from tests.conftest import shared_file
from tests.helpers import write_fake_bfm

THREE_VIEWS = ((0.0, 0.0, 0.0), (0.0, 30.0, 0.0), (0.0, -30.0, 0.0))


def _relative_error(phi, true_phi):
  return float(np.linalg.norm(phi - true_phi) / np.linalg.norm(true_phi))


@pytest.fixture(scope='module')
def true_phi():
  return face_model.load_face_model().true_phi


@pytest.mark.parametrize('config, tolerance', [
    # 3D landmarks, no prior: an exact linear solve (measured 6.9e-7).
    (posemap.FitConfig(camera='landmarks3d', reg=0.0), 1e-5),
    # Deep3DFaceRecon's perspective camera, LM, frontal + ±30° yaw views (measured 1.1e-6).
    (posemap.FitConfig(camera='perspective', reg=0.0, views=THREE_VIEWS), 1e-4),
    # One frontal view leaves depth-only directions weakly observed (measured 7.9e-5).
    (posemap.FitConfig(camera='perspective', reg=0.0), 1e-3),
])
def test_closed_loop_recovers_true_phi(config, tolerance, true_phi):
  result = posemap.fit_phi(posemap.embedded_model(), config=config)
  assert result.phi.shape == (17, 64)
  assert _relative_error(result.phi, true_phi) < tolerance
  assert np.all(result.rms_fit < 1e-3 * result.rms_neutral)


def test_closed_loop_through_the_bfm_loader(tmp_path, true_phi):
  # A Deep3DFaceRecon-layout file whose keypoints are the embedded model: the whole path
  # .mat -> MorphableModel -> T.1 -> fit gives back the generator's Φ (re-centring included).
  path = str(tmp_path / 'BFM_model_front.mat')
  write_fake_bfm(path)
  config = posemap.FitConfig(camera='landmarks3d', reg=0.0)
  result = posemap.fit_phi(posemap.load_bfm_front(path), config=config)
  assert _relative_error(result.phi, true_phi) < 1e-5


@pytest.fixture(scope='module', params=['3ddfa', 'sfm'])
def real_fit(request):
  if request.param == '3ddfa':
    model = posemap.load_3ddfa(shared_file('3ddfa', 'w_exp_base.txt').rsplit('/', 1)[0])
  else:
    model = posemap.load_sfm(shared_file('sfm', 'sfm_shape_3448.bin').rsplit('/', 1)[0])
  return model, posemap.fit_phi(model)


def test_real_models_move_every_semantic_toward_its_target(real_fit, tmp_path):
  model, result = real_fit
  assert result.phi.shape == (17, model.num_exp) and np.all(np.isfinite(result.phi))
  # Ridge can only lower the data term; every semantic must actually gain something.
  assert np.all(result.rms_fit < result.rms_neutral), posemap.error_table(result)
  # The mouth semantics are what these expression bases express best.
  assert np.all(result.rms_fit[12:] < 0.75 * result.rms_neutral[12:]), posemap.error_table(result)
  # Regularisation keeps coefficients plausible under the model's prior.
  assert np.abs(result.phi / model.exp_std).max() < 5.0
  path = tmp_path / 'sheet.png'
  sheet.fit_sheet(result, str(path), title=model.name)
  assert path.stat().st_size < 300_000
  assert Image.open(path).size == (900, 3 * 176)


def test_fit_is_differentiable():
  model = posemap.embedded_model()
  targets = posemap.semantic_targets(model.mean)[:3]
  weights = np.ones(68, np.float32)
  rotations = camera.view_rotations([(0, 0, 0)])
  direction = np.random.default_rng(0).normal(size=targets.shape).astype(np.float32) * 1e-3

  def loss(t, cam, iterations):
    phi = posemap.solve_phi(model.mean, model.exp_basis, model.exp_std, t, weights, rotations,
                            1e-4, camera=cam, iterations=iterations)
    return jnp.sum(jnp.square(phi))

  # Closed form: the gradient matches central differences along a random direction.
  grad = jax.grad(loss)(jnp.asarray(targets), 'weak_perspective', 0)
  eps = 1.0
  numeric = (loss(targets + eps * direction, 'weak_perspective', 0)
             - loss(targets - eps * direction, 'weak_perspective', 0)) / (2 * eps)
  np.testing.assert_allclose(float(jnp.sum(grad * direction)), float(numeric), rtol=2e-2)
  # LM iterations are differentiable too (fixed trip count, no data-dependent control flow).
  grad = jax.grad(loss)(jnp.asarray(targets), 'perspective', 2)
  assert np.all(np.isfinite(grad)) and float(jnp.abs(grad).max()) > 0


@pytest.mark.parametrize('cam', ['landmarks3d', 'perspective'])
def test_fit_runs_its_matmuls_at_full_float32_precision(cam):
  """GPUs' default float32 matmuls are TF32, which left Φ 2e-3 off on an H200: every product of
  the fit, including those inside the Jacobians, the LM loop and their gradients, asks for
  HIGHEST."""
  model = posemap.embedded_model()
  targets = posemap.semantic_targets(model.mean)[:2]
  rotations = camera.view_rotations([(0, 0, 0)])

  def loss(t):
    return jnp.sum(posemap.solve_phi(model.mean, model.exp_basis, model.exp_std, t,
                                     np.ones(68, np.float32), rotations, 1e-4, camera=cam,
                                     iterations=2))

  with jax.default_matmul_precision('tensorfloat32'):  # What a GPU does by default.
    text = jax.jit(jax.grad(loss)).lower(jnp.asarray(targets)).as_text()
  dots = [line for line in text.splitlines() if 'stablehlo.dot_general' in line]
  assert dots and all('precision = [HIGHEST, HIGHEST]' in line for line in dots), dots[:3]


def test_fit_errors():
  with pytest.raises(ValueError, match='Unknown camera'):
    posemap.FitConfig(camera='orthographic')
  with pytest.raises(ValueError, match='views'):
    posemap.FitConfig(views=((0.0, 0.0),))
  with pytest.raises(ValueError, match=r'targets must be \[S, 68, 3\]'):
    posemap.fit_phi(posemap.embedded_model(), targets=np.zeros((17, 68, 2)))


def test_cli_fit_and_apply(tmp_path, true_phi, capsys):
  out = tmp_path / 'phi.npy'
  cli.main(['fit', '--model=embedded', f'--out={out}', '--camera=landmarks3d', '--reg=0'])
  assert _relative_error(np.load(out), true_phi) < 1e-5
  assert (tmp_path / 'phi.png').stat().st_size < 300_000
  assert '| mouth_a |' in capsys.readouterr().out
  # apply, with the released matrix (17 x 257: its expression block is used).
  released = shared_file('animeceleb', 'pose_coeffs.npy')
  poses = np.random.default_rng(0).uniform(0, 1, (5, 20)).astype(np.float32)
  np.save(tmp_path / 'poses.npy', poses)
  cli.main(['apply', f'--phi={released}', f'--poses={tmp_path / "poses.npy"}',
            f'--out={tmp_path / "motion.npy"}'])
  np.testing.assert_allclose(np.load(tmp_path / 'motion.npy'),
                             posemap.anime_pose_to_3dmm(poses, posemap.load_phi(released)))
  with pytest.raises(SystemExit, match='Model spec'):
    cli.main(['fit', '--model=flame', f'--out={out}'])
  with pytest.raises(SystemExit, match='missing.npy'):
    cli.main(['apply', f'--phi={released}', '--poses=missing.npy', f'--out={out}'])


def test_released_phi_drives_the_pipeline_for_bfm_layout_data():
  """AniMo's released pose_coeffs.npy -> anime motion vectors in Deep3DFaceRecon's 70-D layout."""
  released = shared_file('animeceleb', 'pose_coeffs.npy')
  phi = pipeline.load_phi(released)  # What config.data.phi=<path> goes through.
  full = np.load(released)
  np.testing.assert_array_equal(phi, full[:, 80:144])
  rng = np.random.default_rng(0)
  items = [{'image': rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
            'pose': np.concatenate([rng.uniform(0, 1, 17), rng.uniform(-20, 20, 3)]).astype(
                np.float32), 'identity': i // 4} for i in range(8)]
  motion = pairs.MotionAdapter('anime_pose', phi=phi)
  reader = samplers.FrameReader(items, image_size=8, name='released-phi', motion=motion)
  sampler = samplers.PairSampler(reader, [np.arange(0, 4), np.arange(4, 8)], seed=0, stream=0)
  pair = sampler(3)
  driving = next(item for item in items
                 if np.allclose(item['image'] / 127.5 - 1, pair['driving'], atol=1e-6))
  morphs, angles = driving['pose'][:17], driving['pose'][17:]
  np.testing.assert_allclose(pair['driving_pose'][:64], morphs @ full[:, 80:144], rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(pair['driving_pose'][64:67], np.deg2rad(angles[[0, 2, 1]]), rtol=1e-5)
  np.testing.assert_array_equal(pair['driving_pose'][67:], 0)
  # The same 70-D vector is what a human frame's 257-D Deep3DFaceRecon coefficients give when
  # their expression is morphs @ Φ: both domains share the BFM layout.
  coeff = np.zeros(257, np.float32)
  coeff[80:144], coeff[224:227] = pair['driving_pose'][:64], pair['driving_pose'][64:67]
  np.testing.assert_allclose(posemap.deep3d_coeff_to_motion(coeff), pair['driving_pose'])

"""Helpers shared by the test modules (tests never import each other; they import this)."""

from animojax.configs import animo as animo_config

# A very small AniMo (fewer layers: compile time grows with the graph, not the widths) so that
# compiling both stages stays cheap on 2 CPU cores. The flow stays at 1/4 resolution (3 - 1).
TINY_MODEL = dict(warp_ngf=4, warp_img_f=8, warp_encoder_layers=3, warp_decoder_layers=1,
                  edit_ngf=4, edit_img_f=8, edit_layers=2, edit_num_res_blocks=1,
                  descriptor_nc=16)


def tiny_config(data_dir, **overrides):
  """The demo config with TINY_MODEL, 6 steps (3 warp-only), logging/checkpoints every 2."""
  c = animo_config.get_config('demo')
  c.data.data_dir = data_dir
  c.data.num_threads = 1
  c.model.update(TINY_MODEL)
  c.batch_size = 8
  c.total_steps = 6
  c.warp_steps = 3
  c.log_every = 2
  c.checkpoint_every = 2
  c.sample_every = 3
  c.eval.num_pairs = 8
  c.eval.batch_size = 8
  for k, v in overrides.items():
    c[k] = v
  return c


# The shared trained run (conftest's `tiny_run` fixture) and the multi-host test's runs: 6 steps,
# all in the full stage (one step program to compile per launch), a checkpoint every 2 steps,
# samples, L1/SSIM evaluation and export at the end.
TINY_RUN_STEPS = 6
SHARDING_RULES = {'replicate': [('.*', 'replicate')],
                  'fsdp': [('.*kernel', 'fsdp'), ('.*', 'replicate')]}


def tiny_run_config(data_dir, rules='replicate'):
  c = tiny_config(data_dir, total_steps=TINY_RUN_STEPS, warp_steps=0, log_every=1,
                  checkpoint_every=2, sample_every=TINY_RUN_STEPS,
                  sharding_rules=SHARDING_RULES[rules])
  c.eval.num_pairs = 8
  c.eval.metrics = ('l1', 'ssim')
  return c


def program_config(**overrides):
  """The demo config with TINY_MODEL at 16² (for compiling and stepping the program alone)."""
  c = animo_config.get_config('demo')
  c.model.update(TINY_MODEL)
  c.data.image_size = 16
  c.batch_size = 8
  c.augment.color_jitter = 0.0
  for k, v in overrides.items():
    c[k] = v
  return c


def run_steps(config, stage, steps):
  """Losses of `steps` steps on one fixed random batch, from the seed-0 init."""
  # Imported here: the multi-host test's config file imports this module before
  # jax.distributed.initialize, which must come before any JAX computation.
  import jax  # pylint: disable=g-import-not-at-top
  from animojax.trainers.animo import program as animo_program
  program = animo_program.build(config)
  state = jax.jit(program.init, out_shardings=program.state_shardings)(jax.random.key(0))
  batch = jax.device_put(animo_program.random_batch(config, jax.random.key(1)),
                         program.data_sharding)
  step_fn = program.train_steps[stage]
  losses = []
  for _ in range(steps):
    state, metrics = step_fn(state, batch, program.image_loss.params, jax.random.key(2))
    losses.append(float(metrics.compute()['loss']))
  return losses, state, step_fn


NUM_FAKE_VERTICES = 150


def write_fake_bfm(path, drop=None, keypoints_field=None):
  """A BFM_model_front.mat with Deep3DFaceRecon's fields whose keypoints are the embedded model.

  Units follow the real file (decimetres = the embedded model's 7 cm units x 0.7); the other
  vertices are random. `drop` leaves a field out; `keypoints_field` overrides the (1-based) stored
  keypoints. Returns the 0-based keypoint vertex ids and the vertices.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scipy import io as sio  # pylint: disable=g-import-not-at-top
  from animojax.synthetic import face_model  # pylint: disable=g-import-not-at-top
  fm = face_model.load_face_model()
  rng = np.random.default_rng(0)
  n = NUM_FAKE_VERTICES
  ids = rng.permutation(n)[:68]
  vertices = rng.normal(size=(n, 3)) * 0.5
  id_base = rng.normal(size=(n, 3, 80)) * 0.01
  ex_base = rng.normal(size=(n, 3, 64)) * 0.01
  vertices[ids], id_base[ids], ex_base[ids] = fm.mean * 0.7, fm.id_basis * 0.7, fm.exp_basis * 0.7
  fields = {
      'meanshape': vertices.reshape(1, -1).astype(np.float32),
      'meantex': np.full((1, 3 * n), 128.0, np.float32),
      'idBase': id_base.reshape(3 * n, 80).astype(np.float32),
      'exBase': ex_base.reshape(3 * n, 64).astype(np.float32),
      'texBase': np.zeros((3 * n, 80), np.float32),
      'tri': (rng.integers(0, n, (40, 3)) + 1).astype(np.int32),
      'point_buf': np.ones((n, 8), np.int32),
      'keypoints': (ids + 1 if keypoints_field is None else keypoints_field).reshape(1, -1),
  }
  if drop:
    del fields[drop]
  sio.savemat(path, fields)
  return ids, vertices

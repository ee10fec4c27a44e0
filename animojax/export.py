r"""Exports a trained run's parameters as a flat '/'-keyed .npz, and loads them back.

  python -m animojax.export --workdir=/tmp/animo_demo --out=params.npz [--weights=ema|raw]

Any trainer family's workdir: the family is read from the run's `config.json` (`config.trainer`).
The keys are the model's own parameter paths (e.g. `warp_anime/.../kernel`), so the file can be
read with plain numpy anywhere; `load_model(npz, model_config)` rebuilds the AniMo module.
"""

import json
import os

from absl import app
from absl import flags
from flax import nnx
import jax
import ml_collections

from animojax import trainers
from animojax.models.blocks import initializers
from animojax.trainers.animo import state as animo_state
from animojax.trainers.common import checkpoint
from animojax.utils import cli
from animojax.utils import tree as tree_util


def read_config(workdir):
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: is {workdir!r} a training workdir?')
  try:
    with open(path) as f:
      config = ml_collections.ConfigDict(json.load(f))
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ValueError(f'{path} is not the JSON a training run writes ({e}); restore it from the '
                     'run\'s launch command or rerun training into a new --workdir.') from e
  if 'trainer' not in config:
    raise ValueError(f'{path} has no "trainer" entry: is {workdir!r} a training workdir?')
  return config


def restore_latest(workdir, weights='ema'):
  """`(config, step, params)` of the latest checkpoint; params as the train state holds them."""
  config = read_config(workdir)
  family = trainers.get(config.trainer)
  ckpt = checkpoint.Checkpointer(workdir)
  step = ckpt.latest_step()
  if step is None:
    raise FileNotFoundError(f'No checkpoint in {ckpt.directory}.')
  state = ckpt.restore_state(step, family.abstract_state(config))
  ckpt.close()
  return config, step, family.select_weights(state, weights)


def export(workdir, out, weights='ema'):
  """Writes the latest checkpoint's parameters to `out`; returns the step exported."""
  cli.check_out_path(out)
  config, step, params = restore_latest(workdir, weights)
  family = trainers.get(config.trainer)
  tree_util.save_npz(out, jax.device_get(family.model_params(params)))
  return step


def load_model(npz_path, model_config):
  """Rebuilds an AniMo module from an exported .npz (shapes checked against the config)."""
  model = nnx.eval_shape(
      lambda: animo_state.build_model(dict(model_config), initializers.KeyStream(0)))
  graphdef, state = nnx.split(model)
  reference = nnx.to_pure_dict(state)
  params = tree_util.restore_like(tree_util.load_npz_flat(npz_path), reference)
  return nnx.merge(graphdef, params)


def main(argv):
  del argv
  with cli.user_errors('export'):
    step = export(FLAGS.workdir, FLAGS.out, FLAGS.weights)
  print(f'Exported step {step} ({FLAGS.weights} weights) to {FLAGS.out}')


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'Training workdir (holds config.json and checkpoints/).')
  flags.DEFINE_string('out', None, 'Output .npz path.')
  flags.DEFINE_enum('weights', 'ema', ['ema', 'raw'], 'EMA weights (for inference) or raw.')
  flags.mark_flags_as_required(['workdir', 'out'])
  app.run(main, flags_parser=cli.parse_flags)

r"""Entry point: `python -m animojax.launch --config=NAME[:ARG] --workdir=DIR [--config.x=y ...]`.

NAME resolves to `animojax/configs/NAME.py` (a path to any config file works too); ARG is passed to
its `get_config`. Configs are locked, so a misspelled `--config.x=y` override is an error. This
file stays short: it handles flags, multi-host start-up and dispatch to the trainer family
`animojax.trainers.<config.trainer>`.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging


def resolve_config_arg(value):
  """Maps `animo[:arg]` to the packaged config file; paths (with / or .py) pass through."""
  name, sep, arg = value.partition(':')
  if '/' in name or name.endswith('.py'):
    return value
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs', f'{name}.py')
  if not os.path.exists(path):
    known = sorted(f[:-3] for f in os.listdir(os.path.dirname(path))
                   if f.endswith('.py') and f not in ('__init__.py', 'common.py'))
    raise SystemExit(f'Unknown config {name!r}; known configs: {known} (or give a file path).')
  return path + sep + arg


def rewrite_argv(argv):
  """Rewrites `--config=NAME` / `--config NAME` before ml_collections parses it as a path."""
  argv = list(argv)
  for i, a in enumerate(argv):
    if a.startswith('--config='):
      argv[i] = '--config=' + resolve_config_arg(a[len('--config='):])
    elif a == '--config' and i + 1 < len(argv):
      argv[i + 1] = resolve_config_arg(argv[i + 1])
  return argv


def main(argv):
  del argv
  if FLAGS.multihost:
    import jax  # pylint: disable=g-import-not-at-top
    # Must run before any other JAX call; TPU pods, SLURM and Open MPI need no arguments.
    jax.distributed.initialize()
  config = FLAGS.config
  logging.info('Config:\n%s', config)
  from animojax import trainers  # pylint: disable=g-import-not-at-top
  trainers.get(config.trainer).train_and_evaluate(config, FLAGS.workdir)


def _define_flags():
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file('config', None, 'Config name or file, e.g. animo:demo.',
                                  lock_config=True)
  flags.DEFINE_string('workdir', None, 'Where checkpoints, metrics and samples go.')
  flags.DEFINE_bool('multihost', False,
                    'Call jax.distributed.initialize() (TPU pods, SLURM, multi-node GPU).')
  flags.mark_flags_as_required(['config', 'workdir'])


FLAGS = flags.FLAGS

if __name__ == '__main__':
  _define_flags()
  app.run(main, argv=rewrite_argv(sys.argv))

r"""Entry point: `python -m animojax.launch --config=NAME[:ARG] --workdir=DIR [--config.x=y ...]`.

NAME resolves to `animojax/configs/NAME.py` (a path to any config file works too); ARG is passed to
its `get_config`. Configs are locked, so a misspelled `--config.x=y` override is an error (one
line naming the key and the nearest valid ones). Rerunning a workdir that holds checkpoints
resumes it; with a different config that is refused (the differences are listed) unless
`--allow_config_change` is given. User errors end with one line, no traceback (`utils/cli.py`).
Library INFO logs are hidden unless `--verbosity=0` (or higher) is given. This file stays short:
it handles flags, multi-host start-up and dispatch to the trainer family
`animojax.trainers.<config.trainer>`.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from animojax.utils import cli
from animojax.utils import logs


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


def initialize_processes(coordinator_address=None, num_processes=None, process_id=None):
  """`jax.distributed.initialize`, before any other JAX call.

  TPU pods, SLURM and Open MPI need no arguments (JAX detects them); elsewhere (several GPU
  machines, or several processes on one machine) all three must be given.
  """
  import jax  # pylint: disable=g-import-not-at-top
  # CPU devices of several processes talk through gloo (the GPU and TPU backends ignore this).
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  except ValueError as e:
    raise SystemExit(
        f'--multihost: {e} Outside a TPU pod, SLURM job or Open MPI launch, give '
        '--coordinator_address=HOST:PORT (process 0\'s address), --num_processes and '
        '--process_id to every process.') from None


def main(argv):
  del argv
  logs.quiet_library_logs()
  if FLAGS.multihost:
    initialize_processes(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  elif FLAGS.coordinator_address or FLAGS.num_processes or FLAGS.process_id is not None:
    raise SystemExit('--coordinator_address, --num_processes and --process_id need --multihost.')
  config = FLAGS.config
  logging.debug('Config:\n%s', config)  # In the workdir's config.json too.
  from animojax import trainers  # pylint: disable=g-import-not-at-top
  from animojax.trainers.common import workdir  # pylint: disable=g-import-not-at-top
  with cli.user_errors('launch'):
    family = trainers.get(config.trainer)
    workdir.check_config(config, os.path.abspath(FLAGS.workdir),
                         allow_change=FLAGS.allow_config_change)
    family.train_and_evaluate(config, FLAGS.workdir)


def _define_flags(fv=flags.FLAGS):
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file('config', None, 'Config name or file, e.g. animo:demo.',
                                  lock_config=True, flag_values=fv)
  flags.DEFINE_string('workdir', None, 'Where checkpoints, metrics and samples go.',
                      flag_values=fv)
  flags.DEFINE_bool('allow_config_change', False, 'Resume a workdir whose run has another '
                    'config (its config.json is then replaced).', flag_values=fv)
  flags.DEFINE_bool('multihost', False,
                    'Call jax.distributed.initialize() (TPU pods, SLURM, multi-node GPU).',
                    flag_values=fv)
  flags.DEFINE_string('coordinator_address', None, 'With --multihost outside TPU pods/SLURM/'
                      'Open MPI: process 0\'s HOST:PORT.', flag_values=fv)
  flags.DEFINE_integer('num_processes', None, 'With --coordinator_address: how many processes.',
                       flag_values=fv)
  flags.DEFINE_integer('process_id', None, 'With --coordinator_address: this process\'s index.',
                       flag_values=fv)
  flags.mark_flags_as_required(['config', 'workdir'], flag_values=fv)


FLAGS = flags.FLAGS

if __name__ == '__main__':
  _define_flags()
  app.run(main, argv=rewrite_argv(sys.argv), flags_parser=cli.parse_flags)

"""Trainer families: `config.trainer` names one, a package `animojax.trainers.<name>`.

Adding a family means adding `configs/<name>.py`, `trainers/<name>/`, `models/<name>/` and a line
in `FAMILIES`. The tools (`launch`, `export`, `evaluate`, `compile_check`) only use what a family
package exports:

  train_and_evaluate(config, workdir) -> the final train state
  build_program(config, mesh=None) -> `trainers.common.program.Program` (its jitted steps and
      their abstract arguments: the trainer, the benchmarks and the compile check share it)
  abstract_state(config) -> the train state's shapes (restoring without allocating)
  select_weights(state, weights) -> the 'ema' or 'raw' parameters of a train state
  model_params(params) -> the model's own parameter tree (the exported .npz keys)
  evaluate(config, workdir, params, step, suite=None) -> the evaluation table (written to the
      workdir); every process calls it
"""

import importlib

FAMILIES = ('animo', 'toontalker', 'translate')


def get(name):
  """The family package for `config.trainer`; a clear error for unknown names."""
  if name not in FAMILIES:
    raise ValueError(f'config.trainer={name!r} is not a trainer family; known: {FAMILIES}.')
  return importlib.import_module(f'animojax.trainers.{name}')

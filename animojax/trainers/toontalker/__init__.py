"""The ToonTalker trainer family (ICCV 2023): two-stage training with the analogy constraint.

`train.py` is the readable trainer; `program.py` what it compiles; `step.py` the pure steps and
losses; `state.py` the train state; `evaluation.py` reenactment in every direction. The
functions below are the family interface that the tools use (see `animojax.trainers`).
"""

import jax

from animojax.trainers.toontalker import program as tt_program
from animojax.trainers.toontalker import state as tt_state
from animojax.trainers.toontalker import step as tt_step
from animojax.trainers.toontalker.program import build as build_program
from animojax.trainers.toontalker.train import evaluate_workdir
from animojax.trainers.toontalker.train import train_and_evaluate

STAGES = tt_step.STAGES


def abstract_state(config):
  """The train state's shapes and dtypes (no allocation)."""
  init = tt_state.make_init(tt_state.model_config(config),
                            tt_program.make_optimizers(config.optim))
  return jax.eval_shape(init, jax.random.key(0))


def select_weights(state, weights='ema'):
  """The generator's parameters. ToonTalker (like LIA) keeps no EMA, so 'ema' and 'raw' are the
  same weights; both names are accepted so that the tools' defaults work."""
  if weights not in ('ema', 'raw'):
    raise ValueError(f"weights must be 'ema' or 'raw', got {weights!r}")
  return state['params']


def model_params(params):
  """The model's own parameter tree (the exported .npz keys: real/..., cartoon/...)."""
  return params['gen']


def evaluate(config, workdir, params, step, suite=None):
  """Scores every reenactment direction (eval.json, eval.md in `workdir`); returns the table."""
  gen_def, _ = tt_state.graphdefs(tt_state.model_config(config))
  generate = tt_step.make_generate(gen_def, kernels_choice=config.get('kernels', 'auto'))
  return evaluate_workdir(config, workdir, generate, model_params(params), step, suite)


__all__ = ['STAGES', 'abstract_state', 'build_program', 'evaluate', 'model_params',
           'select_weights', 'train_and_evaluate']

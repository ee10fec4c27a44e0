"""The AniMo trainer family (AnimeCeleb, ECCV 2022): two-stage PIRender-style training.

`train.py` is the readable trainer; `program.py` what it compiles; `step.py` the pure steps;
`state.py` the train state; `optim.py` the per-group Adam, schedule and EMA; `evaluation.py`
reenactment in every direction and its scores. The functions below are the family interface
that the tools use (see `animojax.trainers`).
"""

import jax

from animojax.trainers.animo import optim
from animojax.trainers.animo import state as animo_state
from animojax.trainers.animo import step as animo_step
from animojax.trainers.animo.program import build as build_program
from animojax.trainers.animo.train import evaluate_workdir
from animojax.trainers.animo.train import train_and_evaluate

STAGES = animo_step.STAGES


def abstract_state(config):
  """The train state's shapes and dtypes (no allocation)."""
  init = animo_state.make_init(animo_state.model_config(config),
                               optim.make_optimizer(config.optim))
  return jax.eval_shape(init, jax.random.key(0))


def select_weights(state, weights='ema'):
  """The 'ema' (for inference) or 'raw' parameters of a train state, in the state's groups."""
  if weights not in ('ema', 'raw'):
    raise ValueError(f"weights must be 'ema' or 'raw', got {weights!r}")
  return state['ema' if weights == 'ema' else 'params']


def model_params(params):
  """The model's own parameter tree (the keys of the exported .npz)."""
  return animo_state.model_params(params)


def evaluate(config, workdir, params, step, suite=None):
  """Scores every reenactment direction (eval.json, eval.md in `workdir`); returns the table."""
  generate = animo_step.make_generate(animo_state.graphdef_of(animo_state.model_config(config)),
                                      kernels_choice=config.get('kernels', 'auto'))
  return evaluate_workdir(config, workdir, generate, params, step, suite)


__all__ = ['STAGES', 'abstract_state', 'build_program', 'evaluate', 'model_params',
           'select_weights', 'train_and_evaluate']

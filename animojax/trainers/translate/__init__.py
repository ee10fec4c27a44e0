"""The anime <-> real translation family: CycleGAN (+ angle), U-GAT-IT, difference vector,
encoder-decoder (`config.method`), both directions.

`train.py` is the readable trainer; `program.py` what it compiles; one module per method
(`cyclegan.py`, `ugatit.py`, `diffvec.py`, `encdec.py`) with its networks, extra state and pure
step; `pool.py` the image pool; `optim.py` Adam and the schedules; `augment.py` the on-device
crop/flip; `evaluation.py` FID/KID/angle error. The functions below are the family interface
that the tools use (see `animojax.trainers`).
"""

import jax

from animojax.trainers.translate import optim
from animojax.trainers.translate import program as translate_program
from animojax.trainers.translate.program import build as build_program
from animojax.trainers.translate.program import STAGES
from animojax.trainers.translate.train import evaluate_workdir
from animojax.trainers.translate.train import train_and_evaluate


def abstract_state(config):
  """The train state's shapes and dtypes (no allocation)."""
  init = translate_program.make_init(config, optim.make_optimizer(config.optim))
  return jax.eval_shape(init, jax.random.key(0))


def select_weights(state, weights='ema'):
  """The trained networks. These methods keep no EMA (neither does upstream), so 'ema' and 'raw'
  both give the trained weights."""
  if weights not in ('ema', 'raw'):
    raise ValueError(f"weights must be 'ema' or 'raw', got {weights!r}")
  return state['params']


def model_params(params):
  """{net name: its parameters} (e.g. gen_to_real/stem/kernel in the exported .npz)."""
  return params


def evaluate(config, workdir, params, step, suite=None):
  """FID/KID per direction and the angle error (eval.json, eval.md); returns the table."""
  return evaluate_workdir(config, workdir, params, step, suite)


__all__ = ['STAGES', 'abstract_state', 'build_program', 'evaluate', 'model_params',
           'select_weights', 'train_and_evaluate']

"""Everything the ToonTalker trainer compiles, built from a config and a mesh, without data.

The trainer, `benchmarks/train_step.py` and `python -m animojax.compile_check` build their steps
here (`trainers.common.program`), so what is benchmarked and checked is exactly what trains.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from animojax.data import pipeline
from animojax.losses import perceptual
from animojax.models.blocks import initializers
from animojax.ops import kernels
from animojax.trainers.common import precision
from animojax.trainers.common import program as common_program
from animojax.trainers.toontalker import state as tt_state
from animojax.trainers.toontalker import step as tt_step
from animojax.utils import sharding


@dataclasses.dataclass(frozen=True)
class Program(common_program.Program):
  """The ToonTalker training program (`train_steps`: {'stage1', 'stage2'} -> jitted
  (state, batch, loss_params, rng) -> (state, metrics), state donated).

  Extra attributes: image_loss (its params go in `loss_params`), txs ({'gen', 'disc'} Adam),
  graphdefs ((generator, discriminator) NNX graph definitions).
  """
  image_loss: perceptual.ImageLoss = None
  txs: Any = None
  graphdefs: Any = None


def make_optimizers(optim_config):
  """Adam per group, learning rate injected per stage (LIA's betas, see configs/toontalker.py)."""
  def adam(b1, b2):
    return optax.inject_hyperparams(optax.adam)(learning_rate=0.0, b1=b1, b2=b2,
                                                eps=optim_config.eps)
  return {'gen': adam(*optim_config.g_betas), 'disc': adam(*optim_config.d_betas)}


def stages(config):
  """The stages this config runs (a stage-2-only run has stage1_steps = 0)."""
  out = []
  if config.stage1_steps > 0:
    out.append('stage1')
  if config.total_steps > config.stage1_steps:
    out.append('stage2')
  return tuple(out)


def build(config, mesh=None) -> Program:
  """Loss, optimisers, model definitions, shardings and the jitted steps for `config`."""
  kernel_choice = kernels.check(config.get('kernels', 'auto'))
  mesh = sharding.make_mesh(config.mesh) if mesh is None else mesh
  if config.batch_size % mesh.shape['data']:
    raise ValueError(f'batch_size {config.batch_size} must be divisible by the data axis '
                     f'({mesh.shape["data"]} devices).')
  if config.batch_size % 4:
    raise ValueError(f'batch_size {config.batch_size} must be a multiple of 4 (the '
                     "discriminator's minibatch-stddev group).")
  data_sharding = sharding.batch_sharding(mesh)
  repl = sharding.replicated(mesh)
  dtype = precision.compute_dtype(config.compute_dtype)
  image_loss = perceptual.make_loss(config.loss.network, config.loss.vgg19_weights or None,
                                    dtype=dtype)
  txs = make_optimizers(config.optim)
  model_config = tt_state.model_config(config)
  graphdefs = tt_state.graphdefs(model_config)
  init = tt_state.make_init(model_config, txs)
  abstract_state = jax.eval_shape(init, jax.random.key(0))
  state_shardings = sharding.tree_shardings(abstract_state, config.sharding_rules, mesh)
  state_shardings['step'] = repl
  train_steps = {
      stage: jax.jit(kernels.traced_with(
          kernel_choice, tt_step.make_train_step(graphdefs, image_loss, txs, config, stage),
          mesh), in_shardings=(state_shardings, data_sharding, repl, repl),
                     out_shardings=(state_shardings, repl), donate_argnums=0)
      for stage in stages(config)}
  num_params = sum(x.size for x in jax.tree.leaves(abstract_state['params']['gen']))
  args = (common_program.sharded_abstract(abstract_state, state_shardings),
          common_program.sharded_abstract(abstract_batch(config), data_sharding),
          common_program.sharded_abstract(image_loss.params, repl),
          common_program.abstract_rng(repl))
  return Program(mesh=mesh, data_sharding=data_sharding, replicated=repl, init=init,
                 abstract_state=abstract_state, state_shardings=state_shardings,
                 train_steps=train_steps, step_args={s: args for s in train_steps},
                 num_params=num_params, image_loss=image_loss, txs=txs, graphdefs=graphdefs)


def abstract_batch(config):
  """Shapes of one global batch: per domain of config.data, a (source, driving) pair."""
  b, s = config.batch_size, config.data.image_size
  image = jax.ShapeDtypeStruct((b, s, s, 3), jnp.float32)
  return {d: {'source': image, 'driving': image} for d in pipeline.domains(config.data)}


def random_batch(config, rng):
  """A batch of `abstract_batch` shapes, images uniform in [-1, 1]."""
  out = {}
  for d, fields in abstract_batch(config).items():
    out[d] = {}
    for name, spec in fields.items():
      rng, key = jax.random.split(rng)
      out[d][name] = initializers.uniform(key, spec.shape, spec.dtype, -1.0, 1.0)
  return out

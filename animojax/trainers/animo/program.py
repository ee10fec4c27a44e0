"""Everything the AniMo trainer compiles, built from a config and a mesh, without any data.

The trainer, `benchmarks/train_step.py` and the ahead-of-time compile check
(`python -m animojax.compile_check`) all build their steps here (`trainers.common.program`), so
what is benchmarked and checked is exactly what trains.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from animojax.losses import perceptual
from animojax.models.blocks import initializers
from animojax.models.animo import animo as animo_model
from animojax.ops import kernels
from animojax.trainers.animo import state as animo_state
from animojax.trainers.animo import step as animo_step
from animojax.trainers.animo import optim
from animojax.trainers.common import precision
from animojax.trainers.common import program as common_program
from animojax.utils import sharding


@dataclasses.dataclass(frozen=True)
class Program(common_program.Program):
  """The AniMo training program on one mesh (`train_steps`: {'warp', 'gen'} -> jitted
  (state, batch, loss_params, rng) -> (state, metrics), state donated).

  Extra attributes:
    image_loss: the loss network (in the policy's compute dtype); its params go in `loss_params`.
    tx: the per-group Adam.
    graphdef: the model's NNX graph definition.
  """
  image_loss: perceptual.ImageLoss = None
  tx: Any = None
  graphdef: Any = None


def build(config, mesh=None) -> Program:
  """Loss, optimiser, model definition, shardings and the jitted steps for `config`.

  Loads the loss network's weights (a missing file fails here, before anything compiles).
  """
  kernel_choice = kernels.check(config.get('kernels', 'auto'))
  mesh = sharding.make_mesh(config.mesh) if mesh is None else mesh
  if config.batch_size % mesh.shape['data']:
    raise ValueError(f'batch_size {config.batch_size} must be divisible by the data axis '
                     f'({mesh.shape["data"]} devices).')
  data_sharding = sharding.batch_sharding(mesh)
  repl = sharding.replicated(mesh)
  dtype = precision.compute_dtype(config.compute_dtype)
  image_loss = perceptual.make_loss(config.loss.network, config.loss.vgg19_weights or None,
                                    dtype=dtype)
  tx = optim.make_optimizer(config.optim)
  graphdef = animo_state.graphdef_of(animo_state.model_config(config))
  init = animo_state.make_init(animo_state.model_config(config), tx)
  abstract_state = jax.eval_shape(init, jax.random.key(0))
  state_shardings = sharding.tree_shardings(abstract_state, config.sharding_rules, mesh)
  state_shardings['step'] = repl
  # Every trace of the steps uses the config's kernels on this mesh (ops/kernels.py), wherever
  # it is traced (trainer, benchmarks, compile check).
  steps = {stage: kernels.traced_with(
      kernel_choice, animo_step.make_train_step(graphdef, image_loss, tx, config, stage), mesh)
           for stage in animo_step.STAGES}
  train_steps = {
      stage: jax.jit(step, in_shardings=(state_shardings, data_sharding, repl, repl),
                     out_shardings=(state_shardings, repl), donate_argnums=0)
      for stage, step in steps.items()}
  num_params = sum(x.size for x in jax.tree.leaves(abstract_state['params']))
  args = _abstract_step_args(abstract_state, state_shardings, data_sharding, repl,
                             image_loss.params, config)
  return Program(mesh=mesh, data_sharding=data_sharding, replicated=repl, init=init,
                 abstract_state=abstract_state, state_shardings=state_shardings,
                 train_steps=train_steps, step_args={stage: args for stage in train_steps},
                 num_params=num_params, image_loss=image_loss, tx=tx, graphdef=graphdef)


def pose_dim(config) -> int:
  model = animo_state.model_config(config)
  return model.get('pose_dim', animo_model.VARIANTS[model.get('variant', 'paper')]['pose_dim'])


def abstract_batch(config) -> dict[str, dict[str, jax.ShapeDtypeStruct]]:
  """Shapes of one global batch as the input pipeline delivers it (keys the step reads)."""
  b, s, d = config.batch_size, config.data.image_size, pose_dim(config)
  image = jax.ShapeDtypeStruct((b, s, s, 3), jnp.float32)
  pose = jax.ShapeDtypeStruct((b, d), jnp.float32)
  identity = jax.ShapeDtypeStruct((b,), jnp.int32)
  return {domain: {'source': image, 'driving': image, 'source_pose': pose, 'driving_pose': pose,
                   'identity': identity}
          for domain in animo_step.DOMAINS}


def _abstract_step_args(abstract_state, state_shardings, data_sharding, repl, loss_params,
                        config):
  """(state, batch, loss_params, rng) of a train step as sharded ShapeDtypeStructs."""
  return (common_program.sharded_abstract(abstract_state, state_shardings),
          common_program.sharded_abstract(abstract_batch(config), data_sharding),
          common_program.sharded_abstract(loss_params, repl),
          common_program.abstract_rng(repl))


def random_batch(config, rng) -> dict[str, dict[str, jax.Array]]:
  """A batch of `abstract_batch` shapes: images uniform in [-1, 1], poses N(0, 0.1)."""
  out = {}
  for domain, fields in abstract_batch(config).items():
    out[domain] = {}
    for name, spec in fields.items():
      rng, key = jax.random.split(rng)
      if name == 'identity':
        out[domain][name] = jnp.arange(spec.shape[0], dtype=spec.dtype)
      elif name.endswith('pose'):
        out[domain][name] = 0.1 * initializers.normal(key, spec.shape, spec.dtype)
      else:
        out[domain][name] = initializers.uniform(key, spec.shape, spec.dtype, -1.0, 1.0)
  return out

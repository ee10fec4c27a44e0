"""Everything the AniMo trainer compiles, built from a config and a mesh, without any data.

The trainer, `benchmarks/train_step.py` and the ahead-of-time compile check
(`python -m animojax.compile_check`) all build their steps here, so what is benchmarked and
checked is exactly what trains.
"""

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections

from animojax.losses import perceptual
from animojax.models import animo as animo_model
from animojax.train import animo_state
from animojax.train import animo_step
from animojax.train import optim
from animojax.train import precision
from animojax.utils import sharding


@dataclasses.dataclass(frozen=True)
class Program:
  """The AniMo training program on one mesh.

  Attributes:
    mesh: the device mesh (batch along 'data').
    data_sharding / replicated: shardings of the batch and of replicated values.
    image_loss: the loss network (in the policy's compute dtype); its params go in `loss_params`.
    tx: the per-group Adam.
    graphdef: the model's NNX graph definition.
    init: rng -> train state (jit it with `state_shardings` as out_shardings).
    abstract_state: shapes/dtypes of the train state.
    state_shardings: NamedShardings of the train state (from `config.sharding_rules`).
    train_steps: {'warp', 'gen'} -> jitted (state, batch, loss_params, rng) -> (state, metrics),
      state donated.
    num_params: parameter count.
  """
  mesh: jax.sharding.Mesh
  data_sharding: jax.sharding.NamedSharding
  replicated: jax.sharding.NamedSharding
  image_loss: perceptual.ImageLoss
  tx: Any
  graphdef: Any
  init: Callable[[jax.Array], dict[str, Any]]
  abstract_state: dict[str, Any]
  state_shardings: dict[str, Any]
  train_steps: dict[str, Any]
  num_params: int


def model_config(config) -> dict[str, Any]:
  model = config.model
  return model.to_dict() if isinstance(model, ml_collections.ConfigDict) else dict(model)


def build(config, mesh=None) -> Program:
  """Loss, optimiser, model definition, shardings and the jitted steps for `config`.

  Loads the loss network's weights (a missing file fails here, before anything compiles).
  """
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
  graphdef = animo_state.graphdef_of(model_config(config))
  init = animo_state.make_init(model_config(config), tx)
  abstract_state = jax.eval_shape(init, jax.random.key(0))
  state_shardings = sharding.tree_shardings(abstract_state, config.sharding_rules, mesh)
  state_shardings['step'] = repl
  train_steps = {
      stage: jax.jit(animo_step.make_train_step(graphdef, image_loss, tx, config, stage),
                     in_shardings=(state_shardings, data_sharding, repl, repl),
                     out_shardings=(state_shardings, repl), donate_argnums=0)
      for stage in animo_step.STAGES}
  num_params = sum(x.size for x in jax.tree.leaves(abstract_state['params']))
  return Program(mesh, data_sharding, repl, image_loss, tx, graphdef, init, abstract_state,
                 state_shardings, train_steps, num_params)


def pose_dim(config) -> int:
  model = model_config(config)
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


def abstract_step_args(program: Program, config):
  """(state, batch, loss_params, rng) of a train step as sharded ShapeDtypeStructs: enough to
  `lower(...).compile()` it without allocating anything (the compile check does)."""
  def spec(x, s):
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)
  state = jax.tree.map(spec, program.abstract_state, program.state_shardings)
  batch = jax.tree.map(lambda x: spec(x, program.data_sharding), abstract_batch(config))
  loss_params = jax.tree.map(lambda x: spec(x, program.replicated), program.image_loss.params)
  rng = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=program.replicated)
  return state, batch, loss_params, rng


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
        out[domain][name] = 0.1 * jax.random.normal(key, spec.shape, spec.dtype)
      else:
        out[domain][name] = jax.random.uniform(key, spec.shape, spec.dtype, -1.0, 1.0)
  return out

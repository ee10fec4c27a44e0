"""Everything the translation trainer compiles, built from a config and a mesh, without data.

The method (`config.method`) supplies its networks, optimiser groups, extra state (image pools)
and pure train step; this file makes the train state, its shardings and the jitted step, the
same for the trainer, `benchmarks/translate_step.py` and `python -m animojax.compile_check`.
"""

import dataclasses
import importlib
from typing import Any

from clu import metrics as clu_metrics
from flax import nnx
import jax
import jax.numpy as jnp

from animojax.models.blocks import initializers
from animojax.trainers.common import nonfinite
from animojax.trainers.common import program as common_program
from animojax.trainers.translate import optim
from animojax.utils import sharding

# config.method -> module of animojax.trainers.translate implementing it.
METHODS = {'cyclegan': 'cyclegan', 'cyclegan_angle': 'cyclegan', 'ugatit': 'ugatit',
           'diffvec': 'diffvec', 'encdec': 'encdec'}
STAGES = ('train',)


def method_module(config):
  if config.method not in METHODS:
    raise ValueError(f'config.method={config.method!r}: choose one of {sorted(METHODS)}.')
  return importlib.import_module(f'animojax.trainers.translate.{METHODS[config.method]}')


def batch_fields(config):
  """The per-domain fields the method's step reads (images always; the synthetic data's hidden
  state where the method needs angles or true pairs)."""
  return method_module(config).batch_fields(config)


def metrics_collection(config):
  fields = {n: clu_metrics.Average.from_output(n)
            for n in ('loss',) + method_module(config).loss_terms(config)}
  fields['first_nonfinite_step'] = nonfinite.FirstNonFinite
  return clu_metrics.Collection.create(**fields)


def graphdefs_of(config):
  """{net: graphdef} without allocating weights."""
  method = method_module(config)
  nets = nnx.eval_shape(lambda: method.build_nets(config, initializers.KeyStream(0)))
  return {name: nnx.split(net, nnx.Param, ...)[0] for name, net in nets.items()}


def make_init(config, tx):
  method = method_module(config)

  def init(rng):
    nets = method.build_nets(config, initializers.KeyStream(rng))
    params, buffers = {}, {}
    for name, net in nets.items():
      _, trained, rest = nnx.split(net, nnx.Param, ...)
      params[name] = nnx.to_pure_dict(trained)
      if jax.tree.leaves(rest):  # Non-trained state, e.g. spectral-norm power-iteration vectors.
        buffers[name] = nnx.to_pure_dict(rest)
    extra = method.init_extra(config)
    if buffers:
      extra['buffers'] = buffers
    return {
        'step': jnp.zeros((), jnp.int32),
        'params': params,
        'opt': {group: tx.init({n: params[n] for n in names})
                for group, names in method.GROUPS.items()},
        'extra': extra,
    }

  return init


@dataclasses.dataclass(frozen=True)
class Program(common_program.Program):
  """The translation program (`train_steps['train']`: (state, batch, rng) -> (state, metrics),
  state donated). Extra attributes: `tx`, `graphdefs` ({net: graphdef}), `method` (module)."""
  tx: Any = None
  graphdefs: Any = None
  method: Any = None


def abstract_batch(config):
  b, s = config.batch_size, config.data.image_size
  shapes = {'image': (b, s, s, 3), 'paired': (b, s, s, 3), 'semantic': (b, 20)}
  return {d: {f: jax.ShapeDtypeStruct(shapes[f], jnp.float32) for f in batch_fields(config)}
          for d in ('anime', 'real')}


def build(config, mesh=None) -> Program:
  method = method_module(config)
  mesh = sharding.make_mesh(config.mesh) if mesh is None else mesh
  if config.batch_size % mesh.shape['data']:
    raise ValueError(f'batch_size {config.batch_size} must be divisible by the data axis '
                     f'({mesh.shape["data"]} devices).')
  data_sharding = sharding.batch_sharding(mesh)
  repl = sharding.replicated(mesh)
  tx = optim.make_optimizer(config.optim)
  graphdefs = graphdefs_of(config)
  init = make_init(config, tx)
  abstract_state = jax.eval_shape(init, jax.random.key(0))
  state_shardings = sharding.tree_shardings(abstract_state, config.sharding_rules, mesh)
  state_shardings['step'] = repl
  state_shardings['extra'] = jax.tree.map(lambda _: repl, abstract_state['extra'])
  step = method.make_train_step(graphdefs, tx, config, optim=optim,
                                metrics_collection=metrics_collection(config))
  train_step = jax.jit(step, in_shardings=(state_shardings, data_sharding, repl),
                       out_shardings=(state_shardings, repl), donate_argnums=0)
  args = (common_program.sharded_abstract(abstract_state, state_shardings),
          common_program.sharded_abstract(abstract_batch(config), data_sharding),
          common_program.abstract_rng(repl))
  num_params = sum(x.size for x in jax.tree.leaves(abstract_state['params']))
  return Program(mesh=mesh, data_sharding=data_sharding, replicated=repl, init=init,
                 abstract_state=abstract_state, state_shardings=state_shardings,
                 train_steps={'train': train_step}, step_args={'train': args},
                 num_params=num_params, tx=tx, graphdefs=graphdefs, method=method)


def random_batch(config, rng):
  """A batch of `abstract_batch` shapes: images uniform in [-1, 1], semantics N(0, 10)."""
  out = {}
  for domain, fields in abstract_batch(config).items():
    out[domain] = {}
    for name, spec in fields.items():
      rng, key = jax.random.split(rng)
      if len(spec.shape) == 4:  # image, paired
        out[domain][name] = initializers.uniform(key, spec.shape, spec.dtype, -1.0, 1.0)
      else:
        out[domain][name] = 10.0 * initializers.normal(key, spec.shape, spec.dtype)
  return out

"""Device meshes and parameter shardings, both described by config data.

A mesh is a list of (axis_name, size) with at most one size of -1 ("all remaining devices").
Parameter sharding rules are (regex, strategy) pairs matched against `/`-joined parameter names;
the first match wins:
  'replicate'      every device holds the whole array (data parallelism);
  'fsdp'           shard the largest dimension divisible by the 'data' axis over it (ZeRO-3 /
                   FSDP style: parameters, optimizer state and EMA are split across devices).
Activations and batches are always sharded along 'data'.
"""

import re

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from animojax.utils import tree as tree_util

STRATEGIES = ('replicate', 'fsdp')


def make_mesh(axes, devices=None):
  devices = jax.devices() if devices is None else devices
  names = tuple(name for name, _ in axes)
  sizes = [size for _, size in axes]
  if sizes.count(-1) > 1:
    raise ValueError(f'config.mesh {axes}: at most one axis may have size -1.')
  known = int(np.prod([s for s in sizes if s != -1]))
  if -1 in sizes:
    if len(devices) % known:
      raise ValueError(f'config.mesh {axes} does not divide {len(devices)} devices.')
    sizes[sizes.index(-1)] = len(devices) // known
  needed = int(np.prod(sizes))
  if needed > len(devices):
    raise ValueError(f'config.mesh {axes} needs {needed} devices, have {len(devices)}.')
  # A fully specified smaller mesh uses the first devices (e.g. to compare 1 vs 8 devices).
  # Auto axes: XLA propagates shardings through the model (explicit-sharding types would make
  # every reshape in the models and losses spell out its output sharding).
  return jax.make_mesh(tuple(sizes), names, devices=devices[:needed],
                       axis_types=(jax.sharding.AxisType.Auto,) * len(names))


def batch_sharding(mesh):
  return NamedSharding(mesh, P('data'))


def replicated(mesh):
  return NamedSharding(mesh, P())


def _spec(strategy, shape, mesh):
  if strategy == 'replicate':
    return P()
  data = mesh.shape['data']
  dims = [d for d in np.argsort(shape)[::-1] if shape[d] % data == 0 and shape[d] >= data]
  if not dims:  # Too small to split: replicating costs nothing worth saving.
    return P()
  spec = [None] * len(shape)
  spec[dims[0]] = 'data'
  return P(*spec)


def tree_shardings(abstract_tree, rules, mesh):
  """NamedShardings for every leaf of `abstract_tree`, chosen by `rules` on its name."""
  compiled = [(re.compile(pattern), strategy) for pattern, strategy in rules]
  for _, strategy in compiled:
    if strategy not in STRATEGIES:
      raise ValueError(f'Unknown sharding strategy {strategy!r}; expected one of {STRATEGIES}.')

  def choose(name, leaf):
    shape = getattr(leaf, 'shape', ())
    for pattern, strategy in compiled:
      if pattern.fullmatch(name):
        return NamedSharding(mesh, _spec(strategy, shape, mesh))
    return NamedSharding(mesh, P())

  leaves, treedef = jax.tree_util.tree_flatten(abstract_tree)
  names = tree_util.flatten_with_names(abstract_tree)  # Same leaf order as tree_flatten.
  return jax.tree_util.tree_unflatten(
      treedef, [choose(name, leaf) for name, leaf in zip(names, leaves)])

"""Ops that are independent per batch element, kept local to each device's shard of the batch.

XLA's SPMD partitioner cannot see inside a custom call (a Pallas kernel) and does not split a
scatter whose batch index is part of the scattered coordinates: under `jax.jit` on a
batch-sharded mesh it would gather the whole batch onto every device, run the op there, and
slice the result. `batch_local` runs the function unchanged on each device's rows instead, with
one of two mechanisms:

* When the traced program's mesh is known (`kernels.traced_mesh`: the trainers' steps, arguments
  carrying a NamedSharding): `jax.shard_map` over the mesh's 'data' axis, the axis every batch is
  sharded along (`utils.sharding.batch_sharding`).
* Otherwise, on CPU and GPU: `custom_partitioning`, which tells the partitioner the truth (every
  operand and result split along its leading axis the way the first operand is, every other
  axis whole), so it follows whatever batch sharding the operands arrive with (replicating when
  uneven).

shard_map comes first because custom_partitioning cannot be cached: its custom call carries the
id of a Python object in its backend config, so a program holding one gets another HLO hash in
every process and never hits JAX's persistent compilation cache (every restart of a training job
recompiled its steps; measured 2026-12-03). It also works on TPUs, where custom_partitioning does
not: its rule is a Python callback that only the compilers jaxlib runs in-process can call;
libtpu's SPMD partitioner has no emitter for it and fails with "Custom emitter for
CustomSPMDPartitioning not found" (also when compiling ahead of time for a TPU topology).

On one device, or a batch the data axis does not divide, the function is inlined. Under
`jax.vmap` the mapped axis is folded into the batch (the op is per row, so that is exact).
"""

import functools
import math
from typing import Callable

import jax
from jax import custom_batching
import jax.numpy as jnp
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from animojax.ops import kernels

# The mesh axis every batch is sharded along (`utils.sharding.batch_sharding`).
BATCH_AXIS = 'data'


def _batch_axes(sharding, batch: int, mesh):
  """Mesh axes splitting the leading dimension in `sharding`, or None when they cannot be kept."""
  spec = getattr(sharding, 'spec', None)
  if not spec or spec[0] is None:
    return None
  axes = spec[0] if isinstance(spec[0], tuple) else (spec[0],)
  # Uneven shards would hand the kernel padding rows; replicate instead (correct, just slower).
  return spec[0] if batch % math.prod(mesh.shape[a] for a in axes) == 0 else None


def _leading(mesh, axes, ndim: int) -> NamedSharding:
  return NamedSharding(mesh, P(axes, *([None] * (ndim - 1))))


def _with_static(arrays, static, static_argnums):
  """The full argument list: `arrays` with the static values put back at their positions."""
  full = list(arrays)
  for position, value in sorted(zip(static_argnums, static)):
    full.insert(position, value)
  return full


def batch_local(fn: Callable, sharding_rule: str, static_argnums: tuple[int, ...] = ()):
  """Wraps `fn(*arrays, *static)` so that it runs on each device's slice of the batch.

  Args:
    fn: a function of arrays (and hashable static arguments) whose results for batch row b depend
      on the operands' row b only.
    sharding_rule: its Shardy rule, einsum-like with the batch factor first in every operand and
      result (e.g. 'b h w c, b i j t -> b i j c'); every other factor is kept whole.
    static_argnums: positions of the static (non-array) arguments.
  """
  wrapped = custom_partitioning(fn, static_argnums=static_argnums)
  operands, results = sharding_rule.split('->')
  # Shardy wants the other factors in their order of first appearance in the rule.
  factors = list(dict.fromkeys(
      f for term in operands.split(',') + results.split(',') for f in term.split()))
  batch_factor = factors[0]

  def shardings(mesh, arg_shapes, result_shape):
    first = arg_shapes[0]
    mesh = getattr(first.sharding, 'mesh', mesh)
    axes = _batch_axes(first.sharding, first.shape[0], mesh)
    arg_shardings = tuple(_leading(mesh, axes, len(a.shape)) for a in arg_shapes)
    result_shardings = jax.tree.map(lambda r: _leading(mesh, axes, len(r.shape)), result_shape)
    return mesh, arg_shardings, result_shardings

  def partition(*args):
    *static, mesh, arg_shapes, result_shape = args
    mesh, arg_shardings, result_shardings = shardings(mesh, arg_shapes, result_shape)

    def lower(*arrays):
      return fn(*_with_static(arrays, static, static_argnums))

    return mesh, lower, result_shardings, arg_shardings

  def infer(*args):  # Used only when Shardy is off (the GSPMD partitioner).
    *_, mesh, arg_shapes, result_shape = args
    return shardings(mesh, arg_shapes, result_shape)[2]

  wrapped.def_partition(
      partition=partition, infer_sharding_from_operands=infer, sharding_rule=sharding_rule,
      need_replication_factors=tuple(f for f in factors if f != batch_factor))

  def per_shard(static, mesh, arrays):
    """`fn` on each device's rows of the 'data' axis of `mesh` (inlined where that is moot)."""
    full = lambda *a: fn(*_with_static(a, static, static_argnums))
    shards = mesh.shape.get(BATCH_AXIS, 1)
    if shards == 1 or arrays[0].shape[0] % shards:
      return full(*arrays)  # Nothing to split, or uneven: correct, the partitioner decides.
    return jax.shard_map(full, mesh=mesh, in_specs=P(BATCH_AXIS), out_specs=P(BATCH_AXIS),
                         axis_names={BATCH_AXIS})(*arrays)

  @functools.cache
  def with_static(static, shard_map_mesh):
    """`wrapped` of the arrays alone (by shard_map on `shard_map_mesh` if given), with a vmap rule
    (neither custom_partitioning nor this choice has one)."""

    @custom_batching.custom_vmap
    def call(*arrays):
      if shard_map_mesh is not None:
        return per_shard(static, shard_map_mesh, arrays)
      return wrapped(*_with_static(arrays, static, static_argnums))

    @call.def_vmap
    def fold_into_batch(axis_size, in_batched, *arrays):
      arrays = [a if batched else jnp.broadcast_to(a, (axis_size, *a.shape))
                for a, batched in zip(arrays, in_batched)]
      out = call(*(a.reshape(axis_size * a.shape[1], *a.shape[2:]) for a in arrays))
      out = jax.tree.map(lambda o: o.reshape(axis_size, o.shape[0] // axis_size, *o.shape[1:]),
                         out)
      return out, jax.tree.map(lambda _: True, out)

    return call

  def apply(*args):
    static = tuple(args[i] for i in static_argnums)
    arrays = [a for i, a in enumerate(args) if i not in static_argnums]
    return with_static(static, kernels.traced_mesh(arrays[0]))(*arrays)

  return apply

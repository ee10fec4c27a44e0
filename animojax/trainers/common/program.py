"""What a trainer family compiles, built from a config and a mesh, without any data.

A family's `build_program(config, mesh)` returns a `Program` (or a subclass with the family's own
extras). The trainer, the benchmarks and the ahead-of-time compile check all take their steps from
it, so what is benchmarked and checked is exactly what trains.
"""

import dataclasses
from typing import Any, Callable

import jax


@dataclasses.dataclass(frozen=True)
class Program:
  """A training program on one mesh.

  Attributes:
    mesh: the device mesh (batch along 'data').
    data_sharding / replicated: shardings of the batch and of replicated values.
    init: rng -> train state (jit it with `state_shardings` as out_shardings).
    abstract_state: shapes/dtypes of the train state.
    state_shardings: NamedShardings of the train state (from `config.sharding_rules`).
    train_steps: {stage: jitted step}, compiled on first use, state donated.
    step_args: {stage: the step's arguments as sharded jax.ShapeDtypeStructs}: enough to
      `train_steps[stage].lower(*step_args[stage]).compile()` without allocating anything.
    num_params: parameter count.
  """
  mesh: jax.sharding.Mesh
  data_sharding: jax.sharding.NamedSharding
  replicated: jax.sharding.NamedSharding
  init: Callable[[jax.Array], dict[str, Any]]
  abstract_state: dict[str, Any]
  state_shardings: dict[str, Any]
  train_steps: dict[str, Any]
  step_args: dict[str, tuple]
  num_params: int


def sharded_abstract(tree, shardings):
  """`tree`'s leaves as ShapeDtypeStructs carrying `shardings` (one sharding, or a tree of them)."""
  if isinstance(shardings, jax.sharding.Sharding):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=shardings), tree)
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree,
                      shardings)


def abstract_rng(sharding):
  return jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=sharding)


def seed_keys(seed, replicated):
  """(init key, train key) from `seed`, made by a jitted call so that they are global
  (replicated) arrays on every process."""
  return jax.jit(lambda: tuple(jax.random.split(jax.random.key(seed))), out_shardings=replicated)()

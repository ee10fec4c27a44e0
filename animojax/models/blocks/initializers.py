"""Random draws for parameter initialisers: the values of `jax.random`, far cheaper to compile.

`jax.random.normal(key, shape)` gives the element at row-major index i the counter i (with and
without `jax_threefry_partitionable`), so drawing `prod(shape)` values and reshaping gives the same
bits. XLA:CPU compiles the hash over an N-d iota far more slowly than over a 1-d one, though:
20 conv kernels drawn in one jitted init took 23.7 s to compile N-d and 2.0 s flat (2 cores,
jax 0.10.2), and every model's init, every test run and the CPU demo pay it. So every initialiser
in `animojax.models` draws flat through these functions; `tests/initializers_test.py` checks the
values equal `jax.random`'s.
"""

import math

import jax
import jax.numpy as jnp


def normal(key, shape, dtype=jnp.float32) -> jax.Array:
  """`jax.random.normal(key, shape, dtype)`, drawn flat."""
  return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def uniform(key, shape, dtype=jnp.float32, minval=0.0, maxval=1.0) -> jax.Array:
  """`jax.random.uniform(key, shape, dtype, minval, maxval)`, drawn flat."""
  return jax.random.uniform(key, (math.prod(shape),), dtype, minval, maxval).reshape(shape)


def normal_init(stddev: float):
  """`nnx.initializers.normal(stddev)`, drawn flat."""

  def init(key, shape, dtype=jnp.float32):
    return normal(key, shape, dtype) * jnp.asarray(stddev, dtype)

  return init


def uniform_init(bound: float):
  """U(-bound, bound), drawn flat."""

  def init(key, shape, dtype=jnp.float32):
    return uniform(key, shape, dtype, -bound, bound)

  return init


class KeyStream:
  """Stands in for `nnx.Rngs(key)` while a model is built: `.params()` (and `.default()`, and
  calling it) gives the n-th call `jax.random.fold_in(key, n)`, the keys `nnx.Rngs(key)` gives,
  so the parameters are the same bits.

  Why not `nnx.Rngs` itself: it counts in an `nnx.Variable`, and inside a trace (jit, eval_shape:
  where every model here is built) each count update compares the new tracer's `.sharding`,
  which a tracer lacks; the AttributeError's message is built by walking the whole trace so far
  (`find_progenitors`, jax 0.10.2, flax 0.12.8's `Variable.set_value`), which makes building a
  model quadratic in its size: the tiny test AniMo's program build took 2.1 s with `nnx.Rngs` and
  0.8 s with this (2 CPU cores). Here the count is a Python int. Only for building: a module that
  keeps its `rngs` (dropout) needs the real `nnx.Rngs`.
  """

  def __init__(self, key: jax.Array | int):
    self._key = jax.random.key(key) if isinstance(key, int) else key
    self._count = 0

  def __call__(self) -> jax.Array:
    key = jax.random.fold_in(self._key, self._count)
    self._count += 1
    return key

  params = default = __call__

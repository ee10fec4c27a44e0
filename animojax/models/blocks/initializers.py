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

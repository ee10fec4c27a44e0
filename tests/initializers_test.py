"""The flat draws of `models.blocks.initializers` give `jax.random`'s values exactly."""

import jax
import numpy as np
import pytest

from animojax.models.blocks import initializers


@pytest.mark.parametrize('shape', [(7,), (3, 5), (2, 3, 1, 2)])
def test_flat_draws_equal_jax_random(shape):
  key = jax.random.key(3)
  np.testing.assert_array_equal(initializers.normal(key, shape), jax.random.normal(key, shape))
  np.testing.assert_array_equal(initializers.uniform(key, shape, minval=-2.0, maxval=0.5),
                                jax.random.uniform(key, shape, minval=-2.0, maxval=0.5))
  np.testing.assert_array_equal(initializers.normal_init(0.02)(key, shape),
                                jax.nn.initializers.normal(0.02)(key, shape))
  np.testing.assert_array_equal(initializers.uniform_init(0.3)(key, shape),
                                jax.random.uniform(key, shape, minval=-0.3, maxval=0.3))


def test_flat_draws_equal_jax_random_without_partitionable_threefry():
  key = jax.random.key(5)
  with jax.threefry_partitionable(False):
    np.testing.assert_array_equal(initializers.normal(key, (3, 4, 5)),
                                  jax.random.normal(key, (3, 4, 5)))

"""The uint8 conversions of `utils.images`: the jitted one gives the host one's values."""

import jax
import numpy as np

from animojax.utils import images


def test_to_uint8_jax_equals_to_uint8():
  x = np.random.default_rng(0).uniform(-1.2, 1.2, (4, 5, 6, 3)).astype(np.float32)
  x[0, 0, :4, 0] = [-1.0, 1.0, 0.0, 127.5 / 127.5 - 1.0 + 0.5 / 127.5]  # Ends and a half level.
  expected = images.to_uint8(x)
  np.testing.assert_array_equal(np.asarray(jax.jit(images.to_uint8_jax)(x)), expected)
  assert expected.dtype == np.uint8

"""The paper's method 1 as a module: one image added to (or subtracted from) every input."""

import jax
import jax.numpy as jnp
from flax import nnx


class DifferenceVector(nnx.Module):
  """`difference` [S, S, 3]: E[real] − E[anime] once trained (by a running mean, not gradients).

  `__call__(x, sign)`: clip(x + sign · difference, -1, 1); sign +1 is anime -> real.
  """

  def __init__(self, image_size: int):
    self.difference = nnx.Param(jnp.zeros((image_size, image_size, 3), jnp.float32))

  def __call__(self, x: jax.Array, sign: float = 1.0) -> dict[str, jax.Array]:
    if x.shape[1:] != self.difference.shape:
      raise ValueError(f'DifferenceVector: images must be [B, {self.difference.shape}], got '
                       f'{x.shape}; resize them to the trained size.')
    return {'image': jnp.clip(x + sign * self.difference[...].astype(x.dtype), -1.0, 1.0)}

"""The paper's method 2: a thin encoder-decoder CNN from one domain's image to the other's.

The paper ("anime to real", Method 2) describes only "encode the anime face with a CNN, decode
it with a CNN, compare the output with the real face"; its code is not public. Ours, kept thin as
the paper's: `num_layers` × [conv 4×4 stride 2 → LReLU 0.2] (widths ch, 2ch, 4ch, ...), then
`num_layers` × [nearest ×2 → conv 3×3 → ReLU] back to ch, and a conv 3×3 → tanh to RGB.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from animojax.models.blocks import pirender as layers


class EncoderDecoder(nnx.Module):

  def __init__(self, ch: int = 32, num_layers: int = 3, *, rngs: nnx.Rngs):
    widths = [ch * 2**i for i in range(num_layers)]
    self.num_layers = num_layers
    self.encoder = nnx.List([layers.conv2d(i, o, 4, stride=2, padding=1, rngs=rngs)
                             for i, o in zip([3] + widths[:-1], widths)])
    self.decoder = nnx.List([layers.conv2d(i, o, 3, rngs=rngs)
                             for i, o in zip(widths[::-1], widths[::-1][1:] + [ch])])
    self.head = layers.conv2d(ch, 3, 3, rngs=rngs)

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """x [B, H, W, 3] in [-1, 1] -> {'code': the bottleneck, 'image'}."""
    layers.check_image(x, owner='EncoderDecoder', channels=3, multiple=2**self.num_layers)
    for conv in self.encoder:
      x = jax.nn.leaky_relu(conv(x), 0.2)
    code = x
    for conv in self.decoder:
      x = jax.nn.relu(conv(layers.upsample_nearest2x(x)))
    return {'code': code, 'image': jnp.tanh(self.head(x))}

"""torchvision's AlexNet `features` in Flax NNX, returning the five ReLU outputs LPIPS taps.

torchvision (`alexnet-owt-7be5be79.pth`, the "one weird trick" variant) `features`:
  0 conv 11x11/4 pad 2, 3->64 | 1 ReLU | 2 maxpool 3x3/2
  3 conv 5x5 pad 2, 64->192   | 4 ReLU | 5 maxpool 3x3/2
  6 conv 3x3 pad 1, 192->384  | 7 ReLU
  8 conv 3x3 pad 1, 384->256  | 9 ReLU
  10 conv 3x3 pad 1, 256->256 | 11 ReLU | (12 maxpool, unused by LPIPS)
LPIPS (`lpips/pretrained_networks.py: alexnet`) slices this at [0:2], [2:5], [5:8], [8:10],
[10:12], i.e. it returns relu1..relu5 (64, 192, 384, 256, 256 channels). Max pools are torch's
default floor mode without padding. The classifier is not built.

Input is whatever the caller normalised (LPIPS feeds its ScalingLayer output); NHWC.
"""

from typing import Any

from flax import nnx
import jax

# (our name, torchvision features index, in, out, kernel, stride, padding); a 3x3/2 max pool
# precedes conv2 and conv3.
CONV_LAYERS = (
    ('conv1', 0, 3, 64, 11, 4, 2),
    ('conv2', 3, 64, 192, 5, 1, 2),
    ('conv3', 6, 192, 384, 3, 1, 1),
    ('conv4', 8, 384, 256, 3, 1, 1),
    ('conv5', 10, 256, 256, 3, 1, 1),
)
TAPS = ('relu1', 'relu2', 'relu3', 'relu4', 'relu5')
CHANNELS = (64, 192, 384, 256, 256)
_POOL_BEFORE = ('conv2', 'conv3')


class AlexNetFeatures(nnx.Module):
  """AlexNet conv1..conv5 with ReLU; `__call__` returns `{relu1: ..., ..., relu5: ...}`."""

  def __init__(self, *, precision: Any = jax.lax.Precision.HIGHEST, rngs: nnx.Rngs):
    for name, _, cin, cout, k, s, p in CONV_LAYERS:
      setattr(self, name, nnx.Conv(cin, cout, (k, k), strides=(s, s), padding=((p, p), (p, p)),
                                   precision=precision, rngs=rngs))

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f'AlexNet expects NHWC RGB images, got shape {x.shape}.')
    out = {}
    h = x
    for (name, *_), tap in zip(CONV_LAYERS, TAPS):
      if name in _POOL_BEFORE:
        if min(h.shape[1:3]) < 3:
          raise ValueError(f'AlexNet input {x.shape[1:3]} is too small: {h.shape[1:3]} before'
                           f' {name} cannot be max-pooled 3x3 (torch fails too); use >= 31x31.')
        h = nnx.max_pool(h, (3, 3), strides=(2, 2), padding='VALID')
      h = out[tap] = jax.nn.relu(getattr(self, name)(h))
    return out

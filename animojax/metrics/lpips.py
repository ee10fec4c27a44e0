"""LPIPS v0.1 with the AlexNet trunk (`lpips.LPIPS(net='alex')`), jitted and batched.

`richzhang/PerceptualSimilarity: lpips/lpips.py` at its defaults (version 0.1, lpips=True,
spatial=False, eval mode), on NHWC images in [-1, 1] (the package's expected range):

1. ScalingLayer: (x - shift) / scale, shift (-0.030, -0.088, -0.188), scale (0.458, 0.448, 0.450);
2. torchvision AlexNet features, taps relu1..relu5 (`animojax.nets.alexnet`);
3. per tap: unit-normalise over channels, f / (sqrt(sum_c f²) + 1e-10), squared difference,
   a 1x1 convolution without bias to one channel (the "lin" heads; their dropout is inactive in
   eval mode), mean over space;
4. sum over the five taps -> one distance per image, shape [B].

PIRender evaluates with the older `dist_model` API, which computes the same network with the same
v0.1 AlexNet heads; LIA uses `lpips.LPIPS(net='alex')`. Weights: one `.npz` holding the AlexNet
convs (`net/convK/...`) and the heads (`linK/kernel`) made by
`python -m animojax.convert.fetch lpips_alex`.
"""

from typing import Any, Callable

from flax import nnx
import jax
import jax.numpy as jnp

from animojax.models.blocks import initializers
from animojax.nets import alexnet
from animojax.nets import weights as weights_lib

NAME = 'lpips_alex'  # animojax.convert.sources name.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NORM_EPS = 1e-10
MIN_SIZE = 31  # Smallest input AlexNet's two 3x3/2 pools accept.


def _unit_normalize(f: jax.Array) -> jax.Array:
  """`lpips.normalize_tensor`: divide by the channel L2 norm plus 1e-10 (not inside the sqrt)."""
  return f / (jnp.sqrt(jnp.sum(jnp.square(f), axis=-1, keepdims=True)) + NORM_EPS)


class LPIPS(nnx.Module):
  """AlexNet trunk + v0.1 linear heads; `__call__(x, y)` -> distances [B]."""

  def __init__(self, *, precision: Any = jax.lax.Precision.HIGHEST, rngs: nnx.Rngs):
    self.net = alexnet.AlexNetFeatures(precision=precision, rngs=rngs)
    for k, channels in enumerate(alexnet.CHANNELS):
      setattr(self, f'lin{k}', nnx.Conv(channels, 1, (1, 1), use_bias=False, precision=precision,
                                        rngs=rngs))

  def per_layer(self, x: jax.Array, y: jax.Array) -> list[jax.Array]:
    """The five spatially averaged layer terms, each [B]."""
    if x.shape != y.shape or x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f'LPIPS expects two NHWC RGB batches of equal shape, got {x.shape}, '
                       f'{y.shape}.')
    if min(x.shape[1:3]) < MIN_SIZE:
      raise ValueError(f'LPIPS (AlexNet) needs images of at least {MIN_SIZE}x{MIN_SIZE}, got '
                       f'{x.shape[1:3]}.')
    shift = jnp.asarray(SHIFT, jnp.float32)
    scale = jnp.asarray(SCALE, jnp.float32)
    # One pass over both inputs: the trunk is the cost, and batching it halves the launches.
    both = (jnp.concatenate([x, y]).astype(jnp.float32) - shift) / scale
    feats = self.net(both)
    terms = []
    for k, tap in enumerate(alexnet.TAPS):
      fx, fy = jnp.split(feats[tap], 2)
      diff = jnp.square(_unit_normalize(fx) - _unit_normalize(fy))
      terms.append(jnp.mean(getattr(self, f'lin{k}')(diff), axis=(1, 2, 3)))
    return terms

  def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
    return sum(self.per_layer(x, y))


def build(weights: str, *, precision: Any = jax.lax.Precision.HIGHEST, seed: int = 0) -> LPIPS:
  """LPIPS with weights from a converted `.npz` or `'random'` (tests/benchmarks only)."""
  return weights_lib.build(
      lambda: LPIPS(precision=precision, rngs=initializers.KeyStream(seed)), weights, name=NAME,
      seed=seed)


def make_lpips(weights: str, *, precision: Any = jax.lax.Precision.HIGHEST
               ) -> tuple[Callable[[Any, jax.Array, jax.Array], jax.Array], Any]:
  """Pure form: `(fn, params)` with jitted `fn(params, x, y) -> [B]` (x, y NHWC in [-1, 1])."""
  graphdef, params = nnx.split(build(weights, precision=precision))

  @jax.jit
  def lpips_fn(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    return nnx.merge(graphdef, params)(x, y)

  return lpips_fn, params

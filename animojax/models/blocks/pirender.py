"""Layer builders and normalisations shared by the PIRenderer-style networks (AniMo).

Everything here reproduces the PyTorch building blocks of RenYurui/PIRender
(`generators/base_function.py`) in NHWC:

* `conv2d` / `conv_transpose2d` / `linear`: Flax NNX layers with the papers' init (weights
  N(0, 0.02), biases 0) and PyTorch's explicit symmetric padding.
* `InstanceNorm`, `LayerNorm2d`, `ADAIN`: the normalisations, with PyTorch's eps (1e-5) and biased
  variance.

Parameter names (for porting PyTorch checkpoints):
* Conv2d `weight (O, I, kh, kw)` -> `kernel (kh, kw, I, O)`;
* ConvTranspose2d `weight (I, O, kh, kw)` -> `kernel (kh, kw, O, I)` (see `conv_transpose2d`); both
  are `weight.transpose(2, 3, 1, 0)`;
* Linear `weight (out, in)` -> `kernel (in, out)`; every `bias` -> `bias`;
* LayerNorm2d `weight (C, 1, 1)` -> `scale (C,)`, `bias (C, 1, 1)` -> `bias (C,)`.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from animojax.models.blocks import initializers
from animojax.ops import conv as conv_ops
from animojax.ops import conv_transpose as conv_transpose_ops

# Negative slope of every LeakyReLU in PIRenderer/AniMo.
LRELU_SLOPE = 0.1
# The papers initialise every Conv/Linear weight with N(0, 0.02) and every bias with 0.
WEIGHT_INIT = initializers.normal_init(0.02)
BIAS_INIT = nnx.initializers.zeros_init()
NORM_EPS = 1e-5


def leaky_relu(x: jax.Array) -> jax.Array:
  return jax.nn.leaky_relu(x, LRELU_SLOPE)


def conv2d(in_features: int, out_features: int, kernel_size: int, *, stride: int = 1,
           padding: int | None = None, rngs: nnx.Rngs) -> nnx.Conv:
  """PyTorch-style `Conv2d(in, out, k, stride, padding)`; padding defaults to k // 2.

  On GPUs, stride-1 bf16 convs with at most `conv_triton.FEW` channels on one side (RGB in or
  out, the flow head) run on the Pallas kernels of `conv_ops.few_channel_conv`.
  """
  if padding is None:
    padding = kernel_size // 2
  # Explicit symmetric padding: Flax 'SAME' pads asymmetrically for even kernels / strides,
  # which would shift PIRenderer's 4x4 stride-2 convs by half a pixel.
  return nnx.Conv(in_features, out_features, (kernel_size, kernel_size), (stride, stride),
                  padding=((padding, padding), (padding, padding)), kernel_init=WEIGHT_INIT,
                  bias_init=BIAS_INIT, rngs=rngs,
                  # Few-channel convs (RGB in/out, flow) on our kernels; the rest go to lax.
                  conv_general_dilated=conv_ops.conv_general_dilated)


class ConvTranspose(nnx.ConvTranspose):
  """`nnx.ConvTranspose` (same parameters) whose gradients are strided convolutions.

  lax's autodiff of a transposed conv gives cuDNN an image-sized weight-gradient window it runs at
  a few percent of peak; `ops.conv_transpose` gives it the strided conv's own gradient kernels.
  Covers what `conv_transpose2d` builds: NHWC input, explicit padding, `transpose_kernel=True`.
  """

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    if (self.mask is not None or self.bias is None or isinstance(self.padding, str)
        or self.kernel_dilation not in (None, 1, (1, 1)) or not self.transpose_kernel):
      raise ValueError('layers.ConvTranspose needs a bias, explicit padding pairs, '
                       'transpose_kernel=True and no mask or kernel dilation.')

  def __call__(self, inputs: jax.Array) -> jax.Array:
    inputs, kernel, bias = self.promote_dtype(
        (inputs, self.kernel[...], self.bias[...]), dtype=self.dtype)
    return conv_transpose_ops.conv_transpose(inputs, kernel, self.strides, self.padding) + bias


def conv_transpose2d(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> ConvTranspose:
  """PyTorch `ConvTranspose2d(in, out, kernel_size=3, stride=2, padding=1, output_padding=1)`.

  Doubles the spatial size. A transposed conv is the gradient of a conv, so with
  `transpose_kernel=True` the kernel is stored as that forward conv's HWIO kernel, `(3, 3, out, in)`
  (= torch weight `(in, out, 3, 3)` transposed by (2, 3, 1, 0)); the explicit padding on the
  stride-dilated input is (k - 1 - p, k - 1 - p + output_padding) = (1, 2).
  """
  return ConvTranspose(in_features, out_features, (3, 3), (2, 2),
                       padding=((1, 2), (1, 2)), transpose_kernel=True,
                       kernel_init=WEIGHT_INIT, bias_init=BIAS_INIT, rngs=rngs)


def linear(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> nnx.Linear:
  return nnx.Linear(in_features, out_features, kernel_init=WEIGHT_INIT, bias_init=BIAS_INIT,
                    rngs=rngs)


def check_image(x: jax.Array, *, owner: str, channels: int, multiple: int) -> None:
  """Raises a ValueError unless `x` is `[B, H, W, channels]` with H, W divisible by `multiple`.

  The strided encoders need H, W divisible by 2**layers; otherwise skips would not line up.
  """
  if x.ndim != 4 or x.shape[-1] != channels:
    raise ValueError(f'{owner}: source must be [B, H, W, {channels}] NHWC, got shape {x.shape}.')
  if x.shape[1] % multiple or x.shape[2] % multiple:
    raise ValueError(
        f'{owner}: source size {x.shape[1]}x{x.shape[2]} must be divisible by {multiple} '
        '(2**number of stride-2 layers); resize or crop the images.')


def upsample_nearest2x(x: jax.Array) -> jax.Array:
  """`F.interpolate(x, scale_factor=2)` (nearest) on NHWC.

  One broadcast + reshape (a single write of the 4x tensor, and a single 2x2-window sum for the
  gradient), where two `jnp.repeat`s write a 2x intermediate too.
  """
  b, h, w, c = x.shape
  windows = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return windows.reshape(b, 2 * h, 2 * w, c)


def avg_pool2x(x: jax.Array) -> jax.Array:
  """`nn.AvgPool2d(2)` on NHWC with even H, W."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _statistics(x32: jax.Array, axes: tuple[int, ...], eps: float):
  """(mean, 1 / sqrt(var + eps)) over `axes`, biased variance, in one pass over the data.

  Shifted by the first element of each group, so the one-pass E[d²] - E[d]² keeps float32
  accuracy even when the mean dwarfs the spread (PyTorch uses Welford for the same reason); the
  two sums share one read of `x`.
  """
  shift = jax.lax.stop_gradient(x32[tuple(slice(0, 1) if a in axes else slice(None)
                                            for a in range(x32.ndim))])
  d = x32 - shift
  s1 = d.mean(axis=axes, keepdims=True)
  s2 = jnp.square(d).mean(axis=axes, keepdims=True)
  var = jnp.maximum(s2 - jnp.square(s1), 0.0)
  return shift + s1, jax.lax.rsqrt(var + eps)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _normalize(x: jax.Array, axes: tuple[int, ...], eps: float) -> jax.Array:
  """(x - mean) / sqrt(var + eps) over `axes`, biased variance, statistics in float32.

  Hand-written VJP (the same function): forward and backward each read `x` twice (one fused pair
  of reductions, one elementwise pass), where autodiff of the two-pass formula chains four
  reductions; on GPU these memory-bound passes cost as much as the convolutions around them.
  """
  return _normalize_fwd(x, axes, eps)[0]


def _normalize_fwd(x, axes, eps):
  x32 = x.astype(jnp.float32)
  mean, inv_std = _statistics(x32, axes, eps)
  return ((x32 - mean) * inv_std).astype(x.dtype), (x, mean, inv_std)


def _normalize_bwd(axes, eps, residuals, g):
  del eps
  x, mean, inv_std = residuals
  x_hat = (x.astype(jnp.float32) - mean) * inv_std
  g32 = g.astype(jnp.float32)
  # d/dx of (x - mean) * inv_std with biased variance (eps included): exact.
  g_mean = g32.mean(axis=axes, keepdims=True)
  gx_mean = (g32 * x_hat).mean(axis=axes, keepdims=True)
  return ((inv_std * (g32 - g_mean - x_hat * gx_mean)).astype(x.dtype),)


_normalize.defvjp(_normalize_fwd, _normalize_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _modulated_instance_norm(x: jax.Array, scale: jax.Array, bias: jax.Array,
                             eps: float) -> jax.Array:
  """`_normalize(x, (1, 2)) * scale + bias` with per-(sample, channel) `[B, 1, 1, C]` scale and
  bias (ADAIN's `1 + gamma`, `beta`), the affine in float32.

  Hand-written VJP, one reduction pass: the per-(sample, channel) sums over H, W of `g` and
  `g · x̂` are both the affine gradients and the normalisation's two means, where autodiff of
  `_normalize` and the affine reduces the data twice (4.4 -> 2.9 ms per H100 step).
  """
  return _modulated_instance_norm_fwd(x, scale, bias, eps)[0]


def _modulated_instance_norm_fwd(x, scale, bias, eps):
  x32 = x.astype(jnp.float32)
  mean, inv_std = _statistics(x32, (1, 2), eps)
  y = (x32 - mean) * inv_std * scale.astype(jnp.float32) + bias.astype(jnp.float32)
  return y.astype(x.dtype), (x, mean, inv_std, scale, bias)


def _modulated_instance_norm_bwd(eps, residuals, g):
  del eps
  x, mean, inv_std, scale, bias = residuals
  x_hat = (x.astype(jnp.float32) - mean) * inv_std
  g32 = g.astype(jnp.float32)
  g_sum = g32.sum(axis=(1, 2), keepdims=True)
  gx_sum = (g32 * x_hat).sum(axis=(1, 2), keepdims=True)
  count = x.shape[1] * x.shape[2]
  # d/dx of (x - mean) * inv_std * scale with biased variance (eps included): exact.
  dx = inv_std * scale.astype(jnp.float32) * (g32 - g_sum / count - x_hat * (gx_sum / count))
  return dx.astype(x.dtype), gx_sum.astype(scale.dtype), g_sum.astype(bias.dtype)


_modulated_instance_norm.defvjp(_modulated_instance_norm_fwd, _modulated_instance_norm_bwd)


class InstanceNorm(nnx.Module):
  """`nn.InstanceNorm2d(C, affine=False)`: per-sample, per-channel over H, W; no parameters."""

  def __init__(self, eps: float = NORM_EPS):
    self.eps = eps

  def __call__(self, x: jax.Array) -> jax.Array:
    return _normalize(x, (1, 2), self.eps)


class LayerNorm2d(nnx.Module):
  """PIRenderer's `LayerNorm2d`: `F.layer_norm` over (C, H, W) jointly, per-channel affine.

  One mean/variance per sample (not per channel, so it is not GroupNorm(C)); eps inside the sqrt.
  """

  def __init__(self, num_features: int, eps: float = NORM_EPS):
    self.eps = eps
    self.scale = nnx.Param(jnp.ones((num_features,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((num_features,), jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    # The affine stays outside the VJP (unlike ADAIN's): folding it in needs per-channel sums over
    # H, W, column reductions that were slower on GPUs than these per-sample row reductions
    # (+1.1 ms per H100 step; benchmarks/RESULTS.md).
    return _normalize(x, (1, 2, 3), self.eps) * self.scale[...] + self.bias[...]


class ADAIN(nnx.Module):
  """PIRenderer's ADAIN: `IN(x) * (1 + gamma(z)) + beta(z)` with a shared 128-unit ReLU MLP."""

  def __init__(self, num_features: int, descriptor_nc: int = 256, hidden: int = 128, *,
               rngs: nnx.Rngs):
    self.norm = InstanceNorm()
    self.mlp_shared = linear(descriptor_nc, hidden, rngs=rngs)
    self.mlp_gamma = linear(hidden, num_features, rngs=rngs)
    self.mlp_beta = linear(hidden, num_features, rngs=rngs)

  def __call__(self, x: jax.Array, descriptor: jax.Array) -> jax.Array:
    """x `[B, H, W, C]`, descriptor `[B, descriptor_nc]`."""
    actv = jax.nn.relu(self.mlp_shared(descriptor))
    gamma = self.mlp_gamma(actv)[:, None, None, :]
    beta = self.mlp_beta(actv)[:, None, None, :]
    return _modulated_instance_norm(x, 1 + gamma, beta, self.norm.eps)

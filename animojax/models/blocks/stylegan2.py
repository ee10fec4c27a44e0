"""StyleGAN2 building blocks (rosinality's PyTorch port, as LIA and ToonTalker use them), NHWC.

Reproduces the layers of wyhsirius/LIA `networks/{encoder,styledecoder,discriminator}.py` and
OpenTalker/ToonTalker `networks/{encoder,styledecoder}.py` (both take them from
rosinality/stylegan2-pytorch `model.py`):

* equalised learning rate: weights are stored N(0, 1) (StyleGAN2's init, not PIRender's
  N(0, 0.02)) and multiplied by 1/sqrt(fan_in) at run time (`EqualConv2d`, `EqualLinear`);
* `FusedLeakyReLU`: leaky_relu(x + b, 0.2)·√2 with its own bias;
* `upfirdn2d` (zero-insertion upsampling, padding, FIR filtering, downsampling) and the blur
  kernel [1, 3, 3, 1] (outer product, normalised) of `Blur` / `Upsample`, applied separably;
* `ModulatedConv2d` (style modulation with a bias-1 EqualLinear, optional demodulation with
  eps 1e-8, transposed-conv upsampling followed by a blur), `StyledConv` (+ noise injection,
  + FusedLeakyReLU), `ConstantInput`, `ToRGB` (LIA's: a non-modulated 1x1 ConvLayer with
  activation);
* `ConvLayer` / `ResBlock` (blur, then stride-2 conv, for downsampling) and the StyleGAN2
  `Discriminator` (minibatch standard deviation, group 4).

Parameter names follow the PyTorch modules (`weight`, `bias`, ...), with layouts: conv weights
`(kh, kw, in, out)` (PyTorch `(out, in, kh, kw)`), linear weights `(in, out)`, biases 1-D.
A ConvLayer (a PyTorch `nn.Sequential`) names its parts `conv` and `act` (PyTorch indices
`0|1` or `1|2` after a blur, see `convert/toontalker_torch.py`).

Deviation (maths unchanged): `ModulatedConv2d` scales the input by the style and the output by
the demodulation factors instead of building per-sample weights and a grouped convolution (the
"non-fused" form of the StyleGAN2 paper, eq. 1-3); the two are equal up to float rounding and
this one runs as a single ordinary convolution per layer.
"""

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from animojax.models.blocks import initializers

BLUR_KERNEL = (1, 3, 3, 1)
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
_DN = ('NHWC', 'HWIO', 'NHWC')  # Convolution layouts.


def standard_normal(key, shape, dtype=jnp.float32):
  return initializers.normal(key, shape, dtype)


def _zero_insert(x: jax.Array, axis: int, up: int) -> jax.Array:
  """Each pixel followed by up-1 zeros along `axis` (as rosinality's upfirdn2d_native)."""
  parts = [x] + [jnp.zeros_like(x)] * (up - 1)
  stacked = jnp.stack(parts, axis=axis + 1)
  shape = list(x.shape)
  shape[axis] *= up
  return stacked.reshape(shape)


def _correlate_1d(x: jax.Array, taps: np.ndarray, axis: int) -> jax.Array:
  n = x.shape[axis] - len(taps) + 1
  return sum(float(t) * jax.lax.slice_in_dim(x, i, i + n, axis=axis)
             for i, t in enumerate(taps))


def upfirdn2d(x: jax.Array, taps: Sequence[float], *, gain: float = 1.0, up: int = 1,
              down: int = 1, pad: tuple[int, int] = (0, 0)) -> jax.Array:
  """rosinality's `upfirdn2d` on NHWC with the separable filter outer(taps, taps) / sum(taps)² · gain:
  insert up-1 zeros after every pixel, pad, convolve (a true convolution: the flipped kernel
  correlated), keep every `down`-th pixel. Pads must be non-negative (as in every layer here).

  The filter is applied as two 1-D passes of shifted, weighted sums: the same arithmetic as the
  2-D depthwise convolution up to float rounding, and far faster than XLA's grouped convolutions
  (on a CPU, 30x forward and 10x with the gradient at 64² x 32 channels).
  """
  if min(pad) < 0:
    raise ValueError(f'upfirdn2d: negative pads {pad} are not supported.')
  k = np.asarray(taps, np.float64)
  k1 = (k / k.sum() * np.sqrt(gain))[::-1]  # Flipped: a convolution as a correlation.
  if up > 1:
    x = _zero_insert(_zero_insert(x, 1, up), 2, up)
  x = jnp.pad(x, ((0, 0), tuple(pad), tuple(pad), (0, 0)))
  x = _correlate_1d(_correlate_1d(x, k1, 1), k1, 2)
  return x[:, ::down, ::down] if down > 1 else x


def fused_leaky_relu(x: jax.Array, bias: jax.Array) -> jax.Array:
  return jax.nn.leaky_relu(x + bias.astype(x.dtype), LRELU_SLOPE) * LRELU_GAIN


class Blur(nnx.Module):
  """upfirdn2d with the normalised blur kernel (×factor² after a factor-x upsampling)."""

  def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
    # Static (hashable) attributes.
    self.taps_1d = tuple(float(t) for t in kernel)
    self.gain = float(upsample_factor**2)
    self.pad = tuple(pad)

  def __call__(self, x):
    return upfirdn2d(x, self.taps_1d, gain=self.gain, pad=self.pad)


class Upsample(nnx.Module):
  """2x FIR upsampling (the skip path of ToRGB / ToFlow)."""

  def __init__(self, kernel: Sequence[float] = BLUR_KERNEL, factor: int = 2):
    self.taps_1d = tuple(float(t) for t in kernel)
    self.factor = factor
    p = len(kernel) - factor
    self.pad = ((p + 1) // 2 + factor - 1, p // 2)

  def __call__(self, x):
    return upfirdn2d(x, self.taps_1d, gain=self.factor**2, up=self.factor, pad=self.pad)


class FusedLeakyReLU(nnx.Module):

  def __init__(self, channels: int):
    self.bias = nnx.Param(jnp.zeros((channels,)))

  def __call__(self, x):
    return fused_leaky_relu(x, self.bias[...])


class EqualConv2d(nnx.Module):
  """Conv with weights N(0, 1) scaled by 1/sqrt(in·k²) at run time (equalised learning rate)."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
               padding: int = 0, bias: bool = True, rngs: nnx.Rngs):
    self.weight = nnx.Param(standard_normal(
        rngs.params(), (kernel_size, kernel_size, in_channels, out_channels)))
    self.bias = nnx.Param(jnp.zeros((out_channels,))) if bias else None
    self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
    self.stride = stride
    self.padding = padding

  def __call__(self, x):
    w = (self.weight[...] * self.scale).astype(x.dtype)
    p = self.padding
    out = jax.lax.conv_general_dilated(x, w, (self.stride,) * 2, ((p, p), (p, p)),
                                       dimension_numbers=_DN)
    if self.bias is not None:
      out = out + self.bias[...].astype(x.dtype)
    return out


class EqualLinear(nnx.Module):
  """Linear with weights N(0, 1)/lr_mul scaled by lr_mul/sqrt(in); optional FusedLeakyReLU."""

  def __init__(self, in_dim: int, out_dim: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
               activation: bool = False, rngs: nnx.Rngs):
    self.weight = nnx.Param(standard_normal(rngs.params(), (in_dim, out_dim)) / lr_mul)
    self.bias = nnx.Param(jnp.full((out_dim,), bias_init, jnp.float32))
    self.scale = lr_mul / math.sqrt(in_dim)
    self.lr_mul = lr_mul
    self.activation = activation

  def __call__(self, x):
    out = x @ (self.weight[...] * self.scale).astype(x.dtype)
    bias = (self.bias[...] * self.lr_mul).astype(x.dtype)
    return fused_leaky_relu(out, bias) if self.activation else out + bias


class ConvLayer(nnx.Module):
  """[Blur →] EqualConv2d [→ FusedLeakyReLU | LeakyReLU]; stride 2 after the blur when
  `downsample` (rosinality's ConvLayer)."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
               downsample: bool = False, bias: bool = True, activate: bool = True,
               blur_kernel: Sequence[float] = BLUR_KERNEL, rngs: nnx.Rngs):
    p = (len(blur_kernel) - 2) + (kernel_size - 1)
    self.blur = Blur(blur_kernel, ((p + 1) // 2, p // 2)) if downsample else None
    stride, padding = (2, 0) if downsample else (1, kernel_size // 2)
    self.conv = EqualConv2d(in_channels, out_channels, kernel_size, stride=stride,
                            padding=padding, bias=bias and not activate, rngs=rngs)
    self.act = FusedLeakyReLU(out_channels) if (activate and bias) else None
    self.scaled_lrelu = activate and not bias

  def __call__(self, x):
    if self.blur is not None:
      x = self.blur(x)
    x = self.conv(x)
    if self.act is not None:
      x = self.act(x)
    elif self.scaled_lrelu:  # rosinality's ScaledLeakyReLU has no gain despite its name.
      x = jax.nn.leaky_relu(x, LRELU_SLOPE)
    return x


class ResBlock(nnx.Module):
  """conv3x3 → blurred stride-2 conv3x3, plus a blurred stride-2 1x1 skip; sum / √2."""

  def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
    self.conv1 = ConvLayer(in_channels, in_channels, 3, rngs=rngs)
    self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, rngs=rngs)
    self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, activate=False,
                          bias=False, rngs=rngs)

  def __call__(self, x):
    return (self.conv2(self.conv1(x)) + self.skip(x)) * (1.0 / math.sqrt(2.0))


class ModulatedConv2d(nnx.Module):
  """StyleGAN2's modulated convolution (see the module docstring for the non-fused form)."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int, *,
               demodulate: bool = True, upsample: bool = False,
               blur_kernel: Sequence[float] = BLUR_KERNEL, rngs: nnx.Rngs):
    self.weight = nnx.Param(standard_normal(
        rngs.params(), (kernel_size, kernel_size, in_channels, out_channels)))
    self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0, rngs=rngs)
    self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
    self.kernel_size = kernel_size
    self.demodulate = demodulate
    self.upsample = upsample
    p = (len(blur_kernel) - 2) - (kernel_size - 1)
    self.blur = (Blur(blur_kernel, ((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)
                 if upsample else None)

  def __call__(self, x, style):
    dtype = x.dtype
    s = self.modulation(style.astype(dtype))  # [B, in]
    w = self.weight[...] * self.scale  # [k, k, in, out], float32
    x = x * s[:, None, None, :]
    k = self.kernel_size
    if self.upsample:
      # PyTorch conv_transpose2d(stride 2, padding 0) = a correlation of the zero-dilated input,
      # padded by k-1, with the spatially flipped kernel.
      out = jax.lax.conv_general_dilated(
          x, jnp.flip(w, (0, 1)).astype(dtype), (1, 1), ((k - 1, k - 1),) * 2,
          lhs_dilation=(2, 2), dimension_numbers=_DN)
    else:
      p = k // 2
      out = jax.lax.conv_general_dilated(x, w.astype(dtype), (1, 1), ((p, p), (p, p)),
                                         dimension_numbers=_DN)
    if self.demodulate:
      # Σ_{i,kh,kw} (w·s_i)² = Σ_i s_i² Σ_{kh,kw} w²: one [B, in] x [in, out] product.
      s32 = s.astype(jnp.float32)
      demod = jax.lax.rsqrt((s32 * s32) @ jnp.sum(w * w, axis=(0, 1)) + 1e-8)
      out = out * demod[:, None, None, :].astype(dtype)
    if self.blur is not None:
      out = self.blur(out)
    return out


class NoiseInjection(nnx.Module):
  """image + weight·noise; LIA and ToonTalker never pass noise (the weight is kept for loading)."""

  def __init__(self):
    self.weight = nnx.Param(jnp.zeros((1,)))

  def __call__(self, x, noise=None):
    if noise is None:
      return x
    return x + self.weight[...].astype(x.dtype) * noise


class ConstantInput(nnx.Module):

  def __init__(self, channels: int, size: int = 4, *, rngs: nnx.Rngs):
    self.input = nnx.Param(standard_normal(rngs.params(), (1, size, size, channels)))

  def __call__(self, batch: int, dtype=jnp.float32):
    x = self.input[...].astype(dtype)
    return jnp.broadcast_to(x, (batch,) + x.shape[1:])


class StyledConv(nnx.Module):
  """ModulatedConv2d → NoiseInjection → FusedLeakyReLU."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int, *,
               upsample: bool = False, demodulate: bool = True, rngs: nnx.Rngs):
    self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim,
                                upsample=upsample, demodulate=demodulate, rngs=rngs)
    self.noise = NoiseInjection()
    self.activate = FusedLeakyReLU(out_channels)

  def __call__(self, x, style, noise=None):
    return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nnx.Module):
  """LIA's ToRGB: ConvLayer 1x1 (with FusedLeakyReLU, not modulated) + bias + upsampled skip."""

  def __init__(self, in_channels: int, *, rngs: nnx.Rngs):
    self.upsample = Upsample()
    self.conv = ConvLayer(in_channels, 3, 1, rngs=rngs)
    self.bias = nnx.Param(jnp.zeros((3,)))

  def __call__(self, x, skip=None):
    out = self.conv(x) + self.bias[...].astype(x.dtype)
    if skip is not None:
      out = out + self.upsample(skip)
    return out


class Discriminator(nnx.Module):
  """StyleGAN2 discriminator as in wyhsirius/LIA `networks/discriminator.py` (training code,
  commit 3f1d865^): ResBlocks down to 4², minibatch stddev (group 4, 1 feature), conv3x3,
  EqualLinear+LReLU, EqualLinear → one logit per image."""

  def __init__(self, size: int, channels, *, rngs: nnx.Rngs):
    log_size = int(math.log2(size))
    convs = [ConvLayer(3, channels(size), 1, rngs=rngs)]
    in_ch = channels(size)
    for i in range(log_size, 2, -1):
      out_ch = channels(2**(i - 1))
      convs.append(ResBlock(in_ch, out_ch, rngs=rngs))
      in_ch = out_ch
    self.convs = nnx.List(convs)
    self.stddev_group = 4
    self.final_conv = ConvLayer(in_ch + 1, channels(4), 3, rngs=rngs)
    self.final_linear = nnx.List([
        EqualLinear(channels(4) * 16, channels(4), activation=True, rngs=rngs),
        EqualLinear(channels(4), 1, rngs=rngs)])

  def __call__(self, x):
    for conv in self.convs:
      x = conv(x)
    b, h, w, c = x.shape
    group = min(b, self.stddev_group)
    if b % group:
      raise ValueError(f'Discriminator: batch {b} must be divisible by the stddev group {group}.')
    # PyTorch groups rows b = g·(B/G) + j and takes the variance over g.
    y = x.astype(jnp.float32).reshape(group, b // group, h, w, c)
    std = jnp.sqrt(jnp.var(y, axis=0) + 1e-8).mean(axis=(1, 2, 3))  # [B/G]
    std = jnp.tile(std, group)[:, None, None, None].astype(x.dtype)
    x = jnp.concatenate([x, jnp.broadcast_to(std, (b, h, w, 1))], axis=-1)
    x = self.final_conv(x)
    # PyTorch flattens NCHW: channel-major.
    x = jnp.transpose(x, (0, 3, 1, 2)).reshape(b, -1)
    for layer in self.final_linear:
      x = layer(x)
    return x[:, 0]

"""U-GAT-IT's networks (Kim et al., ICLR 2020) in NHWC, as znxlwm/UGATIT-pytorch `networks.py`.

* `Generator` (`ResnetGenerator`): reflection-pad 3 → conv 7×7 → IN → ReLU; 2 × [reflection-pad 1
  → conv 3×3 s2 → IN → ReLU]; `num_blocks` residual blocks (IN); the class activation map (CAM):
  global average / max pooled features → `gap_fc` / `gmp_fc` (C → 1, no bias) give the two CAM
  logits, the features are weighted by each FC's weight vector, concatenated and fused by a 1×1
  conv + ReLU (heatmap = channel sum); γ, β from an MLP on the fused features (light: on their
  global average; full: on the flattened map); `num_blocks` residual AdaILN blocks; 2 × [nearest
  ×2 → reflection-pad 1 → conv 3×3 → ILN → ReLU]; reflection-pad 3 → conv 7×7 → tanh. No conv
  has a bias except the 1×1 fusion conv.
* `Discriminator` (global: 7 layers, local: 5): spectrally normalised 4×4 convs with reflection
  padding (stride 2, then one stride 1) and LReLU 0.2, the same CAM (spectrally normalised FCs, a
  plain 1×1 conv, LReLU), then a spectrally normalised 4×4 conv to one map.

AdaILN = ρ·IN(x) + (1 − ρ)·LN(x), then ·γ + β (ρ init 0.9); ILN has learned γ (1), β (0), ρ (0).
`statistics='port'` reproduces the PyTorch port's statistics exactly: the variance is
`torch.var(torch.var(x, H), W)` (unbiased variance over W of the unbiased variances over H, and for
LN additionally first over C), not the variance over H×W; `'moments'` uses the plain biased
variance over H×W (and C) as the authors' TensorFlow code (taki0112/UGATIT `ops.py`,
`tf.nn.moments`) does. Statistics are computed in float32.

Spectral normalisation (torch `nn.utils.spectral_norm`, one power iteration): each normalised
layer keeps `u`, `v` (`SpectralVector` variables, not parameters); in training each forward pass
does v ← normalize(Wᵀu), u ← normalize(Wv) and divides W by σ = uᵀWv (u, v without gradient), in
evaluation it uses the stored u, v. W is the torch weight matrix (out, in·kh·kw). As upstream, the
CAM multiplies the features by the FCs' *unnormalised* weights (`parameters()[0]` is
`weight_orig`) while the logits use the normalised ones.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from animojax.models.blocks import pirender as layers
from animojax.models.translate.cyclegan import reflect_pad

STATISTICS = ('port', 'moments')
EPS = 1e-5
SN_EPS = 1e-12  # torch spectral_norm's eps in normalize().


def conv(cin, cout, k, *, stride=1, bias=False, rngs):
  return nnx.Conv(cin, cout, (k, k), (stride, stride), padding=((0, 0), (0, 0)), use_bias=bias,
                  kernel_init=layers.WEIGHT_INIT, bias_init=layers.BIAS_INIT, rngs=rngs)


def linear(cin, cout, *, rngs):
  return nnx.Linear(cin, cout, use_bias=False, kernel_init=layers.WEIGHT_INIT, rngs=rngs)


def _var(x, axis, statistics):
  """Unbiased variance nested axis by axis ('port'), or the biased variance over all ('moments')."""
  if statistics == 'moments':
    return jnp.var(x, axis=axis, keepdims=True)
  for a in axis:
    x = jnp.var(x, axis=a, keepdims=True, ddof=1)
  return x


def _stat_dtype(dtype):
  """float32 for bf16/float32 inputs; float64 stays float64 (the parity tests run in float64)."""
  return jnp.promote_types(dtype, jnp.float32)


def _instance_layer_mix(x, rho, statistics):
  """ρ·IN(x) + (1 − ρ)·LN(x), float32 statistics; x NHWC, rho [C]."""
  x32 = x.astype(_stat_dtype(x.dtype))
  # torch reduces H (dim 2) then W (dim 3) for IN and C, H, W for LN: NHWC axes 1, 2 and 3, 1, 2.
  x_in = (x32 - x32.mean(axis=(1, 2), keepdims=True)) / jnp.sqrt(
      _var(x32, (1, 2), statistics) + EPS)
  x_ln = (x32 - x32.mean(axis=(1, 2, 3), keepdims=True)) / jnp.sqrt(
      _var(x32, (3, 1, 2), statistics) + EPS)
  rho = rho.astype(x32.dtype)
  return rho * x_in + (1.0 - rho) * x_ln


def instance_norm(x):
  """`nn.InstanceNorm2d(C)` (biased variance, no affine), statistics in float32 (float64 kept)."""
  x32 = x.astype(_stat_dtype(x.dtype))
  mean = x32.mean(axis=(1, 2), keepdims=True)
  return ((x32 - mean) / jnp.sqrt(jnp.var(x32, axis=(1, 2), keepdims=True) + EPS)).astype(x.dtype)


class AdaILN(nnx.Module):

  def __init__(self, channels, statistics):
    self.statistics = statistics
    self.rho = nnx.Param(jnp.full((channels,), 0.9, jnp.float32))

  def __call__(self, x, gamma, beta):
    out = _instance_layer_mix(x, self.rho[...], self.statistics)
    out = out * gamma[:, None, None, :].astype(out.dtype) + beta[:, None, None, :].astype(
        out.dtype)
    return out.astype(x.dtype)


class ILN(nnx.Module):

  def __init__(self, channels, statistics):
    self.statistics = statistics
    self.rho = nnx.Param(jnp.zeros((channels,), jnp.float32))
    self.gamma = nnx.Param(jnp.ones((channels,), jnp.float32))
    self.beta = nnx.Param(jnp.zeros((channels,), jnp.float32))

  def __call__(self, x):
    out = _instance_layer_mix(x, self.rho[...], self.statistics)
    return (out * self.gamma[...] + self.beta[...]).astype(x.dtype)


class ResnetBlock(nnx.Module):

  def __init__(self, channels, *, rngs):
    self.conv_0 = conv(channels, channels, 3, rngs=rngs)
    self.conv_1 = conv(channels, channels, 3, rngs=rngs)

  def __call__(self, x):
    h = jax.nn.relu(instance_norm(self.conv_0(reflect_pad(x, 1))))
    return x + instance_norm(self.conv_1(reflect_pad(h, 1)))


class ResnetAdaILNBlock(nnx.Module):

  def __init__(self, channels, statistics, *, rngs):
    self.conv_0 = conv(channels, channels, 3, rngs=rngs)
    self.norm_0 = AdaILN(channels, statistics)
    self.conv_1 = conv(channels, channels, 3, rngs=rngs)
    self.norm_1 = AdaILN(channels, statistics)

  def __call__(self, x, gamma, beta):
    h = jax.nn.relu(self.norm_0(self.conv_0(reflect_pad(x, 1)), gamma, beta))
    return x + self.norm_1(self.conv_1(reflect_pad(h, 1)), gamma, beta)


def class_activation(x, gap_weight, gmp_weight, gap_logit_weight, gmp_logit_weight):
  """CAM: (fused features [B, H, W, 2C], logits [B, 2]); weights are [C] vectors."""
  gap_logit = x.mean(axis=(1, 2)) @ gap_logit_weight[:, None]
  gmp_logit = x.max(axis=(1, 2)) @ gmp_logit_weight[:, None]
  features = jnp.concatenate([x * gap_weight, x * gmp_weight], axis=-1)
  return features, jnp.concatenate([gap_logit, gmp_logit], axis=1)


class Generator(nnx.Module):
  """U-GAT-IT's ResnetGenerator; returns {'image', 'cam_logit' [B, 2], 'heatmap' [B, h, w, 1]}."""

  NUM_DOWN = 2

  def __init__(self, ch=64, num_blocks=4, image_size=256, light=True, statistics='port', *,
               rngs):
    if statistics not in STATISTICS:
      raise ValueError(f'statistics must be one of {STATISTICS}, got {statistics!r}.')
    width = ch * 2**self.NUM_DOWN
    self.light = light
    self.stem = conv(3, ch, 7, rngs=rngs)
    self.down = nnx.List([conv(ch * 2**i, ch * 2**(i + 1), 3, stride=2, rngs=rngs)
                          for i in range(self.NUM_DOWN)])
    self.blocks = nnx.List([ResnetBlock(width, rngs=rngs) for _ in range(num_blocks)])
    self.gap_fc = linear(width, 1, rngs=rngs)
    self.gmp_fc = linear(width, 1, rngs=rngs)
    self.conv1x1 = conv(2 * width, width, 1, bias=True, rngs=rngs)
    fc_in = width if light else (image_size // 2**self.NUM_DOWN)**2 * width
    self.fc = nnx.List([linear(fc_in, width, rngs=rngs), linear(width, width, rngs=rngs)])
    self.gamma = linear(width, width, rngs=rngs)
    self.beta = linear(width, width, rngs=rngs)
    self.up_blocks = nnx.List([ResnetAdaILNBlock(width, statistics, rngs=rngs)
                               for _ in range(num_blocks)])
    self.up = nnx.List([conv(width // 2**i, width // 2**(i + 1), 3, rngs=rngs)
                        for i in range(self.NUM_DOWN)])
    self.up_norms = nnx.List([ILN(width // 2**(i + 1), statistics)
                              for i in range(self.NUM_DOWN)])
    self.head = conv(ch, 3, 7, rngs=rngs)

  def __call__(self, x):
    layers.check_image(x, owner='U-GAT-IT Generator', channels=3, multiple=2**self.NUM_DOWN)
    h = jax.nn.relu(instance_norm(self.stem(reflect_pad(x, 3))))
    for c in self.down:
      h = jax.nn.relu(instance_norm(c(reflect_pad(h, 1))))
    for block in self.blocks:
      h = block(h)
    gap_w, gmp_w = self.gap_fc.kernel[...][:, 0], self.gmp_fc.kernel[...][:, 0]
    fused, cam_logit = class_activation(h, gap_w, gmp_w, gap_w, gmp_w)
    h = jax.nn.relu(self.conv1x1(fused))
    heatmap = jnp.sum(h, axis=-1, keepdims=True)
    pooled = h.mean(axis=(1, 2)) if self.light else h.transpose(0, 3, 1, 2).reshape(h.shape[0], -1)
    for fc in self.fc:  # Full variant: flattened in torch's (C, H, W) order.
      pooled = jax.nn.relu(fc(pooled))
    gamma, beta = self.gamma(pooled), self.beta(pooled)
    for block in self.up_blocks:
      h = block(h, gamma, beta)
    for c, norm in zip(self.up, self.up_norms):
      h = jax.nn.relu(norm(c(reflect_pad(layers.upsample_nearest2x(h), 1))))
    image = jnp.tanh(self.head(reflect_pad(h, 3)))
    return {'image': image, 'cam_logit': cam_logit, 'heatmap': heatmap}


class SpectralVector(nnx.Variable):
  """Power-iteration vectors of a spectrally normalised layer (state, not trained)."""


def _normalize(v):
  return v / jnp.maximum(jnp.linalg.norm(v), SN_EPS)


class SpectralNorm(nnx.Module):
  """W / σ(W) for a wrapped Conv or Linear kernel, torch's power iteration (module docstring)."""

  def __init__(self, layer, *, rngs):
    self.layer = layer
    matrix = self._matrix(layer.kernel[...])
    key_u, key_v = jax.random.split(rngs.params())
    self.u = SpectralVector(_normalize(jax.random.normal(key_u, (matrix.shape[0],))))
    self.v = SpectralVector(_normalize(jax.random.normal(key_v, (matrix.shape[1],))))
    self.training = True

  @staticmethod
  def _matrix(kernel):
    """torch's weight matrix (out, rest): conv (kh, kw, I, O) -> (O, I·kh·kw); linear (I, O)."""
    if kernel.ndim == 4:
      return kernel.transpose(3, 2, 0, 1).reshape(kernel.shape[3], -1)
    return kernel.T

  def normalized_kernel(self):
    kernel = self.layer.kernel[...]
    matrix = self._matrix(kernel.astype(_stat_dtype(kernel.dtype)))
    u, v = self.u[...], self.v[...]
    if self.training:
      w = jax.lax.stop_gradient(matrix)
      v = _normalize(w.T @ u)
      u = _normalize(w @ v)
      self.u[...], self.v[...] = u, v
    sigma = u @ matrix @ v
    return (kernel / sigma).astype(kernel.dtype)

  def __call__(self, x):
    kernel = self.normalized_kernel()
    if kernel.ndim == 4:
      y = jax.lax.conv_general_dilated(
          x, kernel.astype(x.dtype), self.layer.strides, self.layer.padding,
          dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    else:
      y = x @ kernel.astype(x.dtype)
    if self.layer.bias is not None:
      y = y + self.layer.bias[...].astype(y.dtype)
    return y


class Discriminator(nnx.Module):
  """U-GAT-IT's Discriminator; returns {'logits' [B, h, w, 1], 'cam_logit' [B, 2], 'heatmap'}."""

  def __init__(self, ndf=64, num_layers=5, *, rngs):
    cins = [3] + [ndf * 2**(i - 1) for i in range(1, num_layers - 1)]
    couts = [ndf * 2**i for i in range(num_layers - 1)]
    strides = [2] * (num_layers - 2) + [1]
    self.convs = nnx.List([SpectralNorm(conv(i, o, 4, stride=s, bias=True, rngs=rngs), rngs=rngs)
                           for i, o, s in zip(cins, couts, strides)])
    width = couts[-1]
    self.gap_fc = SpectralNorm(linear(width, 1, rngs=rngs), rngs=rngs)
    self.gmp_fc = SpectralNorm(linear(width, 1, rngs=rngs), rngs=rngs)
    self.conv1x1 = conv(2 * width, width, 1, bias=True, rngs=rngs)
    self.head = SpectralNorm(conv(width, 1, 4, rngs=rngs), rngs=rngs)

  def __call__(self, x):
    h = x
    for c in self.convs:
      h = jax.nn.leaky_relu(c(reflect_pad(h, 1)), 0.2)
    gap_logit_w = self.gap_fc.normalized_kernel()[:, 0]
    gmp_logit_w = self.gmp_fc.normalized_kernel()[:, 0]
    fused, cam_logit = class_activation(h, self.gap_fc.layer.kernel[...][:, 0],
                                        self.gmp_fc.layer.kernel[...][:, 0],
                                        gap_logit_w.astype(h.dtype), gmp_logit_w.astype(h.dtype))
    h = jax.nn.leaky_relu(self.conv1x1(fused), 0.2)
    heatmap = jnp.sum(h, axis=-1, keepdims=True)
    return {'logits': self.head(reflect_pad(h, 1)), 'cam_logit': cam_logit, 'heatmap': heatmap}

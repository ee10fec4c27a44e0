"""ToonTalker's decoder: motion bases, query/backward transformers and the warping synthesis.

OpenTalker/ToonTalker `networks/styledecoder.py` (`Synthesis_transformer_SFT`), whose synthesis
is LIA's (wyhsirius/LIA `networks/styledecoder.py`) with distinct per-layer latents and SFT
refinement of the warped features at 64² and above:

* `direction`: nn.Embedding(K = 20, d) — the motion base, used as K query tokens;
* `transformerlayer_0` / `transformerlayer_1`: source / driving query transformers
  (T_{s→r}, T_{r→d} of the paper), memory = the image's motion code as one token;
* backward transformer: `transformerlayer` (memory: the source's 4² map), `transformerlayer_t`
  (16² map), `transformerlayer_f` (latlayer1 = Conv3x3 of the 64² map); then `mlp` maps the
  flattened K·d query to the 2·log2(size) - 2 latents;
* synthesis: ConstantInput 4² → StyledConv; per octave 8² ... size²: StyledConv↑, StyledConv,
  ToFlow (modulated 1x1 → 2 flow + 1 mask channels, added to the upsampled previous ToFlow
  output), the source feature of that size warped by tanh(flow) + identity grid (bilinear
  grid_sample, zeros padding, align_corners=False as released) and multiplied by sigmoid(mask);
  at 64² and above the warped feature is refined by `Fuse_sft_block`; the new feature is
  warped + feature·(1 - mask); ToRGB of the warped feature accumulates the image (no tanh).

Level k (octave 8·2^k) uses latents 2k+1, 2k+2 for its convs and 2k+3 for ToFlow and SFT.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from animojax.models.blocks import stylegan2
from animojax.models.toontalker import transformer
from animojax.ops import warp

# Resolutions from which the released decoder refines warped features with SFT.
SFT_FROM = 64


def torch_conv3x3(in_channels: int, out_channels: int, *, rngs: nnx.Rngs) -> nnx.Conv:
  """nn.Conv2d(in, out, 3, padding=1) with PyTorch's default init."""
  init = transformer.torch_linear_init(in_channels * 9)
  return nnx.Conv(in_channels, out_channels, (3, 3), padding=((1, 1), (1, 1)),
                  kernel_init=init, bias_init=init, rngs=rngs)


class ToFlow(nnx.Module):
  """LIA's ToFlow: flow + mask from the feature, then the source feature warped by them."""

  def __init__(self, in_channels: int, style_dim: int, *, init_scale: float = 1.0,
               rngs: nnx.Rngs):
    self.upsample = stylegan2.Upsample()
    self.conv = stylegan2.ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False,
                                          rngs=rngs)
    # init_scale < 1 (not LIA's: it draws N(0, 1)) starts the warp nearer the identity; 0 makes
    # it exactly the identity with a 0.5 mask (see VARIANTS['demo']).
    self.conv.weight[...] = self.conv.weight[...] * init_scale
    self.bias = nnx.Param(jnp.zeros((3,)))

  def __call__(self, x, style, feature, skip=None):
    """Returns (warped·mask, mask, raw 3-channel output for the next level's skip, flow)."""
    out = self.conv(x, style) + self.bias[...].astype(x.dtype)
    if skip is not None:
      out = out + self.upsample(skip)
    b, h, w, _ = x.shape
    grid = jnp.tanh(out[..., :2]) + warp.identity_grid(h, w, out.dtype)
    mask = jax.nn.sigmoid(out[..., 2:3])
    warped = warp.grid_sample(feature, grid.astype(feature.dtype), padding_mode='zeros') * mask
    return warped, mask, out, grid


class FuseSFT(nnx.Module):
  """`Fuse_sft_block`: out = f + f·scale + shift, scale/shift = Conv3x3(LReLU0.2(StyledConv(f)))."""

  def __init__(self, channels: int, style_dim: int, *, rngs: nnx.Rngs):
    self.scale1 = stylegan2.StyledConv(channels, channels, 3, style_dim, rngs=rngs)
    self.scale2 = torch_conv3x3(channels, channels, rngs=rngs)
    self.shift1 = stylegan2.StyledConv(channels, channels, 3, style_dim, rngs=rngs)
    self.shift2 = torch_conv3x3(channels, channels, rngs=rngs)

  def __call__(self, feature, style):
    lrelu = lambda x: jax.nn.leaky_relu(x, 0.2)
    scale = self.scale2(lrelu(self.scale1(feature, style)))
    shift = self.shift2(lrelu(self.shift1(feature, style)))
    return feature + (feature * scale + shift)


class Decoder(nnx.Module):
  """`Synthesis_transformer_SFT` (the `dec` of a released generator)."""

  def __init__(self, size: int, channels, style_dim: int, motion_dim: int, num_heads: int,
               ffn_dim: int, *, flow_init_scale: float = 1.0, rngs: nnx.Rngs):
    self.direction = nnx.Embed(motion_dim, style_dim,
                               embedding_init=stylegan2.standard_normal, rngs=rngs)
    self.input = stylegan2.ConstantInput(channels(4), rngs=rngs)
    self.conv1 = stylegan2.StyledConv(channels(4), channels(4), 3, style_dim, rngs=rngs)
    log_size = int(math.log2(size))
    self.n_latent = 2 * log_size - 2
    convs, to_rgbs, to_flows, sft = [], [], [], []
    in_ch = channels(4)
    for i in range(3, log_size + 1):
      out_ch = channels(2**i)
      convs.append(stylegan2.StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, rngs=rngs))
      convs.append(stylegan2.StyledConv(out_ch, out_ch, 3, style_dim, rngs=rngs))
      to_rgbs.append(stylegan2.ToRGB(out_ch, rngs=rngs))
      to_flows.append(ToFlow(out_ch, style_dim, init_scale=flow_init_scale, rngs=rngs))
      if 2**i >= SFT_FROM:
        sft.append(FuseSFT(out_ch, style_dim, rngs=rngs))
      in_ch = out_ch
    self.convs = nnx.List(convs)
    self.to_rgbs = nnx.List(to_rgbs)
    self.to_flows = nnx.List(to_flows)
    self.sft = nnx.List(sft)
    layer = lambda: transformer.DecoderLayer(style_dim, num_heads, ffn_dim, rngs=rngs)
    self.transformerlayer_0 = layer()
    self.transformerlayer_1 = layer()
    self.transformerlayer = layer()
    self.transformerlayer_t = layer()
    self.transformerlayer_f = layer()
    self.latlayer1 = torch_conv3x3(channels(64), style_dim, rngs=rngs)
    self.mlp = stylegan2.EqualLinear(style_dim * motion_dim, style_dim * self.n_latent,
                                     rngs=rngs)

  def bases(self, batch: int, dtype=jnp.float32):
    """The motion base p as `batch` copies of the K query tokens, [B, K, d]."""
    p = self.direction.embedding[...].astype(dtype)
    return jnp.broadcast_to(p, (batch,) + p.shape)

  def query(self, code, *, source: bool):
    """A motion code [B, d] into the canonical space, [B, K, d]: T_{s→r} (source=True, the
    released transformerlayer_0) or T_{r→d} (transformerlayer_1)."""
    layer = self.transformerlayer_0 if source else self.transformerlayer_1
    return layer(self.bases(code.shape[0], code.dtype), code[:, None, :])

  def latents(self, motion, memories):
    """Backward transformer: canonical motion [B, K, d] + source maps → [B, n_latent, d]."""
    tokens = lambda m: m.reshape(m.shape[0], -1, m.shape[-1])
    q = self.transformerlayer(motion, tokens(memories[0]))
    q = self.transformerlayer_t(q, tokens(memories[1]))
    q = self.transformerlayer_f(q, tokens(self.latlayer1(memories[2])))
    b = q.shape[0]
    return self.mlp(q.reshape(b, -1)).reshape(b, self.n_latent, -1)

  def synthesize(self, latent, features):
    """Latents [B, n_latent, d] + source features [8², ..., size²] → named outputs."""
    b = latent.shape[0]
    out = self.conv1(self.input(b, latent.dtype), latent[:, 0])
    rgb = flow_skip = None
    grids, masks = [], []
    for level, feature in enumerate(features):
      i = 2 * level + 1
      out = self.convs[2 * level](out, latent[:, i])
      out = self.convs[2 * level + 1](out, latent[:, i + 1])
      warped, mask, flow_skip, grid = self.to_flows[level](out, latent[:, i + 2], feature,
                                                           flow_skip)
      if out.shape[1] >= SFT_FROM:
        warped = self.sft[int(math.log2(out.shape[1] // SFT_FROM))](warped, latent[:, i + 2])
      out = warped + out * (1.0 - mask)
      rgb = self.to_rgbs[level](warped, rgb)
      grids.append(grid)
      masks.append(mask)
    return {'fake_image': rgb, 'grids': grids, 'masks': masks}

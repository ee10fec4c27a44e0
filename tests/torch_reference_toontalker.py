"""A PyTorch re-implementation of ToonTalker's released inference networks, for parity tests.

Written from the structure described in OpenTalker/ToonTalker `networks/*.py` (LIA's StyleGAN2
layers, `EncoderApp3`, `EncoderApp`, `Synthesis_transformer_SFT`, DETR decoder layers,
`Generator_trans_w`), with the official state-dict key layout so that `torch.save` of
`state_dict()` looks like the released checkpoints to our converter. Size knobs (`width`,
`size`, ...) shrink it for fast tests. Also a StyleGAN2 `Discriminator` (wyhsirius/LIA
`networks/discriminator.py` layout). Test-only: animojax never imports torch.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


def blur_taps(k=(1, 3, 3, 1), gain=1.0):
  k = torch.tensor(k, dtype=torch.float32)
  k = k[None, :] * k[:, None]
  return k / k.sum() * gain


def fir(x, taps, up=1, down=1, pad=(0, 0)):
  """Zero-insert upsample, pad, depthwise true convolution, subsample (NCHW)."""
  b, c, h, w = x.shape
  if up > 1:
    z = x.new_zeros(b, c, h * up, w * up)
    z[:, :, ::up, ::up] = x
    x = z
  x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
  kern = torch.flip(taps, (0, 1))[None, None].repeat(c, 1, 1, 1).to(x)
  return F.conv2d(x, kern, groups=c)[:, :, ::down, ::down]


class Blur(nn.Module):

  def __init__(self, pad, gain=1.0):
    super().__init__()
    self.register_buffer('kernel', blur_taps(gain=gain))
    self.pad = pad

  def forward(self, x):
    return fir(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):

  def __init__(self):
    super().__init__()
    self.register_buffer('kernel', blur_taps(gain=4.0))

  def forward(self, x):
    return fir(x, self.kernel, up=2, pad=(2, 1))


class FusedLeakyReLU(nn.Module):

  def __init__(self, c):
    super().__init__()
    self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))

  def forward(self, x):
    return F.leaky_relu(x + self.bias, 0.2) * SQRT2


class EqualConv2d(nn.Module):

  def __init__(self, cin, cout, k, stride=1, padding=0, bias=True):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
    self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
    self.scale, self.stride, self.padding = 1 / math.sqrt(cin * k * k), stride, padding

  def forward(self, x):
    return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)


class EqualLinear(nn.Module):

  def __init__(self, din, dout, bias_init=0.0, activation=False):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(dout, din))
    self.bias = nn.Parameter(torch.full((dout,), float(bias_init)))
    self.scale, self.activation = 1 / math.sqrt(din), activation

  def forward(self, x):
    if self.activation:
      return F.leaky_relu(F.linear(x, self.weight * self.scale) + self.bias, 0.2) * SQRT2
    return F.linear(x, self.weight * self.scale, self.bias)


class LeakyNoGain(nn.Module):

  def forward(self, x):
    return F.leaky_relu(x, 0.2)


def conv_layer(cin, cout, k, downsample=False, bias=True, activate=True):
  layers = []
  if downsample:
    p = 2 + (k - 1)
    layers.append(Blur(((p + 1) // 2, p // 2)))
  layers.append(EqualConv2d(cin, cout, k, 2 if downsample else 1, 0 if downsample else k // 2,
                            bias=bias and not activate))
  if activate:
    layers.append(FusedLeakyReLU(cout) if bias else LeakyNoGain())
  return nn.Sequential(*layers)


class ResBlock(nn.Module):

  def __init__(self, cin, cout):
    super().__init__()
    self.conv1 = conv_layer(cin, cin, 3)
    self.conv2 = conv_layer(cin, cout, 3, downsample=True)
    self.skip = conv_layer(cin, cout, 1, downsample=True, activate=False, bias=False)

  def forward(self, x):
    return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


def channel_table(width=1.0, mult=1):
  return lambda r: max(1, int(round((512 if r <= 32 else (16384 // r) * mult) * width)))


class Trunk(nn.Module):

  def __init__(self, size, ch, w_dim=None):
    super().__init__()
    self.convs = nn.ModuleList([conv_layer(3, ch(size), 1)])
    cin = ch(size)
    for i in range(int(math.log2(size)), 2, -1):
      self.convs.append(ResBlock(cin, ch(2**(i - 1))))
      cin = ch(2**(i - 1))
    if w_dim is not None:
      self.convs.append(EqualConv2d(cin, w_dim, 4, bias=False))
    self.motion = w_dim is not None

  def forward(self, x):
    res = []
    for conv in self.convs:
      x = conv(x)
      res.append(x)
    if self.motion:
      return res[-1].squeeze(-1).squeeze(-1), res[::-1][2:]
    return [res[-1], res[-3], res[-5]], res[::-1][1:]


class ModulatedConv2d(nn.Module):
  """The grouped-convolution ("fused") form, as released."""

  def __init__(self, cin, cout, k, style_dim, demodulate=True, upsample=False):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
    self.modulation = EqualLinear(style_dim, cin, bias_init=1)
    self.scale, self.k, self.cin, self.cout = 1 / math.sqrt(cin * k * k), k, cin, cout
    self.demodulate, self.upsample = demodulate, upsample
    if upsample:
      self.blur = Blur((1, 1), gain=4.0)

  def forward(self, x, style):
    b, cin, h, w = x.shape
    s = self.modulation(style).view(b, 1, cin, 1, 1)
    weight = self.scale * self.weight * s
    if self.demodulate:
      weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, -1, 1, 1, 1)
    x = x.reshape(1, b * cin, h, w)
    if self.upsample:
      weight = weight.transpose(1, 2).reshape(b * cin, self.cout, self.k, self.k)
      out = F.conv_transpose2d(x, weight, stride=2, groups=b)
      return self.blur(out.view(b, self.cout, out.shape[2], out.shape[3]))
    weight = weight.reshape(b * self.cout, cin, self.k, self.k)
    out = F.conv2d(x, weight, padding=self.k // 2, groups=b)
    return out.view(b, self.cout, h, w)


class NoiseInjection(nn.Module):

  def __init__(self):
    super().__init__()
    self.weight = nn.Parameter(torch.zeros(1))


class StyledConv(nn.Module):

  def __init__(self, cin, cout, k, style_dim, upsample=False):
    super().__init__()
    self.conv = ModulatedConv2d(cin, cout, k, style_dim, upsample=upsample)
    self.noise = NoiseInjection()
    self.activate = FusedLeakyReLU(cout)

  def forward(self, x, style):
    return self.activate(self.conv(x, style))


class ConstantInput(nn.Module):

  def __init__(self, c):
    super().__init__()
    self.input = nn.Parameter(torch.randn(1, c, 4, 4))


class ToRGB(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.upsample = Upsample()
    self.conv = conv_layer(cin, 3, 1)
    self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

  def forward(self, x, skip=None):
    out = self.conv(x) + self.bias
    return out if skip is None else out + self.upsample(skip)


class ToFlow(nn.Module):

  def __init__(self, cin, style_dim):
    super().__init__()
    self.upsample = Upsample()
    self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
    self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

  def forward(self, x, style, feat, skip=None):
    out = self.conv(x, style) + self.bias
    if skip is not None:
      out = out + self.upsample(skip)
    n = x.shape[2]
    lin = np.linspace(-1, 1, n)
    grid = torch.tensor(np.stack(np.meshgrid(lin, lin), 2)).float()[None]
    mask = torch.sigmoid(out[:, 2:3])
    flow = torch.tanh(out[:, 0:2]).permute(0, 2, 3, 1) + grid
    return F.grid_sample(feat, flow, align_corners=False) * mask, mask, out


class FuseSFT(nn.Module):

  def __init__(self, c, style_dim):
    super().__init__()
    self.scale1 = StyledConv(c, c, 3, style_dim)
    self.scale2 = nn.Conv2d(c, c, 3, padding=1)
    self.shift1 = StyledConv(c, c, 3, style_dim)
    self.shift2 = nn.Conv2d(c, c, 3, padding=1)

  def forward(self, f, style):
    scale = self.scale2(F.leaky_relu(self.scale1(f, style), 0.2))
    shift = self.shift2(F.leaky_relu(self.shift1(f, style), 0.2))
    return f + (f * scale + shift)


class DecoderLayer(nn.Module):
  """DETR decoder layer, post-norm, cross-attention first; sequence-first tensors."""

  def __init__(self, d, heads, ffn):
    super().__init__()
    self.self_attn = nn.MultiheadAttention(d, heads, dropout=0.1)
    self.multihead_attn = nn.MultiheadAttention(d, heads, dropout=0.1)
    self.linear1, self.linear2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
    self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

  def forward(self, tgt, mem_s, mem_d):
    tgt = self.norm1(tgt + self.multihead_attn(tgt, mem_d, mem_s)[0])
    tgt = self.norm2(tgt + self.self_attn(tgt, tgt, tgt)[0])
    return self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))


class Decoder(nn.Module):

  def __init__(self, size, ch, style_dim, motion_dim, heads, ffn):
    super().__init__()
    self.direction = nn.Embedding(motion_dim, style_dim)
    self.input = ConstantInput(ch(4))
    self.conv1 = StyledConv(ch(4), ch(4), 3, style_dim)
    self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
    self.to_flows, self.sft = nn.ModuleList(), nn.ModuleList()
    log_size = int(math.log2(size))
    cin = ch(4)
    for i in range(3, log_size + 1):
      c = ch(2**i)
      self.convs.append(StyledConv(cin, c, 3, style_dim, upsample=True))
      self.convs.append(StyledConv(c, c, 3, style_dim))
      self.to_rgbs.append(ToRGB(c))
      self.to_flows.append(ToFlow(c, style_dim))
      if i > 5:
        self.sft.append(FuseSFT(c, style_dim))
      cin = c
    self.n_latent = log_size * 2 - 2
    for name in ('transformerlayer_0', 'transformerlayer_1', 'transformerlayer',
                 'transformerlayer_t', 'transformerlayer_f'):
      setattr(self, name, DecoderLayer(style_dim, heads, ffn))
    self.latlayer1 = nn.Conv2d(ch(64), style_dim, 3, padding=1)
    self.mlp = EqualLinear(style_dim * motion_dim, style_dim * self.n_latent)
    self.style_dim = style_dim

  def queries(self, bs):
    return self.direction.weight.unsqueeze(1).repeat(1, bs, 1)

  def render(self, query, was, feats):
    bs = query.shape[1]
    tokens = lambda m: m.flatten(2).permute(2, 0, 1)
    query = self.transformerlayer(query, tokens(was[0]), tokens(was[0]))
    query = self.transformerlayer_t(query, tokens(was[1]), tokens(was[1]))
    lat = tokens(self.latlayer1(was[2]))
    query = self.transformerlayer_f(query, lat, lat)
    latent = self.mlp(query.permute(1, 0, 2).flatten(1)).view(bs, -1, self.style_dim)
    out = self.input.input.repeat(bs, 1, 1, 1)
    out = self.conv1(out, latent[:, 0])
    i, skip, skip_flow = 1, None, None
    for conv1, conv2, to_rgb, to_flow, feat in zip(self.convs[::2], self.convs[1::2],
                                                   self.to_rgbs, self.to_flows, feats):
      out = conv2(conv1(out, latent[:, i]), latent[:, i + 1])
      warped, mask, skip_flow = to_flow(out, latent[:, i + 2], feat, skip_flow)
      if out.size(2) >= 64:
        warped = self.sft[int(math.log2(out.size(2))) - 6](warped, latent[:, i + 2])
      out = warped + out * (1.0 - mask)
      skip = to_rgb(warped, skip)
      i += 2
    return skip, latent


class Generator(nn.Module):
  """`Generator_trans_w`: enc (appearance), enc2 (motion), dec."""

  def __init__(self, size=256, width=1.0, motion_dim=20, heads=8, ffn=512):
    super().__init__()
    ch = channel_table(width)
    self.enc = Trunk(size, ch)
    self.enc2 = Trunk(size, ch, w_dim=ch(4))
    self.dec = Decoder(size, ch, ch(4), motion_dim, heads, ffn)

  def query(self, img, source, owner=None):
    owner = owner or self
    code, _ = self.enc2(img)
    layer = owner.dec.transformerlayer_0 if source else owner.dec.transformerlayer_1
    q0 = self.dec.queries(img.shape[0])
    return layer(q0, code[None], code[None])

  def forward(self, source, driving):
    was, feats = self.enc(source)
    return self.dec.render(self.query(source, True) + self.query(driving, False), was, feats)

  def forward_relative(self, source, driving, start):
    was, feats = self.enc(source)
    q = (self.query(source, True) + self.query(source, False) + self.query(driving, False)
         - self.query(start, False))
    return self.dec.render(q, was, feats)


class Discriminator(nn.Module):
  """StyleGAN2 discriminator, LIA layout (`convs`, `final_conv`, `final_linear`)."""

  def __init__(self, size, width=1.0):
    super().__init__()
    ch = channel_table(width)
    convs = [conv_layer(3, ch(size), 1)]
    cin = ch(size)
    for i in range(int(math.log2(size)), 2, -1):
      convs.append(ResBlock(cin, ch(2**(i - 1))))
      cin = ch(2**(i - 1))
    self.convs = nn.Sequential(*convs)
    self.final_conv = conv_layer(cin + 1, ch(4), 3)
    self.final_linear = nn.Sequential(EqualLinear(ch(4) * 16, ch(4), activation=True),
                                      EqualLinear(ch(4), 1))

  def forward(self, x):
    out = self.convs(x)
    b, c, h, w = out.shape
    g = min(b, 4)
    std = torch.sqrt(out.view(g, -1, 1, c, h, w).var(0, unbiased=False) + 1e-8)
    std = std.mean([2, 3, 4], keepdim=True).squeeze(2).repeat(g, 1, h, w)
    out = self.final_conv(torch.cat([out, std], 1))
    return self.final_linear(out.view(b, -1))


def randomize(module, seed):
  """Random non-trivial values for every parameter (biases and LayerNorms included), so that a
  misplaced or untransposed weight shows."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in module.named_parameters():
      if name.endswith('weight') and p.ndim >= 2:
        continue  # Already N(0, 1) or PyTorch's init.
      p.copy_(0.1 * torch.randn(p.shape, generator=g) + (1.0 if 'norm' in name and
                                                          name.endswith('weight') else 0.0))
  return module

"""PyTorch re-implementations of AniMo and its PIRender blocks, for parity tests (torch is a
test-only dependency).

Written from the public code (RenYurui/PIRender generators/base_function.py + face_model.py,
kangyeolk/AnimeCeleb Animo/models/animo/model.py) with the PyTorch module names, so the tests also
pin the mapping from PyTorch checkpoint keys to NNX parameter paths
(`animojax.convert.animo_torch`).
"""

import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from flax import nnx
from torch import nn

from animojax.convert import animo_torch

# Tiny AniMo for fast CPU tests (still 5 encoder / 3 decoder layers, so flow is at 1/4 size).
TINY = dict(descriptor_nc=16, warp_ngf=4, warp_img_f=8, edit_ngf=4, edit_img_f=8)


def nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(x), (0, 3, 1, 2))))


def nhwc(t):
  return np.transpose(t.detach().numpy(), (0, 2, 3, 1))


def grid_sample(image, grid, cotangent, align_corners, padding_mode):
  """Torch output and d/d(image, grid) of sum(grid_sample(image, grid) * cotangent)."""
  image_t = nchw(image).requires_grad_()
  grid_t = torch.from_numpy(grid).requires_grad_()
  out = F.grid_sample(image_t, grid_t, mode='bilinear', padding_mode=padding_mode,
                      align_corners=align_corners)
  (out * nchw(cotangent)).sum().backward()
  return nhwc(out), nhwc(image_t.grad), grid_t.grad.numpy()


# ----------------------------------------------------------------------------------------------
# PyTorch reference (PIRender / AnimeCeleb structure and attribute names).


class TLayerNorm2d(nn.Module):

  def __init__(self, c):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(c, 1, 1))
    self.bias = nn.Parameter(torch.zeros(c, 1, 1))

  def forward(self, x):
    shape = x.shape[1:]
    return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape))


class TADAIN(nn.Module):

  def __init__(self, c, d):
    super().__init__()
    self.param_free_norm = nn.InstanceNorm2d(c, affine=False)
    self.mlp_shared = nn.Sequential(nn.Linear(d, 128), nn.ReLU())
    self.mlp_gamma = nn.Linear(128, c)
    self.mlp_beta = nn.Linear(128, c)

  def forward(self, x, z):
    actv = self.mlp_shared(z.view(z.shape[0], -1))
    gamma = self.mlp_gamma(actv)[:, :, None, None]
    beta = self.mlp_beta(actv)[:, :, None, None]
    return self.param_free_norm(x) * (1 + gamma) + beta


def tconvt(i, o):
  return nn.ConvTranspose2d(i, o, 3, stride=2, padding=1, output_padding=1)


class TEncBlock(nn.Module):

  def __init__(self, i, o, d):
    super().__init__()
    self.conv_0 = nn.Conv2d(i, o, 4, 2, 1)
    self.conv_1 = nn.Conv2d(o, o, 3, 1, 1)
    self.norm_0 = TADAIN(i, d)
    self.norm_1 = TADAIN(o, d)

  def forward(self, x, z):
    x = self.conv_0(F.leaky_relu(self.norm_0(x, z), 0.1))
    return self.conv_1(F.leaky_relu(self.norm_1(x, z), 0.1))


class TDecBlock(nn.Module):

  def __init__(self, i, o, h, d):
    super().__init__()
    self.conv_0 = nn.Conv2d(i, h, 3, 1, 1)
    self.conv_1 = tconvt(h, o)
    self.conv_s = tconvt(i, o)
    self.norm_0 = TADAIN(i, d)
    self.norm_1 = TADAIN(h, d)
    self.norm_s = TADAIN(i, d)

  def forward(self, x, z):
    x_s = self.conv_s(F.leaky_relu(self.norm_s(x, z), 0.1))
    dx = self.conv_0(F.leaky_relu(self.norm_0(x, z), 0.1))
    dx = self.conv_1(F.leaky_relu(self.norm_1(dx, z), 0.1))
    return x_s + dx


class TEncoder(nn.Module):

  def __init__(self, image_nc, d, ngf, img_f, n):
    super().__init__()
    self.n = n
    self.input_layer = nn.Conv2d(image_nc, ngf, 7, 1, 3)
    for i in range(n):
      block = TEncBlock(min(ngf * 2**i, img_f), min(ngf * 2**(i + 1), img_f), d)
      setattr(self, f'encoder{i}', block)

  def forward(self, x, z):
    out = self.input_layer(x)
    outs = [out]
    for i in range(self.n):
      out = getattr(self, f'encoder{i}')(out, z)
      outs.append(out)
    return outs


class TDecoder(nn.Module):

  def __init__(self, d, ngf, img_f, enc, dec):
    super().__init__()
    self.levels = list(range(enc - dec, enc))[::-1]
    for i in self.levels:
      cin = min(ngf * 2**(i + 1), img_f) * (1 if i == enc - 1 else 2)
      cout = min(ngf * 2**i, img_f)
      setattr(self, f'decoder{i}', TDecBlock(cin, cout, cout, d))

  def forward(self, xs, z):
    out = xs.pop()
    for i in self.levels:
      out = torch.cat([getattr(self, f'decoder{i}')(out, z), xs.pop()], 1)
    return out


class THourglass(nn.Module):

  def __init__(self, d, ngf, img_f, enc, dec):
    super().__init__()
    self.encoder = TEncoder(3, d, ngf, img_f, enc)
    self.decoder = TDecoder(d, ngf, img_f, enc, dec)

  def forward(self, x, z):
    return self.decoder(self.encoder(x, z), z)


def t_deformation(flow):
  b, _, h, w = flow.shape
  flow_norm = 2 * torch.cat([flow[:, :1] / (w - 1), flow[:, 1:] / (h - 1)], 1)
  xs = 2 * (torch.arange(w, dtype=flow.dtype) / (w - 1)) - 1
  ys = 2 * (torch.arange(h, dtype=flow.dtype) / (h - 1)) - 1
  grid = torch.stack([xs.view(1, -1).repeat(h, 1), ys.view(-1, 1).repeat(1, w)], 2)
  return grid.expand(b, -1, -1, -1) + flow_norm.permute(0, 2, 3, 1)


def t_warp(image, deformation):
  h, w = image.shape[2:]
  if deformation.shape[1:3] != (h, w):
    deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w), mode='bilinear',
                                align_corners=False).permute(0, 2, 3, 1)
  return F.grid_sample(image, deformation, padding_mode='border', align_corners=False)


class TWarpingNet(nn.Module):

  def __init__(self, d, ngf, img_f, enc=5, dec=3):
    super().__init__()
    self.hourglass = THourglass(d, ngf, img_f, enc, dec)
    c = 2 * min(ngf * 2**(enc - dec), img_f)
    self.flow_out = nn.Sequential(TLayerNorm2d(c), nn.LeakyReLU(0.1), nn.Conv2d(c, 2, 7, 1, 3))

  def forward(self, x, z):
    flow = self.flow_out(self.hourglass(x, z))
    return flow, t_warp(x, t_deformation(flow))


def t_block(i, o, k, pool=False):
  mods = [nn.Conv2d(i, o, k, 1, k // 2), TLayerNorm2d(o), nn.LeakyReLU(0.1)]
  return nn.Sequential(*(mods + [nn.AvgPool2d(2)] if pool else mods))


class TSeq(nn.Module):
  """FirstBlock2d / DownBlock2d / UpBlock2d / Jump: a `model` Sequential."""

  def __init__(self, i, o, k, pool=False, up=False):
    super().__init__()
    self.up = up
    self.model = t_block(i, o, k, pool)

  def forward(self, x):
    return self.model(F.interpolate(x, scale_factor=2) if self.up else x)


class TFineRes(nn.Module):

  def __init__(self, c, d):
    super().__init__()
    self.conv1 = nn.Conv2d(c, c, 3, 1, 1)
    self.conv2 = nn.Conv2d(c, c, 3, 1, 1)
    self.norm1 = TADAIN(c, d)
    self.norm2 = TADAIN(c, d)

  def forward(self, x, z):
    dx = F.leaky_relu(self.norm1(self.conv1(x), z), 0.1)  # PIRender's dead branch.
    dx = self.norm2(self.conv2(x), z)
    return dx + x


class TFineResBlocks(nn.Module):

  def __init__(self, n, c, d):
    super().__init__()
    self.n = n
    for i in range(n):
      setattr(self, f'res{i}', TFineRes(c, d))

  def forward(self, x, z):
    for i in range(self.n):
      x = getattr(self, f'res{i}')(x, z)
    return x


class TFinal(nn.Module):

  def __init__(self, i):
    super().__init__()
    self.model = nn.Sequential(nn.Conv2d(i, 3, 7, 1, 3), nn.Tanh())

  def forward(self, x):
    return self.model(x)


class TEditingNet(nn.Module):
  """AniMo's EditingNet: FineEncoder(3 ch) -> warp every map -> FineDecoder."""

  def __init__(self, d, ngf, img_f, n=3, blocks=2):
    super().__init__()
    self.n = n
    ch = lambda i: min(ngf * 2**i, img_f)
    self.encoder = nn.Module()
    self.encoder.first = TSeq(3, ngf, 7)
    for i in range(n):
      setattr(self.encoder, f'down{i}', TSeq(ch(i), ch(i + 1), 3, pool=True))
    self.decoder = nn.Module()
    for i in range(n)[::-1]:
      setattr(self.decoder, f'up{i}', TSeq(ch(i + 1), ch(i), 3, up=True))
      setattr(self.decoder, f'res{i}', TFineResBlocks(blocks, ch(i + 1), d))
      setattr(self.decoder, f'jump{i}', TSeq(ch(i), ch(i), 3))
    self.decoder.final = TFinal(ngf)

  def forward(self, x, flow, z):
    feats = [self.encoder.first(x)]
    for i in range(self.n):
      feats.append(getattr(self.encoder, f'down{i}')(feats[-1]))
    deformation = t_deformation(flow)
    feats = [t_warp(f, deformation) for f in feats]
    out = feats.pop()
    for i in range(self.n)[::-1]:
      out = getattr(self.decoder, f'res{i}')(out, z)
      out = getattr(self.decoder, f'up{i}')(out)
      out = getattr(self.decoder, f'jump{i}')(feats.pop()) + out
    return self.decoder.final(out)


class TMappingNet(nn.Module):

  def __init__(self, pose_dim, d, n=3):
    super().__init__()
    self.n = n
    self.first = nn.Sequential(nn.Linear(pose_dim, d))
    for i in range(n):
      setattr(self, f'encoder{i}', nn.Sequential(nn.LeakyReLU(0.1), nn.Linear(d, d)))

  def forward(self, x):
    out = self.first(x)
    for i in range(self.n):
      out = getattr(self, f'encoder{i}')(out) + out
    return out


def load_torch_submodule(module, state_dict, kind):
  """Loads a sub-network's PyTorch state dict into `module` with the library converter (keys
  relative to the sub-network); every NNX parameter must be set, every torch weight used."""
  flat, unconverted = animo_torch.convert_submodule(
      {k: v.detach().numpy() for k, v in state_dict.items()}, kind)
  assert not unconverted, unconverted
  assign_all(module, flat)


def assign_all(module, flat):
  params = dict(nnx.to_flat_state(nnx.state(module, nnx.Param)))
  by_name = {'/'.join(map(str, path)): var for path, var in params.items()}
  assert set(flat) == set(by_name), (sorted(set(flat) ^ set(by_name))[:5])
  for name, value in flat.items():
    assert by_name[name].shape == value.shape, (name, by_name[name].shape, value.shape)
    by_name[name].value = jnp.asarray(value)
  return len(flat)


def randomize(module, std=0.1, seed=0):
  """Random weights and biases (the 0.02/zero init would make flows vanish and hide bugs)."""
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in module.named_parameters():
      if p.ndim == 3:  # LayerNorm2d affine: keep near 1 / 0.
        p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen) if name.endswith('weight')
                else 0.1 * torch.randn(p.shape, generator=gen))
      else:
        p.copy_(std * torch.randn(p.shape, generator=gen))
  return module


def tiny_torch_animo(seed=0):
  d, config = TINY['descriptor_nc'], TINY
  nets = {
      'mapping_net_shared': TMappingNet(70, d),
      'warpping_net_anime': TWarpingNet(d, config['warp_ngf'], config['warp_img_f']),
      'warpping_net_vox': TWarpingNet(d, config['warp_ngf'], config['warp_img_f']),
      'editing_net_anime': TEditingNet(d, config['edit_ngf'], config['edit_img_f']),
      'editing_net_vox': TEditingNet(d, config['edit_ngf'], config['edit_img_f']),
  }
  for i, net in enumerate(nets.values()):
    randomize(net, std=0.1, seed=seed + i)
  return nets

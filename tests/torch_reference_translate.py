"""PyTorch reference networks for the translation family's parity tests, written by hand.

Official state-dict key layouts, so a `torch.save(net.state_dict())` is read by our converters as
the released files are:

* `ResnetGenerator`, `NLayerDiscriminator`: CycleGAN's (junyanz/pytorch-CycleGAN-and-pix2pix
  `models/networks.py`, InstanceNorm without affine, no dropout, `model.<index>` keys);
* `UgatitGenerator`, `UgatitDiscriminator`: U-GAT-IT's (znxlwm/UGATIT-pytorch `networks.py`), with
  the `light` switch and (for D) spectral normalisation folded into plain weights for parity.
"""

import torch
from torch import nn


def _norm(c):
  return nn.InstanceNorm2d(c, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):

  def __init__(self, dim):
    super().__init__()
    self.conv_block = nn.Sequential(
        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=True), _norm(dim),
        nn.ReLU(True),
        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=True), _norm(dim))

  def forward(self, x):
    return x + self.conv_block(x)


class ResnetGenerator(nn.Module):

  def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=9):
    super().__init__()
    model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=True),
             _norm(ngf), nn.ReLU(True)]
    for i in range(2):
      mult = 2**i
      model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                _norm(ngf * mult * 2), nn.ReLU(True)]
    model += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
      mult = 2**(2 - i)
      model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                   output_padding=1, bias=True),
                _norm(ngf * mult // 2), nn.ReLU(True)]
    model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
    self.model = nn.Sequential(*model)

  def forward(self, x):
    return self.model(x)


class NLayerDiscriminator(nn.Module):

  def __init__(self, input_nc=3, ndf=64, n_layers=3):
    super().__init__()
    seq = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
      prev, mult = mult, min(2**n, 8)
      seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True),
              _norm(ndf * mult), nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2**n_layers, 8)
    seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True),
            _norm(ndf * mult), nn.LeakyReLU(0.2, True)]
    seq += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
    self.model = nn.Sequential(*seq)

  def forward(self, x):
    return self.model(x)


def randomize(module, seed):
  """Fixed random weights (He-normal convs, small biases), so activations keep their scale."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in module.named_parameters():
      if p.ndim >= 2:
        fan_in = p[0].numel() if 'weight' in name else p.shape[-1]
        p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
      else:
        p.copy_(torch.randn(p.shape, generator=g) * 0.1)
  return module.eval()

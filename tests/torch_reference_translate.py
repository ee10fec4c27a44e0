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


# ---------------------------------------------------------------------------------------------
# U-GAT-IT (znxlwm/UGATIT-pytorch networks.py): same module names, so the same state-dict keys.

def _port_var(x, dims):
  """The port's nested unbiased variance: torch.var over each dim in turn."""
  for d in dims:
    x = torch.var(x, dim=d, keepdim=True)
  return x


def _mix(x, rho, eps=1e-5):
  x_in = (x - x.mean(dim=(2, 3), keepdim=True)) / torch.sqrt(_port_var(x, (2, 3)) + eps)
  x_ln = (x - x.mean(dim=(1, 2, 3), keepdim=True)) / torch.sqrt(_port_var(x, (1, 2, 3)) + eps)
  return rho * x_in + (1 - rho) * x_ln


class AdaILN(nn.Module):

  def __init__(self, c):
    super().__init__()
    self.rho = nn.Parameter(torch.full((1, c, 1, 1), 0.9))

  def forward(self, x, gamma, beta):
    return _mix(x, self.rho) * gamma[:, :, None, None] + beta[:, :, None, None]


class ILN(nn.Module):

  def __init__(self, c):
    super().__init__()
    self.rho = nn.Parameter(torch.zeros(1, c, 1, 1))
    self.gamma = nn.Parameter(torch.ones(1, c, 1, 1))
    self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))

  def forward(self, x):
    return _mix(x, self.rho) * self.gamma + self.beta


class UgatitResBlock(nn.Module):

  def __init__(self, c):
    super().__init__()
    self.conv_block = nn.Sequential(
        nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), nn.InstanceNorm2d(c), nn.ReLU(),
        nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), nn.InstanceNorm2d(c))

  def forward(self, x):
    return x + self.conv_block(x)


class UgatitAdaBlock(nn.Module):

  def __init__(self, c):
    super().__init__()
    self.pad1, self.pad2 = nn.ReflectionPad2d(1), nn.ReflectionPad2d(1)
    self.conv1, self.conv2 = nn.Conv2d(c, c, 3, bias=False), nn.Conv2d(c, c, 3, bias=False)
    self.norm1, self.norm2 = AdaILN(c), AdaILN(c)

  def forward(self, x, gamma, beta):
    h = torch.relu(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
    return x + self.norm2(self.conv2(self.pad2(h)), gamma, beta)


def _cam(x, gap_fc, gmp_fc, gap_weight, gmp_weight):
  gap_logit = gap_fc(x.mean(dim=(2, 3)))
  gmp_logit = gmp_fc(torch.amax(x, dim=(2, 3)))
  fused = torch.cat([x * gap_weight[:, :, None, None], x * gmp_weight[:, :, None, None]], 1)
  return fused, torch.cat([gap_logit, gmp_logit], 1)


class UgatitGenerator(nn.Module):

  def __init__(self, ngf=64, n_blocks=4, img_size=256, light=True):
    super().__init__()
    self.light, self.n_blocks = light, n_blocks
    down = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=False), nn.InstanceNorm2d(ngf),
            nn.ReLU()]
    for i in range(2):
      down += [nn.ReflectionPad2d(1), nn.Conv2d(ngf * 2**i, ngf * 2**(i + 1), 3, stride=2,
                                                bias=False),
               nn.InstanceNorm2d(ngf * 2**(i + 1)), nn.ReLU()]
    c = ngf * 4
    down += [UgatitResBlock(c) for _ in range(n_blocks)]
    self.DownBlock = nn.Sequential(*down)
    self.gap_fc, self.gmp_fc = nn.Linear(c, 1, bias=False), nn.Linear(c, 1, bias=False)
    self.conv1x1 = nn.Conv2d(2 * c, c, 1, bias=True)
    fc_in = c if light else (img_size // 4) ** 2 * c
    self.FC = nn.Sequential(nn.Linear(fc_in, c, bias=False), nn.ReLU(),
                            nn.Linear(c, c, bias=False), nn.ReLU())
    self.gamma, self.beta = nn.Linear(c, c, bias=False), nn.Linear(c, c, bias=False)
    for i in range(n_blocks):
      setattr(self, f'UpBlock1_{i + 1}', UgatitAdaBlock(c))
    up = []
    for i in range(2):
      cin = c // 2**i
      up += [nn.Upsample(scale_factor=2, mode='nearest'), nn.ReflectionPad2d(1),
             nn.Conv2d(cin, cin // 2, 3, bias=False), ILN(cin // 2), nn.ReLU()]
    up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7, bias=False), nn.Tanh()]
    self.UpBlock2 = nn.Sequential(*up)

  def forward(self, x):
    x = self.DownBlock(x)
    fused, cam_logit = _cam(x, self.gap_fc, self.gmp_fc, self.gap_fc.weight, self.gmp_fc.weight)
    x = torch.relu(self.conv1x1(fused))
    heatmap = x.sum(dim=1, keepdim=True)
    pooled = x.mean(dim=(2, 3)) if self.light else x.reshape(x.shape[0], -1)
    pooled = self.FC(pooled)
    gamma, beta = self.gamma(pooled), self.beta(pooled)
    for i in range(self.n_blocks):
      x = getattr(self, f'UpBlock1_{i + 1}')(x, gamma, beta)
    return self.UpBlock2(x), cam_logit, heatmap


class UgatitDiscriminator(nn.Module):

  def __init__(self, ndf=64, n_layers=5):
    super().__init__()
    sn = nn.utils.spectral_norm
    model = [nn.ReflectionPad2d(1), sn(nn.Conv2d(3, ndf, 4, stride=2, bias=True)),
             nn.LeakyReLU(0.2)]
    for i in range(1, n_layers - 2):
      model += [nn.ReflectionPad2d(1),
                sn(nn.Conv2d(ndf * 2**(i - 1), ndf * 2**i, 4, stride=2, bias=True)),
                nn.LeakyReLU(0.2)]
    model += [nn.ReflectionPad2d(1),
              sn(nn.Conv2d(ndf * 2**(n_layers - 3), ndf * 2**(n_layers - 2), 4, bias=True)),
              nn.LeakyReLU(0.2)]
    c = ndf * 2**(n_layers - 2)
    self.gap_fc, self.gmp_fc = sn(nn.Linear(c, 1, bias=False)), sn(nn.Linear(c, 1, bias=False))
    self.conv1x1 = nn.Conv2d(2 * c, c, 1, bias=True)
    self.pad = nn.ReflectionPad2d(1)
    self.conv = sn(nn.Conv2d(c, 1, 4, bias=False))
    self.model = nn.Sequential(*model)

  def forward(self, x):
    x = self.model(x)
    # As upstream: the CAM weights are the FCs' first parameters, i.e. the unnormalised ones.
    fused, cam_logit = _cam(x, self.gap_fc, self.gmp_fc, self.gap_fc.weight_orig,
                            self.gmp_fc.weight_orig)
    x = torch.nn.functional.leaky_relu(self.conv1x1(fused), 0.2)
    heatmap = x.sum(dim=1, keepdim=True)
    return self.conv(self.pad(x)), cam_logit, heatmap

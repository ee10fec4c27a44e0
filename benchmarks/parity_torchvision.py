r"""Parity of our VGG19, LPIPS-AlexNet and FID-Inception ports with torchvision-based references.

  python benchmarks/parity_torchvision.py                 # random weights, GPU if present
  python benchmarks/parity_torchvision.py --vgg19_pth vgg19-dcbb9e9d.pth \
      --alexnet_pth alexnet-owt-7be5be79.pth --lin_pth alex.pth \
      --inception_pth pt_inception-2015-12-05-6726825d.pth --append benchmarks/RESULTS.md

The CI tests compare against hand-written torch modules (torchvision cannot be installed there);
this script closes the loop on a machine that has torchvision. Each reference is built from
torchvision itself -- `vgg19().features`, `alexnet().features`, `inception_v3(num_classes=1008,
aux_logits=False)` -- and, where importable, from the metric packages themselves: `pytorch_fid`'s
`InceptionV3` (its weight download patched to return the same state dict) and `lpips.LPIPS(
net='alex')` (its trunk loaded with the same AlexNet weights). Otherwise pytorch-fid's block
patches and LPIPS' forward (the CI tests' transcriptions, `tests/torch_reference_nets.py`) run on
top of torchvision's modules.

Weights: the official files when given, else torchvision's modules re-initialised with fixed
random weights (He-normal convs, BatchNorm statistics near identity). Either way the torch state
dict is written with `torch.save` and converted by OUR converters (which never import torch), so
the converters are checked on torchvision's real key layout too. TF32 is disabled on both sides
(ours runs at Precision.HIGHEST); the criterion is max |ours - ref| / max |ref| <= 1e-4.

Needs: jax, flax, numpy, torch, torchvision (optionally pytorch_fid, lpips). Not grain, TFDS, clu
or ml_collections.
"""

# Imports follow the environment set-up and sys.path change below.
# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import os
import sys
import tempfile

os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')  # torch shares the GPU.

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import jax
# The CI tests' hand-written references: their forward passes (pytorch-fid's block patches, LPIPS)
# and weight randomisation are reused here on top of torchvision's own modules.
from tests import torch_reference_nets as refs

RTOL = 1e-4
LPIPS_SLICES = refs.LPIPS.SLICES
VGG_TAPS = {'relu1_1': 1, 'relu2_1': 6, 'relu3_1': 11, 'relu4_1': 20, 'relu5_1': 29}


# ---------------------------------------------------------------------------------------------
# pytorch-fid's InceptionV3 (fallback transcription of src/pytorch_fid/inception.py on top of
# torchvision's Inception3 blocks, used when the pytorch_fid package is not installed).
_tvi = torchvision.models.inception


class _FIDInceptionA(_tvi.InceptionA):
  forward = refs.FIDInceptionA.forward  # avg pool with count_include_pad=False


class _FIDInceptionC(_tvi.InceptionC):
  forward = refs.FIDInceptionC.forward  # avg pool with count_include_pad=False


class _FIDInceptionE(_tvi.InceptionE):
  forward = refs.FIDInceptionE.forward  # avg (Mixed_7b) or max (Mixed_7c) pool branch

  def __init__(self, in_channels, max_pool):
    super().__init__(in_channels)
    self.max_pool = max_pool


def fid_inception_v3_torchvision():
  """pytorch-fid's `fid_inception_v3()` without the download: torchvision + the FID patches."""
  net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                        num_classes=1008)
  net.Mixed_5b = _FIDInceptionA(192, pool_features=32)
  net.Mixed_5c = _FIDInceptionA(256, pool_features=64)
  net.Mixed_5d = _FIDInceptionA(288, pool_features=64)
  net.Mixed_6b = _FIDInceptionC(768, channels_7x7=128)
  net.Mixed_6c = _FIDInceptionC(768, channels_7x7=160)
  net.Mixed_6d = _FIDInceptionC(768, channels_7x7=160)
  net.Mixed_6e = _FIDInceptionC(768, channels_7x7=192)
  net.Mixed_7b = _FIDInceptionE(1280, max_pool=False)
  net.Mixed_7c = _FIDInceptionE(2048, max_pool=True)
  return net


class _PoolFeatures(torch.nn.Module):
  """pytorch-fid `InceptionV3([3])`: [0, 1] input -> resize 299 -> 2x-1 -> pool3 [B, 2048]."""

  def __init__(self, net):
    super().__init__()
    self.net = net

  def forward(self, x01):
    # torchvision's Inception3 has the reference's attribute names, so its forward applies.
    return refs.FIDInception.forward(self.net, x01)[3][:, :, 0, 0]


def fid_reference(state_dict):
  """(module [0,1] NCHW -> pool3 [B, 2048], description), with `state_dict` loaded strictly."""
  try:
    from pytorch_fid import inception as pfi
  except ImportError:
    net = fid_inception_v3_torchvision()
    net.load_state_dict(state_dict)
    return _PoolFeatures(net).eval(), 'torchvision Inception3 + pytorch-fid patches (transcribed)'
  pfi.load_state_dict_from_url = lambda *args, **kwargs: state_dict  # No download.
  model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()

  class _Pool3(torch.nn.Module):

    def __init__(self):
      super().__init__()
      self.model = model

    def forward(self, x01):
      return self.model(x01)[0][:, :, 0, 0]

  return _Pool3().eval(), 'pytorch_fid.inception.InceptionV3 (installed package)'


def fid_state_dict(inception_pth, seed=1):
  """The official weights when given, else random weights in torchvision's key layout."""
  if inception_pth:
    return torch.load(inception_pth, map_location='cpu')
  return refs.randomize(fid_inception_v3_torchvision(), seed).state_dict()


# ---------------------------------------------------------------------------------------------
def lpips_reference(alexnet, lin_pth, device):
  """(callable (x, y) NCHW [-1, 1] -> [B], lin .pth path used, description)."""
  try:
    import lpips as lpips_pkg
    ref = lpips_pkg.LPIPS(net='alex', version='0.1', pnet_rand=True, verbose=False)
  except Exception as e:  # pylint: disable=broad-except  (missing, or too old for torchvision)
    print(f'lpips package not usable ({e!r}); using the transcription.', flush=True)
    ref = None
  if ref is not None:
    if lin_pth:
      ref.load_state_dict(torch.load(lin_pth, map_location='cpu'), strict=False)
    else:
      lin_pth = os.path.join(os.path.dirname(lpips_pkg.__file__), 'weights', 'v0.1', 'alex.pth')
    trunk = {}
    for k, (a, b) in enumerate(LPIPS_SLICES):
      for i in range(a, b):
        for key, value in alexnet.features[i].state_dict().items():
          trunk[f'slice{k + 1}.{i}.{key}'] = value
    ref.net.load_state_dict(trunk)
    ref = ref.eval().to(device)
    return (lambda x, y: ref(x, y)[:, 0, 0, 0]), lin_pth, 'lpips.LPIPS(net="alex") (package)'
  if lin_pth:
    lin = torch.load(lin_pth, map_location='cpu')
  else:  # Random heads (non-negative, like the trained ones).
    g = torch.Generator().manual_seed(4)
    lin = {f'lin{k}.model.1.weight': torch.rand((1, c, 1, 1), generator=g) / c
           for k, c in enumerate((64, 192, 384, 256, 256))}
    lin_pth = os.path.join(tempfile.mkdtemp(), 'random_lin.pth')
    torch.save(lin, lin_pth)
  ref = refs.LPIPS(alexnet)  # Uses alexnet.features, torchvision's module.
  missing, _ = ref.load_state_dict(lin, strict=False)
  assert not [k for k in missing if k.startswith('lin')], missing
  return ref.eval().to(device), lin_pth, 'torchvision AlexNet + LPIPS forward (transcribed)'


# ---------------------------------------------------------------------------------------------
def _relative(ours, ref):
  ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
  return float(np.abs(ours - ref).max() / np.abs(ref).max())


def _images(n, size, seed):
  """8-bit-level images in [-1, 1], NHWC (smooth gradients plus noise)."""
  rng = np.random.default_rng(seed)
  ramp = np.linspace(0, 1, size)
  base = (ramp[None, :, None, None] * rng.uniform(0, 255, (n, 1, 1, 3))
          + ramp[None, None, :, None] * rng.uniform(0, 255, (n, 1, 1, 3)))
  u8 = np.clip(np.round(0.5 * base + rng.normal(0, 20, (n, size, size, 3))), 0, 255)
  return (u8 / 127.5 - 1).astype(np.float32)


def _nchw(x, device):
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)


def _weights_file(model, pth, seed, tmp, name):
  """Loads the official `pth` into `model`, or randomises it and saves it; returns the path."""
  if pth:
    model.load_state_dict(torch.load(pth, map_location='cpu'))
    return pth
  refs.randomize(model, seed)
  path = os.path.join(tmp, name)
  torch.save(model.state_dict(), path)
  return path


def check_vgg19(args, device, tmp):
  from animojax.convert import vgg19 as vgg19_convert
  from animojax.nets import vgg19
  model = torchvision.models.vgg19(weights=None)
  src = _weights_file(model, args.vgg19_pth, 0, tmp, 'vgg19.pth')
  npz = os.path.join(tmp, 'vgg19.npz')
  vgg19_convert.convert(src, npz)
  fn, params = vgg19.make_vgg19_features(npz)
  x = _images(2, 224, 0)
  ours = jax.jit(fn)(params, x)
  mean = torch.tensor(vgg19.IMAGENET_MEAN).view(1, 3, 1, 1)
  std = torch.tensor(vgg19.IMAGENET_STD).view(1, 3, 1, 1)
  h = ((_nchw(x, 'cpu') + 1) / 2 - mean) / std
  features = model.features.eval().to(device)
  errors = {}
  with torch.no_grad():
    h = h.to(device)
    for i, layer in enumerate(features):
      h = layer(h)
      for tap, index in VGG_TAPS.items():
        if i == index:
          errors[tap] = _relative(ours[tap], h.permute(0, 2, 3, 1).cpu().numpy())
      if i == max(VGG_TAPS.values()):
        break
  return 'VGG19 (torchvision vgg19().features)', max(errors.values()), errors


def check_lpips(args, device, tmp):
  from animojax.convert import lpips as lpips_convert
  from animojax.metrics import lpips
  alexnet = torchvision.models.alexnet(weights=None)
  src = _weights_file(alexnet, args.alexnet_pth, 2, tmp, 'alexnet.pth')
  alexnet.eval()
  ref, lin_pth, what = lpips_reference(alexnet, args.lin_pth, device)
  npz = os.path.join(tmp, 'lpips_alex.npz')
  lpips_convert.convert(src, lin_pth, npz)
  fn, params = lpips.make_lpips(npz)
  x, y = _images(4, 256, 1), _images(4, 256, 2)
  ours = np.asarray(fn(params, x, y))
  with torch.no_grad():
    expected = ref(_nchw(x, device), _nchw(y, device)).cpu().numpy()
  return f'LPIPS-AlexNet ({what})', _relative(ours, expected), {'ours': ours.tolist(),
                                                                'reference': expected.tolist()}


def check_inception(args, device, tmp):
  from animojax.convert import inception as inception_convert
  from animojax.metrics import fid
  state_dict = fid_state_dict(args.inception_pth)
  src = args.inception_pth or os.path.join(tmp, 'pt_inception.pth')
  if not args.inception_pth:
    torch.save(state_dict, src)
  ref, what = fid_reference(state_dict)
  npz = os.path.join(tmp, 'fid_inception.npz')
  inception_convert.convert(src, npz)
  fn, params = fid.make_fid_features(npz)
  x = _images(4, 256, 3)
  ours = np.asarray(fn(params, x))
  with torch.no_grad():
    expected = ref.to(device)(_nchw((x + 1) / 2, device)).cpu().numpy()
  return f'FID Inception pool3 ({what})', _relative(ours, expected), {}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--vgg19_pth', default=None)
  parser.add_argument('--alexnet_pth', default=None)
  parser.add_argument('--lin_pth', default=None, help='LPIPS v0.1 alex.pth linear heads')
  parser.add_argument('--inception_pth', default=None)
  parser.add_argument('--append', default=None, help='append the table to this markdown file')
  args = parser.parse_args()
  torch.backends.cudnn.allow_tf32 = False  # Compare fp32 with fp32.
  torch.backends.cuda.matmul.allow_tf32 = False
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  weights = 'official' if any((args.vgg19_pth, args.alexnet_pth, args.inception_pth)) else 'random'
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for check in (check_vgg19, check_lpips, check_inception):
      name, error, details = check(args, device, tmp)
      rows.append((name, error))
      print(f'{name}: max rel error {error:.3g} {"OK" if error <= RTOL else "FAIL"} {details}',
            flush=True)
  lines = [f'### Port parity vs torchvision ({weights} weights; jax {jax.__version__} on '
           f'{jax.devices()[0].device_kind}, torch {torch.__version__} on {device}, '
           f'torchvision {torchvision.__version__})', '',
           '| network | max abs error / max abs reference | ≤ 1e-4 |', '|---|---|---|']
  lines += [f'| {name} | {error:.2e} | {"yes" if error <= RTOL else "NO"} |'
            for name, error in rows]
  table = '\n'.join(lines)
  print(table)
  if args.append:
    with open(args.append, 'a') as f:
      f.write('\n' + table + '\n')
  return 0 if all(error <= RTOL for _, error in rows) else 1


if __name__ == '__main__':
  sys.exit(main())

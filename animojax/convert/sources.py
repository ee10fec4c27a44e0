"""Where the pretrained weights come from: official URLs, SHA-256 sums, cache paths, messages.

Each converted network is one `.npz` in the cache folder (`~/.cache/animojax/NAME.npz`), made from
one or more official PyTorch files by `python -m animojax.convert.fetch NAME`, which downloads
them into `~/.cache/animojax/downloads/` (checking size and SHA-256) and converts them without
torch. Offline, put the listed files in that folder (or pass `--src`) and run the same command.

The sums were checked against the published files; torch hub's own check only compares the
8-hex-digit prefix that the torchvision/pytorch-fid file names carry, which these sums extend.

This module is plain data (no flax, no torch) so that every network and metric can name its
files in error messages without import cycles.
"""

import dataclasses
import os

CACHE_DIR = '~/.cache/animojax'
DOWNLOADS = 'downloads'  # Sub-folder of the cache holding the original PyTorch files.


@dataclasses.dataclass(frozen=True)
class Download:
  """One official file."""
  filename: str
  url: str
  sha256: str
  size: int  # Bytes.
  licence: str


@dataclasses.dataclass(frozen=True)
class WeightSpec:
  """A converted network: the files it is made from and what uses it."""
  name: str
  what: str
  used_by: str
  downloads: tuple[Download, ...]

  @property
  def npz_filename(self) -> str:
    return f'{self.name}.npz'


VGG19 = WeightSpec(
    name='vgg19',
    what="torchvision's ImageNet VGG19 (convolutions only)",
    used_by='the perceptual loss (config.loss.vgg19_weights)',
    downloads=(Download(
        filename='vgg19-dcbb9e9d.pth',
        url='https://download.pytorch.org/models/vgg19-dcbb9e9d.pth',
        sha256='dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44',
        size=574_673_361, licence='BSD-3-Clause (torchvision)'),),
)

FID_INCEPTION = WeightSpec(
    name='fid_inception',
    what="pytorch-fid's port of TF's inception-2015-12-05 FID graph",
    used_by='FID (animojax.metrics.fid; --fid_weights)',
    downloads=(Download(
        filename='pt_inception-2015-12-05-6726825d.pth',
        url=('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
             'pt_inception-2015-12-05-6726825d.pth'),
        sha256='6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2',
        size=95_628_359, licence='Apache-2.0 (pytorch-fid; weights from TensorFlow models)'),),
)

# The v0.1 linear heads, pinned to the PerceptualSimilarity commit they were checked at.
_LPIPS_COMMIT = '082bb24f84c091ea94de2867d34c4544f68e0963'

LPIPS_ALEX = WeightSpec(
    name='lpips_alex',
    what="LPIPS v0.1: torchvision's ImageNet AlexNet features + the AlexNet linear heads",
    used_by='LPIPS (animojax.metrics.lpips; --lpips_weights)',
    downloads=(
        Download(
            filename='alexnet-owt-7be5be79.pth',
            url='https://download.pytorch.org/models/alexnet-owt-7be5be79.pth',
            sha256='7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02',
            size=244_408_911, licence='BSD-3-Clause (torchvision)'),
        Download(
            filename='lpips_v0.1_alex.pth',
            url=('https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/'
                 f'{_LPIPS_COMMIT}/lpips/weights/v0.1/alex.pth'),
            sha256='df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0',
            size=6_009, licence='BSD-2-Clause (PerceptualSimilarity)'),
    ),
)

# 3DDFA_V2 (MIT) at the commit the test data was taken from; the landmark bases from 3DDFA (MIT;
# data derived from the Basel Face Model, whose licence is non-commercial).
_TDDFA_V2_RAW = ('https://raw.githubusercontent.com/cleardusk/3DDFA_V2/'
                 '1b6c67601abffc1e9f248b291708aef0e43b55ae')
_TDDFA_V1_RAW = 'https://raw.githubusercontent.com/cleardusk/3DDFA/3545f35/c++/weights'

TDDFA_V2 = WeightSpec(
    name='tddfa_v2',
    what="3DDFA_V2's FaceBoxes detector, MobileNet-0.5 3DMM regressor and 68-landmark BFM bases",
    used_by='motion capture from real videos (animojax.mocap, python -m animojax.reenact)',
    downloads=(
        Download(filename='FaceBoxesProd.pth', url=f'{_TDDFA_V2_RAW}/FaceBoxes/weights/'
                 'FaceBoxesProd.pth',
                 sha256='c0cb2b1e40710c0aa5fc32a8759b1496a0fe0a126c907ca0ffe35b4bd0709d09',
                 size=4_072_492, licence='MIT (3DDFA_V2)'),
        Download(filename='mb05_120x120.pth', url=f'{_TDDFA_V2_RAW}/weights/mb05_120x120.pth',
                 sha256='f93ed7f1c4c0382b16d7c18480a5f67473c1917a47475a9823924f38aeb27280',
                 size=3_752_462, licence='MIT (3DDFA_V2)'),
        Download(filename='param_mean_std_62d_120x120.pkl',
                 url=f'{_TDDFA_V2_RAW}/configs/param_mean_std_62d_120x120.pkl',
                 sha256='090d7150f77cb66c29ddae21e4508fbde59123dcd1dea7facc24a7ed06d1c795',
                 size=713, licence='MIT (3DDFA_V2)'),
        Download(filename='u_base.txt', url=f'{_TDDFA_V1_RAW}/u_base.txt',
                 sha256='1ea7c3116070aeee720605a4a44ca9db582ac550095c321c3cf65ec925fe43cf',
                 size=2_728, licence='MIT (3DDFA); Basel Face Model terms'),
        Download(filename='w_shp_base.txt', url=f'{_TDDFA_V1_RAW}/w_shp_base.txt',
                 sha256='bec9a2189eb77c61ff940c801dcd9e5cd7f1973b6d91949494d9cd7ac121b7f6',
                 size=77_567, licence='MIT (3DDFA); Basel Face Model terms'),
        Download(filename='w_exp_base.txt', url=f'{_TDDFA_V1_RAW}/w_exp_base.txt',
                 sha256='4dc637c92c34bfd69faab74cafce23913f2b6181ff00c57a7ab69c1204d20b18',
                 size=22_424, licence='MIT (3DDFA); Basel Face Model terms'),
    ),
)

SPECS = {spec.name: spec for spec in (VGG19, FID_INCEPTION, LPIPS_ALEX, TDDFA_V2)}


def spec(name: str) -> WeightSpec:
  if name not in SPECS:
    raise ValueError(f'unknown weights {name!r}; known: {sorted(SPECS)}.')
  return SPECS[name]


def default_npz_path(name: str, cache_dir: str = CACHE_DIR) -> str:
  """`<cache>/NAME.npz`, unexpanded (`~` stays, so messages show the portable form)."""
  return os.path.join(cache_dir, spec(name).npz_filename)


def downloads_dir(cache_dir: str = CACHE_DIR) -> str:
  return os.path.join(cache_dir, DOWNLOADS)


def missing_weights_message(name: str, path: str | None = None) -> str:
  """Says which file is missing, the one command that makes it, and the offline route."""
  s = spec(name)
  path = path or default_npz_path(name)
  files = '\n'.join(f'    {d.filename}  ({d.size:,} bytes, sha256 {d.sha256})\n      from {d.url}'
                    for d in s.downloads)
  return (
      f'{s.what} weights {path!r} not found (needed by {s.used_by}).\n'
      f'Online: python -m animojax.convert.fetch {name}   (writes {default_npz_path(name)})\n'
      f'Offline: put\n{files}\n  into {downloads_dir()}/ (or pass --src), then run the same'
      f' command; point the option at a different .npz with its path.')

r"""Converts official CycleGAN PyTorch checkpoints into our parameter names, without torch.

  python -m animojax.convert.cyclegan_torch --src latest_net_G_A.pth --out g_a.npz [--kind G]

junyanz/pytorch-CycleGAN-and-pix2pix saves each network's `state_dict()` alone
(`models/base_model.py::save_networks`: `<epoch>_net_G_A.pth`, `_net_G_B`, `_net_D_A`, `_net_D_B`),
keyed by the positions in its `nn.Sequential` `model` (`models/networks.py`):

* `ResnetGenerator` (no dropout): `model.1` the 7×7 stem, `model.4`, `model.7` the stride-2 convs,
  `model.{10+j}.conv_block.{1,5}` residual block j, then `model.{10+N}`, `model.{13+N}` the
  transposed convs and `model.{17+N}` the 7×7 head (N blocks) -> `stem`, `down/i`,
  `blocks/j/conv_{0,1}`, `up/i`, `head` of `models.translate.cyclegan.ResnetGenerator`;
* `NLayerDiscriminator`: `model.0`, then `model.{2+3(k-1)}` for k = 1..n, and the head
  `model.{2+3n}` -> `convs/0`, `convs/k`, `head` of `PatchDiscriminator`.

Checkpoints of the 2018 code hold InstanceNorm running statistics (`running_mean`, `running_var`,
`num_batches_tracked`); upstream's loader deletes them (`__patch_instance_norm_state_dict`) and
so do we: they are reported as unconverted. The block count and layer count are read from the
keys; shapes are checked by the loader against the model. Conv2d (O, I, kh, kw) and
ConvTranspose2d (I, O, kh, kw) both become (kh, kw, ·, ·) by one transpose (see
`models/blocks/pirender.py`).
"""

import argparse
import dataclasses
import os
import re
from typing import Any, Mapping

import numpy as np

from animojax.convert import torch_pickle
from animojax.utils import tree as tree_utils

KINDS = ('G', 'D')
_NORM_STATS = ('running_mean', 'running_var', 'num_batches_tracked')


@dataclasses.dataclass
class Conversion:
  """`params` ({'/'-name: array}), `unconverted` ({key: reason}), `layout`, `source`."""
  params: dict[str, np.ndarray]
  unconverted: dict[str, str]
  layout: str
  source: str = ''


def _leaf(leaf: str, value: np.ndarray) -> tuple[str, np.ndarray]:
  if leaf == 'weight' and value.ndim == 4:
    return 'kernel', np.ascontiguousarray(value.transpose(2, 3, 1, 0))
  return 'bias', value


def _generator_names(blocks: int) -> dict[str, str]:
  """{'model.I' or 'model.I.conv_block.J': our module path} for a ResNet generator."""
  names = {'model.1': 'stem', 'model.4': 'down/0', 'model.7': 'down/1',
           f'model.{10 + blocks}': 'up/0', f'model.{13 + blocks}': 'up/1',
           f'model.{17 + blocks}': 'head'}
  for j in range(blocks):
    names[f'model.{10 + j}.conv_block.1'] = f'blocks/{j}/conv_0'
    names[f'model.{10 + j}.conv_block.5'] = f'blocks/{j}/conv_1'
  return names


def _discriminator_names(num_layers: int) -> dict[str, str]:
  names = {'model.0': 'convs/0', f'model.{2 + 3 * num_layers}': 'head'}
  for k in range(1, num_layers + 1):
    names[f'model.{2 + 3 * (k - 1)}'] = f'convs/{k}'
  return names


def detect_kind(state_dict: Mapping[str, np.ndarray]) -> str:
  """'G' when the keys hold `conv_block`s (ResNet generator), else 'D'."""
  return 'G' if any('.conv_block.' in k for k in state_dict) else 'D'


def convert_state_dict(state_dict: Mapping[str, np.ndarray], kind: str = '',
                       path: str = '<state dict>') -> Conversion:
  """Our `{'/'-name: array}` for a CycleGAN generator ('G') or PatchGAN ('D') state dict."""
  state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                for k, v in state_dict.items()}  # A DataParallel-wrapped save.
  kind = kind or detect_kind(state_dict)
  if kind not in KINDS:
    raise ValueError(f'{path}: kind must be one of {KINDS}, got {kind!r}.')
  if not state_dict or not all(k.startswith('model.') for k in state_dict):
    raise ValueError(f'{path}: not a CycleGAN ResnetGenerator/NLayerDiscriminator state dict '
                     f'(keys should start with "model."; found e.g. {sorted(state_dict)[:3]}).')
  if kind == 'G':
    blocks = len({m.group(1) for k in state_dict
                  for m in [re.match(r'model\.(\d+)\.conv_block\.', k)] if m})
    names = _generator_names(blocks)
  else:
    convs = sorted({int(k.split('.')[1]) for k in state_dict if k.endswith('.weight')})
    names = _discriminator_names(len(convs) - 2)
  params, unconverted = {}, {}
  for key, value in state_dict.items():
    module, _, leaf = key.rpartition('.')
    if leaf in _NORM_STATS:
      unconverted[key] = 'InstanceNorm running statistics (upstream deletes them when loading)'
    elif module not in names or leaf not in ('weight', 'bias'):
      unconverted[key] = f'no counterpart in the {kind} network'
    else:
      ours, array = _leaf(leaf, np.asarray(value))
      params[f'{names[module]}/{ours}'] = array
  return Conversion(params=params, unconverted=unconverted, layout=f'cyclegan_{kind}')


def convert(checkpoint: Any, path: str = '<checkpoint>', option: str = '') -> Conversion:
  """Converts a loaded checkpoint (or a path); `option` is the kind ('G', 'D', '' = detect)."""
  if isinstance(checkpoint, (str, os.PathLike)):
    path = os.fspath(checkpoint)
    checkpoint = torch_pickle.load_torch_pickle(path)
  state = torch_pickle.select_state_dict(checkpoint, path=path)
  conversion = convert_state_dict(state, option, path)
  conversion.source = os.path.basename(path)
  return conversion


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
  parser.add_argument('--src', required=True, help='latest_net_G_A.pth (or any *_net_*.pth).')
  parser.add_argument('--out', required=True, help='output .npz path.')
  parser.add_argument('--kind', default='', choices=('',) + KINDS,
                      help="'G' generator, 'D' discriminator; default: from the keys.")
  args = parser.parse_args(argv)
  try:
    conversion = convert(os.path.expanduser(args.src), option=args.kind)
  except (ValueError, FileNotFoundError) as e:  # TorchPickleError is a ValueError.
    raise SystemExit(f'cyclegan_torch: {e}') from None
  tree_utils.save_flat_npz(os.path.expanduser(args.out), conversion.params)
  print(f'wrote {len(conversion.params)} arrays ({conversion.layout}) to {args.out}; '
        f'{len(conversion.unconverted)} entries had no counterpart.')


if __name__ == '__main__':
  main()

r"""Converts U-GAT-IT PyTorch checkpoints (znxlwm/UGATIT-pytorch) into our names, without torch.

  python -m animojax.convert.ugatit_torch --src selfie2anime_params_latest.pt --out ugatit.npz

`UGATIT.py::save` writes one file holding six state dicts: `genA2B`, `genB2A`, `disGA`, `disGB`,
`disLA`, `disLB` (A -> B is our `anime->real` when A is the anime folder). Keys follow
`networks.py`: the generator's `DownBlock` (stem `1`, stride-2 convs `5`, `9`, residual blocks
`12 + j` with `conv_block.{1,5}`), `gap_fc`, `gmp_fc`, `conv1x1`, `FC.{0,2}`, `gamma`, `beta`,
`UpBlock1_{i+1}.{conv1,norm1,conv2,norm2}`, `UpBlock2` (convs `2`, `7`, ILNs `3`, `8`, head
`11`); the discriminator's spectrally normalised `model.{3i+1}`, `gap_fc`, `gmp_fc`, `conv`
(`weight_orig`, `weight_u`, `weight_v`) and plain `conv1x1` -> the paths of
`models.translate.ugatit.Generator` / `Discriminator` (`u`, `v`: the power-iteration vectors).
"""

import argparse
import dataclasses
import os
import re
from typing import Any, Mapping

import numpy as np

from animojax.convert import torch_pickle
from animojax.utils import tree as tree_utils

# U-GAT-IT's nets -> ours (A = anime, B = real).
NETS = {'genA2B': 'gen_to_real', 'genB2A': 'gen_to_anime', 'disGA': 'disc_global_anime',
        'disGB': 'disc_global_real', 'disLA': 'disc_local_anime', 'disLB': 'disc_local_real'}


@dataclasses.dataclass
class Conversion:
  params: dict[str, np.ndarray]
  unconverted: dict[str, str]
  layout: str = 'ugatit'
  source: str = ''


def _array(name, value):
  value = np.asarray(value)
  if name.endswith('kernel'):
    if value.ndim == 4:
      return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
    return np.ascontiguousarray(value.T)
  return value.reshape(-1)  # biases, ρ/γ/β (1, C, 1, 1), u, v.


def _generator_module(module):
  """Our module path of a generator key's module, or None."""
  rules = [(r'DownBlock\.1', 'stem'), (r'DownBlock\.5', 'down/0'), (r'DownBlock\.9', 'down/1'),
           (r'(gap_fc|gmp_fc|conv1x1|gamma|beta)', r'\1'), (r'FC\.0', 'fc/0'), (r'FC\.2', 'fc/1'),
           (r'UpBlock2\.2', 'up/0'), (r'UpBlock2\.7', 'up/1'), (r'UpBlock2\.3', 'up_norms/0'),
           (r'UpBlock2\.8', 'up_norms/1'), (r'UpBlock2\.11', 'head')]
  for pattern, ours in rules:
    if re.fullmatch(pattern, module):
      return re.sub(pattern, ours, module)
  m = re.fullmatch(r'DownBlock\.(\d+)\.conv_block\.([15])', module)
  if m and int(m.group(1)) >= 12:
    return f'blocks/{int(m.group(1)) - 12}/conv_{0 if m.group(2) == "1" else 1}'
  m = re.fullmatch(r'UpBlock1_(\d+)\.(conv|norm)([12])', module)
  if m:
    return f'up_blocks/{int(m.group(1)) - 1}/{m.group(2)}_{int(m.group(3)) - 1}'
  return None


def _generator_leaf(key):
  module, _, leaf = key.rpartition('.')
  path = _generator_module(module)
  if path is None:
    return None
  if leaf == 'weight':
    return f'{path}/kernel'
  return f'{path}/{leaf}'  # bias, rho, gamma, beta.


def _discriminator_leaf(key):
  module, _, leaf = key.rpartition('.')
  m = re.fullmatch(r'model\.(\d+)', module)
  if m and (int(m.group(1)) - 1) % 3 == 0:
    path = f'convs/{(int(m.group(1)) - 1) // 3}'
  elif module in ('gap_fc', 'gmp_fc'):
    path = module
  elif module == 'conv':
    path = 'head'
  elif module == 'conv1x1':
    return f'conv1x1/{"kernel" if leaf == "weight" else leaf}'
  else:
    return None
  return {'weight_orig': f'{path}/layer/kernel', 'bias': f'{path}/layer/bias',
          'weight_u': f'{path}/u', 'weight_v': f'{path}/v'}.get(leaf)


def convert_state_dicts(nets: Mapping[str, Mapping[str, np.ndarray]]) -> Conversion:
  params, unconverted = {}, {}
  for theirs, state in nets.items():
    if theirs not in NETS:
      unconverted[theirs] = 'not a U-GAT-IT network'
      continue
    leaf_of = _generator_leaf if theirs.startswith('gen') else _discriminator_leaf
    for key, value in state.items():
      name = leaf_of(key)
      if name is None:
        unconverted[f'{theirs}.{key}'] = 'no counterpart'
      else:
        params[f'{NETS[theirs]}/{name}'] = _array(name, value)
  return Conversion(params=params, unconverted=unconverted)


def convert(checkpoint: Any, path: str = '<checkpoint>', option: str = '') -> Conversion:
  """A loaded `{'genA2B': ..., ...}` checkpoint (or a path) -> our '/'-named arrays."""
  del option
  if isinstance(checkpoint, (str, os.PathLike)):
    path = os.fspath(checkpoint)
    checkpoint = torch_pickle.load_torch_pickle(path)
  if not isinstance(checkpoint, Mapping) or not set(NETS) & set(checkpoint):
    keys = list(checkpoint)[:6] if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
    raise ValueError(f'{path}: not a U-GAT-IT checkpoint (expected entries {sorted(NETS)}, found '
                     f'{keys}).')
  conversion = convert_state_dicts({k: v for k, v in checkpoint.items() if k in NETS})
  conversion.source = os.path.basename(path)
  return conversion


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
  parser.add_argument('--src', required=True, help='U-GAT-IT *_params_*.pt file.')
  parser.add_argument('--out', required=True, help='output .npz path.')
  args = parser.parse_args(argv)
  try:
    conversion = convert(os.path.expanduser(args.src))
  except (ValueError, FileNotFoundError) as e:
    raise SystemExit(f'ugatit_torch: {e}') from None
  tree_utils.save_flat_npz(os.path.expanduser(args.out), conversion.params)
  print(f'wrote {len(conversion.params)} arrays to {args.out}; {len(conversion.unconverted)} '
        'entries had no counterpart.')


if __name__ == '__main__':
  main()

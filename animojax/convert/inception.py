"""Converts pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` into our FID Inception `.npz`.

  python -m animojax.convert.fetch fid_inception          # download + convert, or by hand:
  python -m animojax.convert.inception --src pt_inception-2015-12-05-6726825d.pth \
      --out ~/.cache/animojax/fid_inception.npz

The state dict's names are torchvision Inception3 paths; `animojax.nets.fid_inception` uses the
same ones, so each `<block>.conv.weight` becomes `<block>/conv/kernel` (transposed from torch's
(O, I, kh, kw) to (kh, kw, I, O)) and `<block>.bn.{weight, bias, running_mean, running_var}`
become `<block>/bn/{scale, bias, mean, var}`. `num_batches_tracked` and the 1008-way `fc` are
dropped. The result is checked, name by name and shape by shape, against the Flax module.
"""

import argparse
import os
from typing import Mapping

import numpy as np

from animojax.convert import sources
from animojax.convert import torch_pickle
from animojax.nets import fid_inception
from animojax.utils import tree as tree_utils

_BN_NAMES = {'weight': 'scale', 'bias': 'bias', 'running_mean': 'mean', 'running_var': 'var'}
_DROPPED_SUFFIXES = ('.num_batches_tracked',)
_DROPPED_PREFIXES = ('fc.', 'AuxLogits.')


def convert_state_dict(state_dict: Mapping[str, np.ndarray], src: str = '<state dict>'
                       ) -> dict[str, np.ndarray]:
  """torch names -> `{'Mixed_5b/branch1x1/conv/kernel': (kh, kw, I, O), ...}` (float32).

  Raises:
    ValueError: names or shapes do not match the FID Inception; the message names `src`.
  """
  flat, unknown = {}, []
  for key, value in state_dict.items():
    if key.endswith(_DROPPED_SUFFIXES) or key.startswith(_DROPPED_PREFIXES):
      continue
    parts = key.split('.')
    value = np.asarray(value, np.float32)
    if len(parts) >= 3 and parts[-2] == 'conv' and parts[-1] == 'weight' and value.ndim == 4:
      flat['/'.join(parts[:-1] + ['kernel'])] = np.ascontiguousarray(value.transpose(2, 3, 1, 0))
    elif len(parts) >= 3 and parts[-2] == 'bn' and parts[-1] in _BN_NAMES:
      flat['/'.join(parts[:-1] + [_BN_NAMES[parts[-1]]])] = value
    else:
      unknown.append(key)
  expected = fid_inception.abstract_values()
  missing = [k for k in expected if k not in flat]
  unexpected = unknown + [k for k in flat if k not in expected]
  wrong = [f'{k} {flat[k].shape} (expected {expected[k].shape})' for k in expected
           if k in flat and flat[k].shape != expected[k].shape]
  if missing or unexpected or wrong:
    raise ValueError(
        f'{src}: not the pytorch-fid FID Inception state dict: missing {missing[:5]}, '
        f'unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}. Expected '
        f'{sources.FID_INCEPTION.downloads[0].filename} from '
        f'{sources.FID_INCEPTION.downloads[0].url}.')
  return flat


def convert(src: str, out: str) -> dict[str, np.ndarray]:
  """Reads the `.pth` (without torch) and writes our flat `.npz`."""
  src, out = os.path.expanduser(src), os.path.expanduser(out)
  if not os.path.isfile(src):
    raise FileNotFoundError(f'{src!r} does not exist.\n'
                            + sources.missing_weights_message('fid_inception', out))
  flat = convert_state_dict(torch_pickle.load_torch_state_dict(src), src)
  tree_utils.save_flat_npz(out, flat)
  return flat


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--src', required=True, help='pt_inception-2015-12-05-6726825d.pth')
  parser.add_argument('--out', default=sources.default_npz_path('fid_inception'))
  args = parser.parse_args(argv)
  flat = convert(args.src, args.out)
  print(f'wrote {len(flat)} arrays to {os.path.expanduser(args.out)}')


if __name__ == '__main__':
  main()

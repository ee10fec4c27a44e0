"""Converts torchvision's AlexNet + LPIPS v0.1 linear heads into our LPIPS `.npz`.

  python -m animojax.convert.fetch lpips_alex             # download + convert, or by hand:
  python -m animojax.convert.lpips --alexnet alexnet-owt-7be5be79.pth \
      --lin lpips_v0.1_alex.pth --out ~/.cache/animojax/lpips_alex.npz

`features.{0,3,6,8,10}.{weight,bias}` of the AlexNet file become `net/conv{1..5}/{kernel,bias}`
(kernels (O, I, kh, kw) -> (kh, kw, I, O); the classifier is dropped) and the heads'
`lin{k}.model.1.weight` (1, C, 1, 1) become `lin{k}/kernel` (1, 1, C, 1). Older head files saved
without the dropout layer name the weight `lin{k}.model.0.weight`; both are accepted.
"""

import argparse
import os
from typing import Mapping

import numpy as np

from animojax.convert import sources
from animojax.convert import torch_pickle
from animojax.nets import alexnet
from animojax.utils import tree as tree_utils


def _conv_kernel(weight: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(np.asarray(weight, np.float32).transpose(2, 3, 1, 0))


def convert_state_dicts(alexnet_sd: Mapping[str, np.ndarray], lin_sd: Mapping[str, np.ndarray],
                        src: str = '<state dicts>') -> dict[str, np.ndarray]:
  """Both state dicts -> the flat `{'net/conv1/kernel': ..., 'lin0/kernel': ...}` mapping.

  Raises:
    ValueError: a key is missing or a shape is wrong; the message names `src`.
  """
  flat, problems = {}, []
  for name, index, cin, cout, k, _, _ in alexnet.CONV_LAYERS:
    w, b = alexnet_sd.get(f'features.{index}.weight'), alexnet_sd.get(f'features.{index}.bias')
    if w is None or b is None or w.shape != (cout, cin, k, k) or b.shape != (cout,):
      problems.append(f'features.{index}: expected weight {(cout, cin, k, k)} and bias '
                      f'{(cout,)}, got {None if w is None else w.shape}, '
                      f'{None if b is None else b.shape}')
      continue
    flat[f'net/{name}/kernel'] = _conv_kernel(w)
    flat[f'net/{name}/bias'] = np.asarray(b, np.float32)
  for k, channels in enumerate(alexnet.CHANNELS):
    w = lin_sd.get(f'lin{k}.model.1.weight', lin_sd.get(f'lin{k}.model.0.weight'))
    if w is None or w.shape != (1, channels, 1, 1):
      problems.append(f'lin{k}.model.1.weight: expected (1, {channels}, 1, 1), got '
                      f'{None if w is None else w.shape}')
      continue
    flat[f'lin{k}/kernel'] = _conv_kernel(w)
  if problems:
    files = ', '.join(f'{d.filename} ({d.url})' for d in sources.LPIPS_ALEX.downloads)
    raise ValueError(f'{src}: not torchvision AlexNet + LPIPS v0.1 alex heads: '
                     + '; '.join(problems[:5]) + f'. Expected {files}.')
  return flat


def convert(alexnet_src: str, lin_src: str, out: str) -> dict[str, np.ndarray]:
  """Reads both `.pth` files (without torch) and writes our flat `.npz`."""
  alexnet_src, lin_src = os.path.expanduser(alexnet_src), os.path.expanduser(lin_src)
  out = os.path.expanduser(out)
  for path in (alexnet_src, lin_src):
    if not os.path.isfile(path):
      raise FileNotFoundError(f'{path!r} does not exist.\n'
                              + sources.missing_weights_message('lpips_alex', out))
  flat = convert_state_dicts(torch_pickle.load_torch_state_dict(alexnet_src),
                             torch_pickle.load_torch_state_dict(lin_src),
                             f'{alexnet_src} + {lin_src}')
  tree_utils.save_flat_npz(out, flat)
  return flat


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--alexnet', required=True, help='alexnet-owt-7be5be79.pth')
  parser.add_argument('--lin', required=True, help='LPIPS v0.1 alex.pth (linear heads)')
  parser.add_argument('--out', default=sources.default_npz_path('lpips_alex'))
  args = parser.parse_args(argv)
  flat = convert(args.alexnet, args.lin, args.out)
  print(f'wrote {len(flat)} arrays to {os.path.expanduser(args.out)}')


if __name__ == '__main__':
  main()

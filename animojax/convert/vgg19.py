"""Converts torchvision's ImageNet VGG19 weights into the `.npz` our perceptual loss loads.

PIRender's perceptual loss uses torchvision's pretrained VGG19 `features`. The weights are not
shipped with animojax (they cannot be downloaded at run time on every machine either), so users
fetch the official file once and convert it:

  wget https://download.pytorch.org/models/vgg19-dcbb9e9d.pth
  python -m animojax.convert.vgg19 --src vgg19-dcbb9e9d.pth --out ~/.cache/animojax/vgg19.npz

The output is a flat `/`-keyed npz (`conv1_1/kernel`, `conv1_1/bias`, ...) whose names are the
parameter paths of `animojax.nets.vgg19.VGG19Features`; kernels are transposed from torch's
(O, I, kh, kw) to Flax's (kh, kw, I, O). All 16 convolutions are converted (the classifier is
dropped); the loss only builds the layers up to its deepest tap (relu5_1 = conv5_1).

This module is numpy-only so that the layout below can be shared without importing flax.
"""

import argparse
import os
from typing import Mapping

import numpy as np

from animojax.convert import torch_pickle
from animojax.utils import tree as tree_utils

URL = 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth'
SRC_FILENAME = 'vgg19-dcbb9e9d.pth'
# Where configs look by default; `~` is expanded when used.
DEFAULT_NPZ_PATH = '~/.cache/animojax/vgg19.npz'
# The config field that names the converted file (documented in the error message below).
CONFIG_KEY = 'config.loss.vgg19_weights'

# (our module's layer name, torchvision `features` index, in channels, out channels). Every conv is
# 3x3 pad 1 followed by ReLU at index + 1; a 2x2/2 max pool follows conv1_2, conv2_2, conv3_4,
# conv4_4 and conv5_4 (indices 4, 9, 18, 27, 36).
CONV_LAYERS = (
    ('conv1_1', 0, 3, 64), ('conv1_2', 2, 64, 64),
    ('conv2_1', 5, 64, 128), ('conv2_2', 7, 128, 128),
    ('conv3_1', 10, 128, 256), ('conv3_2', 12, 256, 256),
    ('conv3_3', 14, 256, 256), ('conv3_4', 16, 256, 256),
    ('conv4_1', 19, 256, 512), ('conv4_2', 21, 512, 512),
    ('conv4_3', 23, 512, 512), ('conv4_4', 25, 512, 512),
    ('conv5_1', 28, 512, 512), ('conv5_2', 30, 512, 512),
    ('conv5_3', 32, 512, 512), ('conv5_4', 34, 512, 512),
)
# Convs after which torchvision places a max pool.
POOL_AFTER = ('conv1_2', 'conv2_2', 'conv3_4', 'conv4_4', 'conv5_4')


def missing_weights_message(path: str) -> str:
  """Tells the user exactly how to obtain and convert the VGG19 weights."""
  return (
      f'VGG19 weights {path!r} not found. The perceptual loss needs torchvision\'s ImageNet VGG19'
      f' converted to npz. Online, one command does it all: `python -m animojax.convert.fetch'
      f' vgg19` (writes {DEFAULT_NPZ_PATH}). By hand:\n'
      f'  1. download {URL}\n'
      f'  2. python -m animojax.convert.vgg19 --src {SRC_FILENAME} --out {DEFAULT_NPZ_PATH}\n'
      f'  3. point {CONFIG_KEY} at the .npz (default {DEFAULT_NPZ_PATH}).\n'
      f'For CPU/compile tests without weights use the loss named "vgg19_random" or'
      f' "pixel_pyramid" instead (neither is the paper\'s loss).')


def convert_state_dict(state_dict: Mapping[str, np.ndarray], src: str = '<state dict>'
                       ) -> dict[str, np.ndarray]:
  """Maps torchvision `features.N.weight/bias` to `{'convX_Y/kernel': (3,3,I,O), '.../bias'}`.

  Raises:
    ValueError: keys missing or shapes unexpected; the message names them and `src`.
  """
  flat = {}
  problems = []
  for name, index, cin, cout in CONV_LAYERS:
    w_key, b_key = f'features.{index}.weight', f'features.{index}.bias'
    if w_key not in state_dict or b_key not in state_dict:
      problems.append(f'missing {w_key}/{b_key}')
      continue
    weight, bias = np.asarray(state_dict[w_key]), np.asarray(state_dict[b_key])
    if weight.shape != (cout, cin, 3, 3) or bias.shape != (cout,):
      problems.append(f'{w_key} {weight.shape} / {b_key} {bias.shape}, expected '
                      f'{(cout, cin, 3, 3)} / {(cout,)}')
      continue
    flat[f'{name}/kernel'] = np.ascontiguousarray(weight.transpose(2, 3, 1, 0), np.float32)
    flat[f'{name}/bias'] = bias.astype(np.float32)
  if problems:
    raise ValueError(f'{src}: not a torchvision VGG19 state dict: ' + '; '.join(problems[:5]) +
                     f'. Expected the file from {URL}.')
  return flat


def convert(src: str, out: str) -> dict[str, np.ndarray]:
  """Reads torchvision's VGG19 `.pth` (without torch) and writes our flat `.npz`."""
  src, out = os.path.expanduser(src), os.path.expanduser(out)
  if not os.path.isfile(src):
    raise FileNotFoundError(f'{src!r} does not exist; download it from {URL}.')
  flat = convert_state_dict(torch_pickle.load_torch_state_dict(src), src)
  tree_utils.save_flat_npz(out, flat)
  return flat


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--src', required=True, help=f'torchvision VGG19 weights ({URL}).')
  parser.add_argument('--out', default=DEFAULT_NPZ_PATH, help='output .npz path.')
  args = parser.parse_args(argv)
  flat = convert(args.src, args.out)
  print(f'wrote {len(flat)} arrays to {os.path.expanduser(args.out)}; set {CONFIG_KEY} to it.')


if __name__ == '__main__':
  main()

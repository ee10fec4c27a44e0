r"""Converts the released ToonTalker checkpoints into ToonTalker's parameter names, without torch.

  python -m animojax.convert.toontalker_torch --src cross-domain.pt --out toontalker.npz
  python -m animojax.convert.toontalker_torch --src in-domain440000.pt --out tt.npz --domain both

Layouts (OpenTalker/ToonTalker `run_demo_indomain.py`, `run_demo_crossdomain.py`):
* `in-domain440000.pt`: `{'gen': Generator_trans_w state dict, ...}`, a single-domain model
  trained on VoxCeleb; it goes to the `real` generator by default (`--domain cartoon|both` to put
  it elsewhere: stage 2 starts the cartoon domain from the real one).
* `cross-domain.pt`: `{'gen': cartoon generator, 'gen_real': real generator, ...}`.
Other entries (discriminators, optimisers, args) are not generator weights and are ignored.

Leaf conventions (see `animojax/models/blocks/stylegan2.py`): EqualConv2d (O, I, k, k) and
ModulatedConv2d (1, O, I, k, k) → (k, k, I, O); EqualLinear / nn.Linear (out, in) → (in, out);
nn.Conv2d → `kernel` (k, k, I, O); FusedLeakyReLU / ToRGB / ToFlow biases (1, C, 1, 1) → (C,);
ConstantInput (1, C, 4, 4) → (1, 4, 4, C); nn.MultiheadAttention `in_proj_weight` (3d, d) →
(d, 3d); LayerNorm `weight` → `scale`; Embedding `weight` → `embedding`. A ConvLayer (PyTorch
`nn.Sequential` [Blur,] EqualConv2d, FusedLeakyReLU) names its parts `conv`, `act`. Blur/Upsample
FIR kernels are fixed buffers, not parameters, and are skipped.
"""

import argparse
import os
from typing import Any, Mapping

import numpy as np

from animojax.convert import animo_torch
from animojax.convert import torch_pickle
from animojax.utils import tree as tree_utils

DOMAINS = ('real', 'cartoon')
# Checkpoint entry -> our domain, for the cross-domain file.
CROSS_DOMAIN_KEYS = {'gen_real': 'real', 'gen': 'cartoon'}
# Module lists whose numeric children are whole modules, not a ConvLayer's parts.
_LISTS = ('convs', 'to_rgbs', 'to_flows', 'sft', 'final_linear')
_TORCH_CONVS = ('latlayer1', 'scale2', 'shift2')  # nn.Conv2d (PyTorch init and names).
_TORCH_LINEARS = ('linear1', 'linear2', 'out_proj')

Conversion = animo_torch.Conversion


def convert_key(key: str, value: np.ndarray) -> tuple[str, np.ndarray] | None:
  """(our '/'-name, array) for one generator / discriminator weight; None for FIR buffers."""
  parts = key.split('.')
  leaf, parent = parts[-1], parts[-2] if len(parts) > 1 else ''
  if leaf == 'kernel':
    return None
  if (len(parts) >= 3 and parent.isdigit() and parts[-3] not in _LISTS
      and leaf in ('weight', 'bias')):
    parts[-2] = 'conv' if leaf == 'weight' else 'act'  # Inside a ConvLayer.
    parent = parts[-2]
  if parent in _TORCH_CONVS or parent in _TORCH_LINEARS:
    if leaf == 'weight':
      leaf = 'kernel'
      value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
  elif parent.startswith('norm'):
    leaf = 'scale' if leaf == 'weight' else leaf
  elif parent == 'direction':
    leaf = 'embedding'
  elif leaf == 'in_proj_weight':
    value = value.T
  elif parent == 'input' and leaf == 'input':
    value = value.transpose(0, 2, 3, 1)
  elif leaf == 'weight' and value.ndim == 5:
    value = value[0].transpose(2, 3, 1, 0)
  elif leaf == 'weight' and value.ndim == 4:
    value = value.transpose(2, 3, 1, 0)
  elif leaf == 'weight' and value.ndim == 2:
    value = value.T
  elif leaf == 'bias' and value.ndim == 4:
    value = value.reshape(-1)
  parts[-1] = leaf
  return tree_utils.SEPARATOR.join(parts), np.ascontiguousarray(value)


def convert_state_dict(state_dict: Mapping[str, np.ndarray], prefix: str = ''
                       ) -> dict[str, np.ndarray]:
  """A generator's (or discriminator's) state dict → `{prefix + our name: array}`."""
  strip = animo_torch._strip_prefix(list(state_dict))  # pylint: disable=protected-access
  out = {}
  for key, value in state_dict.items():
    converted = convert_key(key[len(strip):], np.asarray(value))
    if converted is not None:
      out[prefix + converted[0]] = converted[1]
  return out


def convert(checkpoint: Any, path: str = '<checkpoint>', option: str = '') -> Conversion:
  """Converts a loaded checkpoint (`torch_pickle.load_torch_pickle`) or a file path.

  `option` (single-domain files only): 'real' (default), 'cartoon' or 'both'.
  """
  if isinstance(checkpoint, (str, os.PathLike)):
    path = os.fspath(checkpoint)
    checkpoint = torch_pickle.load_torch_pickle(path)
  if option not in ('', 'both') + DOMAINS:
    raise ValueError(f'{path}: unknown option {option!r}; expected one of {DOMAINS} or "both".')
  if not isinstance(checkpoint, Mapping) or 'gen' not in checkpoint:
    keys = list(checkpoint)[:10] if isinstance(checkpoint, Mapping) else type(checkpoint)
    raise ValueError(f'{path}: not a ToonTalker checkpoint (no "gen" entry; found {keys}).')
  params, unconverted = {}, {}
  cross = 'gen_real' in checkpoint
  if cross:
    if option not in ('', 'both'):
      raise ValueError(f'{path}: is a two-domain (cross-domain) checkpoint; the domain option '
                       f'{option!r} only applies to single-domain files.')
    for key, domain in CROSS_DOMAIN_KEYS.items():
      params.update(convert_state_dict(checkpoint[key], f'{domain}/'))
  else:
    domains = DOMAINS if option == 'both' else (option or 'real',)
    for domain in domains:
      params.update(convert_state_dict(checkpoint['gen'], f'{domain}/'))
  for key in checkpoint:
    if key not in ('gen', 'gen_real'):
      unconverted[key] = 'not a generator (discriminator, optimiser or arguments)'
  source = 'gen_real + gen' if cross else 'gen'
  return Conversion(params, unconverted, 'toontalker_cross' if cross else 'toontalker', source)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
  parser.add_argument('--src', required=True, help='in-domain440000.pt or cross-domain.pt')
  parser.add_argument('--out', required=True, help='output .npz path.')
  parser.add_argument('--domain', default='', choices=('', 'both') + DOMAINS,
                      help='single-domain files: which domain(s) get the generator.')
  args = parser.parse_args(argv)
  try:
    conversion = convert(os.path.expanduser(args.src), option=args.domain)
  except (ValueError, FileNotFoundError) as e:
    raise SystemExit(str(e)) from None
  tree_utils.save_flat_npz(os.path.expanduser(args.out), conversion.params)
  print(f'wrote {len(conversion.params)} arrays ({conversion.layout}, from {conversion.source}) '
        f'to {args.out}')


if __name__ == '__main__':
  main()

"""Converts 3DDFA_V2's detector, regressor, parameter statistics and landmark bases into one `.npz`.

  python -m animojax.convert.fetch tddfa_v2            # download + convert, or by hand:
  python -m animojax.convert.tddfa --faceboxes FaceBoxesProd.pth --regressor mb05_120x120.pth \
      --param_mean_std param_mean_std_62d_120x120.pkl --bases DIR --out ~/.cache/animojax/tddfa_v2.npz

Inputs (cleardusk/3DDFA_V2 `FaceBoxes/weights/`, `weights/`, `configs/`; the 68-landmark bases
from cleardusk/3DDFA `c++/weights/`, which are 3DDFA_V2's `u_base`, `w_shp_base`, `w_exp_base`):

* `FaceBoxesProd.pth`: names as `animojax.nets.faceboxes` except the heads (`loc.0` -> `loc0`);
* `mb05_120x120.pth`: a training checkpoint (`{'state_dict': ...}` with `module.` prefixes, as
  3DDFA_V2's `load_model` strips); `fc_param` is our `fc`, `fc_lm` is dropped like upstream;
* `param_mean_std_62d_120x120.pkl`: a pickled dict of two float32 numpy arrays, read with a
  restricted unpickler that resolves only numpy's array-rebuilding globals;
* `u_base.txt`, `w_shp_base.txt`, `w_exp_base.txt`: whitespace tables (204), (204, 40), (204, 10).

Output keys: `faceboxes/...` and `regressor/...` (the modules' own variable paths; conv kernels
(O, I/groups, kh, kw) -> (kh, kw, I/groups, O), BN weight/bias/running_mean/running_var ->
scale/bias/mean/var), `param_mean`, `param_std` [62], `u_base` [204], `w_shp_base` [204, 40],
`w_exp_base` [204, 10]. Everything is checked against the Flax modules, name by name and shape by
shape; torch is never imported.
"""

import argparse
import io
import os
import pickle
from typing import Mapping, Sequence

from flax import nnx
import numpy as np

from animojax.convert import sources
from animojax.convert import torch_pickle
from animojax.models.blocks import initializers
from animojax.nets import faceboxes
from animojax.nets import tddfa
from animojax.utils import tree as tree_utils

NAME = 'tddfa_v2'
BASES = ('u_base', 'w_shp_base', 'w_exp_base')
_BASE_SHAPES = {'u_base': (204,), 'w_shp_base': (204, 40), 'w_exp_base': (204, 10)}
_BN_NAMES = {'weight': 'scale', 'bias': 'bias', 'running_mean': 'mean', 'running_var': 'var'}
# numpy globals a pickled float array needs (numpy 1.x and 2.x module names).
_NUMPY_GLOBALS = {('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray',
                                                              '_reconstruct'),
                  ('numpy', 'ndarray'), ('numpy', 'dtype')}


def expected_shapes(module_fn) -> dict[str, tuple[int, ...]]:
  """Flat variable names -> shapes of a module built abstractly."""
  state = nnx.state(nnx.eval_shape(module_fn))
  return {k: tuple(v.shape) for k, v in
          tree_utils.flatten_with_names(nnx.to_pure_dict(state)).items()}


def _rename(state_dict: Mapping[str, np.ndarray], rename) -> tuple[dict, list]:
  """torch names -> our flat names (via `rename` of the module path), arrays converted."""
  flat, unknown = {}, []
  for key, value in state_dict.items():
    if key.endswith('num_batches_tracked'):
      continue
    path, _, leaf = key.rpartition('.')
    path = rename(path)
    if path is None:
      continue
    value = np.asarray(value, np.float32)
    if leaf == 'weight' and value.ndim == 4:
      flat[f'{path}/kernel'] = np.ascontiguousarray(value.transpose(2, 3, 1, 0))
    elif leaf == 'weight' and value.ndim == 2:
      flat[f'{path}/kernel'] = np.ascontiguousarray(value.T)
    elif leaf in _BN_NAMES and value.ndim == 1 and (path.split('/')[-1].startswith('bn')):
      flat[f'{path}/{_BN_NAMES[leaf]}'] = value
    elif leaf == 'bias' and value.ndim == 1:
      flat[f'{path}/bias'] = value
    else:
      unknown.append(key)
  return flat, unknown


def _check(flat, expected, unknown, src, what):
  missing = [k for k in expected if k not in flat]
  unexpected = unknown + [k for k in flat if k not in expected]
  wrong = [f'{k} {flat[k].shape} (expected {expected[k]})' for k in expected
           if k in flat and flat[k].shape != expected[k]]
  if missing or unexpected or wrong:
    raise ValueError(f'{src}: not {what}: missing {missing[:5]}, unexpected {unexpected[:5]}, '
                     f'wrong shapes {wrong[:5]}.')


def convert_faceboxes(state_dict: Mapping[str, np.ndarray], src: str = '<state dict>'
                      ) -> dict[str, np.ndarray]:
  """FaceBoxesProd state dict -> flat `{'conv1/conv/kernel': ...}`."""
  def rename(path):
    parts = path.split('.')
    if parts[0] in ('loc', 'conf') and len(parts) == 2:
      return parts[0] + parts[1]
    return '/'.join(parts)

  flat, unknown = _rename(state_dict, rename)
  # BatchNorm leaves sit under '.../bn'; the head biases under 'loc0' etc. `_rename` handled both.
  _check(flat, expected_shapes(lambda: faceboxes.FaceBoxesNet(rngs=initializers.KeyStream(0))),
         unknown, src, "3DDFA_V2's FaceBoxesProd.pth")
  return flat


def convert_regressor(state_dict: Mapping[str, np.ndarray], src: str = '<state dict>'
                      ) -> dict[str, np.ndarray]:
  """mb05_120x120 state dict (with or without `module.`) -> flat `{'conv1/kernel': ...}`."""
  def rename(path):
    path = path.removeprefix('module.')
    if path == 'fc_lm':
      return None  # The auxiliary landmark head; 3DDFA_V2 does not use it.
    return 'fc' if path == 'fc_param' else path.replace('.', '/')

  flat, unknown = _rename(state_dict, rename)
  _check(flat, expected_shapes(lambda: tddfa.MobileNet(rngs=initializers.KeyStream(0))),
         unknown, src, "3DDFA_V2's mb05_120x120.pth (MobileNet v1 at width 0.5, 62 outputs)")
  return flat


class _NumpyUnpickler(pickle.Unpickler):
  """Resolves only the globals a pickled numpy array needs; anything else is refused."""

  def __init__(self, f, path):
    super().__init__(f, encoding='latin1')
    self._path = path

  def find_class(self, module, name):
    if (module, name) in _NUMPY_GLOBALS:
      return super().find_class(module, name)
    raise ValueError(f'{self._path}: refusing to load global {module}.{name} (expected a pickled '
                     'dict of numpy arrays).')


def load_numpy_pickle(path: str) -> dict:
  """A pickled dict of numpy arrays (3DDFA_V2's `.pkl` configs), without running other code."""
  with open(path, 'rb') as f:
    data = f.read()
  try:
    obj = _NumpyUnpickler(io.BytesIO(data), path).load()
  except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as e:
    raise ValueError(f'{path}: not a pickled dict of numpy arrays ({e}).') from e
  if not isinstance(obj, dict):
    raise ValueError(f'{path}: expected a pickled dict, got {type(obj).__name__}.')
  return obj


def read_param_mean_std(path: str) -> dict[str, np.ndarray]:
  """`param_mean_std_62d_120x120.pkl` -> {'param_mean': [62], 'param_std': [62]}."""
  obj = load_numpy_pickle(path)
  out = {}
  for key in ('mean', 'std'):
    value = np.asarray(obj.get(key), np.float32) if key in obj else None
    if value is None or value.shape != (tddfa.NUM_PARAMS,) or not np.all(np.isfinite(value)):
      raise ValueError(f'{path}: expected float arrays "mean" and "std" of shape (62,), got '
                       f'{None if value is None else value.shape} for {key!r}.')
    out[f'param_{key}'] = value
  return out


def read_bases(bases: str | Sequence[str]) -> dict[str, np.ndarray]:
  """The 68-landmark bases from 3DDFA's `c++/weights/` text files (their folder, or 3 paths)."""
  if isinstance(bases, (str, os.PathLike)):
    bases = [os.path.join(os.path.expanduser(bases), f'{name}.txt') for name in BASES]
  out = {}
  for name, path in zip(BASES, bases, strict=True):
    if not os.path.isfile(path):
      raise FileNotFoundError(f'{path!r} not found: --bases must be a folder holding 3DDFA\'s '
                              'u_base.txt, w_shp_base.txt and w_exp_base.txt (c++/weights/).')
    try:
      value = np.loadtxt(path, dtype=np.float32)
    except ValueError as e:
      raise ValueError(f'{path}: not a table of numbers ({e}).') from e
    if value.shape != _BASE_SHAPES[name]:
      raise ValueError(f'{path}: shape {value.shape}, expected {_BASE_SHAPES[name]}.')
    out[name] = value
  return out


def convert(faceboxes_src: str, regressor_src: str, param_mean_std_src: str,
            bases: str | Sequence[str], out: str | None = None) -> dict[str, np.ndarray]:
  """Reads the four inputs (without torch) and writes (when `out`) the flat bundle."""
  paths = [os.path.expanduser(p) for p in (faceboxes_src, regressor_src, param_mean_std_src)]
  for path in paths:
    if not os.path.isfile(path):
      raise FileNotFoundError(f'{path!r} does not exist.\n'
                              + sources.missing_weights_message(NAME, out))
  flat = {f'faceboxes/{k}': v for k, v in convert_faceboxes(
      torch_pickle.load_torch_state_dict(paths[0]), paths[0]).items()}
  flat.update({f'regressor/{k}': v for k, v in convert_regressor(
      torch_pickle.load_torch_state_dict(paths[1]), paths[1]).items()})
  flat.update(read_param_mean_std(paths[2]))
  flat.update(read_bases(bases))
  if out:
    tree_utils.save_flat_npz(os.path.expanduser(out), flat)
  return flat


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--faceboxes', required=True, help='FaceBoxesProd.pth')
  parser.add_argument('--regressor', required=True, help='mb05_120x120.pth')
  parser.add_argument('--param_mean_std', required=True, help='param_mean_std_62d_120x120.pkl')
  parser.add_argument('--bases', required=True,
                      help='folder with u_base.txt, w_shp_base.txt, w_exp_base.txt')
  parser.add_argument('--out', default=sources.default_npz_path(NAME))
  args = parser.parse_args(argv)
  flat = convert(args.faceboxes, args.regressor, args.param_mean_std, args.bases, args.out)
  print(f'wrote {len(flat)} arrays to {os.path.expanduser(args.out)}')


if __name__ == '__main__':
  main()

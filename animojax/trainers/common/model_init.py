"""Warm start (`config.model_init`): model weights from a file, partially if need be.

`load(path, reference_params)` reads either

* an exported `.npz` (`python -m animojax.export`, a run's `params.npz`, or a converted
  checkpoint): flat `/`-keys that are the model's own parameter paths; or
* a PyTorch checkpoint (`torch.save` zip or legacy pickle, a Lightning `.ckpt`; any extension),
  read without torch and turned into those paths by the family's converter
  (`animojax.convert.animo_torch.convert` for AniMo).

The format is told by content, not by name. `PATH:OPTION` passes OPTION to the converter when
PATH exists (e.g. `pirender.pth:human`: the domain PIRender's single-domain nets go to).

Loading is partial, since warm starts often come from a model that differs a little (another
variant, another input size of the first layer): a parameter present with the model's shape is
loaded (cast to the model's dtype), one with another shape is skipped, one absent from the file
keeps its random init, and file entries the model lacks are ignored -- and all four lists are in
the `Report`, which the trainer logs and writes to `<workdir>/model_init.json`. A file sharing no
parameter with the model is an error: it is almost certainly the wrong file.
"""

import dataclasses
import json
import os
import zipfile
from typing import Any, Callable

from absl import logging
import jax
import numpy as np

from animojax.convert import torch_pickle
from animojax.utils import tree as tree_utils

REPORT_FILENAME = 'model_init.json'


@dataclasses.dataclass
class Report:
  """What a warm start took from the file (names are `/`-joined parameter paths).

  Attributes:
    path: the file read.
    format: 'npz' or 'torch'.
    loaded: parameters taken from the file.
    shape_mismatch: `{name: (shape in the file, shape in the model)}`, skipped.
    missing: model parameters the file lacks (left at their random init).
    unexpected: file entries the model has no parameter for (ignored).
    unconverted: `{checkpoint key: reason}` for PyTorch weights the converter could not map.
    source: where the weights came from inside a PyTorch checkpoint, and its layout.
  """
  path: str
  format: str
  loaded: list[str] = dataclasses.field(default_factory=list)
  shape_mismatch: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = dataclasses.field(
      default_factory=dict)
  missing: list[str] = dataclasses.field(default_factory=list)
  unexpected: list[str] = dataclasses.field(default_factory=list)
  unconverted: dict[str, str] = dataclasses.field(default_factory=dict)
  source: str = ''

  def summary(self) -> str:
    total = len(self.loaded) + len(self.shape_mismatch) + len(self.missing)
    return (f'model_init {self.path} ({self.format}{", " + self.source if self.source else ""}):'
            f' loaded {len(self.loaded)} of {total} parameters; {len(self.shape_mismatch)} '
            f'skipped (shape), {len(self.missing)} left random, {len(self.unexpected)} file '
            f'entries unused, {len(self.unconverted)} checkpoint weights unconverted.')

  def to_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out['shape_mismatch'] = {k: {'file': list(f), 'model': list(m)}
                             for k, (f, m) in self.shape_mismatch.items()}
    return out

  def log(self) -> None:
    logging.info('%s', self.summary())
    for name, (file_shape, model_shape) in self.shape_mismatch.items():
      logging.warning('model_init: skipped %s: shape %s in the file, %s in the model.', name,
                      file_shape, model_shape)
    if self.missing:
      logging.warning('model_init: %d parameters left at their random init: %s%s',
                      len(self.missing), ', '.join(self.missing[:20]),
                      ' ...' if len(self.missing) > 20 else '')
    if self.unexpected:
      logging.info('model_init: %d file entries unused: %s%s', len(self.unexpected),
                   ', '.join(self.unexpected[:20]), ' ...' if len(self.unexpected) > 20 else '')

  def write(self, workdir: str) -> str:
    path = os.path.join(workdir, REPORT_FILENAME)
    with open(path, 'w') as f:
      json.dump(self.to_dict(), f, indent=2)
    return path


def _split_option(path: str) -> tuple[str, str]:
  """'file.pth:human' -> ('file.pth', 'human') when the whole string is not itself a file."""
  head, sep, option = path.rpartition(':')
  if sep and head and option and '/' not in option and not os.path.exists(path):
    return head, option
  return path, ''


def sniff_format(path: str) -> str:
  """'npz' or 'torch' from the file's content; a one-line error for anything else."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'model_init: {path!r} does not exist; expected an exported .npz or '
                            'a PyTorch checkpoint.')
  if not os.path.isfile(path):
    raise ValueError(f'model_init: {path!r} is not a file.')
  if os.path.getsize(path) == 0:
    raise ValueError(f'model_init: {path!r} is empty (0 bytes); an interrupted download or copy?')
  with open(path, 'rb') as f:
    head = f.read(4)
  if head.startswith(b'PK'):
    try:
      with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
      raise ValueError(f'model_init: {path!r} is a corrupt or truncated zip archive ({e}).') from e
    if any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
      return 'torch'
    if names and all(n.endswith('.npy') for n in names):
      return 'npz'
    raise ValueError(f'model_init: {path!r} is a zip archive but neither an .npz nor a '
                     f'torch.save file (entries {names[:5]}).')
  if head[:1] == b'\x80':  # A pickle: torch's legacy (pre-1.6) format.
    return 'torch'
  raise ValueError(f'model_init: {path!r} is neither an .npz nor a PyTorch checkpoint '
                   f'(starts with {head!r}).')


def read_flat(path: str, torch_converter: Callable[..., Any] | None = None
              ) -> tuple[dict[str, np.ndarray], 'Report']:
  """The file's weights as `{'/'-name: array}` and a report holding its format and source."""
  path, option = _split_option(os.path.expanduser(path))
  fmt = sniff_format(path)
  report = Report(path=path, format=fmt)
  if fmt == 'npz':
    if option:
      raise ValueError(f'model_init: option {option!r} given for {path!r}, an .npz (options are '
                       'for PyTorch checkpoints).')
    try:
      return tree_utils.load_npz_flat(path), report
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
      raise ValueError(f'model_init: cannot read {path!r} as .npz ({e}); corrupt file?') from e
  if torch_converter is None:
    raise ValueError(f'model_init: {path!r} is a PyTorch checkpoint, and this trainer family '
                     'has no converter for it; convert it to .npz first.')
  checkpoint = torch_pickle.load_torch_pickle(path)  # TorchPickleError names the file.
  conversion = torch_converter(checkpoint, path, option)
  report.unconverted = dict(conversion.unconverted)
  report.source = f'{conversion.layout} layout, from {conversion.source}'
  return conversion.params, report


def load(path: str, reference_params: Any,
         torch_converter: Callable[..., Any] | None = None) -> tuple[Any, Report]:
  """Reads `path` and merges it into a model parameter tree.

  Args:
    path: an `.npz` or PyTorch checkpoint, optionally `PATH:OPTION` (see the module docstring).
    reference_params: the model's own parameter tree (e.g. `animo_state.model_params(params)`);
      its leaves (arrays or `jax.ShapeDtypeStruct`s) give the names, shapes and dtypes.
    torch_converter: `(checkpoint, path, option) -> animo_torch.Conversion`-like object with
      `params`, `unconverted`, `layout`, `source`; None rejects PyTorch files.

  Returns:
    (params, report): `reference_params`'s structure with a numpy array (in the reference's
    dtype) for every loaded name and the reference's own leaf everywhere else.

  Raises:
    FileNotFoundError / ValueError: a missing, empty, corrupt or unrecognised file, or a file
      that shares no parameter with the model; each message names the file.
  """
  flat, report = read_flat(path, torch_converter)
  reference = tree_utils.flatten_with_names(reference_params)
  merged = dict(reference)
  for name, ref in reference.items():
    if name not in flat:
      report.missing.append(name)
      continue
    value = np.asarray(flat[name])
    if tuple(value.shape) != tuple(ref.shape):
      report.shape_mismatch[name] = (tuple(value.shape), tuple(ref.shape))
      continue
    merged[name] = value.astype(ref.dtype, copy=False)
    report.loaded.append(name)
  report.unexpected = sorted(set(flat) - set(reference))
  if not report.loaded:
    raise ValueError(
        f'model_init: {report.path!r} shares no parameter with the model ({len(flat)} entries, '
        f'e.g. {sorted(flat)[:3]}; model has e.g. {list(reference)[:3]}; '
        f'{len(report.shape_mismatch)} names matched with another shape).')
  return tree_utils.restore_like(merged, reference_params), report


def assign(target: Any, params: Any, names: list[str]) -> Any:
  """`target` (a tree of global jax Arrays) with the `names` leaves replaced by `params`'s.

  Each replacement is placed on the target leaf's sharding with `make_array_from_callback`, which
  builds only this process's shards from the host copy: correct with several processes, each of
  which has read the same file. Leaves not named are returned as they are (no copy).
  """
  names = set(names)
  target_flat = tree_utils.flatten_with_names(target)
  source_flat = tree_utils.flatten_with_names(params)
  out = {}
  for name, leaf in target_flat.items():
    if name not in names:
      out[name] = leaf
      continue
    value = np.asarray(source_flat[name], dtype=leaf.dtype)
    out[name] = jax.make_array_from_callback(leaf.shape, leaf.sharding,
                                             lambda index, v=value: v[index])
  return tree_utils.restore_like(out, target)

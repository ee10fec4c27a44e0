"""Reads PyTorch `.pt`/`.pth` checkpoints into numpy arrays without importing torch.

Pretrained weights we port (VGG19, LPIPS, 3DDFA, EDTN, ...) are published as `torch.save` files.
animojax must not depend on torch, so this module parses the two on-disk formats itself:

* zip format (torch >= 1.6): `<prefix>/data.pkl` is a pickle whose tensors point, through
  persistent ids, at raw storages `<prefix>/data/<key>`; `<prefix>/byteorder` says the byte
  order of those storages (little when absent, as torch assumes).
* legacy format (torch < 1.6): five consecutive pickles in one file -- magic number, protocol
  version, sys_info, the object (tensors point at storages by persistent id) and the list of
  storage keys -- followed by the raw storages in that order, each prefixed with its element
  count as a little-endian int64. Legacy storages are always little-endian on disk (torch
  converts when writing on big-endian hosts).

Unpickling is restricted: only a whitelist of globals (OrderedDict, the tensor/parameter rebuild
functions, storage classes and dtypes) can be resolved, so a malicious checkpoint cannot run
code. Any other global raises a `ValueError` naming it and the file.

The very old tar format (torch < 0.1.10), TorchScript archives, sparse/quantized tensors and
whole pickled `nn.Module`s are not supported and raise a clear error.
"""

import collections
import dataclasses
import io
import os
import pickle
import sys
import zipfile
from typing import Any, BinaryIO, Mapping

import ml_dtypes
import numpy as np

# Written by torch as the first pickle of a legacy file.
_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001

# torch's legacy `<Type>Storage` classes, which name the element type of a storage.
_STORAGE_DTYPES = {
    'DoubleStorage': np.dtype(np.float64),
    'FloatStorage': np.dtype(np.float32),
    'HalfStorage': np.dtype(np.float16),
    # numpy has no bfloat16; ml_dtypes (a jax dependency) does, so raw uint16 words are viewed as it.
    'BFloat16Storage': np.dtype(ml_dtypes.bfloat16),
    'LongStorage': np.dtype(np.int64),
    'IntStorage': np.dtype(np.int32),
    'ShortStorage': np.dtype(np.int16),
    'CharStorage': np.dtype(np.int8),
    'ByteStorage': np.dtype(np.uint8),
    'BoolStorage': np.dtype(np.bool_),
    'ComplexFloatStorage': np.dtype(np.complex64),
    'ComplexDoubleStorage': np.dtype(np.complex128),
    # Untyped storages hold bytes; the tensor's dtype comes with `_rebuild_tensor_v3`.
    'UntypedStorage': np.dtype(np.uint8),
}

# `torch.<dtype>` globals, pickled as arguments of `_rebuild_tensor_v3` (dtypes that have no legacy
# storage class) and occasionally stored as plain values.
_TORCH_DTYPES = {
    'float64': np.dtype(np.float64),
    'float32': np.dtype(np.float32),
    'float16': np.dtype(np.float16),
    'bfloat16': np.dtype(ml_dtypes.bfloat16),
    'int64': np.dtype(np.int64),
    'int32': np.dtype(np.int32),
    'int16': np.dtype(np.int16),
    'int8': np.dtype(np.int8),
    'uint8': np.dtype(np.uint8),
    'uint16': np.dtype(np.uint16),
    'uint32': np.dtype(np.uint32),
    'uint64': np.dtype(np.uint64),
    'bool': np.dtype(np.bool_),
    'complex64': np.dtype(np.complex64),
    'complex128': np.dtype(np.complex128),
    'float8_e4m3fn': np.dtype(ml_dtypes.float8_e4m3fn),
    'float8_e5m2': np.dtype(ml_dtypes.float8_e5m2),
}

# Keys that conventionally wrap a state dict inside a training checkpoint, in order of preference.
_WRAPPER_KEYS = ('state_dict', 'model_state_dict', 'model', 'net', 'network', 'params',
                 'params_ema', 'generator')


class TorchPickleError(ValueError):
  """A checkpoint that cannot (or must not) be read; the message names the file."""


@dataclasses.dataclass(frozen=True)
class _StorageClass:
  """Stands in for `torch.<Type>Storage` classes during unpickling."""
  name: str
  dtype: np.dtype


@dataclasses.dataclass(frozen=True)
class _TorchDtype:
  """Stands in for `torch.<dtype>` objects during unpickling."""
  name: str
  dtype: np.dtype


@dataclasses.dataclass(frozen=True)
class _StorageRef:
  """A storage named by a persistent id; its bytes are resolved after unpickling.

  `element_offset` is non-zero only for the storage *views* of very old legacy files.
  """
  key: str
  dtype: np.dtype
  numel: int
  element_offset: int = 0


@dataclasses.dataclass(frozen=True)
class _LazyTensor:
  """A tensor whose storage bytes are not read yet (legacy files store them after the pickle)."""
  storage: _StorageRef
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]
  dtype: np.dtype


def _rebuild_tensor(storage, storage_offset, size, stride, *unused_args):
  """Handles `_rebuild_tensor` (torch 0.3) and `_rebuild_tensor_v2` (later).

  The trailing args (requires_grad, backward_hooks, metadata) only matter for autograd.
  """
  if not isinstance(storage, _StorageRef):
    raise TorchPickleError(f'tensor rebuilt from {type(storage).__name__}, expected a storage')
  return _LazyTensor(storage, int(storage_offset), tuple(int(s) for s in size),
                     tuple(int(s) for s in stride), storage.dtype)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, *unused_metadata):
  """Tensors of dtypes without a legacy storage class: untyped (byte) storage plus a dtype."""
  del requires_grad, backward_hooks  # Autograd-only.
  if not isinstance(storage, _StorageRef):
    raise TorchPickleError(f'tensor rebuilt from {type(storage).__name__}, expected a storage')
  if not isinstance(dtype, _TorchDtype):
    raise TorchPickleError(f'_rebuild_tensor_v3 got dtype {dtype!r}, expected a torch dtype')
  return _LazyTensor(storage, int(storage_offset), tuple(int(s) for s in size),
                     tuple(int(s) for s in stride), dtype.dtype)


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused_state):
  """`nn.Parameter` is just its data for us."""
  del requires_grad, backward_hooks
  return data


def _rebuild_from_type_v2(func, new_type, args, state):
  """Tensor subclasses (e.g. Parameter saved with Python attributes): keep the plain tensor."""
  del new_type, state  # Only python-side attributes; the numbers are in `func(*args)`.
  return func(*args)


class _TensorType:
  """Stands in for `torch.Tensor` / `torch.nn.Parameter` (arguments of `_rebuild_from_type_v2`)."""


_ALLOWED_FUNCTIONS = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor_v3'): _rebuild_tensor_v3,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
    ('torch._tensor', '_rebuild_from_type_v2'): _rebuild_from_type_v2,
    ('torch.tensor', '_rebuild_from_type_v2'): _rebuild_from_type_v2,
    ('torch', 'Tensor'): _TensorType,
    ('torch._tensor', 'Tensor'): _TensorType,
    ('torch.nn.parameter', 'Parameter'): _TensorType,
}


def _find_allowed_class(path: str, module: str, name: str):
  """The restricted `find_class`: whitelisted globals only, everything else is an error."""
  if (module, name) in _ALLOWED_FUNCTIONS:
    return _ALLOWED_FUNCTIONS[(module, name)]
  # GPU-saved legacy files name `torch.cuda.FloatStorage`; the location is irrelevant on load.
  if module in ('torch', 'torch.cuda', 'torch.storage') and name in _STORAGE_DTYPES:
    return _StorageClass(name, _STORAGE_DTYPES[name])
  if module == 'torch' and name in _TORCH_DTYPES:
    return _TorchDtype(name, _TORCH_DTYPES[name])
  hint = ''
  if module.startswith('__torch__'):
    hint = ' This looks like a TorchScript archive (torch.jit.save); save a state_dict instead.'
  elif module not in ('torch', 'torch._utils', 'collections'):
    hint = (' The checkpoint pickles Python objects beyond tensors and dicts (e.g. a whole'
            ' nn.Module or numpy values); re-save it as `torch.save(model.state_dict(), ...)`.')
  raise TorchPickleError(
      f'{path}: refusing to unpickle global {module}.{name}; only tensors, (Ordered)dicts and'
      f' plain Python values are read.{hint}')


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that resolves only whitelisted globals and records storage persistent ids."""

  def __init__(self, file: BinaryIO, path: str, legacy: bool):
    # torch.load also defaults to utf-8, which decodes Python-2 era string pickles correctly.
    super().__init__(file, encoding='utf-8')
    self._path = path
    self._legacy = legacy
    self.storages: dict[str, _StorageRef] = {}

  def find_class(self, module, name):
    return _find_allowed_class(self._path, module, name)

  def persistent_load(self, pid):
    if not isinstance(pid, tuple) or not pid:
      raise TorchPickleError(f'{self._path}: unexpected persistent id {pid!r}; corrupt file?')
    typename = pid[0].decode('ascii') if isinstance(pid[0], bytes) else pid[0]
    if typename == 'module':
      raise TorchPickleError(
          f'{self._path}: contains a pickled nn.Module (torch.save(model)); re-save it as'
          ' `torch.save(model.state_dict(), ...)`.')
    if typename != 'storage':
      raise TorchPickleError(f'{self._path}: unknown persistent id type {typename!r}')
    if self._legacy:
      storage_class, key, _, numel, view_metadata = pid[1:]
    else:
      storage_class, key, _, numel = pid[1:]
      view_metadata = None
    if not isinstance(storage_class, _StorageClass):
      raise TorchPickleError(f'{self._path}: storage of type {storage_class!r}; corrupt file?')
    key = str(key)
    root = self.storages.setdefault(key, _StorageRef(key, storage_class.dtype, int(numel)))
    if view_metadata is not None:
      # Storage views only exist in pre-1.0 legacy files: (view_key, offset, size) into the root.
      _, view_offset, _ = view_metadata
      return dataclasses.replace(root, element_offset=int(view_offset))
    return root


def _materialize(obj: Any, storage_bytes: Mapping[str, np.ndarray], byteorder: str,
                 path: str) -> Any:
  """Replaces every `_LazyTensor` in `obj` (dicts, lists, tuples) with a numpy array."""
  if isinstance(obj, _LazyTensor):
    return _tensor_to_array(obj, storage_bytes[obj.storage.key], byteorder, path)
  if isinstance(obj, _StorageRef):
    raise TorchPickleError(f'{path}: contains a bare storage (not a tensor); not supported.')
  if isinstance(obj, dict):
    out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
    for k, v in obj.items():
      out[k] = _materialize(v, storage_bytes, byteorder, path)
    return out
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialize(v, storage_bytes, byteorder, path) for v in obj)
  return obj


def _tensor_to_array(t: _LazyTensor, raw: np.ndarray, byteorder: str, path: str) -> np.ndarray:
  """Builds a contiguous native-endian array from a storage's raw bytes, offset, size and stride."""
  itemsize = t.dtype.itemsize
  if any(n == 0 for n in t.size):
    return np.zeros(t.size, dtype=t.dtype)
  start = (t.storage.element_offset + t.offset) * itemsize
  last = sum((n - 1) * s for n, s in zip(t.size, t.stride))
  end = start + (last + 1) * itemsize
  if t.offset < 0 or any(s < 0 for s in t.stride) or end > raw.size:
    raise TorchPickleError(
        f'{path}: tensor of size {t.size}, stride {t.stride}, offset {t.offset} does not fit its'
        f' storage {t.storage.key!r} ({raw.size} bytes); corrupt or truncated file?')
  flat = raw[start:end]
  # Swap through unsigned words, not the dtype itself: ml_dtypes' bfloat16/float8 have no
  # byte-order variants, and a complex number is two independently stored floats.
  word = itemsize // 2 if t.dtype.kind == 'c' else itemsize
  if byteorder != sys.byteorder and word > 1:
    flat = flat.view(f'u{word}').byteswap().view(np.uint8)
  view = np.lib.stride_tricks.as_strided(
      flat.view(t.dtype), shape=t.size, strides=tuple(s * itemsize for s in t.stride),
      writeable=False)
  # Copy: strided/overlapping views become fresh contiguous arrays that own their memory.
  return np.array(view, order='C', copy=True)


def _storage_nbytes(ref: _StorageRef) -> int:
  return ref.numel * ref.dtype.itemsize


def _load_zip(path: str, zf: zipfile.ZipFile) -> Any:
  names = zf.namelist()
  pkl_names = [n for n in names if n == 'data.pkl' or n.endswith('/data.pkl')]
  if not pkl_names:
    raise TorchPickleError(f'{path}: zip archive without data.pkl; not a torch.save file.')
  pkl_name = min(pkl_names, key=len)  # The top-level one; nested ones would be unusual payload.
  prefix = pkl_name[:-len('data.pkl')]
  if any(n.startswith(prefix + 'code/') for n in names) or prefix + 'constants.pkl' in names:
    raise TorchPickleError(
        f'{path}: is a TorchScript archive (torch.jit.save); only torch.save files are supported.')
  byteorder = 'little'
  if prefix + 'byteorder' in names:
    byteorder = zf.read(prefix + 'byteorder').decode('ascii').strip()
    if byteorder not in ('little', 'big'):
      raise TorchPickleError(f'{path}: unknown byteorder record {byteorder!r}.')
  unpickler = _RestrictedUnpickler(io.BytesIO(zf.read(pkl_name)), path, legacy=False)
  obj = unpickler.load()
  storage_bytes = {}
  for key, ref in unpickler.storages.items():
    name = f'{prefix}data/{key}'
    try:
      data = zf.read(name)
    except KeyError:
      raise TorchPickleError(f'{path}: storage record {name!r} is missing; corrupt file?') from None
    if len(data) < _storage_nbytes(ref):
      raise TorchPickleError(
          f'{path}: storage {name!r} has {len(data)} bytes, expected {_storage_nbytes(ref)}.')
    storage_bytes[key] = np.frombuffer(data, np.uint8)
  return _materialize(obj, storage_bytes, byteorder, path)


def _load_legacy(path: str, f: BinaryIO) -> Any:
  header = []
  for what in ('magic number', 'protocol version', 'sys_info'):
    try:
      # Restricted here too: every pickle in the file is untrusted, not just the main one.
      header.append(_RestrictedUnpickler(f, path, legacy=True).load())
    except TorchPickleError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise TorchPickleError(f'{path}: cannot read the legacy {what} ({e}); corrupt file?') from e
  magic, protocol, sys_info = header
  if magic != _LEGACY_MAGIC_NUMBER:
    raise TorchPickleError(f'{path}: not a torch.save file (bad magic number {magic!r}).')
  if protocol != _LEGACY_PROTOCOL_VERSION:
    raise TorchPickleError(f'{path}: unsupported legacy protocol version {protocol!r}.')
  del sys_info  # Informational: legacy storages are little-endian regardless (see module doc).
  unpickler = _RestrictedUnpickler(f, path, legacy=True)
  obj = unpickler.load()
  keys = _RestrictedUnpickler(f, path, legacy=True).load()
  storage_bytes = {}
  for key in keys:
    key = str(key)
    if key not in unpickler.storages:
      raise TorchPickleError(f'{path}: storage key {key!r} listed but never referenced.')
    ref = unpickler.storages[key]
    count = f.read(8)
    if len(count) != 8:
      raise TorchPickleError(f'{path}: truncated before storage {key!r}.')
    numel = int(np.frombuffer(count, '<i8')[0])
    nbytes = numel * ref.dtype.itemsize
    data = f.read(nbytes)
    if len(data) != nbytes or numel < ref.numel:
      raise TorchPickleError(
          f'{path}: storage {key!r} truncated or mismatched ({len(data)} of {nbytes} bytes).')
    storage_bytes[key] = np.frombuffer(data, np.uint8)
  missing = set(unpickler.storages) - set(storage_bytes)
  if missing:
    raise TorchPickleError(f'{path}: storages {sorted(missing)} have no data; corrupt file?')
  return _materialize(obj, storage_bytes, 'little', path)


def load_torch_pickle(path: str | os.PathLike) -> Any:
  """Loads any `torch.save` file of tensors and containers, with tensors as numpy arrays.

  Args:
    path: a `.pt`/`.pth` file in zip or legacy format.

  Returns:
    The saved object with every tensor (and Parameter) replaced by a contiguous numpy array of the
    same dtype (bfloat16 as `ml_dtypes.bfloat16`), in native byte order.

  Raises:
    FileNotFoundError: `path` does not exist.
    TorchPickleError (a ValueError): the file is corrupt, of an unsupported kind, or pickles
      globals outside the whitelist.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'PyTorch checkpoint {path!r} does not exist.')
  with open(path, 'rb') as f:
    head = f.read(4)
    f.seek(0)
    try:
      if head.startswith(b'PK'):
        with zipfile.ZipFile(f) as zf:
          return _load_zip(path, zf)
      if head[:1] == b'\x80':  # pickle PROTO opcode: legacy format.
        return _load_legacy(path, f)
    except TorchPickleError as e:
      if path in str(e):
        raise
      raise TorchPickleError(f'{path}: {e}') from e
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError,
            KeyError, IndexError, AttributeError, OSError) as e:
      raise TorchPickleError(f'{path}: cannot parse torch checkpoint ({e!r}); corrupt file?') from e
  raise TorchPickleError(
      f'{path}: neither a zip-format nor a legacy torch.save file (starts with {head!r}); the'
      ' pre-0.1.10 tar format is not supported.')


def _is_tensor_mapping(obj: Any) -> bool:
  return (isinstance(obj, Mapping) and bool(obj)
          and all(isinstance(v, np.ndarray) for v in obj.values()))


def select_state_dict(obj: Any, key: str | None = None, *, path: str = '<object>'
                      ) -> dict[str, np.ndarray]:
  """Finds the mapping of name -> array inside a loaded checkpoint.

  Args:
    obj: what `load_torch_pickle` returned.
    key: optional `/`-separated path of keys to descend first, e.g. `'state_dict'` or
      `'model/generator'`.
    path: the file name, for error messages.

  Returns:
    The innermost mapping whose values are all arrays, as a plain dict (order kept). Wrappers are
    descended automatically when unambiguous: a conventional key (`state_dict`, `model`, ...) or
    the single mapping-valued entry (other entries such as `epoch` are dropped).

  Raises:
    TorchPickleError: a key is missing, or several candidate mappings exist (pass `key`).
  """
  if key:
    for part in key.split('/'):
      if not isinstance(obj, Mapping) or part not in obj:
        avail = list(obj.keys()) if isinstance(obj, Mapping) else type(obj).__name__
        raise TorchPickleError(f'{path}: key {part!r} (of {key!r}) not found; available: {avail}')
      obj = obj[part]
  while not _is_tensor_mapping(obj):
    if not isinstance(obj, Mapping):
      raise TorchPickleError(f'{path}: expected a dict of tensors, found {type(obj).__name__}.')
    children = [k for k, v in obj.items() if isinstance(v, Mapping)]
    preferred = [k for k in _WRAPPER_KEYS if k in children]
    if preferred:
      obj = obj[preferred[0]]
    elif len(children) == 1:
      obj = obj[children[0]]
    else:
      raise TorchPickleError(
          f'{path}: cannot tell which entry holds the weights (keys {list(obj.keys())});'
          ' pass key=... to choose one.')
  return {str(k): v for k, v in obj.items()}


def load_torch_state_dict(path: str | os.PathLike, key: str | None = None
                          ) -> dict[str, np.ndarray]:
  """Loads a PyTorch state dict (`torch.save` file) as `{name: np.ndarray}` without torch.

  Args:
    path: a `.pt`/`.pth` file, zip or legacy format.
    key: optional `/`-separated key path into a wrapped checkpoint (e.g. `'state_dict'`); when
      omitted, conventional wrappers are descended automatically (see `select_state_dict`).

  Returns:
    Ordered dict-like `{parameter name: array}` with arrays in the file's dtypes.
  """
  return select_state_dict(load_torch_pickle(path), key, path=os.fspath(path))

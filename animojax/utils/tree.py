"""Flat `/`-named views of parameter trees and their `.npz` files (big_vision style).

A nested tree `{'encoder': {'layers': {0: {'kernel': w}}}}` is stored as the flat mapping
`{'encoder/layers/0/kernel': w}`. NNX pure dicts (`nnx.to_pure_dict(state)`) use *int* keys for
list-like containers (`nnx.List`, `nnx.Sequential`), so names alone cannot say whether `'0'` was
the int 0 or the string '0'. Two ways back:

* `unflatten_names` (and `load_npz`) use a fixed rule: a name component that is a canonical
  decimal integer (`0`, `7`, `-3`, `12`; not `007`, `+1` or `1.0`) becomes an `int` key; every
  other component stays a `str`. This is exact for NNX pure dicts, whose string keys are Python
  identifiers and therefore never look like integers.
* `restore_like(flat, reference)` rebuilds exactly the structure (and key types) of a reference
  tree, checking names and shapes; use it when the rule above could be ambiguous or the target is
  not a plain nested dict.

npz files cannot hold ml_dtypes types (bfloat16, float8): numpy writes them as opaque void bytes.
`save_npz` therefore writes such arrays as their unsigned-integer bit pattern and records the real
dtype in a reserved JSON entry named `__dtypes__`, which `load_npz` uses to view them back.
"""

import json
import os
import re
from typing import Any, Mapping

import jax
import ml_dtypes
import numpy as np

SEPARATOR = '/'
_DTYPES_ENTRY = '__dtypes__'  # Reserved npz entry; never a parameter name.
_INT_COMPONENT = re.compile(r'-?(0|[1-9][0-9]*)')


def _key_name(entry: Any) -> str:
  """One path entry of `jax.tree_util` as a name component."""
  if isinstance(entry, jax.tree_util.DictKey):
    key = entry.key
  elif isinstance(entry, jax.tree_util.SequenceKey):
    key = entry.idx
  elif isinstance(entry, jax.tree_util.GetAttrKey):
    key = entry.name
  elif isinstance(entry, jax.tree_util.FlattenedIndexKey):
    key = entry.key
  else:
    key = str(entry)
  name = str(key)
  if SEPARATOR in name or not name:
    raise ValueError(f'tree key {key!r} cannot be a name component (empty or contains "/").')
  return name


def _path_name(path: tuple[Any, ...]) -> str:
  return SEPARATOR.join(_key_name(entry) for entry in path)


def flatten_with_names(tree: Any) -> dict[str, Any]:
  """Flattens any pytree into `{'a/b/c': leaf}` (leaves as given, order of `jax.tree_util`).

  Int dict keys and sequence indices become their decimal strings. `None` leaves (empty
  subtrees in jax's view) are dropped.
  """
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  flat = {}
  for path, leaf in leaves:
    name = _path_name(path)
    if name in flat:
      raise ValueError(f'two tree leaves share the name {name!r} (e.g. keys 1 and "1").')
    flat[name] = leaf
  return flat


def _component_key(component: str) -> int | str:
  return int(component) if _INT_COMPONENT.fullmatch(component) else component


def unflatten_names(flat: Mapping[str, Any]) -> dict[Any, Any]:
  """Inverts `flatten_with_names` for nested dicts (decimal components become int keys)."""
  tree: dict[Any, Any] = {}
  for name, value in flat.items():
    *parents, leaf = [_component_key(c) for c in name.split(SEPARATOR)]
    node = tree
    for part in parents:
      node = node.setdefault(part, {})
      if not isinstance(node, dict):
        raise ValueError(f'name {name!r} nests below a leaf; names are inconsistent.')
    if leaf in node:
      raise ValueError(f'name {name!r} collides with another entry.')
    node[leaf] = value
  return tree


def restore_like(flat: Mapping[str, Any], reference_tree: Any, *, check_shapes: bool = True
                 ) -> Any:
  """Builds a tree with `reference_tree`'s structure whose leaves come from `flat` by name.

  Args:
    flat: `{'a/b/c': array}`, e.g. from `np.load` or `flatten_with_names`.
    reference_tree: any pytree (NNX pure dict, nnx.State, ...) whose leaves say which names are
      needed; its leaf values are only used for the shape check.
    check_shapes: compare each leaf's shape with the reference leaf's (when it has one).

  Returns:
    A tree of the reference's type and key types with the arrays of `flat` as leaves.

  Raises:
    ValueError: names missing from `flat`, names in `flat` the reference does not have, or a
      shape mismatch; the message lists the offending names.
  """
  leaves, treedef = jax.tree_util.tree_flatten_with_path(reference_tree)
  names = [_path_name(path) for path, _ in leaves]
  missing = [n for n in names if n not in flat]
  unexpected = sorted(set(flat) - set(names) - {_DTYPES_ENTRY})
  if missing or unexpected:
    raise ValueError(f'names do not match the reference tree: missing {missing[:10]}'
                     f'{"..." if len(missing) > 10 else ""}, unexpected {unexpected[:10]}'
                     f'{"..." if len(unexpected) > 10 else ""}.')
  new_leaves = []
  for name, (_, ref) in zip(names, leaves):
    value = flat[name]
    ref_shape = getattr(ref, 'shape', None)
    if check_shapes and ref_shape is not None and tuple(np.shape(value)) != tuple(ref_shape):
      raise ValueError(f'{name!r}: shape {tuple(np.shape(value))}, reference expects '
                       f'{tuple(ref_shape)}.')
    new_leaves.append(value)
  return jax.tree_util.tree_unflatten(treedef, new_leaves)


def _is_ml_dtype(dtype: np.dtype) -> bool:
  # numpy itself cannot name these (bfloat16, float8_*, int4...) in an npz header.
  return dtype.type.__module__.startswith('ml_dtypes')


def save_npz(path: str | os.PathLike, tree: Any) -> None:
  """Writes a pytree (of jax/numpy arrays or scalars) as a flat `/`-keyed `.npz`."""
  flat = {}
  dtypes = {}
  for name, leaf in flatten_with_names(tree).items():
    if name == _DTYPES_ENTRY:
      raise ValueError(f'{_DTYPES_ENTRY!r} is reserved in animojax npz files.')
    array = np.asarray(jax.device_get(leaf))
    if _is_ml_dtype(array.dtype):
      dtypes[name] = array.dtype.name
      array = array.view(f'u{array.dtype.itemsize}')
    flat[name] = array
  if dtypes:
    flat[_DTYPES_ENTRY] = np.array(json.dumps(dtypes))
  # Through a temporary file and a rename: an interrupted write never looks like a whole file.
  path = os.fspath(path)
  final = path if path.endswith('.npz') else path + '.npz'  # As np.savez names it.
  tmp = f'{final}.tmp-{os.getpid()}.npz'
  try:
    np.savez(tmp, **flat)
    os.replace(tmp, final)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def save_flat_npz(path: str | os.PathLike, flat: Mapping[str, Any]) -> None:
  """Writes a flat `{'a/b/c': array}` mapping as an npz, creating the parent folder."""
  os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
  save_npz(path, unflatten_names(flat))


def load_npz_flat(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a `save_npz` (or any `/`-keyed) `.npz` as `{'a/b/c': np.ndarray}`."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'npz file {path!r} does not exist.')
  try:
    with np.load(path, allow_pickle=False) as data:
      if not hasattr(data, 'files'):
        raise ValueError(f'it holds one {data.dtype} array {data.shape}, not named arrays')
      flat = {name: data[name] for name in data.files}
  except Exception as e:  # pylint: disable=broad-except  (numpy/zipfile raise several types)
    raise ValueError(f'{path} is not a readable .npz of named arrays ({e}); write it again '
                     '(an interrupted copy or download leaves a truncated file).') from e
  dtypes = json.loads(str(flat.pop(_DTYPES_ENTRY))) if _DTYPES_ENTRY in flat else {}
  for name, dtype_name in dtypes.items():
    flat[name] = flat[name].view(np.dtype(getattr(ml_dtypes, dtype_name)))
  return flat


def load_npz(path: str | os.PathLike) -> dict[Any, Any]:
  """Reads a `/`-keyed `.npz` as a nested dict (decimal components become int keys).

  For an exact structure match against an existing model state use
  `restore_like(load_npz_flat(path), reference)`.
  """
  return unflatten_names(load_npz_flat(path))

"""Tests for flat `/`-named trees and their npz files."""

from flax import nnx
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from animojax.utils import tree as tree_utils


class _Model(nnx.Module):

  def __init__(self, *, rngs: nnx.Rngs):
    self.encoder = nnx.List([nnx.Linear(2, 3, rngs=rngs), nnx.Linear(3, 4, rngs=rngs)])
    self.head = nnx.Sequential(nnx.Linear(4, 1, rngs=rngs))
    self.scale = nnx.Param(jnp.ones((), jnp.bfloat16))


def _assert_trees_equal(a, b):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and x.shape == y.shape
    assert x.tobytes() == y.tobytes()


def test_flatten_names_nnx_pure_dict():
  pure = nnx.to_pure_dict(nnx.state(_Model(rngs=nnx.Rngs(0))))
  flat = tree_utils.flatten_with_names(pure)
  assert set(flat) == {
      'encoder/0/bias', 'encoder/0/kernel', 'encoder/1/bias', 'encoder/1/kernel',
      'head/layers/0/bias', 'head/layers/0/kernel', 'scale'}
  back = tree_utils.unflatten_names(flat)
  assert isinstance(next(iter(back['encoder'])), int)
  _assert_trees_equal(back, pure)


def test_npz_round_trip_is_exact(tmp_path):
  model = _Model(rngs=nnx.Rngs(1))
  pure = nnx.to_pure_dict(nnx.state(model))
  path = tmp_path / 'params.npz'
  tree_utils.save_npz(path, pure)
  loaded = tree_utils.load_npz(path)
  _assert_trees_equal(loaded, pure)
  assert loaded['scale'].dtype == ml_dtypes.bfloat16

  # Restoring into a fresh model's state gives back the same numbers.
  other = _Model(rngs=nnx.Rngs(2))
  state = nnx.state(other)
  restored = tree_utils.restore_like(tree_utils.load_npz_flat(path), nnx.to_pure_dict(state))
  nnx.replace_by_pure_dict(state, restored)
  nnx.update(other, state)
  _assert_trees_equal(nnx.to_pure_dict(nnx.state(other)), pure)


def test_restore_like_keeps_reference_key_types():
  # String keys that look like ints do not survive the name rule, but restore_like keeps them.
  reference = {'blocks': {'0': np.zeros(2), '1': np.zeros(3)}, 'ints': {0: np.ones(1)},
               'seq': [np.zeros(1), np.ones(1)]}
  flat = tree_utils.flatten_with_names(reference)
  assert set(flat) == {'blocks/0', 'blocks/1', 'ints/0', 'seq/0', 'seq/1'}
  assert 0 in tree_utils.unflatten_names(flat)['blocks']
  restored = tree_utils.restore_like(flat, reference)
  _assert_trees_equal(restored, reference)
  assert set(restored['blocks']) == {'0', '1'} and set(restored['ints']) == {0}
  assert isinstance(restored['seq'], list)


def test_int_rule_only_for_canonical_decimals():
  flat = {'a/0': 1, 'a/12': 2, 'a/-3': 3, 'a/007': 4, 'a/1.0': 5, 'a/+1': 6, 'a/x1': 7}
  tree = tree_utils.unflatten_names(flat)
  assert set(tree['a']) == {0, 12, -3, '007', '1.0', '+1', 'x1'}


def test_restore_like_errors_name_the_keys():
  reference = {'a': np.zeros(2), 'b': {'c': np.zeros((2, 3))}}
  with pytest.raises(ValueError, match=r"missing \['b/c'\].*unexpected \['b/d'\]"):
    tree_utils.restore_like({'a': np.zeros(2), 'b/d': np.zeros(1)}, reference)
  with pytest.raises(ValueError, match=r"'b/c'.*\(3, 2\).*\(2, 3\)"):
    tree_utils.restore_like({'a': np.zeros(2), 'b/c': np.zeros((3, 2))}, reference)


def test_bad_names_and_missing_files(tmp_path):
  with pytest.raises(ValueError, match='a/b'):
    tree_utils.flatten_with_names({'a/b': 1})
  with pytest.raises(FileNotFoundError, match='nope.npz'):
    tree_utils.load_npz(tmp_path / 'nope.npz')

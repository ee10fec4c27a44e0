"""Meshes and rule-based parameter shardings on 8 fake CPU devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from animojax.utils import sharding

pytestmark = pytest.mark.devices(8)


def test_mesh_sizes():
  assert jax.device_count() == 8, 'conftest must set 8 fake devices'
  assert sharding.make_mesh([('data', -1)]).shape['data'] == 8
  mesh = sharding.make_mesh([('data', 2), ('model', -1)])
  assert dict(mesh.shape) == {'data': 2, 'model': 4}
  with pytest.raises(ValueError, match='at most one'):
    sharding.make_mesh([('data', -1), ('model', -1)])
  with pytest.raises(ValueError, match='needs 16 devices'):
    sharding.make_mesh([('data', 16)])


def test_rules_first_match_wins_and_fsdp_picks_divisible_dim():
  mesh = sharding.make_mesh([('data', -1)])
  tree = {'enc': {'kernel': jnp.zeros((3, 3, 16, 64)), 'bias': jnp.zeros((64,))},
          'small': {'kernel': jnp.zeros((3, 5))}}
  shardings = sharding.tree_shardings(
      tree, [('enc/bias', 'replicate'), ('.*kernel', 'fsdp')], mesh)
  assert shardings['enc']['kernel'].spec == P(None, None, None, 'data')
  assert shardings['enc']['bias'].spec == P()
  assert shardings['small']['kernel'].spec == P()  # Nothing divisible by 8.
  with pytest.raises(ValueError, match='Unknown sharding strategy'):
    sharding.tree_shardings(tree, [('.*', 'zero3')], mesh)


def test_fsdp_placement_holds_the_same_values():
  mesh = sharding.make_mesh([('data', -1)])
  x = np.arange(16 * 8, dtype=np.float32).reshape(16, 8)
  s = sharding.tree_shardings({'w': x}, [('.*', 'fsdp')], mesh)['w']
  y = jax.device_put(x, s)
  assert len(y.addressable_shards) == 8
  np.testing.assert_array_equal(np.asarray(y), x)

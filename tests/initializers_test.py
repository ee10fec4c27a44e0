"""The flat draws of `models.blocks.initializers` give `jax.random`'s values exactly."""

import jax
import numpy as np
import pytest

from animojax.models.blocks import initializers


@pytest.mark.parametrize('shape', [(7,), (3, 5), (2, 3, 1, 2)])
def test_flat_draws_equal_jax_random(shape):
  key = jax.random.key(3)
  np.testing.assert_array_equal(initializers.normal(key, shape), jax.random.normal(key, shape))
  np.testing.assert_array_equal(initializers.uniform(key, shape, minval=-2.0, maxval=0.5),
                                jax.random.uniform(key, shape, minval=-2.0, maxval=0.5))
  np.testing.assert_array_equal(initializers.normal_init(0.02)(key, shape),
                                jax.nn.initializers.normal(0.02)(key, shape))
  np.testing.assert_array_equal(initializers.uniform_init(0.3)(key, shape),
                                jax.random.uniform(key, shape, minval=-0.3, maxval=0.3))


def test_flat_draws_equal_jax_random_without_partitionable_threefry():
  key = jax.random.key(5)
  with jax.threefry_partitionable(False):
    np.testing.assert_array_equal(initializers.normal(key, (3, 4, 5)),
                                  jax.random.normal(key, (3, 4, 5)))


def _modules(rngs):
  """One module of each kind that draws parameters: PIRender blocks (flax layers with a custom
  init), StyleGAN2's (explicit `rngs.params()` draws) and ToonTalker's attention."""
  from animojax.models.animo import motion  # pylint: disable=g-import-not-at-top
  from animojax.models.blocks import stylegan2  # pylint: disable=g-import-not-at-top
  from animojax.models.toontalker import transformer  # pylint: disable=g-import-not-at-top
  return [motion.MotionNet(70, 32, 3, rngs=rngs), stylegan2.StyledConv(8, 8, 3, 16, rngs=rngs),
          transformer.MultiheadAttention(16, 2, rngs=rngs)]


def test_key_stream_builds_the_parameters_nnx_rngs_builds():
  from flax import nnx  # pylint: disable=g-import-not-at-top

  def params(make_rngs):
    return [nnx.to_pure_dict(nnx.state(m)) for m in _modules(make_rngs(jax.random.key(7)))]

  ours = jax.tree_util.tree_leaves_with_path(params(initializers.KeyStream))
  flax_ = jax.tree_util.tree_leaves_with_path(params(nnx.Rngs))
  assert len(ours) == len(flax_) > 10
  for (path, a), (path_b, b) in zip(ours, flax_):
    assert path == path_b
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
  stream = initializers.KeyStream(0)
  assert [jax.random.key_data(k).tolist() for k in (stream.params(), stream.default(), stream())] \
      == [jax.random.key_data(jax.random.fold_in(jax.random.key(0), n)).tolist() for n in range(3)]

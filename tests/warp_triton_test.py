"""Tests for the Pallas Triton warp kernels (animojax.ops.warp_triton).

On CPU the kernels run in the Pallas interpreter at tiny sizes and are compared with torch's
`grid_sample` (the test-only reference). On a CUDA GPU the compiled kernels are compared with the
portable XLA path on larger inputs; those tests are skipped elsewhere.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from animojax.ops import kernels
from animojax.ops import warp
from animojax.ops import warp_coords
from animojax.ops import warp_triton
from animojax.ops import warp_xla
from tests import torch_reference_animo as tref
from tests.conftest import assert_close

ON_CUDA = jax.default_backend() == 'gpu'
gpu_only = pytest.mark.skipif(not ON_CUDA, reason='compiles Triton kernels: needs a CUDA GPU')


def _value_and_grads(implementation, image, grid, cotangent, **kwargs):
  def loss(image, grid):
    out = warp.grid_sample(image, grid, implementation=implementation, **kwargs)
    return jnp.sum(out.astype(jnp.float32) * cotangent), out

  (_, out), grads = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(image, grid)
  return [np.asarray(a, np.float32) for a in (out, *grads)]


@pytest.mark.parametrize('padding_mode', ['zeros', 'border', 'reflection'])
@pytest.mark.parametrize('align_corners', [False, True])
def test_interpreted_kernels_match_torch(align_corners, padding_mode):
  rng = np.random.default_rng(10)
  # 5 channels: not a power of two, so the channel mask is exercised too.
  image = rng.normal(size=(2, 5, 7, 5)).astype(np.float32)
  grid = rng.uniform(-1.3, 1.3, size=(2, 4, 9, 2)).astype(np.float32)
  cotangent = rng.normal(size=(2, 4, 9, 5)).astype(np.float32)
  expected = tref.grid_sample(image, grid, cotangent, align_corners, padding_mode)
  actual = _value_and_grads('triton_interpret', jnp.asarray(image), jnp.asarray(grid), cotangent,
                            align_corners=align_corners, padding_mode=padding_mode)
  for name, a, e in zip(('output', 'd_image', 'd_grid'), actual, expected):
    try:
      assert_close(a, e, 1e-5)
    except AssertionError as err:
      raise AssertionError(f'{name}: {err}') from None


def test_interpreted_backward_over_channel_blocks_matches_xla():
  """Two channel blocks (partial dot products summed), one of them masked."""
  rng = np.random.default_rng(11)
  image = jnp.asarray(rng.normal(size=(2, 6, 7, 6)), jnp.float32)
  grid = jnp.asarray(rng.uniform(-1.2, 1.2, size=(2, 5, 4, 2)), jnp.float32)
  cotangent = jnp.asarray(rng.normal(size=(2, 5, 4, 6)), jnp.float32)
  x, y = warp_coords.pixel_coords(grid, 6, 7, False, 'border')
  d_image, dots = warp_triton.backward(image, cotangent, x, y, interpret=True, pixel_block=16,
                                       channel_block=4)
  ref_image, ref_dots = warp_xla.backward(image, cotangent, x, y)
  valid = warp_coords.corner_validity(x, y, 6, 7)
  np.testing.assert_allclose(d_image, ref_image, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.where(valid, dots, 0), np.where(valid, ref_dots, 0), rtol=1e-5,
                             atol=1e-5)


def test_counting_sort_groups_pixels_by_corner_like_a_stable_sort():
  rng = np.random.default_rng(12)
  # Coordinates on a coarse lattice so that many pixels share a corner, some outside the image.
  x = jnp.asarray(rng.integers(-3, 9, size=(2, 6, 5)) * 0.5, jnp.float32)
  y = jnp.asarray(rng.integers(-3, 8, size=(2, 6, 5)) * 0.5, jnp.float32)
  offsets, order = warp_triton.corner_order(x, y, 4, 6, interpret=True)
  ref_offsets, ref_order = warp_triton.corner_order_sorted(x, y, 4, 6)
  # The interpreter ranks pixels in index order, which is exactly the stable sort.
  np.testing.assert_array_equal(offsets[:ref_offsets.size], ref_offsets)
  np.testing.assert_array_equal(offsets[ref_offsets.size:], x.size)
  np.testing.assert_array_equal(order, ref_order)


def test_auto_resolves_to_triton_only_on_cuda_and_xla_kernels_to_xla():
  image, grid = jnp.zeros((2, 8, 8, 4)), jnp.zeros((2, 8, 8, 2))
  assert warp.warp_vjp.resolve(None, image, grid) == ('triton' if ON_CUDA else 'xla')
  with kernels.use('xla'):
    assert warp.warp_vjp.resolve(None, image, grid) == 'xla'
    assert warp.warp_vjp.resolve('triton', image, grid) == 'triton'  # An explicit choice wins.
  with pytest.raises(ValueError, match='implementation'):
    warp.grid_sample(jnp.zeros((1, 4, 4, 1)), jnp.zeros((1, 4, 4, 2)), implementation='cuda')


def _random_case(seed, batch, channels, size, out_size, dtype):
  rng = np.random.default_rng(seed)
  image = jnp.asarray(rng.normal(size=(batch, *size, channels)), dtype)
  # A smooth warp plus a few far-out points, so that every padding rule is reached.
  grid = rng.uniform(-1.1, 1.1, size=(batch, *out_size, 2))
  grid[:, ::7, ::5] *= 3
  cotangent = jnp.asarray(rng.normal(size=(batch, *out_size, channels)), jnp.float32)
  return image, jnp.asarray(grid, jnp.float32), cotangent


@gpu_only
@pytest.mark.parametrize('padding_mode', ['zeros', 'border', 'reflection'])
@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('channels', [3, 64, 200])
def test_gpu_kernels_match_xla_path(align_corners, padding_mode, channels):
  image, grid, cotangent = _random_case(20, 3, channels, (37, 50), (41, 29), jnp.float32)
  kwargs = dict(align_corners=align_corners, padding_mode=padding_mode)
  actual = _value_and_grads('triton', image, grid, cotangent, **kwargs)
  expected = _value_and_grads('xla', image, grid, cotangent, **kwargs)
  for name, a, e in zip(('output', 'd_image', 'd_grid'), actual, expected):
    try:
      assert_close(a, e, 1e-5)
    except AssertionError as err:
      raise AssertionError(f'{name}: {err}') from None


@gpu_only
def test_gpu_kernels_bf16_accumulate_in_fp32():
  image, grid, cotangent = _random_case(21, 2, 32, (24, 24), (24, 24), jnp.bfloat16)
  # The output's cotangent arrives in bf16; make it bf16-exact so both sides see the same values.
  cotangent = cotangent.astype(jnp.bfloat16).astype(jnp.float32)
  actual = _value_and_grads('triton', image, grid, cotangent, padding_mode='border')
  expected = _value_and_grads('xla', image.astype(jnp.float32), grid, cotangent,
                              padding_mode='border')
  # One bf16 rounding of the output and of the image gradient; the grid gradient stays float32.
  for a, e, tol in zip(actual, expected, (1e-2, 1e-2, 1e-5)):
    assert_close(a, e, tol)


@gpu_only
def test_gpu_kernels_under_vmap():
  image, grid, _ = _random_case(22, 6, 8, (12, 10), (9, 11), jnp.float32)
  image = image.reshape(2, 3, *image.shape[1:])
  grid = grid.reshape(2, 3, *grid.shape[1:])
  sample = functools.partial(warp.grid_sample, padding_mode='reflection')
  batched = jax.jit(jax.vmap(functools.partial(sample, implementation='triton')))(image, grid)
  looped = [sample(i, g, implementation='xla') for i, g in zip(image, grid)]
  np.testing.assert_allclose(batched, np.stack(looped), rtol=1e-5, atol=1e-5)


@gpu_only
def test_animo_train_path_uses_the_triton_kernels():
  """The models call warp_image unchanged; on a GPU their gradient runs the Triton backward."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from animojax.models.animo import animo  # pylint: disable=g-import-not-at-top
  model = animo.AniMo(variant='demo', rngs=nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  source = jnp.zeros((1, 64, 64, 3))
  pose = jnp.zeros((1, 70))

  def loss(state):
    out = nnx.merge(graphdef, state)(source, pose, domain='anime', stage='gen')
    return jnp.mean(out['fake_image']) + jnp.mean(out['warp_image'])

  hlo = jax.jit(jax.grad(loss)).lower(state).as_text()
  assert 'grid_sample_backward' in hlo and 'grid_sample_forward' in hlo

"""Tests for animojax.ops.warp against PyTorch's grid_sample / interpolate (torch is test-only)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from animojax.ops import kernels
from animojax.ops import warp
from tests import torch_reference_animo as tref
from tests.conftest import assert_close
from tests.conftest import collective_bytes

RTOL = 1e-5


def close(actual, expected, rtol=RTOL):
  assert_close(actual, expected, rtol)


def _jax_grid_sample(image, grid, cotangent, align_corners, padding_mode, implementation=None):
  def loss(image, grid):
    out = warp.grid_sample(image, grid, align_corners=align_corners, padding_mode=padding_mode,
                           implementation=implementation)
    return jnp.sum(out * cotangent), out

  (_, out), (d_image, d_grid) = jax.value_and_grad(loss, (0, 1), has_aux=True)(
      jnp.asarray(image), jnp.asarray(grid))
  return np.asarray(out), np.asarray(d_image), np.asarray(d_grid)


# None: the default path (the custom-VJP XLA formulation on CPU); 'reference': gathers + autodiff.
@pytest.mark.parametrize('implementation', [None, 'reference'])
@pytest.mark.parametrize('padding_mode', ['zeros', 'border', 'reflection'])
@pytest.mark.parametrize('align_corners', [False, True])
def test_grid_sample_matches_torch_outputs_and_grads(align_corners, padding_mode, implementation):
  rng = np.random.default_rng(0)
  # Non-square input, output size != input size, grid reaching well outside [-1, 1].
  image = rng.normal(size=(2, 5, 7, 3)).astype(np.float32)
  grid = rng.uniform(-1.3, 1.3, size=(2, 4, 9, 2)).astype(np.float32)
  cotangent = rng.normal(size=(2, 4, 9, 3)).astype(np.float32)
  expected = tref.grid_sample(image, grid, cotangent, align_corners, padding_mode)
  actual = _jax_grid_sample(image, grid, cotangent, align_corners, padding_mode, implementation)
  for name, a, e in zip(('output', 'd_image', 'd_grid'), actual, expected):
    try:
      close(a, e)
    except AssertionError as err:
      raise AssertionError(f'{name}: {err}') from None


@pytest.mark.parametrize('implementation', [None, 'reference'])
@pytest.mark.parametrize('padding_mode', ['zeros', 'border', 'reflection'])
@pytest.mark.parametrize('align_corners', [False, True])
def test_grid_sample_matches_torch_on_pixel_centres_and_edges(align_corners, padding_mode,
                                                              implementation):
  """Grid points exactly on pixel centres and on the [-1, 1] border (floor/clamp edge cases)."""
  rng = np.random.default_rng(1)
  image = rng.normal(size=(1, 4, 6, 2)).astype(np.float32)
  xs = np.linspace(-1, 1, 11, dtype=np.float32)
  ys = np.linspace(-1, 1, 7, dtype=np.float32)
  grid = np.stack(np.meshgrid(xs, ys), axis=-1)[None].astype(np.float32)
  cotangent = rng.normal(size=(1, 7, 11, 2)).astype(np.float32)
  expected = tref.grid_sample(image, grid, cotangent, align_corners, padding_mode)
  actual = _jax_grid_sample(image, grid, cotangent, align_corners, padding_mode, implementation)
  for a, e in zip(actual, expected):
    close(a, e)


def test_grid_sample_bf16_accumulates_in_fp32_and_keeps_dtype():
  rng = np.random.default_rng(2)
  image = jnp.asarray(rng.normal(size=(2, 8, 8, 4)), jnp.bfloat16)
  grid = jnp.asarray(rng.uniform(-1.1, 1.1, size=(2, 5, 5, 2)), jnp.bfloat16)
  out = warp.grid_sample(image, grid, padding_mode='border')
  assert out.dtype == jnp.bfloat16
  reference = warp.grid_sample(image.astype(jnp.float32), grid.astype(jnp.float32),
                               padding_mode='border')
  # One bf16 rounding of the result only (inputs are the same bf16 values).
  np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(reference),
                             rtol=1e-2, atol=1e-2)


def test_grid_sample_under_jit_and_vmap():
  rng = np.random.default_rng(3)
  image = jnp.asarray(rng.normal(size=(3, 2, 6, 5, 2)), jnp.float32)
  grid = jnp.asarray(rng.uniform(-1.2, 1.2, size=(3, 2, 4, 4, 2)), jnp.float32)
  fn = jax.jit(jax.vmap(lambda i, g: warp.grid_sample(i, g, padding_mode='reflection')))
  looped = np.stack([warp.grid_sample(i, g, padding_mode='reflection')
                     for i, g in zip(image, grid)])
  np.testing.assert_allclose(np.asarray(fn(image, grid)), looped, rtol=1e-6, atol=1e-6)


def test_grid_sample_gradients_under_vmap_with_a_shared_grid():
  rng = np.random.default_rng(4)
  image = jnp.asarray(rng.normal(size=(3, 2, 6, 5, 2)), jnp.float32)
  grid = jnp.asarray(rng.uniform(-1.2, 1.2, size=(2, 4, 4, 2)), jnp.float32)
  loss = lambda i, g: jnp.sum(warp.grid_sample(i, g) ** 2)
  d_image, d_grid = jax.jit(jax.vmap(jax.grad(loss, (0, 1)), in_axes=(0, None)))(image, grid)
  for k in range(3):
    expected = jax.grad(loss, (0, 1))(image[k], grid)
    np.testing.assert_allclose(np.asarray(d_image[k]), np.asarray(expected[0]), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(d_grid[k]), np.asarray(expected[1]), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.devices(8)
@pytest.mark.parametrize('implementation,mesh_shape,batch_axes', [
    (None, (8,), 'data'), ('triton_interpret', (8,), 'data'),
    (None, (2, 4), ('data', 'model')), (None, (2, 4), 'data')])
def test_batch_sharded_grid_sample_stays_on_each_device(implementation, mesh_shape, batch_axes):
  """Forward and both gradients on 8 devices (batch over one or both mesh axes): per-shard kernels,
  no cross-device traffic, the single-device values (a Pallas call or a batch-indexed scatter
  would otherwise be gathered)."""
  rng = np.random.default_rng(5)
  image = rng.normal(size=(16, 6, 5, 3)).astype(np.float32)
  grid = rng.uniform(-1.2, 1.2, size=(16, 4, 7, 2)).astype(np.float32)
  cotangent = rng.normal(size=(16, 4, 7, 3)).astype(np.float32)

  def fwd_bwd(image, grid, cotangent):
    out, vjp = jax.vjp(lambda i, g: warp.grid_sample(i, g, implementation=implementation),
                       image, grid)
    return out, *vjp(cotangent)

  names = ('data', 'model')[:len(mesh_shape)]
  mesh = jax.make_mesh(mesh_shape, names,
                       axis_types=(jax.sharding.AxisType.Auto,) * len(mesh_shape))
  batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(batch_axes))
  sharded = jax.jit(fwd_bwd, in_shardings=batch, out_shardings=batch)
  assert collective_bytes(sharded.lower(image, grid, cotangent).compile().as_text()) == {}
  for got, expected in zip(sharded(image, grid, cotangent), jax.jit(fwd_bwd)(image, grid,
                                                                            cotangent)):
    assert got.sharding.spec[0] == batch_axes
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6, atol=1e-6)


@pytest.mark.devices(8)
@pytest.mark.parametrize('mesh_shape', [(8,), (2, 4)])
def test_shard_map_path_of_batch_local_stays_on_each_device(mesh_shape):
  """The mechanism of programs that know their mesh (shard_map over 'data'; the trainers' steps
  and every TPU program): no cross-device traffic and the single-device values."""
  rng = np.random.default_rng(8)
  image = rng.normal(size=(16, 6, 5, 3)).astype(np.float32)
  grid = rng.uniform(-1.2, 1.2, size=(16, 4, 7, 2)).astype(np.float32)
  cotangent = rng.normal(size=(16, 4, 7, 3)).astype(np.float32)

  def fwd_bwd(image, grid, cotangent):
    out, vjp = jax.vjp(lambda i, g: warp.grid_sample(i, g, padding_mode='border'), image, grid)
    return out, *vjp(cotangent)

  names = ('data', 'model')[:len(mesh_shape)]
  mesh = jax.make_mesh(mesh_shape, names,
                       axis_types=(jax.sharding.AxisType.Auto,) * len(mesh_shape))
  batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  # As the trainers' programs trace their steps: the mesh comes with the kernel choice.
  sharded = jax.jit(kernels.traced_with('auto', fwd_bwd, mesh), in_shardings=batch,
                    out_shardings=batch)
  hlo = sharded.lower(image, grid, cotangent).as_text()
  assert 'CustomSPMDPartitioning' not in hlo and 'manual' in hlo, 'shard_map path not taken'
  assert collective_bytes(sharded.lower(image, grid, cotangent).compile().as_text()) == {}
  for got, expected in zip(sharded(image, grid, cotangent),
                           jax.jit(fwd_bwd)(image, grid, cotangent)):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


@pytest.mark.devices(8)
def test_unevenly_sharded_batch_falls_back_to_a_correct_gathered_warp():
  rng = np.random.default_rng(6)
  image = jnp.asarray(rng.normal(size=(12, 6, 5, 3)), jnp.float32)
  grid = jnp.asarray(rng.uniform(-1, 1, size=(12, 4, 4, 2)), jnp.float32)
  mesh = jax.make_mesh((8,), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
  spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))

  @jax.jit
  def fn(image, grid):
    return warp.grid_sample(jax.lax.with_sharding_constraint(image, spec), grid)

  np.testing.assert_allclose(np.asarray(fn(image, grid)), np.asarray(warp.grid_sample(image, grid)),
                             rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('in_size,out_size', [
    ((4, 5), (9, 13)),     # upsample, non-integer factors
    ((16, 16), (64, 64)),  # PIRenderer's 64 -> 256 case, scaled down
    ((16, 16), (5, 7)),    # downsample, non-integer factors
    ((32, 32), (16, 16)),  # downsample x2 (AniMo's deepest editing feature map)
    ((7, 3), (7, 10)),     # one axis unchanged
])
def test_resize_deformation_matches_torch_interpolate(in_size, out_size):
  rng = np.random.default_rng(4)
  deformation = rng.normal(size=(2, *in_size, 2)).astype(np.float32)
  expected = F.interpolate(tref.nchw(deformation), size=out_size, mode='bilinear',
                           align_corners=False)
  actual = warp.resize_deformation(jnp.asarray(deformation), out_size)
  close(actual, tref.nhwc(expected))


def test_resize_deformation_same_size_is_identity():
  deformation = jnp.arange(2 * 3 * 4 * 2, dtype=jnp.float32).reshape(2, 3, 4, 2)
  np.testing.assert_array_equal(warp.resize_deformation(deformation, (3, 4)), deformation)


def test_identity_grid_layout():
  grid = np.asarray(warp.identity_grid(3, 5))
  assert grid.shape == (3, 5, 2)
  np.testing.assert_allclose(grid[0, :, 0], [-1, -0.5, 0, 0.5, 1])  # x varies along width
  np.testing.assert_allclose(grid[:, 0, 1], [-1, 0, 1])  # y varies along height
  assert warp.identity_grid(4, 4, jnp.bfloat16).dtype == jnp.bfloat16


def test_flow_to_deformation_known_cases():
  zero = jnp.zeros((2, 4, 6, 2))
  np.testing.assert_array_equal(warp.flow_to_deformation(zero),
                                np.broadcast_to(warp.identity_grid(4, 6), (2, 4, 6, 2)))
  # A one-pixel flow moves the grid by exactly one pixel spacing of the align_corners=True grid.
  flow = jnp.zeros((1, 4, 6, 2)).at[..., 0].set(1.0).at[..., 1].set(-3.0)
  deformation = np.asarray(warp.flow_to_deformation(flow))
  np.testing.assert_allclose(deformation[..., 0] - np.asarray(warp.identity_grid(4, 6))[..., 0],
                             2 / 5, rtol=1e-6)
  np.testing.assert_allclose(deformation[..., 1] - np.asarray(warp.identity_grid(4, 6))[..., 1],
                             -6 / 3, rtol=1e-6)


def test_identity_grid_is_exact_identity_only_with_align_corners_true():
  rng = np.random.default_rng(5)
  image = rng.normal(size=(1, 6, 8, 3)).astype(np.float32)
  grid = warp.identity_grid(6, 8)[None]
  same = warp.grid_sample(jnp.asarray(image), grid, align_corners=True)
  np.testing.assert_allclose(np.asarray(same), image, rtol=1e-6, atol=1e-6)
  # PIRenderer/AniMo warp the align_corners=True grid with align_corners=False: a slight zoom,
  # not the identity. Reproduce what the PyTorch code computes.
  for padding_mode in ('zeros', 'border'):
    warped = warp.warp_image(jnp.asarray(image), warp.flow_to_deformation(jnp.zeros((1, 6, 8, 2))),
                             padding_mode=padding_mode)
    expected = F.grid_sample(tref.nchw(image), torch.from_numpy(np.array(grid)),
                             padding_mode=padding_mode, align_corners=False)
    close(warped, tref.nhwc(expected))
    assert np.abs(np.asarray(warped) - image).max() > 1e-2


def test_warp_image_resizes_deformation_like_pirender():
  """Low-res flow -> deformation -> bilinear resize -> grid_sample, as PIRenderer's warp_image."""
  rng = np.random.default_rng(6)
  image = rng.normal(size=(2, 16, 12, 3)).astype(np.float32)
  flow = rng.normal(scale=2.0, size=(2, 4, 3, 2)).astype(np.float32)
  deformation = warp.flow_to_deformation(jnp.asarray(flow))
  actual = warp.warp_image(jnp.asarray(image), deformation, padding_mode='border')
  resized = F.interpolate(tref.nchw(np.asarray(deformation)), size=(16, 12), mode='bilinear',
                          align_corners=False)
  expected = F.grid_sample(tref.nchw(image), resized.permute(0, 2, 3, 1), padding_mode='border',
                           align_corners=False)
  close(actual, tref.nhwc(expected))


@pytest.mark.parametrize('image_shape,grid_shape,kwargs,match', [
    ((2, 4, 4), (2, 4, 4, 2), {}, 'image must be'),
    ((2, 4, 4, 3), (2, 4, 4, 3), {}, 'grid must be'),
    ((2, 4, 4, 3), (4, 4, 2), {}, 'grid must be'),
    ((2, 4, 4, 3), (3, 4, 4, 2), {}, 'batch sizes differ'),
    ((2, 4, 4, 3), (2, 4, 4, 2), {'padding_mode': 'wrap'}, 'padding_mode'),
])
def test_grid_sample_rejects_bad_input(image_shape, grid_shape, kwargs, match):
  with pytest.raises(ValueError, match=match):
    warp.grid_sample(jnp.zeros(image_shape), jnp.zeros(grid_shape), **kwargs)


def test_helpers_reject_bad_input():
  with pytest.raises(ValueError, match='>= 2'):
    warp.identity_grid(1, 4)
  with pytest.raises(ValueError, match=r'\[B, h, w, 2\]'):
    warp.flow_to_deformation(jnp.zeros((1, 4, 4, 3)))
  with pytest.raises(ValueError, match='size must be'):
    warp.resize_deformation(jnp.zeros((1, 4, 4, 2)), (4,))
  with pytest.raises(ValueError, match='warp_image'):
    warp.warp_image(jnp.zeros((4, 4, 3)), jnp.zeros((1, 4, 4, 2)))

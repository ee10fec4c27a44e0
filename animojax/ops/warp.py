"""Dense warping ops with exact PyTorch `grid_sample` / `interpolate` semantics.

Every warp in the reimplemented papers (PIRenderer, AniMo, FOMM, LIA) goes through PyTorch's
bilinear `F.grid_sample`, and flow fields are resized with `F.interpolate(mode='bilinear')`.
Checkpoints trained with those ops only transfer if the sampling arithmetic is identical, so this
module reproduces them exactly:

* `grid_sample` is the single sampling entry point. By default it runs a custom-VJP path
  (`warp_vjp`): Pallas Triton kernels with a scatter-free backward on CUDA GPUs (`warp_triton`), a
  portable XLA formulation elsewhere (`warp_xla`). The plain gathers + autodiff formulation stays
  as `implementation='reference'`. Coordinate rules live in `warp_coords`. On a batch-sharded mesh
  each device samples its own rows (`batch_local`), with no gather of the batch.
* `identity_grid` / `flow_to_deformation` build PIRenderer's deformation from a pixel-unit flow.
* `resize_deformation` is `F.interpolate(mode='bilinear', align_corners=False)` without antialiasing
  (unlike `jax.image.resize`, which antialiases when downsampling).
* `warp_image` is PIRenderer's / AniMo's `warp_image`.

PIRenderer's versions of these helpers are in RenYurui/PIRender `util/flow_util.py`
(`convert_flow_to_deformation`, `make_coordinate_grid`, `warp_image`).

Layouts follow CONTRIBUTING.md: images NHWC, grids `[B, H, W, 2]` with (x, y) in the last axis.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from animojax.ops import warp_coords
from animojax.ops import warp_vjp

PADDING_MODES = warp_coords.PADDING_MODES
check_padding_mode = warp_coords.check_padding_mode


def grid_sample(image: jax.Array, grid: jax.Array, *, align_corners: bool = False,
                padding_mode: str = 'zeros', implementation: str | None = None) -> jax.Array:
  """Bilinear sampling of `image` at `grid`, identical to PyTorch's `F.grid_sample`.

  Args:
    image: `[B, H, W, C]` float array (fp32 or bf16).
    grid: `[B, Ho, Wo, 2]` sampling locations, last axis (x, y) normalised to [-1, 1]; values
      outside that range are handled by `padding_mode`.
    align_corners: PyTorch's flag. True: -1/+1 are the centres of the outer pixels; False (PyTorch's
      default, used by every warp in PIRenderer/AniMo): -1/+1 are the outer pixel edges.
    padding_mode: 'zeros' (out-of-range taps contribute 0), 'border' (clamp coordinates) or
      'reflection' (reflect coordinates at the border, then clamp).
    implementation: None / 'auto' (as the traced program's `ops.kernels` choice says: under its
      'auto', Pallas Triton kernels on CUDA GPUs and the XLA formulation elsewhere; under 'xla',
      the XLA formulation), 'xla', 'triton', 'reference' (plain
      gathers differentiated by JAX), or the testing-only 'triton_atomic' / 'triton_interpret';
      see `warp_vjp`. All compute the same function and gradients up to float32 summation order.

  Returns:
    `[B, Ho, Wo, C]` samples in `image.dtype` (the arithmetic runs in float32, and gradients are
    accumulated in float32 before being cast to the input dtypes).

  Raises:
    ValueError: on wrong ranks, mismatched batch sizes, a last grid axis other than 2, or an unknown
      padding mode or implementation.
  """
  check_padding_mode(padding_mode)
  if image.ndim != 4:
    raise ValueError(f'grid_sample: image must be [B, H, W, C], got shape {image.shape}.')
  if grid.ndim != 4 or grid.shape[-1] != 2:
    raise ValueError(
        f'grid_sample: grid must be [B, Ho, Wo, 2] with (x, y) last, got shape {grid.shape}.')
  if image.shape[0] != grid.shape[0]:
    raise ValueError(
        f'grid_sample: batch sizes differ (image {image.shape[0]}, grid {grid.shape[0]}); '
        'pass one grid per image.')
  backend = warp_vjp.resolve(implementation, image, grid)
  if backend == 'reference':
    return _grid_sample_reference(image, grid, align_corners, padding_mode)
  return warp_vjp.sample(image, grid, align_corners, padding_mode, backend)


def _gather(flat_image: jax.Array, ys: jax.Array, xs: jax.Array, width: int) -> jax.Array:
  """Per-batch gather of `flat_image[b, y*W + x]`; indices must already be in range."""
  index = (ys * width + xs).reshape(ys.shape[0], -1)
  taps = jax.vmap(lambda im, idx: im[idx])(flat_image, index)
  return taps.reshape(*ys.shape, flat_image.shape[-1])


def _grid_sample_reference(image: jax.Array, grid: jax.Array, align_corners: bool,
                           padding_mode: str) -> jax.Array:
  """`grid_sample` as plain gathers; its gradients come from JAX's autodiff (scatter-adds)."""
  batch, height, width, channels = image.shape
  out_dtype = image.dtype
  image = image.astype(jnp.float32)
  x, y = warp_coords.pixel_coords(grid, height, width, align_corners, padding_mode)
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  x1 = x0 + 1
  y1 = y0 + 1
  # Same weight formulas as PyTorch (distance to the opposite corner), so rounding matches too.
  w_nw = (x1 - x) * (y1 - y)
  w_ne = (x - x0) * (y1 - y)
  w_sw = (x1 - x) * (y - y0)
  w_se = (x - x0) * (y - y0)

  flat = image.reshape(batch, height * width, channels)
  out = jnp.zeros((*grid.shape[:3], channels), jnp.float32)
  # Even after border/reflection clamping a tap can fall one pixel outside (x == W-1 gives x1 == W);
  # PyTorch drops such taps, which is also exactly the 'zeros' padding rule.
  for xs, ys, weight in ((x0, y0, w_nw), (x1, y0, w_ne), (x0, y1, w_sw), (x1, y1, w_se)):
    valid = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    xi = jnp.clip(xs, 0, width - 1).astype(jnp.int32)
    yi = jnp.clip(ys, 0, height - 1).astype(jnp.int32)
    taps = _gather(flat, yi, xi, width)
    out = out + taps * jnp.where(valid, weight, 0.0)[..., None]
  return out.astype(out_dtype)


def identity_grid(height: int, width: int, dtype=jnp.float32) -> jax.Array:
  """`[H, W, 2]` (x, y) grid with -1/+1 at the first/last pixel centre (align_corners=True style).

  This is how PIRenderer/FOMM build the base grid that flows are added to. Note that the warps then
  sample with align_corners=False, so this grid is *not* an exact identity warp there (it zooms out
  by W/(W-1)); that mismatch is part of the published models and is kept.
  """
  if height < 2 or width < 2:
    raise ValueError(
        f'identity_grid: height and width must be >= 2 (the grid divides by size - 1), '
        f'got {height}x{width}.')
  # Same operation order as PIRender's make_coordinate_grid, 2 * (i / (n - 1)) - 1, evaluated in
  # numpy float32: XLA on CPU lowers division to a reciprocal multiply (1 ulp off in ~60% of cases).
  xs = 2 * (np.arange(width, dtype=np.float32) / np.float32(width - 1)) - np.float32(1)
  ys = 2 * (np.arange(height, dtype=np.float32) / np.float32(height - 1)) - np.float32(1)
  grid = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None]), axis=-1)
  return jnp.asarray(grid, dtype)


def flow_to_deformation(flow: jax.Array) -> jax.Array:
  """PIRenderer's `convert_flow_to_deformation`.

  Args:
    flow: `[B, h, w, 2]` displacement (dx, dy) in pixel units of the h x w grid.

  Returns:
    `[B, h, w, 2]` deformation: `identity_grid(h, w) + (2 dx / (w - 1), 2 dy / (h - 1))`.
  """
  if flow.ndim != 4 or flow.shape[-1] != 2:
    raise ValueError(
        f'flow_to_deformation: flow must be [B, h, w, 2] (dx, dy), got shape {flow.shape}.')
  _, height, width, _ = flow.shape
  grid = identity_grid(height, width, flow.dtype)
  scale = jnp.asarray([width - 1, height - 1], flow.dtype)
  return grid[None] + 2 * (flow / scale)


def _linear_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
  """`[out, in]` weights of 1-D linear interpolation with `align_corners=False`, no antialias.

  Mirrors PyTorch's `area_pixel_compute_source_index` (scale = in / out, negative sources clamped to
  0) and its upper-neighbour clamp, so the result equals `F.interpolate` for up- and downsampling.
  """
  # float32 throughout, as PyTorch computes the source index in the tensor's float type.
  scale = np.float32(in_size) / np.float32(out_size)
  half = np.float32(0.5)
  src = scale * (np.arange(out_size, dtype=np.float32) + half) - half
  src = np.maximum(src, np.float32(0.0))
  lo = np.floor(src).astype(np.int64)
  lo = np.minimum(lo, in_size - 1)
  hi = np.minimum(lo + 1, in_size - 1)
  frac = src - lo.astype(np.float32)
  matrix = np.zeros((out_size, in_size), np.float32)
  rows = np.arange(out_size)
  np.add.at(matrix, (rows, lo), 1.0 - frac)
  np.add.at(matrix, (rows, hi), frac)
  return matrix


def resize_deformation(deformation: jax.Array, size: Sequence[int]) -> jax.Array:
  """Bilinear resize of a `[B, h, w, K]` map to `[B, H, W, K]`, exactly `F.interpolate`.

  Matches `F.interpolate(x, size=(H, W), mode='bilinear', align_corners=False)` in both directions
  (no antialiasing on downsampling, which `jax.image.resize` would apply by default). The values are
  resized as-is: a deformation is in normalised [-1, 1] units, so it needs no rescaling.
  """
  if deformation.ndim != 4:
    raise ValueError(
        f'resize_deformation: expected [B, h, w, K], got shape {deformation.shape}.')
  if len(size) != 2 or min(size) < 1:
    raise ValueError(f'resize_deformation: size must be (H, W) with positive ints, got {size}.')
  out_h, out_w = int(size[0]), int(size[1])
  _, in_h, in_w, _ = deformation.shape
  if (in_h, in_w) == (out_h, out_w):
    return deformation
  dtype = deformation.dtype
  rows = jnp.asarray(_linear_resize_matrix(in_h, out_h))
  cols = jnp.asarray(_linear_resize_matrix(in_w, out_w))
  # HIGHEST keeps fp32 accumulation on accelerators (TPU would otherwise use bf16 passes).
  out = jnp.einsum('oh,bhwk->bowk', rows, deformation.astype(jnp.float32),
                   precision=jax.lax.Precision.HIGHEST)
  out = jnp.einsum('pw,bowk->bopk', cols, out, precision=jax.lax.Precision.HIGHEST)
  return out.astype(dtype)


def warp_image(image: jax.Array, deformation: jax.Array, *, padding_mode: str = 'zeros',
               implementation: str | None = None) -> jax.Array:
  """PIRenderer's `warp_image`: resize `deformation` to the image size, then `grid_sample`.

  Sampling uses `align_corners=False` (PyTorch's default, as the papers' code does). PIRenderer uses
  'zeros' padding, AniMo 'border'.

  Args:
    image: `[B, H, W, C]` image or feature map.
    deformation: `[B, h, w, 2]` sampling grid (x, y) in [-1, 1], at any resolution.
    padding_mode: see `grid_sample`.
    implementation: see `grid_sample`.

  Returns:
    `[B, H, W, C]` warped image.
  """
  if image.ndim != 4 or deformation.ndim != 4:
    raise ValueError(
        f'warp_image: expected image [B, H, W, C] and deformation [B, h, w, 2], got '
        f'{image.shape} and {deformation.shape}.')
  deformation = resize_deformation(deformation, image.shape[1:3])
  return grid_sample(image, deformation, align_corners=False, padding_mode=padding_mode,
                     implementation=implementation)

"""Portable XLA formulation of bilinear sampling and its hand-written backward.

This is the fast path's fallback on every backend without a dedicated kernel (CPU, TPU, and GPU
shapes the kernels do not take). It shares its interface with `warp_triton`: both take float32
pixel coordinates from `warp_coords.pixel_coords` and return

* forward: the `[B, Ho, Wo, C]` samples, accumulated in float32, in the image's dtype;
* backward: the float32 image gradient and the `[B, Ho, Wo, 4]` per-tap dot products
  `sum_c cotangent * image[tap]` that `warp_coords.grid_gradient` turns into the grid gradient.

The grid gradient is therefore a gather formula here (no scatter); only the image gradient is an
XLA scatter-add, which the GPU kernel replaces.
"""

import jax
import jax.numpy as jnp

from animojax.ops import warp_coords


def _corners(x: jax.Array, y: jax.Array, height: int, width: int):
  """Yields (flat pixel index, bool valid, weight) for the taps nw, ne, sw, se."""
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  valid = warp_coords.corner_validity(x, y, height, width)
  weights = warp_coords.bilinear_weights(x, y)
  for tap, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
    xi = jnp.clip(x0 + dx, 0, width - 1).astype(jnp.int32)
    yi = jnp.clip(y0 + dy, 0, height - 1).astype(jnp.int32)
    yield yi * width + xi, valid[..., tap], weights[tap]


def _gather_rows(flat_image: jax.Array, index: jax.Array) -> jax.Array:
  """`flat_image[b, index[b, ...]]` for each batch element b: `[B, ..., C]`."""
  rows = jax.vmap(lambda im, idx: im[idx.reshape(-1)])(flat_image, index)
  return rows.reshape(*index.shape, flat_image.shape[-1])


def forward(image: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """Samples `[B, H, W, C]` at pixel coordinates `x`, `y` `[B, Ho, Wo]` -> `[B, Ho, Wo, C]`."""
  batch, height, width, channels = image.shape
  flat = image.reshape(batch, height * width, channels).astype(jnp.float32)
  out = jnp.zeros((*x.shape, channels), jnp.float32)
  for index, valid, weight in _corners(x, y, height, width):
    out = out + _gather_rows(flat, index) * jnp.where(valid, weight, 0.0)[..., None]
  return out.astype(image.dtype)


def backward(image: jax.Array, cotangent: jax.Array, x: jax.Array,
             y: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Returns (float32 image gradient `[B, H, W, C]`, per-tap dots `[B, Ho, Wo, 4]`)."""
  batch, height, width, channels = image.shape
  flat = image.reshape(batch, height * width, channels).astype(jnp.float32)
  cotangent = cotangent.astype(jnp.float32)
  d_flat = jnp.zeros_like(flat)
  batch_index = jnp.arange(batch).reshape(batch, *([1] * (x.ndim - 1)))
  dots = []
  for index, valid, weight in _corners(x, y, height, width):
    dots.append(jnp.sum(_gather_rows(flat, index) * cotangent, axis=-1))
    # Out-of-range taps are sent past the end and dropped rather than masked to zero.
    index = jnp.where(valid, index, height * width)
    d_flat = d_flat.at[batch_index, index].add(weight[..., None] * cotangent, mode='drop')
  return d_flat.reshape(image.shape), jnp.stack(dots, axis=-1)

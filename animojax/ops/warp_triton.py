"""Pallas Triton kernels for bilinear sampling (GPU), forward and backward.

NHWC images are viewed as `[pixels, C]` rows, so that every bilinear tap is one contiguous row of
channels (16-byte vector loads).

* `forward`: one program per block of output pixels x channels; the grid -> pixel map
  (`warp_coords.source_index`) and four masked row gathers, accumulated in float32.
* `backward`: the image gradient as a *gather* instead of a scatter-add. The output pixels are
  counting-sorted by the bin of their north-west tap (`corner_order`: atomic ranks, a prefix sum,
  a placement); each program then owns a block of source pixels and walks, per pixel, the sorted
  output pixels that have it as a tap, accumulating `weight * cotangent` in registers. Every
  image-gradient element is written once (no zero fill, no float atomics on the gradient), and
  the same visit yields the tap's dot product with the cotangent, from which
  `warp_coords.grid_gradient` builds the grid gradient (a gather formula, no scatter either).
  Same interface as `warp_xla.backward`.
* `backward_atomic`: the direct scatter formulation with float32 atomics, kept for benchmarks
  (about 3x slower than `backward` on an H200).

Indices are int32: callers must keep every array below 2**31 elements (`supports` checks).
"""
import functools
import math

import jax
from jax import lax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from animojax.ops import warp_coords

# Elements of one [pixels, channels] tile per program (8 per thread) and the widest channel block.
# Small tiles keep registers low and so many programs resident per multiprocessor: both kernels
# are bound by gather latency, not by arithmetic (block sweeps on an H200, benchmarks/warp.py
# --sweep; larger tiles and unrolled loops were slower).
_FORWARD_TILE, _FORWARD_WARPS = 1024, 4
_BACKWARD_TILE, _BACKWARD_WARPS = 512, 2
_MAX_CHANNEL_BLOCK = 64
_INT32_LIMIT = 2**31 - 1


def _next_pow2(n: int) -> int:
  return 1 << max(0, (n - 1).bit_length())


def supports(image_shape, grid_shape) -> bool:
  """Whether the kernels take these shapes: non-empty, int32 indices, exact float32 bin counts."""
  batch, height, width, channels = image_shape
  _, out_h, out_w, _ = grid_shape
  bins = batch * (height + 1) * (width + 1) + 2
  sizes = (batch * height * width * channels, batch * out_h * out_w * max(channels, 4), 2 * bins)
  # `corner_order` counts in float32, exact while no bin can exceed 2**24 pixels.
  return (min(image_shape) > 0 and min(grid_shape) > 0 and max(sizes) < _INT32_LIMIT
          and batch * out_h * out_w <= 2**24)


def _blocks(channels: int, pixel_block: int | None, channel_block: int | None, tile: int):
  """(pixels, channels) of one program's tile: powers of two, as Triton requires."""
  cb = channel_block or min(_next_pow2(channels), _MAX_CHANNEL_BLOCK)
  pb = pixel_block or max(8, tile // cb)
  return pb, cb


def store_index(index, mask, size, interpret):
  """`index`, with masked-off lanes sent past the end in interpret mode only.

  The interpreter runs a masked store as a read-modify-write scatter, where a masked lane holding
  a live lane's index could write back a stale value. On GPU masked lanes are never issued, and a
  select here would hide the indices' contiguity from Triton (no 16-byte vector accesses).
  """
  return jnp.where(mask, index, size) if interpret else index


def _channel_mask(c, channels, cb):
  """None when the channel blocks tile C exactly: a mask varying along channels would also cost
  Triton the vectorised accesses."""
  return None if channels % cb == 0 else c < channels


def _and(row_mask, channel_mask, cb):
  """`[rows, cb]` mask from a row mask and an optional channel mask."""
  mask = row_mask[:, None] if channel_mask is None else row_mask[:, None] & channel_mask[None, :]
  return jnp.broadcast_to(mask, (row_mask.shape[0], cb))


def _taps(x, y, p, p_ok, per_image, height, width):
  """(flat source pixel, in range, PyTorch's weight) of the taps nw, ne, sw, se of pixels p."""
  base = lax.div(p, per_image) * (height * width)
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  x1 = x0 + 1
  y1 = y0 + 1
  taps = []
  for xs, ys, weight in ((x0, y0, (x1 - x) * (y1 - y)), (x1, y0, (x - x0) * (y1 - y)),
                         (x0, y1, (x1 - x) * (y - y0)), (x1, y1, (x - x0) * (y - y0))):
    valid = p_ok & (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    row = base + jnp.clip(ys, 0, height - 1).astype(jnp.int32) * width + jnp.clip(
        xs, 0, width - 1).astype(jnp.int32)
    taps.append((row, valid, weight))
  return taps


def _forward_kernel(grid_ref, image_ref, out_ref, *, height, width, channels, out_pixels,
                    per_image, align_corners, padding_mode, pb, cb, interpret):
  p = pl.program_id(0) * pb + jnp.arange(pb)
  c = pl.program_id(1) * cb + jnp.arange(cb)
  p_ok = p < out_pixels
  c_ok = _channel_mask(c, channels, cb)
  # The grid -> pixel map runs here rather than in a separate XLA pass (one launch and 2 x 8 bytes
  # a pixel less); it is the same jnp code as everywhere else.
  gx = plgpu.load(grid_ref.at[2 * p], mask=p_ok, other=0.0).astype(jnp.float32)
  gy = plgpu.load(grid_ref.at[2 * p + 1], mask=p_ok, other=0.0).astype(jnp.float32)
  x = warp_coords.source_index(gx, width, align_corners, padding_mode)
  y = warp_coords.source_index(gy, height, align_corners, padding_mode)
  acc = jnp.zeros((pb, cb), jnp.float32)
  for row, valid, weight in _taps(x, y, p, p_ok, per_image, height, width):
    tap = plgpu.load(image_ref.at[row[:, None] * channels + c[None, :]],
                     mask=_and(valid, c_ok, cb), other=0.0).astype(jnp.float32)
    acc = acc + tap * weight[:, None]
  mask = _and(p_ok, c_ok, cb)
  index = store_index(p[:, None] * channels + c[None, :], mask, out_ref.shape[0], interpret)
  plgpu.store(out_ref.at[index], acc.astype(out_ref.dtype), mask=mask)


def _compiler_params(num_warps, num_stages=1):
  return plgpu.CompilerParams(num_warps=num_warps, num_stages=num_stages)


def forward(image: jax.Array, grid: jax.Array, *, align_corners: bool, padding_mode: str,
            interpret: bool = False, pixel_block: int | None = None,
            channel_block: int | None = None, num_warps: int = _FORWARD_WARPS) -> jax.Array:
  """`grid_sample` of `[B, H, W, C]` at a normalised `[B, Ho, Wo, 2]` grid -> `[B, Ho, Wo, C]`."""
  batch, height, width, channels = image.shape
  out_pixels = math.prod(grid.shape[:3])
  pb, cb = _blocks(channels, pixel_block, channel_block, _FORWARD_TILE)
  kernel = functools.partial(
      _forward_kernel, height=height, width=width, channels=channels, out_pixels=out_pixels,
      per_image=out_pixels // batch, align_corners=align_corners, padding_mode=padding_mode,
      pb=pb, cb=cb, interpret=interpret)
  out = pl.pallas_call(
      kernel,
      out_shape=jax.ShapeDtypeStruct((out_pixels * channels,), image.dtype),
      grid=(pl.cdiv(out_pixels, pb), pl.cdiv(channels, cb)),
      compiler_params=_compiler_params(num_warps),
      interpret=interpret,
      name='grid_sample_forward',
  )(grid.reshape(-1), image.reshape(-1))
  return out.reshape(*grid.shape[:3], channels)


def _corner_key(x, y, image_index, height, width, batch):
  """Bin of each output pixel's north-west corner; `batch * (H+1) * (W+1)` when no tap is in range.

  Bins live on the `(H + 1) x (W + 1)` grid of corners `(y0, x0)` in `[-1, H - 1] x [-1, W - 1]`
  per image (a corner at -1 still has in-range taps). Plain jnp, so XLA and the kernels share it.
  """
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  in_range = (x0 >= -1) & (x0 <= width - 1) & (y0 >= -1) & (y0 <= height - 1)
  key = (image_index * ((height + 1) * (width + 1))
         + (jnp.clip(y0, -1, height - 1).astype(jnp.int32) + 1) * (width + 1)
         + jnp.clip(x0, -1, width - 1).astype(jnp.int32) + 1)
  return jnp.where(in_range, key, batch * (height + 1) * (width + 1))


def corner_order_sorted(x: jax.Array, y: jax.Array, height: int, width: int):
  """`corner_order` by XLA's stable sort: deterministic, but slower on GPU (~0.1 ms at any size)."""
  batch = x.shape[0]
  image_index = jnp.arange(batch, dtype=jnp.int32).reshape(batch, *([1] * (x.ndim - 1)))
  key = _corner_key(x, y, image_index, height, width, batch).reshape(-1)
  _, order = lax.sort((key, jnp.arange(key.size, dtype=jnp.int32)), num_keys=1, is_stable=True)
  # Histogram of key + 1 (bin 0 stays empty), so its inclusive prefix sum is already the exclusive
  # one of the keys: offsets[k] = #(key < k), no concatenation needed.
  counts = jnp.zeros(batch * (height + 1) * (width + 1) + 2, jnp.int32).at[key + 1].add(1)
  return jnp.cumsum(counts, dtype=jnp.int32), order


def _spread(bin_index):
  """Physical slot of a bin's count: each 32 x 32 tile of 1024 bins is stored transposed.

  Neighbouring output pixels fall in neighbouring bins; with a plain layout one warp's 32 atomic
  increments would hit one cache line and be serialised there (measured: 140 us for 2M pixels).
  Transposed, they land on 32 lines, while a tile stays inside one 4 KB span for the scan.
  """
  return (bin_index & ~1023) | ((bin_index & 31) << 5) | ((bin_index >> 5) & 31)


def _rank_kernel(x_ref, y_ref, zeros_ref, counts_ref, rank_ref, *, height, width, batch,
                 per_image, out_pixels, pb):
  del zeros_ref  # Aliased with counts_ref.
  p = pl.program_id(0) * pb + jnp.arange(pb)
  ok = p < out_pixels
  x = plgpu.load(x_ref.at[pl.ds(pl.program_id(0) * pb, pb)], mask=ok, other=0.0)
  y = plgpu.load(y_ref.at[pl.ds(pl.program_id(0) * pb, pb)], mask=ok, other=0.0)
  key = _corner_key(x, y, lax.div(p, per_image), height, width, batch)
  # The count before this pixel's increment is its rank inside its bin. Float32 counts (exact far
  # beyond any bin's size): Pallas lowers an integer atomic add on a block of addresses as a float
  # add (jax 0.10-0.11). Unmasked when every lane is live (the interpreter has no masked atomics).
  mask = None if out_pixels % pb == 0 else ok
  rank = plgpu.atomic_add(counts_ref, (_spread(key + 1),), jnp.ones(key.shape, jnp.float32),
                          mask=mask)
  plgpu.store(rank_ref.at[pl.ds(pl.program_id(0) * pb, pb)], rank.astype(jnp.int32), mask=ok)


def _scan_kernel(counts_ref, block_sums_ref, offsets_ref, *, blk, blocks):
  i = pl.program_id(0)
  counts = plgpu.load(counts_ref.at[_spread(i * blk + jnp.arange(blk))]).astype(jnp.int32)
  # Each program sums all earlier blocks itself (<= 1024 of them): no second scan launch. A block
  # holds whole 1024-bin tiles, so its sum does not depend on the layout inside them.
  j = jnp.arange(_next_pow2(blocks))
  earlier = plgpu.load(block_sums_ref.at[j], mask=j < i, other=0)
  plgpu.store(offsets_ref.at[pl.ds(i * blk, blk)], jnp.cumsum(counts) + jnp.sum(earlier))


def _place_kernel(x_ref, y_ref, offsets_ref, rank_ref, order_ref, *, height, width, batch,
                  per_image, out_pixels, pb, interpret):
  p = pl.program_id(0) * pb + jnp.arange(pb)
  ok = p < out_pixels
  x = plgpu.load(x_ref.at[pl.ds(pl.program_id(0) * pb, pb)], mask=ok, other=0.0)
  y = plgpu.load(y_ref.at[pl.ds(pl.program_id(0) * pb, pb)], mask=ok, other=0.0)
  rank = plgpu.load(rank_ref.at[pl.ds(pl.program_id(0) * pb, pb)], mask=ok, other=0)
  key = _corner_key(x, y, lax.div(p, per_image), height, width, batch)
  position = plgpu.load(offsets_ref.at[key], mask=ok, other=0) + rank
  plgpu.store(order_ref.at[store_index(position, ok, out_pixels, interpret)], p, mask=ok)


def _scan_blocks(nbins: int) -> tuple[int, int]:
  """(power-of-two block size, block count) covering `nbins` with at most 1024 blocks."""
  blk = max(1024, _next_pow2(pl.cdiv(nbins, 1024)))
  return blk, pl.cdiv(nbins, blk)


def corner_order(x: jax.Array, y: jax.Array, height: int, width: int, *,
                 interpret: bool = False, pixel_block: int = 1024):
  """Counting sort of the output pixels by the bin of their north-west tap (`_corner_key`).

  Launches: rank every pixel inside its bin by an atomic increment of the bin's count; sum the
  counts per block of bins (XLA); prefix-sum the counts (one block of bins per program); place
  each pixel at its bin's offset plus its rank. The order inside a bin follows the atomics, so the
  image gradient's float32 summation order can differ between runs (as in torch's CUDA backward);
  the bins, and so every term, do not.

  Returns:
    offsets `[>= B (H+1) (W+1) + 2]`: bin k holds sorted positions `offsets[k]:offsets[k+1]`;
    order `[N]`: the flat output pixel at each sorted position.
  """
  batch = x.shape[0]
  out_pixels = x.size
  # Bins are keys + 1 (bin 0 stays empty), so the inclusive prefix sum is offsets[k] = #(key < k).
  blk, blocks = _scan_blocks(batch * (height + 1) * (width + 1) + 2)
  nbins = blk * blocks
  # The interpreter runs one atomic op as a gather + scatter, so lanes of one block that share a
  # bin would get the same rank: it takes one pixel per program.
  pb = 1 if interpret else pixel_block
  static = dict(height=height, width=width, batch=batch, per_image=out_pixels // batch,
                out_pixels=out_pixels, pb=pb)
  x = x.reshape(-1).astype(jnp.float32)
  y = y.reshape(-1).astype(jnp.float32)
  grid = (pl.cdiv(out_pixels, pb),)
  counts, rank = pl.pallas_call(
      functools.partial(_rank_kernel, **static),
      out_shape=(jax.ShapeDtypeStruct((nbins,), jnp.float32),
                 jax.ShapeDtypeStruct((out_pixels,), jnp.int32)),
      grid=grid, input_output_aliases={2: 0}, compiler_params=_compiler_params(4),
      interpret=interpret, name='grid_sample_corner_rank',
  )(x, y, jnp.zeros((nbins,), jnp.float32))
  block_sums = jnp.sum(counts.astype(jnp.int32).reshape(blocks, blk), axis=1)
  offsets = pl.pallas_call(
      functools.partial(_scan_kernel, blk=blk, blocks=blocks),
      out_shape=jax.ShapeDtypeStruct((nbins,), jnp.int32),
      grid=(blocks,), compiler_params=_compiler_params(4), interpret=interpret,
      name='grid_sample_corner_scan',
  )(counts, block_sums)
  order = pl.pallas_call(
      functools.partial(_place_kernel, interpret=interpret, **static),
      out_shape=jax.ShapeDtypeStruct((out_pixels,), jnp.int32),
      grid=grid, compiler_params=_compiler_params(4), interpret=interpret,
      name='grid_sample_corner_place',
  )(x, y, offsets, rank)
  return offsets, order


def _backward_kernel(offsets_ref, order_ref, x_ref, y_ref, cotangent_ref, image_ref, d_image_ref,
                     dots_ref, *, height, width, channels, src_pixels, out_pixels, sb, cb,
                     interpret):
  s = pl.program_id(0) * sb + jnp.arange(sb)
  c = pl.program_id(1) * cb + jnp.arange(cb)
  s_ok = s < src_pixels
  c_ok = _channel_mask(c, channels, cb)
  src_mask = _and(s_ok, c_ok, cb)
  src_index = s[:, None] * channels + c[None, :]
  image = plgpu.load(image_ref.at[src_index], mask=src_mask, other=0.0).astype(jnp.float32)

  b = lax.div(s, height * width)
  r = s - b * (height * width)
  yy = lax.div(r, width)
  xx = r - yy * width
  nw_bin = jnp.where(s_ok, b * ((height + 1) * (width + 1)) + (yy + 1) * (width + 1) + xx + 1,
                     width + 2)
  dots_slot = pl.program_id(1) * out_pixels
  # Source pixel (yy, xx) is tap (nw, ne, sw, se) = (0, 1, 2, 3) of the output pixels whose
  # north-west corner is in bin nw_bin, nw_bin - 1, nw_bin - (W + 1), nw_bin - (W + 2). Each pair
  # of horizontally adjacent bins is one contiguous sorted range (ne then nw, se then sw); a lane
  # walks the upper range, then the lower one, as one list, so lanes stay busy until the longest
  # list of the block ends.
  def bounds(first_bin):
    return [plgpu.load(offsets_ref.at[first_bin + i], mask=s_ok, other=0) for i in range(3)]

  upper_start, upper_middle, upper_end = bounds(nw_bin - 1)
  lower_start, lower_middle, lower_end = bounds(nw_bin - (width + 2))
  upper_count = upper_end - upper_start
  count = upper_count + lower_end - lower_start

  def where_in_lists(j):
    live = j < count
    upper = j < upper_count
    q = jnp.where(upper, upper_start + j, lower_start + (j - upper_count))
    return live, upper, q

  def output_pixel(j):
    live, _, q = where_in_lists(j)
    return plgpu.load(order_ref.at[q], mask=live, other=0)

  def visit(j, p, acc):
    """Adds this source pixel's j-th contribution, from output pixel p (nothing if j >= count)."""
    live, upper, q = where_in_lists(j)
    x = plgpu.load(x_ref.at[p], mask=live, other=0.0)
    y = plgpu.load(y_ref.at[p], mask=live, other=0.0)
    cot = plgpu.load(cotangent_ref.at[p[:, None] * channels + c[None, :]],
                     mask=_and(live, c_ok, cb), other=0.0).astype(jnp.float32)
    x0 = jnp.floor(x)
    y0 = jnp.floor(y)
    left = q >= jnp.where(upper, upper_middle, lower_middle)  # nw / sw: the pixel's left tap
    wx = jnp.where(left, x0 + 1 - x, x - x0)
    wy = jnp.where(upper, y0 + 1 - y, y - y0)
    tap = jnp.where(upper, 0, 2) + jnp.where(left, 0, 1)
    index = store_index((dots_slot + p) * 4 + tap, live, dots_ref.shape[0], interpret)
    plgpu.store(dots_ref.at[index], jnp.sum(cot * image, axis=1), mask=live)
    return acc + cot * (wx * wy)[:, None]

  def step(j, carry):
    # The next output pixel's index is loaded while this one's cotangent row is in flight, so each
    # step waits for one gather instead of two dependent ones.
    acc, p = carry
    p_next = output_pixel(j + 1)
    return visit(j, p, acc), p_next

  acc, _ = lax.fori_loop(0, jnp.max(count), step,
                         (jnp.zeros((sb, cb), jnp.float32), output_pixel(0)))
  index = store_index(src_index, src_mask, d_image_ref.shape[0], interpret)
  plgpu.store(d_image_ref.at[index], acc.astype(d_image_ref.dtype), mask=src_mask)


def backward(image: jax.Array, cotangent: jax.Array, x: jax.Array, y: jax.Array, *,
             interpret: bool = False, pixel_block: int | None = None,
             channel_block: int | None = None, num_warps: int = _BACKWARD_WARPS,
             num_stages: int = 1, sort: str = 'counting'):
  """Returns (image gradient `[B, H, W, C]` in the image's dtype, dots `[B, Ho, Wo, 4]` f32)."""
  batch, height, width, channels = image.shape
  src_pixels = batch * height * width
  out_pixels = x.size
  sb, cb = _blocks(channels, pixel_block, channel_block, _BACKWARD_TILE)
  channel_blocks = pl.cdiv(channels, cb)
  x = x.astype(jnp.float32)
  y = y.astype(jnp.float32)
  if sort == 'counting':
    offsets, order = corner_order(x, y, height, width, interpret=interpret)
  else:
    offsets, order = corner_order_sorted(x, y, height, width)
  kernel = functools.partial(
      _backward_kernel, height=height, width=width, channels=channels, src_pixels=src_pixels,
      out_pixels=out_pixels, sb=sb, cb=cb, interpret=interpret)
  d_image, dots = pl.pallas_call(
      kernel,
      out_shape=(jax.ShapeDtypeStruct((src_pixels * channels,), image.dtype),
                 jax.ShapeDtypeStruct((channel_blocks * out_pixels * 4,), jnp.float32)),
      grid=(pl.cdiv(src_pixels, sb), channel_blocks),
      compiler_params=_compiler_params(num_warps, num_stages),
      interpret=interpret,
      name='grid_sample_backward',
  )(offsets, order, x.reshape(-1), y.reshape(-1), cotangent.reshape(-1), image.reshape(-1))
  dots = dots.reshape(channel_blocks, *x.shape, 4)
  return d_image.reshape(image.shape), dots[0] if channel_blocks == 1 else _sum_blocks(dots)


def _sum_blocks(dots):
  # Unwritten entries (out-of-range taps) may hold NaN; grid_gradient masks them after the sum.
  return jnp.sum(dots, axis=0)


def _backward_atomic_kernel(x_ref, y_ref, cotangent_ref, image_ref, zeros_ref, d_image_ref,
                            dots_ref, *, height, width, channels, out_pixels, per_image, pb, cb):
  del zeros_ref  # Aliased with d_image_ref: the float32 accumulator starts at zero.
  p = pl.program_id(0) * pb + jnp.arange(pb)
  c = pl.program_id(1) * cb + jnp.arange(cb)
  p_ok = p < out_pixels
  c_ok = _channel_mask(c, channels, cb)
  x = plgpu.load(x_ref.at[pl.ds(pl.program_id(0) * pb, pb)], mask=p_ok, other=0.0)
  y = plgpu.load(y_ref.at[pl.ds(pl.program_id(0) * pb, pb)], mask=p_ok, other=0.0)
  cot = plgpu.load(cotangent_ref.at[p[:, None] * channels + c[None, :]],
                   mask=_and(p_ok, c_ok, cb), other=0.0).astype(jnp.float32)
  dots_slot = pl.program_id(1) * out_pixels
  for tap, (row, valid, weight) in enumerate(_taps(x, y, p, p_ok, per_image, height, width)):
    mask = _and(valid, c_ok, cb)
    index = row[:, None] * channels + c[None, :]
    value = plgpu.load(image_ref.at[index], mask=mask, other=0.0).astype(jnp.float32)
    plgpu.store(dots_ref.at[(dots_slot + p) * 4 + tap], jnp.sum(cot * value, axis=1), mask=valid)
    plgpu.atomic_add(d_image_ref, (index,), cot * weight[:, None], mask=mask)


def backward_atomic(image: jax.Array, cotangent: jax.Array, x: jax.Array, y: jax.Array, *,
                    pixel_block: int | None = None, channel_block: int | None = None,
                    num_warps: int = 4):
  """`backward` by float32 atomics into a zero-filled accumulator (GPU only: the interpreter
  would drop colliding updates)."""
  batch, height, width, channels = image.shape
  out_pixels = x.size
  pb, cb = _blocks(channels, pixel_block, channel_block, _FORWARD_TILE)
  channel_blocks = pl.cdiv(channels, cb)
  kernel = functools.partial(
      _backward_atomic_kernel, height=height, width=width, channels=channels,
      out_pixels=out_pixels, per_image=out_pixels // batch, pb=pb, cb=cb)
  d_image, dots = pl.pallas_call(
      kernel,
      out_shape=(jax.ShapeDtypeStruct((image.size,), jnp.float32),
                 jax.ShapeDtypeStruct((channel_blocks * out_pixels * 4,), jnp.float32)),
      grid=(pl.cdiv(out_pixels, pb), channel_blocks),
      input_output_aliases={4: 0},
      compiler_params=_compiler_params(num_warps),
      name='grid_sample_backward_atomic',
  )(x.reshape(-1).astype(jnp.float32), y.reshape(-1).astype(jnp.float32), cotangent.reshape(-1),
    image.reshape(-1), jnp.zeros((image.size,), jnp.float32))
  dots = dots.reshape(channel_blocks, *x.shape, 4)
  return d_image.reshape(image.shape), dots[0] if channel_blocks == 1 else _sum_blocks(dots)

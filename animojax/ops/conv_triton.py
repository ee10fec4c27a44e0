"""Pallas Triton kernels for stride-1 NHWC convolutions with few channels on one side (GPU).

cuDNN runs convolutions with 2–4 channels on one side (RGB in or out, a flow head) in slow
"indexed" or non-tensor-core kernels: its implicit GEMM tiles are mostly empty and its patch
loads are misaligned (`benchmarks/conv.py`, `benchmarks/RESULTS.md`). These kernels are an
implicit GEMM whose patch loads gather straight from the (L2-resident) tensor:

* `correlate`: out[b, y, x, :] = Σ_{ky, kx} src[b, y + s·ky + oy, x + s·kx + ox, :] @ W[ky, kx]
  (zero outside src). s = +1 is a convolution's forward pass (o = -padding); s = -1 with o =
  +padding and W transposed is its input gradient. Few source channels: the GEMM's K axis is
  (tap, channel), gathered `[pixels, 32]` at a time; many source channels: one tap at a time,
  rows of contiguous channels (vector loads).
* `weight_gradient`: R[(ky, kx, c), n] = Σ_pixels src[..same gather..][c] · big[pixel, n], the
  few-channel side gathered, split over pixel ranges, partial sums added by XLA.

Both accumulate in float32. Indices are int32: `supports` says which sizes fit.
"""
import functools
import math

import jax
from jax import lax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from animojax.ops import warp_triton

# Source channels up to this count are gathered as part of the (tap, channel) GEMM axis.
FEW = 4
_INT32_LIMIT = 2**31 - 1


def supports(pixels: int, few: int, many: int) -> bool:
  """Whether a convolution with `few` channels on one side and `many` on the other, over at most
  `pixels` pixels (batch included) per side, fits the kernels: the wide side in blocks of 16
  channels, int32 indices."""
  return 0 < few <= FEW < many and many % 16 == 0 and pixels * many < _INT32_LIMIT


def _cost(flops, a, b, out):
  """The convolution's FLOPs (unpadded: what `utils.flops` counts for cuDNN's) and its bytes."""
  out_bytes = math.prod(out.shape) * jnp.dtype(out.dtype).itemsize
  return pl.CostEstimate(flops=int(flops), transcendentals=0,
                         bytes_accessed=int(a.nbytes + b.nbytes + out_bytes))


def _coords(p, height, width):
  """(image, row, column) of flat pixel indices p of `[B, height, width]`."""
  image = lax.div(p, height * width)
  rest = p - image * (height * width)
  y = lax.div(rest, width)
  return image, y, rest - y * width


def _gather_few(src_ref, k, image, y, x, ok, *, channels, taps, kw, src_hw, sign, offset):
  """`[pixels, K block]` of patches: column k is (tap, channel) = divmod(k, channels)."""
  tap = lax.div(k, channels)
  c = k - tap * channels
  ky = lax.div(tap, kw)
  kx = tap - ky * kw
  sy = y[:, None] + sign * ky[None, :] + offset[0]
  sx = x[:, None] + sign * kx[None, :] + offset[1]
  valid = (ok[:, None] & (k < taps * channels)[None, :] & (sy >= 0) & (sy < src_hw[0])
           & (sx >= 0) & (sx < src_hw[1]))
  index = ((image[:, None] * src_hw[0] + sy) * src_hw[1] + sx) * channels + c[None, :]
  return plgpu.load(src_ref.at[index], mask=valid, other=0)


def _correlate_kernel(src_ref, w_ref, out_ref, *, pixels, out_hw, src_hw, channels, kh, kw,
                      sign, offset, n_out, bm, bn, bk, interpret):
  p = pl.program_id(0) * bm + jnp.arange(bm)
  n0 = pl.program_id(1) * bn  # (program_id outside the loops: the interpreter needs it there)
  n = n0 + jnp.arange(bn)
  ok = p < pixels
  image, y, x = _coords(p, *out_hw)
  acc = jnp.zeros((bm, bn), jnp.float32)
  if channels <= FEW:
    def body(kb, acc):
      k = kb * bk + jnp.arange(bk)
      patches = _gather_few(src_ref, k, image, y, x, ok, channels=channels, taps=kh * kw, kw=kw,
                            src_hw=src_hw, sign=sign, offset=offset)
      weights = w_ref[pl.ds(kb * bk, bk), pl.ds(n0, bn)]
      return acc + jnp.dot(patches, weights, preferred_element_type=jnp.float32)
    acc = lax.fori_loop(0, w_ref.shape[0] // bk, body, acc)
  else:
    def body(tap, acc):
      ky = lax.div(tap, kw)
      kx = tap - ky * kw
      sy = y + sign * ky + offset[0]
      sx = x + sign * kx + offset[1]
      valid = ok & (sy >= 0) & (sy < src_hw[0]) & (sx >= 0) & (sx < src_hw[1])
      row = (image * src_hw[0] + sy) * src_hw[1] + sx
      for c0 in range(0, channels, bk):
        c = c0 + jnp.arange(bk)
        rows = plgpu.load(src_ref.at[row[:, None] * channels + c[None, :]],
                          mask=jnp.broadcast_to(valid[:, None], (bm, bk)), other=0)
        weights = w_ref[pl.ds(tap * channels + c0, bk), pl.ds(n0, bn)]
        acc = acc + jnp.dot(rows, weights, preferred_element_type=jnp.float32)
      return acc
    acc = lax.fori_loop(0, kh * kw, body, acc)
  mask = ok[:, None] & (n < n_out)[None, :]
  index = warp_triton.store_index(p[:, None] * n_out + n[None, :], mask, out_ref.shape[0],
                                  interpret)
  plgpu.store(out_ref.at[index], acc.astype(out_ref.dtype), mask=mask)


def _pow2_block(n: int, most: int) -> int:
  return min(max(16, 1 << max(0, (n - 1).bit_length())), most)


def _channel_block(channels: int, most: int) -> int:
  return next(b for b in (most, 32, 16) if channels % b == 0)


def correlate(src: jax.Array, weights: jax.Array, *, out_hw, sign: int, offset,
              interpret: bool = False, bm: int = 128, bn: int | None = None,
              bk: int | None = None, num_warps: int = 4, num_stages: int = 2) -> jax.Array:
  """out `[B, *out_hw, N]` = Σ_taps src[b, y + sign·ky + oy, x + sign·kx + ox] @ weights[ky, kx].

  src `[B, Hs, Ws, C]`, weights `[kh, kw, C, N]`; zero outside src; float32 accumulation,
  output in src's dtype.
  """
  batch, hs, ws, channels = src.shape
  kh, kw, _, n_out = weights.shape
  few = channels <= FEW
  bn = bn or _pow2_block(n_out, 64)
  bk = bk or (32 if few else _channel_block(channels, 64))
  k = kh * kw * channels
  k_pad = pl.cdiv(k, bk) * bk if few else k
  n_pad = pl.cdiv(n_out, bn) * bn
  w = jnp.pad(weights.reshape(k, n_out).astype(src.dtype), ((0, k_pad - k), (0, n_pad - n_out)))
  pixels = batch * out_hw[0] * out_hw[1]
  kernel = functools.partial(
      _correlate_kernel, pixels=pixels, out_hw=tuple(out_hw), src_hw=(hs, ws), channels=channels,
      kh=kh, kw=kw, sign=sign, offset=tuple(offset), n_out=n_out, bm=bm, bn=bn, bk=bk,
      interpret=interpret)
  out_shape = jax.ShapeDtypeStruct((pixels * n_out,), src.dtype)
  out = pl.pallas_call(
      kernel,
      out_shape=out_shape,
      grid=(pl.cdiv(pixels, bm), n_pad // bn),
      compiler_params=plgpu.CompilerParams(num_warps=num_warps, num_stages=num_stages),
      interpret=interpret,
      name='few_channel_correlate',
      cost_estimate=_cost(2 * pixels * k * n_out, src, w, out_shape),
  )(src.reshape(-1), w)
  return out.reshape(batch, *out_hw, n_out)


def _weight_gradient_kernel(src_ref, big_ref, out_ref, *, pixels, out_hw, src_hw, channels, kh,
                            kw, sign, offset, n_big, chunk, bm, bn, bk, k_blocks):
  split, nb = pl.program_id(0), pl.program_id(1)
  n = nb * bn + jnp.arange(bn)
  n_ok = n < n_big

  def body(i, accs):
    p = split * chunk + i * bm + jnp.arange(bm)
    ok = p < pixels
    image, y, x = _coords(p, *out_hw)
    big = plgpu.load(big_ref.at[p[:, None] * n_big + n[None, :]],
                     mask=ok[:, None] & n_ok[None, :], other=0)
    out = []
    for kb, acc in enumerate(accs):
      patches = _gather_few(src_ref, kb * bk + jnp.arange(bk), image, y, x, ok,
                            channels=channels, taps=kh * kw, kw=kw, src_hw=src_hw, sign=sign,
                            offset=offset)
      out.append(acc + lax.dot_general(patches, big, (((0,), (0,)), ((), ())),
                                       preferred_element_type=jnp.float32))
    return tuple(out)

  accs = lax.fori_loop(0, chunk // bm, body,
                       tuple(jnp.zeros((bk, bn), jnp.float32) for _ in range(k_blocks)))
  for kb, acc in enumerate(accs):
    out_ref[split, pl.ds(kb * bk, bk), pl.ds(nb * bn, bn)] = acc


def weight_gradient(src: jax.Array, big: jax.Array, *, kernel_hw, sign: int, offset,
                    interpret: bool = False, bm: int = 128, bn: int | None = None,
                    bk: int = 32, splits: int | None = None, num_warps: int = 4,
                    num_stages: int = 2) -> jax.Array:
  """R `[kh, kw, C, N]` = Σ_pixels patches(src)[pixel, (ky, kx, c)] · big[pixel, n], float32.

  `big` `[B, Ho, Wo, N]` sets the pixel grid; the patches are `correlate`'s gather of the
  few-channel `src` `[B, Hs, Ws, C]` (C ≤ FEW).
  """
  batch, hs, ws, channels = src.shape
  _, ho, wo, n_big = big.shape
  kh, kw = kernel_hw
  pixels = batch * ho * wo
  bn = bn or _pow2_block(n_big, 64)
  k = kh * kw * channels
  k_blocks = pl.cdiv(k, bk)
  n_blocks = pl.cdiv(n_big, bn)
  # About four programs per multiprocessor of an H100 (132) in all, each summing a pixel range.
  splits = splits or max(1, min(pl.cdiv(pixels, 8 * bm), pl.cdiv(528, n_blocks)))
  chunk = pl.cdiv(pl.cdiv(pixels, splits), bm) * bm
  splits = pl.cdiv(pixels, chunk)
  kernel = functools.partial(
      _weight_gradient_kernel, pixels=pixels, out_hw=(ho, wo), src_hw=(hs, ws),
      channels=channels, kh=kh, kw=kw, sign=sign, offset=tuple(offset), n_big=n_big, chunk=chunk,
      bm=bm, bn=bn, bk=bk, k_blocks=k_blocks)
  out_shape = jax.ShapeDtypeStruct((splits, k_blocks * bk, n_blocks * bn), jnp.float32)
  partial = pl.pallas_call(
      kernel,
      out_shape=out_shape,
      grid=(splits, n_blocks),
      compiler_params=plgpu.CompilerParams(num_warps=num_warps, num_stages=num_stages),
      interpret=interpret,
      name='few_channel_weight_gradient',
      cost_estimate=_cost(2 * pixels * k * n_big, src, big, out_shape),
  )(src.reshape(-1), big.reshape(-1))
  return partial.sum(0)[:k, :n_big].reshape(kh, kw, channels, n_big)

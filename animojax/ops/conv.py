"""Stride-1 convolutions with a few output channels, computed as one wide GEMM.

cuDNN runs the 7×7 convolutions that end PIRenderer/AniMo's networks — the EditingNet's
64 → 3 RGB output and the WarpingNet's 256 → 2 flow head — far below the tensor-core rate: with
2–3 output channels the implicit GEMM's tiles are mostly empty (`benchmarks/conv.py`). The
`shift_sum` formulation turns them into one wide GEMM plus a memory pass:

  z = x @ [kernel of every (tap, output channel)]   `[pixels, C_in] @ [C_in, kh·kw·C_out]`
  y[i, j] = Σ_{ky, kx} z[i + ky - pt, j + kx - pl, (ky, kx)]    (the shifted sum)

Its VJP is written out: the contributions' cotangent is a gather of the output cotangent (kept in
the compute dtype), after which the input and weight gradients are one GEMM each. Same
convolution and accumulation precision (float32 inside the GEMMs and for the contributions);
only the summation order differs from cuDNN's.

The mirror case, 3 input channels (RGB in), stays with cuDNN: building its patches with XLA ops
(an im2col GEMM) measured 2–4× slower than cuDNN on the H100.

`conv_general_dilated` has `jax.lax.conv_general_dilated`'s signature, so it plugs into
`flax.nnx.Conv(conv_general_dilated=...)`; it uses the shift-sum on CUDA GPUs only (where it was
measured; slower on CPUs), and every convolution the formulation does not cover (strides,
dilations, groups, wide outputs, other layouts) goes to the lax op.
"""

import functools

import jax
import jax.numpy as jnp

# Convolutions with at most this many output channels (and more inputs) use the shift-sum.
FEW_CHANNELS = 4
# Backends where it is measured faster than the lax convolution: on an H100 (benchmarks/conv.py);
# on CPUs it made the demo train step 19% slower, and TPUs are unmeasured.
SHIFT_SUM_BACKENDS = ('gpu',)
_NHWC = ('NHWC', 'HWIO', 'NHWC')


def _padding_pairs(padding, lhs_shape, kernel_hw):
  """((top, bottom), (left, right)) of a stride-1 conv, or None if not two non-negative pairs."""
  if isinstance(padding, str):
    return tuple(jax.lax.padtype_to_pads(lhs_shape[1:3], kernel_hw, (1, 1), padding))
  pairs = tuple(tuple(int(v) for v in p) for p in padding)
  return pairs if len(pairs) == 2 and all(len(p) == 2 and min(p) >= 0 for p in pairs) else None


def _is_nhwc(dimension_numbers):
  if dimension_numbers is None:
    return False
  if isinstance(dimension_numbers, jax.lax.ConvDimensionNumbers):
    return dimension_numbers == jax.lax.conv_dimension_numbers(
        (1, 1, 1, 1), (1, 1, 1, 1), _NHWC)
  return tuple(dimension_numbers) == _NHWC


def uses_shift_sum(lhs_shape, rhs_shape, window_strides, padding, lhs_dilation=None,
                   rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                   batch_group_count=1) -> bool:
  """Whether `conv_general_dilated` computes these arguments as a shift-sum."""
  if len(lhs_shape) != 4 or len(rhs_shape) != 4:
    return False
  if (feature_group_count, batch_group_count) != (1, 1):
    return False
  if not _is_nhwc(dimension_numbers) or tuple(window_strides) != (1, 1):
    return False
  if any(d is not None and tuple(d) != (1, 1) for d in (lhs_dilation, rhs_dilation)):
    return False
  kh, kw, cin, cout = rhs_shape
  if kh * kw == 1 or not cout <= FEW_CHANNELS < cin:
    return False
  pads = _padding_pairs(padding, lhs_shape, (kh, kw))
  # Padding beyond k - 1 only adds zero rows/columns; the cotangent gather assumes it does not.
  return pads is not None and all(p < k for pair, k in zip(pads, (kh, kw)) for p in pair)


def _out_hw(x_shape, kernel_hw, padding):
  (pt, pb), (pl, pr) = padding
  return (x_shape[1] + pt + pb - kernel_hw[0] + 1, x_shape[2] + pl + pr - kernel_hw[1] + 1)


def _shift_add(z, padding, out_hw):
  """y[i, j] = Σ_{ky, kx} z_padded[i + ky, j + kx, ky, kx] for z `[B, H, W, kh, kw, O]`."""
  (pt, pb), (pl, pr) = padding
  _, _, _, kh, kw, _ = z.shape
  ho, wo = out_hw
  zp = jnp.pad(z, ((0, 0), (pt, pb), (pl, pr), (0, 0), (0, 0), (0, 0)))
  return functools.reduce(jnp.add, [zp[:, ky:ky + ho, kx:kx + wo, ky, kx]
                                    for ky in range(kh) for kx in range(kw)])


def _shift_gather(g, padding, kernel_hw, in_hw):
  """The transpose of `_shift_add`: dz[u, v, ky, kx] = g[u - ky + pt, v - kx + pl] (0 outside).

  XLA emits this stack of C_out-channel slices as an element-wise concatenation, ≈ 20× its
  memory time on an H100 (benchmarks/RESULTS.md): the op's slowest part, left for a kernel.
  """
  (pt, pb), (pl, pr) = padding
  kh, kw = kernel_hw
  h, w = in_hw
  gp = jnp.pad(g, ((0, 0), (kh - 1 - pt, kh - 1 - pb), (kw - 1 - pl, kw - 1 - pr), (0, 0)))
  return jnp.stack([gp[:, kh - 1 - ky:kh - 1 - ky + h, kw - 1 - kx:kw - 1 - kx + w]
                    for ky in range(kh) for kx in range(kw)], axis=3)


def _wide_kernel(kernel):
  """HWIO `[kh, kw, I, O]` -> `[I, kh·kw·O]`: one GEMM column per (tap, output channel)."""
  kh, kw, cin, cout = kernel.shape
  return kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _shift_sum_conv(x, kernel, padding, precision):
  return _shift_sum_fwd(x, kernel, padding, precision)[0]


def _shift_sum_fwd(x, kernel, padding, precision):
  kh, kw, _, cout = kernel.shape
  b, h, w, _ = x.shape
  # Every tap's contribution at its source pixel, in float32 (cuDNN's accumulation precision).
  z = jnp.einsum('bhwc,ck->bhwk', x, _wide_kernel(kernel), precision=precision,
                 preferred_element_type=jnp.float32)
  y = _shift_add(z.reshape(b, h, w, kh, kw, cout), padding, _out_hw(x.shape, (kh, kw), padding))
  return y.astype(x.dtype), (x, kernel)


def _shift_sum_bwd(padding, precision, residuals, g):
  x, kernel = residuals
  kh, kw, cin, cout = kernel.shape
  b, h, w, _ = x.shape
  # The contributions' cotangent is a gather of g, in the compute dtype; then one GEMM each.
  dz = _shift_gather(g.astype(x.dtype), padding, (kh, kw), (h, w)).reshape(b, h, w, -1)
  dx = jnp.einsum('bhwk,ck->bhwc', dz, _wide_kernel(kernel), precision=precision,
                  preferred_element_type=jnp.float32)
  dwide = jnp.einsum('bhwc,bhwk->ck', x, dz, precision=precision,
                     preferred_element_type=jnp.float32)
  dkernel = dwide.reshape(cin, kh, kw, cout).transpose(1, 2, 0, 3)
  return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


_shift_sum_conv.defvjp(_shift_sum_fwd, _shift_sum_bwd)


def shift_sum(x, kernel, padding, *, precision=None):
  """Stride-1 NHWC×HWIO convolution as x @ (per-tap kernels), then a shifted sum."""
  return _shift_sum_conv(x, kernel, tuple(tuple(p) for p in padding), precision)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None, **kwargs):
  """`jax.lax.conv_general_dilated`, with few-output stride-1 convolutions as a shift-sum on the
  backends in `SHIFT_SUM_BACKENDS` (the default backend decides, as for the trainer's step)."""
  if (jax.default_backend() in SHIFT_SUM_BACKENDS and lhs.dtype == rhs.dtype
      and kwargs.get('out_sharding') is None
      and uses_shift_sum(lhs.shape, rhs.shape, window_strides, padding, lhs_dilation, rhs_dilation,
                         dimension_numbers, feature_group_count, batch_group_count)):
    y = shift_sum(lhs, rhs, _padding_pairs(padding, lhs.shape, rhs.shape[:2]),
                  precision=precision)
    return y if preferred_element_type is None else y.astype(preferred_element_type)
  return jax.lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
      batch_group_count=batch_group_count, precision=precision,
      preferred_element_type=preferred_element_type, **kwargs)

"""Stride-1 convolutions with a few channels on one side, by Pallas Triton kernels on GPUs.

cuDNN runs the convolutions with 2–3 channels on one side far below the tensor-core rate — RGB in
(the 7×7 3 → 64 / 3 → 32 input convs of the EditingNet and WarpingNet, VGG19's 3×3 conv1_1 in the
loss) and RGB/flow out (the EditingNet's 7×7 64 → 3 output, the WarpingNet's 7×7 256 → 2 flow
head): its implicit GEMM tiles are mostly empty and it falls back to "indexed" or non-tensor-core
kernels (`benchmarks/conv.py`, `benchmarks/RESULTS.md`). `few_channel_conv` computes such a
convolution and both its gradients with the implicit-GEMM kernels of `conv_triton`:

  forward          correlate(x, W)                    (x's patches gathered inside the GEMM);
                   when the output is the narrow side: one GEMM into per-tap planes and their
                   shifted sum where those planes are small (the flow head), else cuDNN's
  input gradient   correlate(g, W mirrored, transposed)
  weight gradient  patches of the few-channel side (x, or g when the output is the narrow one)
                   times the other side, summed over pixel ranges.

Float32 accumulation as cuDNN; only the summation order differs.

`conv_general_dilated` has `jax.lax.conv_general_dilated`'s signature, so it plugs into
`flax.nnx.Conv(conv_general_dilated=...)`. It uses the kernels on CUDA GPUs for 16-bit inputs
(the bf16 policy; float32 keeps cuDNN and its precision flags) when the traced program's kernel
choice is 'auto' (`ops.kernels`, `config.kernels`), and sends everything else to the lax op:
convolutions they do not cover (strides, dilations, groups, other layouts, wide on both sides),
the 'xla' choice, other backends, and a non-GPU mesh (a TPU topology) traced on a GPU host.
"""

import functools

import jax
import jax.numpy as jnp

from animojax.ops import batch_local
from animojax.ops import conv_triton
from animojax.ops import kernels

# Backends that run the Pallas Triton kernels (CUDA GPUs).
KERNEL_BACKENDS = ('gpu',)
KERNEL_DTYPES = ('bfloat16', 'float16')
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


def _out_hw(x_shape, kernel_hw, padding):
  (pt, pb), (pl, pr) = padding
  return (x_shape[1] + pt + pb - kernel_hw[0] + 1, x_shape[2] + pl + pr - kernel_hw[1] + 1)


def uses_kernels(lhs_shape, rhs_shape, window_strides, padding, lhs_dilation=None,
                 rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                 batch_group_count=1) -> bool:
  """Whether these convolution arguments are in `few_channel_conv`'s scope (any backend)."""
  if len(lhs_shape) != 4 or len(rhs_shape) != 4:
    return False
  if (feature_group_count, batch_group_count) != (1, 1):
    return False
  if not _is_nhwc(dimension_numbers) or tuple(window_strides) != (1, 1):
    return False
  if any(d is not None and tuple(d) != (1, 1) for d in (lhs_dilation, rhs_dilation)):
    return False
  kh, kw, cin, cout = rhs_shape
  pads = _padding_pairs(padding, lhs_shape, (kh, kw))
  if kh * kw == 1 or pads is None:
    return False
  out_hw = _out_hw(lhs_shape, (kh, kw), pads)
  pixels = lhs_shape[0] * max(lhs_shape[1] * lhs_shape[2], out_hw[0] * out_hw[1])
  return min(out_hw) > 0 and conv_triton.supports(pixels, min(cin, cout), max(cin, cout))


def uses_tap_planes(kernel_shape, dtype) -> bool:
  """Whether a narrow-output forward goes through `_tap_planes_forward` rather than cuDNN.

  Only when its float32 tap planes are no larger than the input: then writing and reading them
  costs no more than the input re-reads they replace (the 256 -> 2 7x7 flow head: 4x faster than
  cuDNN). For 64 -> 3 7x7 the planes are 4.6x the input and cuDNN stays faster (1.8 vs 2.6 ms,
  batch chunks that stay in L2 included; benchmarks/RESULTS.md).
  """
  kh, kw, c_in, c_out = kernel_shape
  return kh * kw * c_out * 4 <= c_in * jnp.dtype(dtype).itemsize


def _tap_planes_forward(x, kernel, padding):
  """Forward of a narrow-output conv as one GEMM into per-tap planes plus their shifted sum.

  cuDNN (and an implicit GEMM of ours) re-reads every input pixel once per tap, at the speed of
  a conv with 32-64 outputs (benchmarks/RESULTS.md). Here the input is read once: `Z = Wᵀ Xᵀ`,
  float32 `[taps * C_out, pixels]` (planar, so the shifted reads below are contiguous along W),
  then `y[c, p] = Σ_taps Z[tap, c, p + tap offset]` in one fusion. Float32
  accumulation throughout, as cuDNN's; only the summation order differs.
  """
  (pt, pb), (pl, pr) = padding
  kh, kw, c_in, c_out = kernel.shape
  b, h, w, _ = x.shape
  oh, ow = _out_hw(x.shape, (kh, kw), padding)
  z = jax.lax.dot_general(kernel.reshape(kh * kw, c_in, c_out).transpose(0, 2, 1),
                          x.reshape(b * h * w, c_in), (((2,), (1,)), ((), ())),
                          preferred_element_type=jnp.float32)
  z = jnp.pad(z.reshape(kh, kw, c_out, b, h, w),
              ((0, 0),) * 4 + ((pt, pb), (pl, pr)))
  y = sum(z[i, j, :, :, i:i + oh, j:j + ow] for i in range(kh) for j in range(kw))
  return y.transpose(1, 2, 3, 0).astype(x.dtype)


# The kernels are per sample except for the weights, so on a batch-sharded mesh each device runs
# them on its own rows (`batch_local`; a Pallas call would otherwise be gathered onto every
# device). The weights travel as a per-row broadcast (a few KB per row), and the weight gradient
# comes back as each shard's partial sum in its first row, which a sum over rows all-reduces.
def _correlate_rows(src, weights_per_row, out_hw, sign, offset, interpret):
  return conv_triton.correlate(src, weights_per_row[0], out_hw=out_hw, sign=sign, offset=offset,
                               interpret=interpret)


def _weight_gradient_rows(src, big, kernel_hw, sign, offset, interpret):
  partial = conv_triton.weight_gradient(src, big, kernel_hw=kernel_hw, sign=sign, offset=offset,
                                        interpret=interpret)
  return jnp.zeros((src.shape[0], *partial.shape), partial.dtype).at[0].set(partial)


_correlate_local = batch_local.batch_local(
    _correlate_rows, 'b h w c, b k l c n -> b y x n', (2, 3, 4, 5))
_weight_gradient_local = batch_local.batch_local(
    _weight_gradient_rows, 'b h w c, b y x n -> b k l c n', (2, 3, 4, 5))


def _correlate(src, weights, *, out_hw, sign, offset, interpret):
  per_row = jnp.broadcast_to(weights, (src.shape[0], *weights.shape))
  return _correlate_local(src, per_row, tuple(out_hw), sign, tuple(offset), interpret)


def _weight_gradient(src, big, *, kernel_hw, sign, offset, interpret):
  return _weight_gradient_local(src, big, tuple(kernel_hw), sign, tuple(offset),
                                interpret).sum(axis=0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _few_channel_conv(x, kernel, padding, interpret):
  return _few_channel_fwd(x, kernel, padding, interpret)[0]


def _few_channel_fwd(x, kernel, padding, interpret):
  (pt, _), (pl, _) = padding
  if kernel.shape[-1] <= conv_triton.FEW:
    if uses_tap_planes(kernel.shape, x.dtype):
      y = _tap_planes_forward(x, kernel, padding)
    else:
      y = jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_NHWC)
  else:
    y = _correlate(x, kernel, out_hw=_out_hw(x.shape, kernel.shape[:2], padding), sign=1,
                   offset=(-pt, -pl), interpret=interpret)
  return y, (x, kernel)


def _few_channel_bwd(padding, interpret, residuals, g):
  x, kernel = residuals
  (pt, _), (pl, _) = padding
  g = g.astype(x.dtype)
  # dx[q] = Σ_taps g[q - tap + pad] · W[tap]ᵀ: a correlation of g, mirrored (sign -1).
  dx = _correlate(g, kernel.transpose(0, 1, 3, 2), out_hw=x.shape[1:3], sign=-1,
                  offset=(pt, pl), interpret=interpret)
  # The weight gradient gathers the patches of whichever side has the few channels.
  if x.shape[-1] <= g.shape[-1]:
    dkernel = _weight_gradient(x, g, kernel_hw=kernel.shape[:2], sign=1, offset=(-pt, -pl),
                               interpret=interpret)
  else:
    dkernel = _weight_gradient(g, x, kernel_hw=kernel.shape[:2], sign=-1, offset=(pt, pl),
                               interpret=interpret)
    dkernel = dkernel.transpose(0, 1, 3, 2)
  return dx, dkernel.astype(kernel.dtype)


_few_channel_conv.defvjp(_few_channel_fwd, _few_channel_bwd)


def few_channel_conv(x, kernel, padding, *, interpret=False):
  """Stride-1 NHWC × HWIO convolution (few channels on one side) by the `conv_triton` kernels.

  `interpret=True` runs the kernels in Pallas's interpreter (any backend; for tests).
  """
  if x.dtype != kernel.dtype:
    raise ValueError(f'few_channel_conv: input {x.dtype} and kernel {kernel.dtype} differ.')
  if not uses_kernels(x.shape, kernel.shape, (1, 1), padding, dimension_numbers=_NHWC):
    raise ValueError(
        f'few_channel_conv: input {x.shape} (NHWC), kernel {kernel.shape} (HWIO), padding '
        f'{padding}: needs a kernel larger than 1x1, a non-empty output, <= {conv_triton.FEW} '
        'channels on one side and a multiple of 16 on the other (see conv_triton.supports).')
  return _few_channel_conv(x, kernel, tuple(tuple(p) for p in padding), interpret)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None, **kwargs):
  """`jax.lax.conv_general_dilated`, with few-channel stride-1 convolutions of 16-bit inputs
  on the kernels on the backends in `KERNEL_BACKENDS` (the default backend decides, as for the
  trainer's step) unless the traced program chose `kernels='xla'`."""
  if (kernels.current() == 'auto' and jax.default_backend() in KERNEL_BACKENDS
      and kernels.targets_gpu(lhs) and lhs.dtype == rhs.dtype
      and lhs.dtype.name in KERNEL_DTYPES and kwargs.get('out_sharding') is None
      and uses_kernels(lhs.shape, rhs.shape, window_strides, padding, lhs_dilation, rhs_dilation,
                       dimension_numbers, feature_group_count, batch_group_count)):
    y = few_channel_conv(lhs, rhs, _padding_pairs(padding, lhs.shape, rhs.shape[:2]))
    return y if preferred_element_type is None else y.astype(preferred_element_type)
  return jax.lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
      batch_group_count=batch_group_count, precision=precision,
      preferred_element_type=preferred_element_type, **kwargs)

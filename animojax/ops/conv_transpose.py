"""Strided transposed convolutions whose gradients are strided convolutions.

A transposed convolution is the adjoint (input gradient) of a strided convolution `A_W`:
`y = A_Wᵀ x`. `jax.lax.conv_transpose` computes it as an input-dilated convolution, and JAX's
autodiff of that gives a weight gradient that XLA can only lower to a *forward* convolution with a
window as large as the image and the batch as its contraction (63×63 windows over 32 channels
for the WarpingNet decoder's 32² → 64² layers): cuDNN runs those at a few percent of the
tensor-core rate (≈ 5 ms of a 139 ms AniMo step on an H100, `benchmarks/RESULTS.md`). The
adjoint gives both gradients directly as strided-convolution ops that cuDNN has fast kernels for:

  forward          y  = A_Wᵀ x                  (lax's input-dilated convolution, as before)
  input gradient   dx = A_W dy                  (the strided convolution itself)
  weight gradient  dW = ∂_W ⟨A_W dy, x⟩         (that convolution's weight gradient, at dy, x)

The same sums of the same products: only the summation order differs from lax's autodiff.
"""

import functools

import jax

_NHWC = ('NHWC', 'HWIO', 'NHWC')


def _forward_padding(in_hw, kernel_hw, strides, padding):
  """Padding of the strided conv whose adjoint is `conv_transpose(..., padding)`.

  `padding` pads the stride-dilated input of the transposed conv (lax's convention), so the
  output is `(n - 1) * s + 1 + lo + hi - k + 1` long; the adjoint conv maps that back to `n`. Its
  leading pad is `k - 1 - lo`; the trailing pad is made equal to it (cuDNN's symmetric padding,
  no explicit pad op) whenever that gives the same output size, else the smallest that does.
  """
  pairs = []
  for n, k, s, (lo, hi) in zip(in_hw, kernel_hw, strides, padding):
    out = (n - 1) * s + 1 + lo + hi - k + 1
    before = k - 1 - lo
    after = before if (out + 2 * before - k) // s + 1 == n else (n - 1) * s + k - out - before
    pairs.append((before, after))
  return tuple(pairs)


def _strided_conv(u, kernel, strides, padding):
  return jax.lax.conv_general_dilated(u, kernel, strides, padding, dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_transpose(x, kernel, strides, padding):
  return _conv_transpose_fwd(x, kernel, strides, padding)[0]


def _conv_transpose_fwd(x, kernel, strides, padding):
  y = jax.lax.conv_transpose(x, kernel, strides, padding, dimension_numbers=_NHWC,
                             transpose_kernel=True)
  return y, (x, kernel)


def _conv_transpose_bwd(strides, padding, residuals, dy):
  x, kernel = residuals
  dy = dy.astype(x.dtype)
  pads = _forward_padding(x.shape[1:3], kernel.shape[:2], strides, padding)
  dx, conv_vjp = jax.vjp(lambda w: _strided_conv(dy, w, strides, pads), kernel)
  (dkernel,) = conv_vjp(x)
  return dx, dkernel


_conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


def conv_transpose(x, kernel, strides, padding):
  """`lax.conv_transpose(x, kernel, strides, padding, NHWC/HWIO, transpose_kernel=True)`.

  `kernel` is the adjoint strided conv's HWIO kernel, `(kh, kw, out, in)` (what PyTorch's
  ConvTranspose2d weight `(in, out, kh, kw)` becomes by `.transpose(2, 3, 1, 0)`); `padding` is
  two (lo, hi) pairs on the stride-dilated input.
  """
  if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[-1]:
    raise ValueError(f'conv_transpose: input {x.shape} must be NHWC and kernel {kernel.shape} '
                     '(kh, kw, out, in) with in = the input channels.')
  strides = tuple(int(s) for s in strides)
  padding = tuple(tuple(int(v) for v in p) for p in padding)
  if len(strides) != 2 or len(padding) != 2 or any(len(p) != 2 for p in padding):
    raise ValueError(f'conv_transpose: strides {strides} / padding {padding} must be 2-D.')
  if x.dtype != kernel.dtype:
    raise ValueError(f'conv_transpose: input {x.dtype} and kernel {kernel.dtype} differ.')
  return _conv_transpose(x, kernel, strides, padding)

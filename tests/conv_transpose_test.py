"""Tests for animojax.ops.conv_transpose: values and both gradients against torch's
conv_transpose2d (float64) and lax's autodiff, strides and paddings beyond the models' one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flax import nnx

from animojax.models.blocks import pirender as layers
from animojax.ops import conv_transpose
from tests.conftest import assert_close

DIMS = ('NHWC', 'HWIO', 'NHWC')


def _ours(x, kernel, strides, padding, cotangent):
  out, vjp = jax.vjp(lambda x, k: conv_transpose.conv_transpose(x, k, strides, padding), x, kernel)
  return (out, *vjp(cotangent))


def _lax(x, kernel, strides, padding, cotangent):
  out, vjp = jax.vjp(lambda x, k: jax.lax.conv_transpose(
      x, k, strides, padding, dimension_numbers=DIMS, transpose_kernel=True), x, kernel)
  return (out, *vjp(cotangent))


@pytest.mark.parametrize('size, kernel_size, stride, padding, output_padding', [
    ((4, 7), 3, 2, 1, 1),  # The WarpingNet decoder's ConvTranspose2d.
    ((5, 5), 3, 2, 1, 0),
    ((3, 4), 4, 2, 1, 0),
    ((4, 3), 3, 3, 0, 2),
    ((5, 6), 5, 2, 2, 1),
    ((6, 5), 3, 1, 1, 0),
])
def test_matches_torch_conv_transpose2d(size, kernel_size, stride, padding, output_padding):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, *size, 5))
  weight = rng.normal(size=(5, 4, kernel_size, kernel_size))  # torch's (in, out, kh, kw).
  x_t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
  w_t = torch.from_numpy(weight).requires_grad_()
  out_t = F.conv_transpose2d(x_t, w_t, stride=stride, padding=padding,
                             output_padding=output_padding)
  cotangent = rng.normal(size=out_t.shape)
  (out_t * torch.from_numpy(cotangent)).sum().backward()

  lo = kernel_size - 1 - padding
  pads = ((lo, lo + output_padding),) * 2
  out, dx, dkernel = _ours(jnp.asarray(x, jnp.float32),
                           jnp.asarray(weight.transpose(2, 3, 1, 0), jnp.float32),
                           (stride, stride), pads,
                           jnp.asarray(cotangent.transpose(0, 2, 3, 1), jnp.float32))
  assert_close(out, out_t.detach().numpy().transpose(0, 2, 3, 1), 1e-5)
  assert_close(dx, x_t.grad.numpy().transpose(0, 2, 3, 1), 1e-5)
  assert_close(dkernel, w_t.grad.numpy().transpose(2, 3, 1, 0), 1e-5)


@pytest.mark.parametrize('strides, padding', [
    ((2, 2), ((1, 2), (0, 1))),   # Asymmetric: the adjoint conv needs explicit trailing pads.
    ((3, 2), ((1, 1), (2, 0))),   # Trailing pad below the leading one.
    ((2, 3), ((2, 3), (3, 1))),   # Leading pad beyond k - 1 (a negative adjoint pad).
])
def test_matches_lax_autodiff(strides, padding):
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(2, 5, 4, 3)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 6, 3)), jnp.float32)
  ref_out = jax.lax.conv_transpose(x, kernel, strides, padding, dimension_numbers=DIMS,
                                   transpose_kernel=True)
  cotangent = jnp.asarray(rng.normal(size=ref_out.shape), jnp.float32)
  for got, want in zip(_ours(x, kernel, strides, padding, cotangent),
                       _lax(x, kernel, strides, padding, cotangent)):
    assert_close(got, want, 1e-5)


def test_bfloat16_keeps_dtypes():
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(1, 4, 4, 8)), jnp.bfloat16)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 8, 8)), jnp.bfloat16)
  pads = ((1, 2), (1, 2))
  cotangent = jnp.ones((1, 8, 8, 8), jnp.bfloat16)
  got = _ours(x, kernel, (2, 2), pads, cotangent)
  assert [a.dtype for a in got] == [jnp.bfloat16] * 3
  f32 = _lax(x.astype(jnp.float32), kernel.astype(jnp.float32), (2, 2), pads,
             cotangent.astype(jnp.float32))
  for a, b in zip(got, f32):
    assert_close(a, b, 0.02)


def test_bad_arguments_raise():
  x = jnp.zeros((1, 4, 4, 3))
  with pytest.raises(ValueError, match='in = the input channels'):
    conv_transpose.conv_transpose(x, jnp.zeros((3, 3, 4, 5)), (2, 2), ((1, 2), (1, 2)))
  with pytest.raises(ValueError, match='must be 2-D'):
    conv_transpose.conv_transpose(x, jnp.zeros((3, 3, 4, 3)), (2, 2, 2), ((1, 2), (1, 2)))
  with pytest.raises(ValueError, match='differ'):
    conv_transpose.conv_transpose(x, jnp.zeros((3, 3, 4, 3), jnp.bfloat16), (2, 2),
                                  ((1, 2), (1, 2)))


@pytest.mark.parametrize('kwargs', [dict(use_bias=False), dict(padding='SAME'),
                                    dict(transpose_kernel=False), dict(kernel_dilation=2)])
def test_layer_rejects_what_it_does_not_cover(kwargs):
  args = dict(padding=((1, 2), (1, 2)), transpose_kernel=True, rngs=nnx.Rngs(0)) | kwargs
  with pytest.raises(ValueError, match='layers.ConvTranspose needs'):
    layers.ConvTranspose(3, 4, (3, 3), (2, 2), **args)

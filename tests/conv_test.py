"""Tests for animojax.ops.conv: the few-output shift-sum convolution against torch's conv2d."""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from animojax.models import layers
from animojax.ops import conv
from tests.conftest import assert_close

DIMS = ('NHWC', 'HWIO', 'NHWC')


@pytest.fixture(autouse=True)
def shift_sum_on_this_backend(monkeypatch):
  """The shift-sum is only chosen on GPUs; test its maths on whatever backend runs the tests."""
  monkeypatch.setattr(conv, 'SHIFT_SUM_BACKENDS', (jax.default_backend(),))


def torch_conv(x, kernel, padding, cotangent):
  """conv2d output and d/d(x, kernel) of sum(out * cotangent), float64, NHWC / HWIO."""
  (pt, pb), (pl, pr) = padding
  def tensor(a, axes):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float64).transpose(axes)))

  x_t = tensor(x, (0, 3, 1, 2)).requires_grad_()
  k_t = tensor(kernel, (3, 2, 0, 1)).requires_grad_()
  out = F.conv2d(F.pad(x_t, (pl, pr, pt, pb)), k_t)
  (out * tensor(cotangent, (0, 3, 1, 2))).sum().backward()
  return (out.detach().numpy().transpose(0, 2, 3, 1), x_t.grad.numpy().transpose(0, 2, 3, 1),
          k_t.grad.numpy().transpose(2, 3, 1, 0))


def ours(x, kernel, padding, cotangent):
  def loss(x, kernel):
    out = conv.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=DIMS)
    return jnp.vdot(out.astype(jnp.float32), cotangent), out

  (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(x, kernel)
  return (out, *grads)


@pytest.mark.parametrize('cin,cout,k,padding', [
    (16, 3, 7, ((3, 3), (3, 3))),   # The EditingNet's RGB output conv.
    (24, 2, 7, ((3, 3), (3, 3))),   # The WarpingNet's flow head.
    (8, 3, 4, ((1, 2), (2, 1))),    # Even kernel, asymmetric padding.
    (8, 1, 3, ((0, 0), (2, 0))),    # One-sided padding: a smaller, shifted output.
])
def test_shift_sum_matches_torch_conv2d(cin, cout, k, padding):
  rng = np.random.default_rng(cin + cout + k)
  x = rng.standard_normal((2, 11, 9, cin)).astype(np.float32)
  kernel = (rng.standard_normal((k, k, cin, cout)) * 0.2).astype(np.float32)
  (pt, pb), (pl, pr) = padding
  out_shape = (2, 11 + pt + pb - k + 1, 9 + pl + pr - k + 1, cout)
  cotangent = rng.standard_normal(out_shape).astype(np.float32)
  assert conv.uses_shift_sum(x.shape, kernel.shape, (1, 1), padding, dimension_numbers=DIMS)
  with jax.default_matmul_precision('highest'):
    got = ours(x, kernel, padding, cotangent)
  for actual, expected in zip(got, torch_conv(x, kernel, padding, cotangent)):
    assert_close(actual, expected, 1e-5)


def test_shift_sum_bf16_keeps_float32_accumulation():
  """bf16 in and out, float32 inside: as close to the float64 result as cuDNN's bf16 conv."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 16, 16, 64)).astype(np.float32)
  kernel = (rng.standard_normal((7, 7, 64, 3)) * 0.02).astype(np.float32)
  padding = ((3, 3), (3, 3))
  cotangent = rng.standard_normal((2, 16, 16, 3)).astype(np.float32)
  x16, k16 = jnp.asarray(x, jnp.bfloat16), jnp.asarray(kernel, jnp.bfloat16)
  got = ours(x16, k16, padding, cotangent)
  expected = torch_conv(np.asarray(x16, np.float32), np.asarray(k16, np.float32), padding,
                        cotangent)
  assert [g.dtype for g in got] == [jnp.bfloat16] * 3
  for actual, want in zip(got, expected):
    # One bf16 rounding of the result (2⁻⁸ relative), not one per tap.
    assert_close(actual, want, 2**-7)


@pytest.mark.parametrize('kwargs', [
    dict(rhs_shape=(7, 7, 3, 64)),                          # Many outputs: cuDNN is fine.
    dict(rhs_shape=(1, 1, 64, 3)),                          # 1x1: already one GEMM.
    dict(rhs_shape=(3, 3, 3, 3)),                           # Few on both sides.
    dict(window_strides=(2, 2)),
    dict(rhs_dilation=(2, 2)),
    dict(feature_group_count=2, rhs_shape=(7, 7, 32, 2)),
    dict(dimension_numbers=('NCHW', 'OIHW', 'NCHW')),
    dict(padding=((7, 3), (3, 3))),                         # Padding of a kernel size or more.
])
def test_other_convolutions_go_to_lax(kwargs):
  args = dict(lhs_shape=(2, 16, 16, 64), rhs_shape=(7, 7, 64, 3), window_strides=(1, 1),
              padding=((3, 3), (3, 3)), dimension_numbers=DIMS)
  assert conv.uses_shift_sum(**args)
  args.update(kwargs)
  assert not conv.uses_shift_sum(**args)


def test_string_padding_and_fallback_values():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((2, 10, 10, 8)), jnp.float32)
  for kernel_shape, padding in (((3, 3, 8, 2), 'SAME'), ((4, 4, 8, 3), 'SAME'),
                                ((3, 3, 8, 2), 'VALID'), ((3, 3, 8, 16), 'SAME')):
    kernel = jnp.asarray(rng.standard_normal(kernel_shape), jnp.float32)
    with jax.default_matmul_precision('highest'):
      got = conv.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=DIMS)
      want = jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=DIMS,
                                          precision='highest')
    assert_close(got, want, 1e-5)


def test_model_heads_use_the_shift_sum(monkeypatch):
  """layers.conv2d routes the RGB / flow heads through it (no lax convolution in the jaxpr) on
  the backends that use it, and not elsewhere."""
  head = layers.conv2d(64, 3, 7, rngs=nnx.Rngs(0))
  jaxpr = jax.make_jaxpr(head)(jnp.zeros((1, 16, 16, 64)))
  assert 'conv_general_dilated' not in str(jaxpr)
  body = layers.conv2d(64, 64, 3, rngs=nnx.Rngs(0))
  assert 'conv_general_dilated' in str(jax.make_jaxpr(body)(jnp.zeros((1, 16, 16, 64))))
  monkeypatch.setattr(conv, 'SHIFT_SUM_BACKENDS', ())
  retraced = jax.make_jaxpr(lambda x: head(x))  # pylint: disable=unnecessary-lambda
  assert 'conv_general_dilated' in str(retraced(jnp.zeros((1, 16, 16, 64))))

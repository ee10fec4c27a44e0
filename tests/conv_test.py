"""Tests for animojax.ops.conv / conv_triton: the few-channel convolution kernels (run in Pallas's
interpreter here) against torch's conv2d, their routing, and their FLOP count."""

import functools

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from animojax.nets import vgg19
from animojax.models.blocks import pirender as layers
from animojax.ops import conv
from animojax.ops import conv_triton
from animojax.utils import flops
from tests.conftest import assert_close
from tests.conftest import collective_bytes

DIMS = ('NHWC', 'HWIO', 'NHWC')


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
    out = conv.few_channel_conv(x, kernel, padding, interpret=True)
    return jnp.vdot(out.astype(jnp.float32), cotangent), out

  (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(x, kernel)
  return (out, *grads)


@pytest.mark.parametrize('cin,cout,k,padding', [
    (3, 32, 7, ((3, 3), (3, 3))),   # The 7x7 input convs (RGB in).
    (3, 48, 3, ((1, 1), (1, 1))),   # VGG19's conv1_1 shape (a width that is not a power of 2).
    (16, 3, 7, ((3, 3), (3, 3))),   # The EditingNet's RGB output conv.
    (32, 2, 7, ((3, 3), (3, 3))),   # The WarpingNet's flow head, cuDNN forward.
    (256, 2, 7, ((3, 3), (2, 4))),  # Its real width: the tap-plane forward.
    (16, 3, 4, ((1, 2), (2, 1))),   # Even kernel, asymmetric padding.
    (2, 16, 3, ((0, 0), (2, 0))),   # One-sided padding: a smaller, shifted output.
    (16, 1, 3, ((4, 0), (0, 5))),   # Padding beyond the kernel: zero rows/columns.
])
def test_few_channel_conv_matches_torch_conv2d(cin, cout, k, padding):
  rng = np.random.default_rng(cin + cout + k)
  x = rng.standard_normal((2, 11, 9, cin)).astype(np.float32)
  kernel = (rng.standard_normal((k, k, cin, cout)) * 0.2).astype(np.float32)
  (pt, pb), (pl, pr) = padding
  out_shape = (2, 11 + pt + pb - k + 1, 9 + pl + pr - k + 1, cout)
  cotangent = rng.standard_normal(out_shape).astype(np.float32)
  assert conv.uses_kernels(x.shape, kernel.shape, (1, 1), padding, dimension_numbers=DIMS)
  with jax.default_matmul_precision('highest'):
    got = ours(x, kernel, padding, cotangent)
  for actual, expected in zip(got, torch_conv(x, kernel, padding, cotangent)):
    assert_close(actual, expected, 1e-5)


def test_tap_planes_only_where_no_larger_than_the_input():
  bf16 = jnp.bfloat16
  assert conv.uses_tap_planes((7, 7, 256, 2), bf16)  # The flow head.
  assert not conv.uses_tap_planes((7, 7, 64, 3), bf16)  # The RGB output.
  assert conv.uses_tap_planes((7, 7, 256, 2), jnp.float32)


@pytest.mark.parametrize('cin,cout', [(3, 64), (64, 3), (256, 2)])
def test_bf16_keeps_float32_accumulation(cin, cout):
  """bf16 in and out, float32 inside: as close to the float64 result as cuDNN's bf16 conv."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 16, 16, cin)).astype(np.float32)
  kernel = (rng.standard_normal((7, 7, cin, cout)) * 0.02).astype(np.float32)
  padding = ((3, 3), (3, 3))
  cotangent = rng.standard_normal((2, 16, 16, cout)).astype(np.float32)
  x16, k16 = jnp.asarray(x, jnp.bfloat16), jnp.asarray(kernel, jnp.bfloat16)
  got = ours(x16, k16, padding, cotangent)
  expected = torch_conv(np.asarray(x16, np.float32), np.asarray(k16, np.float32), padding,
                        cotangent)
  assert [g.dtype for g in got] == [jnp.bfloat16] * 3
  for actual, want in zip(got, expected):
    # One bf16 rounding of the result (2⁻⁸ relative), not one per tap.
    assert_close(actual, want, 2**-7)


def test_weight_gradient_sums_every_pixel_range():
  """Several pixel ranges (the last one partial) and channel blocks add up to the full sum."""
  rng = np.random.default_rng(2)
  src = jnp.asarray(rng.standard_normal((3, 7, 5, 2)), jnp.float32)
  big = jnp.asarray(rng.standard_normal((3, 7, 5, 40)), jnp.float32)
  want = conv_triton.weight_gradient(src, big, kernel_hw=(3, 3), sign=1, offset=(-1, -1),
                                     interpret=True, splits=1)
  got = conv_triton.weight_gradient(src, big, kernel_hw=(3, 3), sign=1, offset=(-1, -1),
                                    interpret=True, bm=16, bn=16, splits=4)
  patches = jax.lax.conv_general_dilated_patches(  # [B, H, W, C·kh·kw], channel-major
      src, (3, 3), (1, 1), ((1, 1), (1, 1)), dimension_numbers=DIMS,
      precision=jax.lax.Precision.HIGHEST)
  reference = jnp.einsum('bhwk,bhwn->kn', patches, big, precision='highest')
  reference = reference.reshape(2, 3, 3, 40).transpose(1, 2, 0, 3)
  assert_close(want, reference, 1e-5)
  assert_close(got, reference, 1e-5)


@pytest.mark.parametrize('kwargs', [
    dict(rhs_shape=(7, 7, 32, 64)),                         # Wide on both sides: cuDNN is fine.
    dict(rhs_shape=(1, 1, 64, 3)),                          # 1x1: already one GEMM.
    dict(rhs_shape=(3, 3, 3, 3)),                           # Few on both sides.
    dict(rhs_shape=(3, 3, 3, 40)),                          # Wide side not in blocks of 16.
    dict(window_strides=(2, 2)),
    dict(rhs_dilation=(2, 2)),
    dict(feature_group_count=2, rhs_shape=(7, 7, 32, 2)),
    dict(dimension_numbers=('NCHW', 'OIHW', 'NCHW')),
    dict(padding=((0, 0), (0, 0)), lhs_shape=(2, 5, 5, 64)),  # Kernel larger than the input.
])
def test_other_convolutions_go_to_lax(kwargs):
  args = dict(lhs_shape=(2, 16, 16, 64), rhs_shape=(7, 7, 64, 3), window_strides=(1, 1),
              padding=((3, 3), (3, 3)), dimension_numbers=DIMS)
  assert conv.uses_kernels(**args)
  args.update(kwargs)
  assert not conv.uses_kernels(**args)


@pytest.mark.parametrize('x_shape,kernel_shape', [
    ((2, 8, 8, 16), (3, 3, 16, 16)),   # wide on both sides
    ((2, 8, 8, 24), (3, 3, 24, 3)),    # wide side not a multiple of 16
    ((2, 8, 8, 3), (1, 1, 3, 16)),     # 1x1
    ((8, 8, 3), (3, 3, 3, 16)),        # not NHWC
])
def test_out_of_scope_shapes_are_a_clear_error(x_shape, kernel_shape):
  with pytest.raises(ValueError, match='few_channel_conv'):
    conv.few_channel_conv(jnp.zeros(x_shape), jnp.zeros(kernel_shape), ((1, 1), (1, 1)),
                          interpret=True)


def test_string_padding_and_fallback_values():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((2, 10, 10, 16)), jnp.float32)
  for kernel_shape, padding in (((3, 3, 16, 2), 'SAME'), ((4, 4, 16, 3), 'SAME'),
                                ((3, 3, 16, 2), 'VALID'), ((3, 3, 16, 16), 'SAME')):
    kernel = jnp.asarray(rng.standard_normal(kernel_shape), jnp.float32)
    with jax.default_matmul_precision('highest'):
      got = conv.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=DIMS)
      want = jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=DIMS,
                                          precision='highest')
      if kernel_shape[-1] <= conv_triton.FEW:
        pads = jax.lax.padtype_to_pads(x.shape[1:3], kernel_shape[:2], (1, 1), padding)
        kernels = conv.few_channel_conv(x, kernel, pads, interpret=True)
        assert_close(kernels, want, 1e-5)
    assert_close(got, want, 1e-5)


def _ops(fn, *args):
  """(our kernels in fn's jaxpr, lax convolutions in it)."""
  text = str(jax.make_jaxpr(fn)(*args))
  return text.count('name=few_channel_'), text.count('conv_general_dilated')


def test_models_route_few_channel_convs_to_the_kernels(monkeypatch):
  """On a kernel backend, bf16 RGB-in and RGB/flow-out convs (layers.conv2d, VGG19's conv1_1)
  trace to the kernels (a narrow output's forward stays cuDNN's); float32, wide convs and other
  backends keep lax."""
  monkeypatch.setattr(conv, 'KERNEL_BACKENDS', (jax.default_backend(),))
  def train(module):
    return lambda x: jax.grad(lambda x: module(x).astype(jnp.float32).sum())(x)
  head = layers.conv2d(64, 3, 7, rngs=nnx.Rngs(0))
  x64 = jnp.zeros((1, 16, 16, 64), jnp.float32)
  assert _ops(train(head), x64) == (0, 2)  # float32 keeps cuDNN
  # The train step casts the parameters to the policy's dtype (here by hand).
  nnx.update(head, jax.tree.map(lambda a: a.astype(jnp.bfloat16), nnx.state(head)))
  x64 = x64.astype(jnp.bfloat16)
  assert _ops(head, x64) == (0, 1)
  assert _ops(train(head), x64) == (2, 1)  # input and weight gradients
  rgb_in = layers.conv2d(3, 32, 7, rngs=nnx.Rngs(0))
  nnx.update(rgb_in, jax.tree.map(lambda a: a.astype(jnp.bfloat16), nnx.state(rgb_in)))
  # (a custom VJP traces both gradients; XLA drops the unused one)
  assert _ops(train(rgb_in), jnp.zeros((1, 16, 16, 3), jnp.bfloat16)) == (3, 0)
  body = layers.conv2d(64, 64, 3, rngs=nnx.Rngs(0))
  assert _ops(body, x64)[0] == 0
  loss_net = vgg19.VGG19Features(('relu1_1',), dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  assert _ops(loss_net, jnp.zeros((1, 16, 16, 3))) == (1, 0)
  monkeypatch.setattr(conv, 'KERNEL_BACKENDS', ())
  assert _ops(train(rgb_in), jnp.zeros((1, 16, 16, 3), jnp.bfloat16)) == (0, 2)


def test_flops_of_the_kernels_match_lax():
  """utils.flops counts the kernels (their cost estimates) as the convolution they compute."""
  for cin, cout in ((3, 16), (16, 3)):
    x, kernel = jnp.zeros((2, 8, 8, cin)), jnp.zeros((3, 3, cin, cout))
    def train(fn):
      return lambda x, k: jax.grad(lambda x, k: fn(x, k).sum(), argnums=(0, 1))(x, k)
    lax_conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)),
                                                         dimension_numbers=DIMS)
    ours_conv = lambda x, k: conv.few_channel_conv(x, k, ((1, 1), (1, 1)), interpret=True)
    want = flops.matmul_flops(jax.make_jaxpr(train(lax_conv))(x, kernel))
    assert want == 3 * 2 * (2 * 8 * 8) * 9 * cin * cout
    assert flops.matmul_flops(jax.make_jaxpr(train(ours_conv))(x, kernel)) == want


@pytest.mark.devices(8)
def test_batch_sharded_kernels_stay_on_each_device():
  """On 8 devices with the batch sharded: per-shard kernels, only the weight gradient's small
  all-reduce crosses devices, and the single-device values."""
  rng = np.random.default_rng(9)
  cases = [(3, 32, ((3, 3), (3, 3))), (32, 3, ((3, 3), (3, 3)))]
  mesh = jax.make_mesh((8,), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
  batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  for cin, cout, padding in cases:
    x = rng.standard_normal((16, 6, 5, cin)).astype(np.float32)
    kernel = (rng.standard_normal((7, 7, cin, cout)) * 0.2).astype(np.float32)
    cotangent = rng.standard_normal((16, 6, 5, cout)).astype(np.float32)
    fn = functools.partial(ours, padding=padding)
    sharded = jax.jit(lambda x, k, g: fn(x, k, cotangent=g),
                      in_shardings=(batch, replicated, batch))
    collectives = collective_bytes(sharded.lower(x, kernel, cotangent).compile().as_text())
    # The weight gradient's all-reduce (kernel-sized) and the loss scalar's, nothing batch-sized.
    assert set(collectives) <= {'all-reduce'}, collectives
    assert collectives.get('all-reduce', 0) <= 2 * kernel.nbytes + 64, collectives
    for got, want in zip(sharded(x, kernel, cotangent), ours(x, kernel, padding, cotangent)):
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)

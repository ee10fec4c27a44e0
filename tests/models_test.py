"""Tests for the AniMo model and its PIRenderer blocks.

Numerical parity is checked against small PyTorch re-implementations written here from the public
code (RenYurui/PIRender generators/base_function.py + face_model.py, kangyeolk/AnimeCeleb
Animo/models/animo/model.py), with the PyTorch module names, so the test also pins the mapping from
PyTorch checkpoint keys to NNX parameter paths (`animojax.convert.animo_torch`, used here).
torch is a test-only dependency.
"""

import copy
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from torch import nn

import animojax.models.animo as animo_package
from animojax.convert import animo_torch
from animojax.models.animo import animo
from animojax.models.animo import editing
from animojax.models.blocks import initializers
from animojax.models.blocks import pirender as layers
from animojax.models.animo import motion
from animojax.models.animo import warping
from tests import torch_reference_animo as tref
from tests.conftest import assert_close

TINY = tref.TINY


@functools.partial(jax.jit, static_argnames=('graphdef', 'domain', 'stage'))
def _apply(graphdef, state, source, pose, *, domain, stage):
  """The functional pattern the trainer uses; jitted because eager NNX forwards are slow on CPU."""
  return nnx.merge(graphdef, state)(source, pose, domain=domain, stage=stage)


def _run(model, source, pose, **kwargs):
  graphdef, state = nnx.split(model)
  return _apply(graphdef, state, jnp.asarray(source), jnp.asarray(pose), **kwargs)


@pytest.fixture(scope='module')
def tiny_model():
  # Module-scoped: the first NNX init compiles one random-normal program per weight shape.
  return animo.AniMo(variant='demo', rngs=nnx.Rngs(0), **TINY)


# ----------------------------------------------------------------------------------------------
# Per-block parity.


def test_conv2d_stride2_padding_matches_torch():
  conv = layers.conv2d(3, 5, 4, stride=2, padding=1, rngs=nnx.Rngs(0))
  ref = tref.randomize(nn.Conv2d(3, 5, 4, 2, 1))
  conv.kernel.value = jnp.asarray(ref.weight.detach().numpy().transpose(2, 3, 1, 0))
  conv.bias.value = jnp.asarray(ref.bias.detach().numpy())
  x = np.random.default_rng(0).normal(size=(2, 8, 6, 3)).astype(np.float32)
  assert_close(conv(jnp.asarray(x)), tref.nhwc(ref(tref.nchw(x))), 1e-5)


def test_conv_transpose_matches_torch():
  convt = layers.conv_transpose2d(3, 5, rngs=nnx.Rngs(0))
  ref = tref.randomize(tref.tconvt(3, 5))
  assert convt.kernel.shape == (3, 3, 5, 3)
  convt.kernel.value = jnp.asarray(ref.weight.detach().numpy().transpose(2, 3, 1, 0))
  convt.bias.value = jnp.asarray(ref.bias.detach().numpy())
  x = np.random.default_rng(1).normal(size=(2, 4, 7, 3)).astype(np.float32)
  g = np.random.default_rng(2).normal(size=(2, 8, 14, 5)).astype(np.float32)
  x_t = tref.nchw(x).requires_grad_()
  out_t = ref(x_t)
  out_t.backward(tref.nchw(g))
  state = nnx.state(convt)
  graphdef = nnx.graphdef(convt)
  out, vjp = jax.vjp(lambda s, v: nnx.merge(graphdef, s)(v), state, jnp.asarray(x))
  assert out.shape == (2, 8, 14, 5)
  assert_close(out, tref.nhwc(out_t), 1e-5)
  # Gradients by the adjoint strided conv (ops.conv_transpose), against torch's autograd.
  d_state, dx = vjp(jnp.asarray(g))
  assert_close(dx, tref.nhwc(x_t.grad), 1e-5)
  assert_close(d_state['kernel'].value, ref.weight.grad.numpy().transpose(2, 3, 1, 0), 1e-5)
  assert_close(d_state['bias'].value, ref.bias.grad.numpy(), 1e-5)


def test_instance_norm_matches_torch():
  x = np.random.default_rng(2).normal(2.0, 3.0, size=(2, 5, 6, 4)).astype(np.float32)
  expected = nn.InstanceNorm2d(4, affine=False)(tref.nchw(x))
  assert_close(layers.InstanceNorm()(jnp.asarray(x)), tref.nhwc(expected), 1e-5)


def test_layer_norm2d_matches_torch():
  norm = layers.LayerNorm2d(4)
  ref = tref.randomize(tref.TLayerNorm2d(4))
  norm.scale.value = jnp.asarray(ref.weight.detach().numpy().reshape(-1))
  norm.bias.value = jnp.asarray(ref.bias.detach().numpy().reshape(-1))
  # Per-channel offsets: a per-channel (InstanceNorm-like) normaliser would give another result.
  x = (np.random.default_rng(3).normal(size=(2, 5, 6, 4)) + np.arange(4) * 3).astype(np.float32)
  assert_close(norm(jnp.asarray(x)), tref.nhwc(ref(tref.nchw(x))), 1e-5)


def _norm_and_grad_64(x, g, axes):
  """Float64 instance/layer norm (biased variance, eps 1e-5) and its input gradient."""
  x, g = x.astype(np.float64), g.astype(np.float64)
  x_hat = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-5)
  inv_std = 1 / np.sqrt(x.var(axes, keepdims=True) + 1e-5)
  dx = inv_std * (g - g.mean(axes, keepdims=True)
                  - x_hat * (g * x_hat).mean(axes, keepdims=True))
  return x_hat, dx


@pytest.mark.parametrize('loc,spread', [(2.0, 3.0), (1000.0, 0.1)])
def test_norm_and_gradients_match_torch(loc, spread):
  """The one-pass statistics and hand-written VJP. Where the mean dwarfs the spread float32 itself
  loses digits (x's rounding is 6e-4 of its spread here): there we must be at least as close to
  float64 as PyTorch is."""
  rng = np.random.default_rng(6)
  x = rng.normal(loc, spread, size=(2, 5, 6, 4)).astype(np.float32)
  g = rng.normal(size=x.shape).astype(np.float32)
  for ours, theirs, axes in ((layers.InstanceNorm(), nn.InstanceNorm2d(4, affine=False), (1, 2)),
                             (layers.LayerNorm2d(4), tref.TLayerNorm2d(4), (1, 2, 3))):
    x_t = tref.nchw(x).requires_grad_()
    out_t = theirs(x_t)
    (out_t * tref.nchw(g)).sum().backward()
    out, vjp = jax.vjp(ours, jnp.asarray(x))
    got = (np.asarray(out), np.asarray(vjp(jnp.asarray(g))[0]))
    torch_values = (tref.nhwc(out_t), tref.nhwc(x_t.grad))
    if loc < 100:
      for a, b in zip(got, torch_values):
        assert_close(a, b, 1e-5)
    else:
      for a, b, exact in zip(got, torch_values, _norm_and_grad_64(x, g, axes)):
        assert np.abs(a - exact).max() <= np.abs(b - exact).max(), type(ours).__name__


def test_norm_keeps_bf16_and_tracks_float32():
  x = np.random.default_rng(7).normal(size=(2, 8, 8, 4)).astype(np.float32)
  grad = lambda dtype: jax.grad(lambda v: jnp.sum(layers.InstanceNorm()(v).astype(jnp.float32)
                                                  * jnp.arange(4.0)))(jnp.asarray(x, dtype))
  assert layers.InstanceNorm()(jnp.asarray(x, jnp.bfloat16)).dtype == jnp.bfloat16
  assert grad(jnp.bfloat16).dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(grad(jnp.bfloat16), np.float32),
                             np.asarray(grad(jnp.float32)), atol=0.05)


def test_adain_matches_torch():
  adain = layers.ADAIN(6, 16, rngs=nnx.Rngs(0))
  ref = tref.randomize(tref.TADAIN(6, 16))
  rng = np.random.default_rng(4)
  x = rng.normal(size=(2, 5, 4, 6)).astype(np.float32)
  z = rng.normal(size=(2, 16)).astype(np.float32)
  tref.load_torch_submodule(adain, ref.state_dict(), 'edit')
  assert_close(adain(jnp.asarray(x), jnp.asarray(z)), tref.nhwc(ref(tref.nchw(x), torch.from_numpy(z))),
                1e-5)


def _flat_grads(module_grads):
  return {'.'.join(map(str, k)): np.asarray(v.value)
          for k, v in nnx.to_flat_state(module_grads)}


@pytest.mark.parametrize('kind', ['layer_norm2d', 'adain'])
def test_norm_affine_gradients_match_torch(kind):
  """LayerNorm2d / ADAIN (ADAIN: one hand-written VJP for the norm and its affine): every
  gradient."""
  rng = np.random.default_rng(8)
  x = rng.normal(1.0, 2.0, size=(2, 5, 4, 6)).astype(np.float32)
  z = rng.normal(size=(2, 16)).astype(np.float32)
  g = rng.normal(size=x.shape).astype(np.float32)
  if kind == 'adain':
    ours, ref = layers.ADAIN(6, 16, rngs=nnx.Rngs(0)), tref.randomize(tref.TADAIN(6, 16)).double()
    tref.load_torch_submodule(ours, ref.state_dict(), 'edit')
    inputs_t = (tref.nchw(x).double().requires_grad_(), torch.from_numpy(z).double())
  else:
    ours, ref = layers.LayerNorm2d(6), tref.randomize(tref.TLayerNorm2d(6)).double()
    ours.scale.value = jnp.asarray(ref.weight.detach().numpy().reshape(-1), jnp.float32)
    ours.bias.value = jnp.asarray(ref.bias.detach().numpy().reshape(-1), jnp.float32)
    inputs_t = (tref.nchw(x).double().requires_grad_(),)
  out_t = ref(*inputs_t)
  (out_t * tref.nchw(g).double()).sum().backward()

  graphdef, state = nnx.split(ours)
  args = (jnp.asarray(x),) + ((jnp.asarray(z),) if kind == 'adain' else ())
  out, vjp = jax.vjp(lambda s, v: nnx.merge(graphdef, s)(v, *args[1:]), state, args[0])
  d_state, dx = vjp(jnp.asarray(g))
  assert_close(out, tref.nhwc(out_t.detach()), 1e-5)
  assert_close(dx, tref.nhwc(inputs_t[0].grad), 1e-5)
  grads = _flat_grads(d_state)
  if kind == 'adain':
    for name in ('mlp_shared', 'mlp_gamma', 'mlp_beta'):
      torch_name = 'mlp_shared.0' if name == 'mlp_shared' else name
      layer = ref.get_submodule(torch_name)
      assert_close(grads[f'{name}.kernel'], layer.weight.grad.numpy().T, 1e-5)
      assert_close(grads[f'{name}.bias'], layer.bias.grad.numpy(), 1e-5)
  else:
    assert_close(grads['scale'], ref.weight.grad.numpy().reshape(-1), 1e-5)
    assert_close(grads['bias'], ref.bias.grad.numpy().reshape(-1), 1e-5)


def test_fine_adain_res_block_reproduces_dead_branch():
  block = editing.FineADAINResBlock(6, 16, rngs=nnx.Rngs(0))
  ref = tref.randomize(tref.TFineRes(6, 16))
  tref.load_torch_submodule(block, ref.state_dict(), 'edit')
  rng = np.random.default_rng(5)
  x = rng.normal(size=(2, 5, 4, 6)).astype(np.float32)
  z = rng.normal(size=(2, 16)).astype(np.float32)
  out = block(jnp.asarray(x), jnp.asarray(z))
  assert_close(out, tref.nhwc(ref(tref.nchw(x), torch.from_numpy(z))), 1e-5)
  # conv1/norm1 exist (checkpoints load) but cannot influence the output.
  block.conv1.kernel.value = block.conv1.kernel.value + 1.0
  block.norm1.mlp_gamma.bias.value = block.norm1.mlp_gamma.bias.value + 1.0
  np.testing.assert_array_equal(block(jnp.asarray(x), jnp.asarray(z)), out)


def test_motion_net_matches_torch():
  net = motion.MotionNet(70, 32, 3, rngs=nnx.Rngs(0))
  ref = tref.randomize(tref.TMappingNet(70, 32))
  tref.load_torch_submodule(net, ref.state_dict(), 'motion')
  pose = np.random.default_rng(6).normal(size=(3, 70)).astype(np.float32)
  assert_close(net(jnp.asarray(pose)), ref(torch.from_numpy(pose)).detach().numpy(), 1e-5)


def test_initialisation_follows_the_papers(tiny_model):
  net = tiny_model.warp_anime
  kernels = [v for p, v in nnx.to_flat_state(nnx.state(net, nnx.Param)) if p[-1] == 'kernel']
  biases = [v for p, v in nnx.to_flat_state(nnx.state(net, nnx.Param)) if p[-1] == 'bias']
  flat = np.concatenate([np.asarray(k.value).ravel() for k in kernels])
  assert abs(flat.std() - 0.02) < 1e-3 and abs(flat.mean()) < 1e-3
  assert all(not np.any(np.asarray(b.value)) for b in biases)
  np.testing.assert_array_equal(net.flow_norm.scale.value, 1.0)


# ----------------------------------------------------------------------------------------------
# Whole-network parity (PyTorch re-implementation with AniMo's checkpoint key names).


def _assert_float32_close(actual, torch_float32, float64, rtol=1e-5):
  """`actual` is within max(rtol, 2 × torch float32's error) of the float64 result (relative to
  the data's scale, as `assert_close`)."""
  float64 = np.asarray(float64, np.float64)
  scale = max(1.0, float(np.abs(float64).max()))
  torch_err = float(np.abs(np.asarray(torch_float32, np.float64) - float64).max()) / scale
  assert_close(actual, float64, max(rtol, 2 * torch_err))


def test_animo_matches_torch_reference_end_to_end(tiny_model):
  nets = tref.tiny_torch_animo()
  # The checkpoint in the official model-pack key layout, converted by the library converter.
  state = {f'{name}.{k}': v.detach().numpy() for name, net in nets.items()
           for k, v in net.state_dict().items()}
  conversion = animo_torch.convert_state_dict(state)
  assert not conversion.unconverted and conversion.layout == 'animo'
  model = nnx.clone(tiny_model)
  assert tref.assign_all(model, conversion.params) == len(state)

  rng = np.random.default_rng(7)
  source = rng.uniform(-1, 1, size=(2, 64, 64, 3)).astype(np.float32)
  pose = rng.normal(size=(2, 70)).astype(np.float32)
  for domain, suffix in (('anime', 'anime'), ('human', 'vox')):
    out = _run(model, source, pose, domain=domain, stage='gen')
    jax_flow = torch.from_numpy(np.array(np.transpose(out['flow'], (0, 3, 1, 2))))
    with torch.no_grad():
      z = nets['mapping_net_shared'](torch.from_numpy(pose))
      flow, warped = nets[f'warpping_net_{suffix}'](tref.nchw(source), z)
      fake = nets[f'editing_net_{suffix}'](tref.nchw(source), flow, z)
      # Descriptor and flow against the float64 network, allowing JAX twice the error of torch's
      # own float32 network: how far float32 lands from float64 depends on the CPU's kernels
      # (flow, scale 7.4: torch 1.3e-4 / JAX 1.3e-5 on an Intel Xeon, 9.0e-5 / 9.8e-5 on an
      # AMD EPYC), so no fixed tolerance both holds everywhere and catches real differences.
      z64 = copy.deepcopy(nets['mapping_net_shared']).double()(torch.from_numpy(pose).double())
      flow64, _ = copy.deepcopy(nets[f'warpping_net_{suffix}']).double()(
          tref.nchw(source).double(), z64)
      # Each stage again from JAX's flow: a random-noise source turns a 1e-5 pixel flow difference
      # into ~1e-4 image differences, which would hide real errors behind a loose tolerance.
      warped_from_jax_flow = tref.t_warp(tref.nchw(source), tref.t_deformation(jax_flow))
      fake_from_jax_flow = nets[f'editing_net_{suffix}'](tref.nchw(source), jax_flow, z)
    # The flow must be non-trivial (several pixels) for the warp comparison to mean something.
    assert float(flow64.abs().mean()) > 0.5
    _assert_float32_close(out['descriptor'], z.numpy(), z64.numpy())
    _assert_float32_close(out['flow'], tref.nhwc(flow), tref.nhwc(flow64))
    _assert_float32_close(out['deformation'], tref.t_deformation(flow).numpy(),
                          tref.t_deformation(flow64).numpy())
    # fp32 rounding of the deformation (~1 ulp) times the noise image's gradient (~2 per pixel)
    # times 32 pixels per unit: both torch fp32 and JAX sit ~1e-5 away from a float64 warp.
    assert_close(out['warp_image'], tref.nhwc(warped_from_jax_flow), 5e-5)
    assert_close(out['fake_image'], tref.nhwc(fake_from_jax_flow), 1e-4)
    assert_close(out['warp_image'], tref.nhwc(warped), 1e-3)
    assert_close(out['fake_image'], tref.nhwc(fake), 1e-3)
    assert float(np.abs(out['fake_image']).max()) <= 1.0  # tanh output


def test_paper_variant_parameter_count_matches_torch_and_256_shapes():
  abstract = nnx.eval_shape(lambda: animo.AniMo(variant='paper', rngs=initializers.KeyStream(0)))
  graphdef, state = nnx.split(abstract)
  counts = {name: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state[name]))
            for name in ('motion', 'warp_anime', 'warp_human', 'edit_anime', 'edit_human')}
  torch_counts = {
      'motion': tref.TMappingNet(70, 256),
      'warp_anime': tref.TWarpingNet(256, 32, 256),
      'edit_anime': tref.TEditingNet(256, 64, 256),
  }
  for name, net in torch_counts.items():
    assert counts[name] == sum(p.numel() for p in net.parameters()), name
  assert counts['warp_human'] == counts['warp_anime']
  assert counts['edit_human'] == counts['edit_anime']
  assert sum(counts.values()) == 43_791_626

  def forward(state, source, pose):
    return nnx.merge(graphdef, state)(source, pose, domain='human', stage='gen')

  out = jax.eval_shape(forward, state, jax.ShapeDtypeStruct((2, 256, 256, 3), jnp.float32),
                       jax.ShapeDtypeStruct((2, 70), jnp.float32))
  assert {k: v.shape for k, v in out.items()} == {
      'descriptor': (2, 256), 'flow': (2, 64, 64, 2), 'deformation': (2, 64, 64, 2),
      'warp_image': (2, 256, 256, 3), 'fake_image': (2, 256, 256, 3)}


# ----------------------------------------------------------------------------------------------
# AniMo API.


@pytest.mark.parametrize('domain', animo.DOMAINS)
@pytest.mark.parametrize('stage', animo.STAGES)
def test_animo_output_shapes(tiny_model, domain, stage):
  graphdef, state = nnx.split(tiny_model)
  out = jax.eval_shape(functools.partial(_apply, graphdef, domain=domain, stage=stage), state,
                       jnp.zeros((2, 64, 64, 3)), jnp.zeros((2, 70)))
  expected = {'descriptor': (2, 16), 'flow': (2, 16, 16, 2), 'deformation': (2, 16, 16, 2),
              'warp_image': (2, 64, 64, 3)}
  if stage == 'gen':
    expected['fake_image'] = (2, 64, 64, 3)
  assert {k: v.shape for k, v in out.items()} == expected
  assert all(v.dtype == jnp.float32 for v in out.values())


def test_functional_split_merge_jit_and_grad(tiny_model):
  graphdef, state = nnx.split(tiny_model)
  rng = np.random.default_rng(9)
  source = jnp.asarray(rng.uniform(-1, 1, size=(2, 64, 64, 3)), jnp.float32)
  pose = jnp.asarray(rng.normal(size=(2, 70)), jnp.float32)

  # (Numerical correctness of the jitted forward is checked against torch in the parity test.)
  out = _apply(graphdef, state, source, pose, domain='human', stage='warp')
  assert set(out) == {'descriptor', 'flow', 'deformation', 'warp_image'}
  assert all(np.isfinite(np.asarray(v)).all() for v in out.values())

  def loss(state):
    out = nnx.merge(graphdef, state)(source, pose, domain='anime', stage='gen')
    return jnp.mean(jnp.abs(out['fake_image'] - source))

  grads = jax.jit(jax.grad(loss))(state)
  norms = {name: float(_global_norm(grads[name]))
           for name in ('motion', 'warp_anime', 'warp_human', 'edit_anime', 'edit_human')}
  assert np.isfinite(list(norms.values())).all()
  # The generator loss reaches the shared motion net and (through the deformation) the warp net.
  assert norms['motion'] > 0 and norms['warp_anime'] > 0 and norms['edit_anime'] > 0
  assert norms['warp_human'] == 0 and norms['edit_human'] == 0
  # PIRender's dead branch gets no gradient, as in PyTorch.
  dead = grads['edit_anime']['decoder']['res0']['res0']
  assert float(_global_norm(dead['conv1'])) == 0 and float(_global_norm(dead['norm1'])) == 0


def _global_norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def test_motion_net_is_shared_between_domains(tiny_model):
  motion_nets = [p for p, node in nnx.iter_graph(tiny_model) if isinstance(node, motion.MotionNet)]
  assert motion_nets == [('motion',)]
  # Same inputs as the functional test, so the compiled programs are reused.
  rng = np.random.default_rng(9)
  source = jnp.asarray(rng.uniform(-1, 1, size=(2, 64, 64, 3)), jnp.float32)
  pose = jnp.asarray(rng.normal(size=(2, 70)), jnp.float32)
  anime = _run(tiny_model, source, pose, domain='anime', stage='gen')
  human = _run(tiny_model, source, pose, domain='human', stage='warp')
  np.testing.assert_array_equal(anime['descriptor'], human['descriptor'])
  assert not np.allclose(anime['flow'], human['flow'])  # ... while the warping nets differ.


def test_edit_prefixes_and_filter_select_the_editing_nets(tiny_model):
  assert animo.EDIT_PREFIXES == ('edit_anime', 'edit_human')
  edit_state, rest = nnx.state(tiny_model, animo.edit_filter(), ...)
  assert set(edit_state.keys()) == set(animo.EDIT_PREFIXES)
  assert set(rest.keys()) == {'motion', 'warp_anime', 'warp_human'}
  paths = [p for p, _ in nnx.to_flat_state(nnx.state(tiny_model, nnx.Param))]
  assert {p[0] for p in paths if animo.is_edit_path(p)} == set(animo.EDIT_PREFIXES)


def test_warping_net_drops_a_fourth_channel_before_warping():
  net = nnx.eval_shape(lambda: warping.WarpingNet(4, 16, 4, 8, rngs=initializers.KeyStream(0)))
  graphdef, state = nnx.split(net)
  out = jax.eval_shape(lambda state, x, z: nnx.merge(graphdef, state)(x, z), state,
                       jnp.zeros((1, 32, 32, 4)), jnp.zeros((1, 16)))
  assert out['warp_image'].shape == (1, 32, 32, 3)
  assert net.hourglass.encoder.input_layer.kernel.shape == (7, 7, 4, 4)


@pytest.mark.parametrize('source_shape,pose_shape,kwargs,match', [
    ((2, 64, 64, 4), (2, 70), {}, r'\[B, H, W, 3\]'),
    ((2, 64, 64), (2, 70), {}, r'\[B, H, W, 3\]'),
    ((2, 48, 64, 3), (2, 70), {}, 'divisible by 32'),
    ((2, 64, 64, 3), (2, 69), {}, r'pose must be \[B, 70\]'),
    ((2, 64, 64, 3), (3, 70), {}, 'B = 2'),
    ((2, 64, 64, 3), (2, 70), {'domain': 'cartoon'}, 'domain'),
    ((2, 64, 64, 3), (2, 70), {'stage': 'edit'}, 'stage'),
])
def test_animo_rejects_bad_input(tiny_model, source_shape, pose_shape, kwargs, match):
  kwargs = {'domain': 'anime', **kwargs}
  with pytest.raises(ValueError, match=match):
    tiny_model(jnp.zeros(source_shape), jnp.zeros(pose_shape), **kwargs)


def test_animo_rejects_bad_config():
  with pytest.raises(ValueError, match='unknown variant'):
    animo.AniMo(variant='huge', rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match='unknown override'):
    animo.AniMo(variant='demo', rngs=nnx.Rngs(0), warp_channels=3)
  with pytest.raises(ValueError, match='padding_mode'):
    warping.WarpingNet(padding_mode='wrap', rngs=nnx.Rngs(0))


def test_package_exports():
  assert animo_package.AniMo is animo.AniMo
  assert set(animo_package.VARIANTS) == {'paper', 'demo'}

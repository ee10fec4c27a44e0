"""Tests the VGG19 converter, feature extractor and PIRender perceptual loss against torch."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from animojax.convert import vgg19 as vgg19_convert
from animojax.losses import perceptual
from animojax.nets import vgg19
from tests.conftest import RUN_FAST_COMPILER_OPTIONS

# torchvision's vgg19().features layer list (cfg 'E'); torchvision itself is not installed.
_CFG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M',
        512, 512, 512, 512, 'M')
_TAP_INDEX = {'relu1_1': 1, 'relu2_1': 6, 'relu3_1': 11, 'relu4_1': 20, 'relu5_1': 29}


def _torch_vgg19_features() -> torch.nn.Sequential:
  layers, cin = [], 3
  for v in _CFG:
    if v == 'M':
      layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
    else:
      layers += [torch.nn.Conv2d(cin, v, kernel_size=3, padding=1), torch.nn.ReLU(inplace=True)]
      cin = v
  features = torch.nn.Sequential(*layers)
  g = torch.Generator().manual_seed(0)
  with torch.no_grad():
    for layer in features:
      if isinstance(layer, torch.nn.Conv2d):
        fan_in = layer.weight[0].numel()
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * (2 / fan_in) ** 0.5)
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=g) * 0.1)
  return features.eval()


class _TorchVGG(torch.nn.Module):
  """Holds `features` (+ a classifier that the converter must ignore) like torchvision's VGG."""

  def __init__(self):
    super().__init__()
    self.features = _torch_vgg19_features()
    self.classifier = torch.nn.Sequential(torch.nn.Linear(8, 4))

  def taps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {}
    names = {i: n for n, i in _TAP_INDEX.items()}
    for i, layer in enumerate(self.features):
      x = layer(x)
      if i in names:
        out[names[i]] = x
      if i == max(names):
        return out
    return out


def _imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
  mean = torch.tensor(vgg19.IMAGENET_MEAN).view(1, 3, 1, 1)
  std = torch.tensor(vgg19.IMAGENET_STD).view(1, 3, 1, 1)
  return ((x + 1) / 2 - mean) / std


def _gram(f: torch.Tensor) -> torch.Tensor:
  b, c, h, w = f.shape
  f = f.view(b, c, h * w)
  return f.bmm(f.transpose(1, 2)) / (h * w * c)


def _torch_pirender_loss(net: _TorchVGG, inp, target, num_scales, style_weight):
  """Re-implements `RenYurui/PIRender: loss/perceptual.py` (VGG19, L1, all taps weight 1)."""
  inp, target = _imagenet_normalize(inp), _imagenet_normalize(target)
  loss, style = 0, 0
  for scale in range(num_scales):
    fi, ft = net.taps(inp), net.taps(target)
    for name in _TAP_INDEX:
      loss = loss + F.l1_loss(fi[name], ft[name].detach())
      if scale == 0:
        style = style + F.l1_loss(_gram(fi[name]), _gram(ft[name].detach()))
    if scale != num_scales - 1:
      inp = F.interpolate(inp, mode='bilinear', scale_factor=0.5, align_corners=False,
                          recompute_scale_factor=True)
      target = F.interpolate(target, mode='bilinear', scale_factor=0.5, align_corners=False,
                             recompute_scale_factor=True)
  return loss + style * style_weight


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
  """A random torch VGG19, saved like torchvision's file and converted with our CLI."""
  net = _TorchVGG()
  tmp = tmp_path_factory.mktemp('vgg19')
  src, out = tmp / 'vgg19-random.pth', tmp / 'vgg19.npz'
  torch.save(net.state_dict(), src)
  vgg19_convert.main(['--src', str(src), '--out', str(out)])
  return net, str(out)


def _images(shape, seed):
  rng = np.random.default_rng(seed)
  x = rng.uniform(-1, 1, shape).astype(np.float32)
  y = np.clip(x + rng.normal(0, 0.5, shape), -1, 1).astype(np.float32)
  return x, y


def _nchw(x: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def test_converted_taps_match_torch(converted):
  net, npz = converted
  fn, params = vgg19.make_vgg19_features(npz)
  x, _ = _images((2, 64, 64, 3), 0)
  ours = jax.jit(fn)(params, jnp.asarray(x))
  with torch.no_grad():
    theirs = net.taps(_imagenet_normalize(_nchw(x)))
  assert list(ours) == list(vgg19.TAPS)
  for name, expected in theirs.items():
    expected = expected.numpy().transpose(0, 2, 3, 1)
    got = np.asarray(ours[name])
    assert got.shape == expected.shape, name
    rel = np.abs(got - expected).max() / np.abs(expected).max()
    assert rel <= 1e-4, (name, rel)


def test_perceptual_and_style_loss_match_pirender(converted):
  net, npz = converted
  loss = perceptual.make_loss('vgg19', npz)
  x, y = _images((2, 64, 64, 3), 1)
  # 64x64 allows 3 scales (8x8 at a 4th scale cannot reach relu5_1, in torch either).
  num_scales, style_weight = 3, 250.0

  def ours(x, y):
    return loss(loss.params, x, y, num_scales=num_scales, style_weight=style_weight)

  (value, aux), grad = jax.jit(jax.value_and_grad(ours, has_aux=True),
                               compiler_options=RUN_FAST_COMPILER_OPTIONS)(jnp.asarray(x),
                                                                           jnp.asarray(y))
  x_t = _nchw(x).requires_grad_(True)
  expected = _torch_pirender_loss(net, x_t, _nchw(y), num_scales, style_weight)
  expected.backward()
  np.testing.assert_allclose(float(value), expected.item(), rtol=1e-4)
  np.testing.assert_allclose(float(aux['perceptual'] + style_weight * aux['style']),
                             expected.item(), rtol=1e-4)
  # The gradient against a float64 torch reference, as a norm: at this input the coarse scales'
  # float32 gradient is ill-conditioned (torch's own float32 gradient of the 2x-downsampled
  # pyramid is 3.5e-3 off float64 in its largest entry), so a few entries move with rounding
  # while the whole stays put. Measured on an AVX2 EPYC: 7e-4 (XLA), 6e-6 (torch float32); a
  # wrong tap, weight layout or scale is off by O(1).
  x64 = _nchw(x).double().requires_grad_(True)
  _torch_pirender_loss(copy.deepcopy(net).double(), x64, _nchw(y).double(), num_scales,
                       style_weight).backward()
  expected_grad = x64.grad.numpy().transpose(0, 2, 3, 1)
  rel = np.linalg.norm(np.asarray(grad) - expected_grad) / np.linalg.norm(expected_grad)
  assert rel <= 2e-3, rel



@pytest.mark.parametrize('shape', [(2, 64, 64, 3), (1, 33, 45, 3), (1, 7, 5, 2), (1, 2, 3, 1)])
def test_downsample_matches_torch_interpolate(shape):
  x, _ = _images(shape, 2)
  ours = np.asarray(perceptual.downsample_half(jnp.asarray(x)))
  theirs = F.interpolate(_nchw(x), scale_factor=0.5, mode='bilinear', align_corners=False,
                         recompute_scale_factor=True).numpy().transpose(0, 2, 3, 1)
  assert ours.shape == theirs.shape
  np.testing.assert_allclose(ours, theirs, atol=1e-6)
  if shape[1] % 2 == 0 and shape[2] % 2 == 0:
    # Without recompute_scale_factor torch uses the 0.5 scale itself; same for even sizes.
    plain = F.interpolate(_nchw(x), scale_factor=0.5, mode='bilinear', align_corners=False)
    np.testing.assert_allclose(ours, plain.numpy().transpose(0, 2, 3, 1), atol=1e-6)


def test_random_and_bf16_features():
  fn, params = vgg19.make_vgg19_features(vgg19.RANDOM)
  fn16, params16 = vgg19.make_vgg19_features(vgg19.RANDOM, dtype=jnp.bfloat16)
  # Same seed, same weights, regardless of dtype.
  for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params16)):
    np.testing.assert_array_equal(a, b)
  x, _ = _images((2, 32, 32, 3), 3)
  full = jax.jit(fn)(params, x)
  half = jax.jit(fn16)(params16, x)
  for name in vgg19.TAPS:
    assert half[name].dtype == jnp.bfloat16
    rel = np.abs(np.asarray(half[name], np.float32) - full[name]).max() / np.abs(full[name]).max()
    assert rel < 3e-2, (name, rel)
    assert float(jnp.std(full[name])) > 0.1, name  # He init keeps deep taps alive.

  loss = perceptual.make_loss('vgg19_random')
  assert not loss.paper_loss
  value, _ = jax.jit(lambda x, y: loss(loss.params, x, y, num_scales=1))(x, -x)
  assert np.isfinite(float(value)) and float(value) > 0


def test_pixel_pyramid_loss():
  loss = perceptual.make_loss('pixel_pyramid')
  assert not loss.paper_loss and loss.params == {}
  x, y = _images((2, 16, 16, 3), 4)
  value, aux = jax.jit(lambda x, y: loss(loss.params, x, y))(x, y)

  def pyramid(a):
    levels = [a]
    for _ in range(3):
      a = a.reshape(a.shape[0], a.shape[1] // 2, 2, a.shape[2] // 2, 2, -1).mean(axis=(2, 4))
      levels.append(a)
    return levels

  expected = 0.0
  for a, b in zip(pyramid(x.astype(np.float64)), pyramid(y.astype(np.float64))):
    expected += np.abs(a - b).mean()
    expected += np.abs(np.diff(a, axis=2) - np.diff(b, axis=2)).mean()
    expected += np.abs(np.diff(a, axis=1) - np.diff(b, axis=1)).mean()
  np.testing.assert_allclose(float(value), expected, rtol=1e-5)
  assert set(aux) >= {'perceptual/pixels', 'perceptual/grad_x', 'perceptual/scale3'}
  grad = jax.jit(jax.grad(lambda x: loss(loss.params, x, y)[0]))(jnp.asarray(x))
  assert float(jnp.abs(grad).sum()) > 0

  # The shared-target path (one target pyramid, one batched pass for warp and final) gives the
  # same terms as independent calls; the code path is the same for every feature function, so
  # the pixel features (with a style term, which ImageLoss would drop) stand in for VGG here.
  features = perceptual.pixel_features

  def shared(x, y):
    target = perceptual.feature_pyramid(features, y)
    (warp, _), (final, aux) = perceptual.perceptual_losses_from_target(
        features, [x * 0.5, x], target, style_weights=[0.0, 250.0])
    return 2.5 * warp + 4.0 * final, aux['style']

  def separate(x, y):
    warp, _ = perceptual.perceptual_loss(features, x * 0.5, y)
    final, aux = perceptual.perceptual_loss(features, x, y, style_weight=250.0)
    return 2.5 * warp + 4.0 * final, aux['style']

  (total, style), (expected_total, expected_style) = jax.jit(shared)(x, y), jax.jit(separate)(x, y)
  np.testing.assert_allclose(float(total), float(expected_total), rtol=1e-6)
  np.testing.assert_allclose(float(style), float(expected_style), rtol=1e-6)
  assert float(style) > 0
  # ImageLoss('pixel_pyramid') ignores style weights.
  _, aux = loss(loss.params, x, y, style_weight=250.0)
  assert float(aux['style']) == 0.0


def test_errors(tmp_path):
  with pytest.raises(FileNotFoundError) as info:
    perceptual.make_loss('vgg19', str(tmp_path / 'absent.npz'))
  message = str(info.value)
  for needle in ('absent.npz', vgg19_convert.URL, 'python -m animojax.convert.vgg19',
                 vgg19_convert.CONFIG_KEY):
    assert needle in message
  with pytest.raises(ValueError, match='pixel_pyramid'):
    perceptual.make_loss('vgg16')

  bad = tmp_path / 'bad.pth'
  torch.save({'features.0.weight': torch.zeros(64, 3, 3, 3)}, bad)
  with pytest.raises(ValueError, match=r'bad\.pth.*features\.0\.bias'):
    vgg19_convert.convert(str(bad), str(tmp_path / 'bad.npz'))

  # Shape errors surface while tracing (eval_shape: nothing is computed).
  loss = perceptual.make_loss('vgg19_random')
  x = jnp.zeros((1, 64, 64, 3))
  with pytest.raises(ValueError, match='too small'):
    jax.eval_shape(lambda x: loss(loss.params, x, x, num_scales=4), x)
  with pytest.raises(ValueError, match='layer_weights'):
    jax.eval_shape(lambda x: loss(loss.params, x, x, num_scales=1, layer_weights=(1.0,)), x)


@pytest.mark.parametrize('shape', [(2, 8, 8, 3), (1, 7, 9, 2)])
def test_max_pool_matches_torch_values_and_gradient(shape):
  x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  pooled, vjp = jax.vjp(vgg19.max_pool_2x2, jnp.asarray(x))
  cotangent = np.random.default_rng(1).normal(size=pooled.shape).astype(np.float32)
  (grad,) = vjp(jnp.asarray(cotangent))
  t = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
  out = torch.nn.functional.max_pool2d(t, 2)
  out.backward(torch.tensor(cotangent).permute(0, 3, 1, 2))
  np.testing.assert_array_equal(pooled, out.detach().permute(0, 2, 3, 1).numpy())
  np.testing.assert_array_equal(grad, t.grad.permute(0, 2, 3, 1).numpy())


def test_max_pool_routes_ties_to_the_first_maximum_like_torch():
  # Windows with 2, 3 and 4 equal maxima (and zeros, as after a ReLU) in every position.
  x = np.array([[1., 1., 0., 2.], [0., 0., 2., 2.], [3., 3., 0., 0.], [3., 1., 0., 0.]],
               np.float32).reshape(1, 4, 4, 1)
  pooled, vjp = jax.vjp(vgg19.max_pool_2x2, jnp.asarray(x))
  cotangent = np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1)
  (grad,) = vjp(jnp.asarray(cotangent))
  t = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
  torch.nn.functional.max_pool2d(t, 2).backward(torch.tensor(cotangent).permute(0, 3, 1, 2))
  np.testing.assert_array_equal(grad, t.grad.permute(0, 2, 3, 1).numpy())
  assert float(jnp.sum(grad)) == float(np.sum(cotangent))  # Each window's gradient goes once.


def test_several_targets_share_one_pass_and_keep_their_terms():
  """feature_pyramids / per-input targets (both domains through one pass) = separate calls."""
  rng = np.random.default_rng(3)
  xs = [jnp.asarray(rng.uniform(-1, 1, (2, 32, 32, 3)), jnp.float32) for _ in range(4)]
  ys = [jnp.asarray(rng.uniform(-1, 1, (2, 32, 32, 3)), jnp.float32) for _ in range(2)]
  features = perceptual.pixel_features
  pyramids = perceptual.feature_pyramids(features, ys, num_scales=3)
  for pyramid, y in zip(pyramids, ys):
    for got, want in zip(pyramid, perceptual.feature_pyramid(features, y, num_scales=3)):
      for tap in want:
        np.testing.assert_array_equal(got[tap], want[tap])
  style = [0.0, 250.0, 0.0, 250.0]
  merged = perceptual.perceptual_losses_from_target(
      features, xs, [pyramids[0], pyramids[0], pyramids[1], pyramids[1]], style_weights=style)
  for (loss, aux), x, y, w in zip(merged, xs, [ys[0], ys[0], ys[1], ys[1]], style):
    want, want_aux = perceptual.perceptual_loss(features, x, y, num_scales=3, style_weight=w)
    np.testing.assert_allclose(float(loss), float(want), rtol=1e-6)
    np.testing.assert_allclose(float(aux['style']), float(want_aux['style']), rtol=1e-6)
  with pytest.raises(ValueError, match='2 target pyramids for 4 inputs'):
    perceptual.perceptual_losses_from_target(features, xs, pyramids)


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_gram_matrix_gradient(dtype):
  """The one-GEMM VJP, F (G + Gᵀ), against autodiff of F Fᵀ in float64 terms."""
  rng = np.random.default_rng(4)
  f = jnp.asarray(rng.standard_normal((2, 6, 5, 7)), dtype)
  weights = jnp.asarray(rng.standard_normal((2, 7, 7)), jnp.float32)  # Not symmetric.

  def reference(f):
    b, h, w, c = f.shape
    flat = f.reshape(b, h * w, c).astype(jnp.float32)
    return jnp.einsum('bnc,bnd->bcd', flat, flat, precision='highest') / (c * h * w)

  got = jax.grad(lambda f: jnp.sum(perceptual.gram_matrix(f) * weights))(f)
  want = jax.grad(lambda f: jnp.sum(reference(f) * weights))(f.astype(jnp.float32))
  assert got.dtype == dtype
  np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want),
                             atol=(1e-7 if dtype == jnp.float32 else 2**-8) * float(
                                 jnp.abs(want).max()))

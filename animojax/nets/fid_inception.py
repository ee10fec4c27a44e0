"""The FID Inception v3 (pytorch-fid's `pt_inception-2015-12-05`) in Flax NNX, up to pool3.

pytorch-fid ports TF's `inception-2015-12-05` FID graph onto torchvision's Inception3 and patches
the blocks where TF computes differently (`mseitzer/pytorch-fid: src/pytorch_fid/inception.py`):

* Mixed_5b/c/d (InceptionA), Mixed_6b-e (InceptionC) and Mixed_7b (InceptionE) average-pool
  their pool branch 3x3/1/pad 1 with `count_include_pad=False` (TF ignores the padding);
* Mixed_7c (InceptionE) max-pools that branch instead (3x3/1/pad 1) -- a quirk of the TF graph;
* Mixed_6a/7a (InceptionB/D) and the stem keep torchvision's 3x3/2 max pools without padding.

Every convolution is torchvision's `BasicConv2d`: conv without bias, BatchNorm (eps 1e-3, running
statistics) and ReLU. Module paths equal the PyTorch state-dict names (`Mixed_5b/branch1x1/conv/
kernel` <- `Mixed_5b.branch1x1.conv.weight`), so the converter is a rename. The 1008-way `fc` is
not built: FID only uses the 2048-d pool3 features.

Input: NHWC in [-1, 1] at any size >= 75 (pytorch-fid first resizes to 299 and maps [0, 1] to
[-1, 1]; that preprocessing lives in `animojax.metrics.fid`). Convolutions default to
`Precision.HIGHEST` so that GPUs/TPUs do not silently use TF32/bf16 passes for a metric.
"""

from typing import Any

from flax import nnx
import jax
import jax.numpy as jnp

from animojax.models.blocks import initializers
from animojax.nets import weights as weights_lib
from animojax.utils import tree as tree_utils

NAME = 'fid_inception'  # animojax.convert.sources name.
MIN_SIZE = 75  # torchvision's documented minimum input size of Inception v3.
BN_EPSILON = 1e-3
FEATURE_DIM = 2048


def _pair(v):
  return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nnx.Module):
  """conv (no bias) -> BatchNorm(eps 1e-3, running stats) -> ReLU, as torchvision's."""

  def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0, *, precision: Any,
               rngs: nnx.Rngs):
    ph, pw = _pair(padding)
    self.conv = nnx.Conv(cin, cout, _pair(kernel), strides=_pair(stride),
                         padding=((ph, ph), (pw, pw)), use_bias=False, precision=precision,
                         rngs=rngs)
    self.bn = nnx.BatchNorm(cout, use_running_average=True, epsilon=BN_EPSILON, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return jax.nn.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x):
  # TF's SAME average pool divides by the number of real pixels: count_include_pad=False.
  return nnx.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                      count_include_pad=False)


def _max_pool_same(x):
  return nnx.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def _max_pool_reduce(x):
  return nnx.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')


class InceptionA(nnx.Module):
  """FIDInceptionA: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool(no pad count)-1x1."""

  def __init__(self, cin: int, pool_features: int, **kw):
    self.branch1x1 = BasicConv2d(cin, 64, 1, **kw)
    self.branch5x5_1 = BasicConv2d(cin, 48, 1, **kw)
    self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2, **kw)
    self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1, **kw)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1, **kw)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1, **kw)
    self.branch_pool = BasicConv2d(cin, pool_features, 1, **kw)

  def __call__(self, x):
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return jnp.concatenate([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool_tf(x))], -1)


class InceptionB(nnx.Module):
  """torchvision InceptionB (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | maxpool 3x3/2."""

  def __init__(self, cin: int, **kw):
    self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2, **kw)
    self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1, **kw)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1, **kw)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2, **kw)

  def __call__(self, x):
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return jnp.concatenate([self.branch3x3(x), b3, _max_pool_reduce(x)], -1)


class InceptionC(nnx.Module):
  """FIDInceptionC: 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avgpool(no pad count)-1x1."""

  def __init__(self, cin: int, channels_7x7: int, **kw):
    c7 = channels_7x7
    self.branch1x1 = BasicConv2d(cin, 192, 1, **kw)
    self.branch7x7_1 = BasicConv2d(cin, c7, 1, **kw)
    self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), **kw)
    self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0), **kw)
    self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1, **kw)
    self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), **kw)
    self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), **kw)
    self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), **kw)
    self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3), **kw)
    self.branch_pool = BasicConv2d(cin, 192, 1, **kw)

  def __call__(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = x
    for i in range(1, 6):
      bd = getattr(self, f'branch7x7dbl_{i}')(bd)
    return jnp.concatenate([self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool_tf(x))], -1)


class InceptionD(nnx.Module):
  """torchvision InceptionD (Mixed_7a): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool 3x3/2."""

  def __init__(self, cin: int, **kw):
    self.branch3x3_1 = BasicConv2d(cin, 192, 1, **kw)
    self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2, **kw)
    self.branch7x7x3_1 = BasicConv2d(cin, 192, 1, **kw)
    self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3), **kw)
    self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0), **kw)
    self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2, **kw)

  def __call__(self, x):
    b3 = self.branch3x3_2(self.branch3x3_1(x))
    b7 = x
    for i in range(1, 5):
      b7 = getattr(self, f'branch7x7x3_{i}')(b7)
    return jnp.concatenate([b3, b7, _max_pool_reduce(x)], -1)


class InceptionE(nnx.Module):
  """FIDInceptionE_1 (avg pool, Mixed_7b) or FIDInceptionE_2 (max pool, Mixed_7c)."""

  def __init__(self, cin: int, *, pool: str, **kw):
    self.pool = pool
    self.branch1x1 = BasicConv2d(cin, 320, 1, **kw)
    self.branch3x3_1 = BasicConv2d(cin, 384, 1, **kw)
    self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1), **kw)
    self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0), **kw)
    self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1, **kw)
    self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1, **kw)
    self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1), **kw)
    self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0), **kw)
    self.branch_pool = BasicConv2d(cin, 192, 1, **kw)

  def __call__(self, x):
    b3 = self.branch3x3_1(x)
    b3 = jnp.concatenate([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], -1)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    bd = jnp.concatenate([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], -1)
    pooled = _avg_pool_tf(x) if self.pool == 'avg' else _max_pool_same(x)
    return jnp.concatenate([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], -1)


class FIDInceptionV3(nnx.Module):
  """pytorch-fid's `InceptionV3` blocks 0-3 (pool3 features), weights loaded by name."""

  def __init__(self, *, precision: Any = jax.lax.Precision.HIGHEST, rngs: nnx.Rngs):
    kw = dict(precision=precision, rngs=rngs)
    self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2, **kw)
    self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3, **kw)
    self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1, **kw)
    self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1, **kw)
    self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3, **kw)
    self.Mixed_5b = InceptionA(192, 32, **kw)
    self.Mixed_5c = InceptionA(256, 64, **kw)
    self.Mixed_5d = InceptionA(288, 64, **kw)
    self.Mixed_6a = InceptionB(288, **kw)
    self.Mixed_6b = InceptionC(768, 128, **kw)
    self.Mixed_6c = InceptionC(768, 160, **kw)
    self.Mixed_6d = InceptionC(768, 160, **kw)
    self.Mixed_6e = InceptionC(768, 192, **kw)
    self.Mixed_7a = InceptionD(768, **kw)
    self.Mixed_7b = InceptionE(1280, pool='avg', **kw)
    self.Mixed_7c = InceptionE(2048, pool='max', **kw)

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """x: [B, H, W, 3] network input in [-1, 1], H, W >= 75.

    Returns pytorch-fid's output blocks: `block0` [B, h, w, 64] (after the first max pool),
    `block1` (192, second max pool), `block2` (768, before the aux classifier) and `pool3`
    [B, 2048] (final average pool; the FID features). Unused ones cost nothing under jit.
    """
    if x.ndim != 4 or x.shape[-1] != 3 or min(x.shape[1:3]) < MIN_SIZE:
      raise ValueError(f'FID Inception expects NHWC RGB images of at least {MIN_SIZE}x{MIN_SIZE},'
                       f' got shape {x.shape}.')
    h = x.astype(jnp.float32)
    h = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(h)))
    block0 = h = _max_pool_reduce(h)
    block1 = h = _max_pool_reduce(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(h)))
    for name in ('Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b', 'Mixed_6c',
                 'Mixed_6d', 'Mixed_6e'):
      h = getattr(self, name)(h)
    block2 = h
    h = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(h)))
    return {'block0': block0, 'block1': block1, 'block2': block2,
            'pool3': jnp.mean(h, axis=(1, 2))}


def build(weights: str, *, precision: Any = jax.lax.Precision.HIGHEST,
          seed: int = 0) -> FIDInceptionV3:
  """The network with weights from a converted `.npz` (`python -m animojax.convert.fetch
  fid_inception`) or `'random'` (compile tests and benchmarks only)."""
  return weights_lib.build(
      lambda: FIDInceptionV3(precision=precision, rngs=initializers.KeyStream(seed)), weights,
      name=NAME, seed=seed)


def abstract_values() -> dict[str, Any]:
  """`{'/'-joined name: ShapeDtypeStruct}` of every variable (the converter's checklist)."""
  module = nnx.eval_shape(lambda: FIDInceptionV3(rngs=initializers.KeyStream(0)))
  return tree_utils.flatten_with_names(nnx.to_pure_dict(nnx.state(module)))

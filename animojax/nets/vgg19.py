"""torchvision VGG19 `features` up to relu5_1, as used by PIRender's perceptual loss.

Input: NHWC images in [-1, 1]. They are mapped to [0, 1] and normalised with the ImageNet mean
(0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) exactly as PIRender's
`apply_imagenet_normalization`; then 3x3/pad-1 convs + ReLU and 2x2/2 max pools (floor, as
torch's default) follow torchvision's layer order. Outputs are the taps relu1_1, relu2_1, relu3_1,
relu4_1, relu5_1 (torchvision `features` indices 1, 6, 11, 20, 29). Only the convs up to the
deepest requested tap are built.

Weights are frozen: `make_vgg19_features` returns a pure `fn(params, x)` plus the params pytree.
Pass the params into the jitted train step as an argument (not a closure constant, which would
embed ~80 MB in the compiled program) and do not differentiate with respect to them.

Weights come from the npz written by `python -m animojax.convert.vgg19`, or are random
(He-normal, fixed seed) when `weights='random'`; random weights are for compile/CPU tests only
and must be asked for by name (the `vgg19_random` loss), never as a silent fallback.
"""

import functools
import os
from typing import Any, Callable, Sequence

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from animojax.convert import vgg19 as vgg19_convert
from animojax.models.blocks import initializers
from animojax.ops import conv as conv_ops
from animojax.utils import tree as tree_utils

TAPS = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')
# Each tap is the ReLU right after this conv.
_TAP_CONV = {'relu1_1': 'conv1_1', 'relu2_1': 'conv2_1', 'relu3_1': 'conv3_1',
             'relu4_1': 'conv4_1', 'relu5_1': 'conv5_1'}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM = 'random'

FeaturesFn = Callable[[Any, jax.Array], dict[str, jax.Array]]


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
  """`nn.MaxPool2d(2, 2)` (floor) as a reshape + max, with torch's gradient routing.

  Hand-written VJP: the backward recomputes which window entry is the maximum from the input and
  the pooled output, so the forward writes no mask (autodiff of the max stores a full-size
  comparison and tie counts: ≈ 2 ms of a 131 ms H100 step) and XLA's select-and-scatter (several
  times slower on GPUs) is avoided. The gradient goes to the first maximum of each window in
  row-major order, as torch's kernels route it (ties included).
  """
  return _max_pool_fwd(x)[0]


def _windows(x):
  b, h, w, c = x.shape
  return x[:, :h // 2 * 2, :w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c)


def _max_pool_fwd(x):
  return _windows(x).max(axis=(2, 4)), x


def _max_pool_bwd(x, g):
  windows = _windows(x)
  y = windows.max(axis=(2, 4))
  hits = [windows[:, :, i, :, j] == y for i, j in ((0, 0), (0, 1), (1, 0))]
  # Window entry k = 2i + j (row-major) takes the gradient if it is a maximum and no earlier
  # entry is: one elementwise pass over the full-size gradient, no stacking.
  k = (2 * jax.lax.broadcasted_iota(jnp.int32, (1, 1, 2, 1, 2, 1), 2)
       + jax.lax.broadcasted_iota(jnp.int32, (1, 1, 2, 1, 2, 1), 4))
  earlier = functools.reduce(jnp.logical_or, [(k > n) & hit[:, :, None, :, None]
                                              for n, hit in enumerate(hits)])
  first = (windows == y[:, :, None, :, None]) & ~earlier
  dx = jnp.where(first, g[:, :, None, :, None], jnp.zeros((), g.dtype))
  dx = dx.reshape(windows.shape[0], 2 * y.shape[1], 2 * y.shape[2], -1)
  b, h, w, _ = x.shape
  return (jnp.pad(dx, ((0, 0), (0, h - dx.shape[1]), (0, w - dx.shape[2]), (0, 0))),)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


class VGG19Features(nnx.Module):
  """VGG19 feature extractor returning `{tap: NHWC features}` for the requested taps."""

  def __init__(self, taps: Sequence[str] = TAPS, *, dtype: Any = jnp.float32, rngs: nnx.Rngs):
    """Builds the convs up to the deepest tap.

    Args:
      taps: subset of `TAPS`.
      dtype: compute dtype of the convs (e.g. jnp.bfloat16); params stay float32.
      rngs: only used for the random (He-normal) init; loaded weights overwrite it.
    """
    unknown = [t for t in taps if t not in TAPS]
    if unknown or not taps:
      raise ValueError(f'VGG19 taps {list(taps)}: unknown {unknown}; choose from {TAPS}.')
    self.taps = tuple(t for t in TAPS if t in taps)  # Network order.
    last_conv = _TAP_CONV[self.taps[-1]]
    layer_names = []
    for name, _, cin, cout in vgg19_convert.CONV_LAYERS:
      # He-normal (fan-in) so that random-weight activations keep their scale through 13 layers
      # instead of vanishing, which keeps `vgg19_random` numerically meaningful. (`build_vgg19`
      # draws the same distribution with numpy; this init only serves direct construction.)
      setattr(self, name, nnx.Conv(
          cin, cout, kernel_size=(3, 3), padding=((1, 1), (1, 1)), dtype=dtype,
          param_dtype=jnp.float32, kernel_init=jax.nn.initializers.he_normal(),
          bias_init=jax.nn.initializers.zeros, rngs=rngs,
          # conv1_1 (RGB in) runs on the few-channel kernels on GPUs; the rest go to lax.
          conv_general_dilated=conv_ops.conv_general_dilated))
      layer_names.append(name)
      if name == last_conv:
        break
    self.layer_names = tuple(layer_names)
    self.dtype = dtype

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """x: [B, H, W, 3] in [-1, 1]. Returns {tap: [B, h, w, C]} in the compute dtype."""
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f'VGG19 expects NHWC RGB images, got shape {x.shape}.')
    mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
    std = jnp.asarray(IMAGENET_STD, jnp.float32)
    h = ((x.astype(jnp.float32) + 1.0) / 2.0 - mean) / std
    tap_of_conv = {conv: tap for tap, conv in _TAP_CONV.items() if tap in self.taps}
    out = {}
    for name in self.layer_names:
      h = jax.nn.relu(getattr(self, name)(h))
      if name in tap_of_conv:
        out[tap_of_conv[name]] = h
      if name in vgg19_convert.POOL_AFTER and name != self.layer_names[-1]:
        if min(h.shape[1:3]) < 2:
          raise ValueError(
              f'VGG19 input {x.shape[1:3]} is too small: {h.shape[1:3]} after {name} cannot be'
              ' max-pooled (torch would fail too). relu5_1 needs >= 16x16 at every loss scale,'
              ' i.e. H, W >= 16 * 2**(num_scales - 1).')
        h = max_pool_2x2(h)
    return out


def _load_npz_into(module: VGG19Features, path: str) -> None:
  """Replaces the module's params with the converted torchvision weights at `path`."""
  expanded = os.path.expanduser(path)
  if not os.path.isfile(expanded):
    raise FileNotFoundError(vgg19_convert.missing_weights_message(path))
  flat = tree_utils.load_npz_flat(expanded)
  state = nnx.state(module, nnx.Param)
  reference = nnx.to_pure_dict(state)
  # The converted file has all 16 convs; keep only those this module built.
  needed = tree_utils.flatten_with_names(reference)
  missing = [k for k in needed if k not in flat]
  if missing:
    raise ValueError(f'{path}: missing {missing[:4]}...; re-create it with '
                     f'`python -m animojax.convert.vgg19` ({vgg19_convert.URL}).')
  try:
    restored = tree_utils.restore_like({k: flat[k] for k in needed}, reference)
  except ValueError as e:
    raise ValueError(f'{path}: {e} Re-create it with `python -m animojax.convert.vgg19`.') from e
  restored = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), restored)
  nnx.replace_by_pure_dict(state, restored)
  nnx.update(module, state)


def _random_params(reference: Any, seed: int) -> Any:
  """He-normal kernels (std sqrt(2 / fan_in), untruncated) and zero biases, drawn with numpy.

  numpy's PCG64 is used instead of the jax init (eager jax init of 13 convs takes seconds on CPU)
  and gives the same weights on every platform.
  """
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    if path[-1].key == 'bias':
      return jnp.zeros(leaf.shape, jnp.float32)
    fan_in = int(np.prod(leaf.shape[:-1]))
    return jnp.asarray(rng.standard_normal(leaf.shape, np.float32) * np.sqrt(2.0 / fan_in))

  return jax.tree_util.tree_map_with_path(draw, reference)


def build_vgg19(weights: str, taps: Sequence[str] = TAPS, *, dtype: Any = jnp.float32,
                seed: int = 0) -> VGG19Features:
  """Builds `VGG19Features` with weights from a converted `.npz` path or `'random'`."""
  # Abstract init: the values are replaced right away, and eager jax init is slow on CPU.
  module = nnx.eval_shape(
      lambda: VGG19Features(taps, dtype=dtype, rngs=initializers.KeyStream(seed)))
  if weights == RANDOM:
    state = nnx.state(module, nnx.Param)
    nnx.replace_by_pure_dict(state, _random_params(nnx.to_pure_dict(state), seed))
    nnx.update(module, state)
  else:
    _load_npz_into(module, weights)
  return module


def make_vgg19_features(weights: str, taps: Sequence[str] = TAPS, *, dtype: Any = jnp.float32,
                        seed: int = 0) -> tuple[FeaturesFn, Any]:
  """Pure functional form: returns `(fn, params)` with `fn(params, x) -> {tap: features}`.

  Args:
    weights: path to the converted `.npz` (see `animojax.convert.vgg19`) or `'random'`.
    taps: subset of `TAPS`.
    dtype: conv compute dtype (jnp.bfloat16 for speed); params are float32.
    seed: seed of the random init (only used for `'random'`).

  Returns:
    `fn` is jit-compatible; `params` is an `nnx.State` pytree of frozen weights.
  """
  graphdef, params = nnx.split(build_vgg19(weights, taps, dtype=dtype, seed=seed))

  def features_fn(params: Any, x: jax.Array) -> dict[str, jax.Array]:
    return nnx.merge(graphdef, params)(x)

  return features_fn, params


def num_params(params: Any) -> int:
  return int(sum(np.prod(np.shape(p)) for p in jax.tree_util.tree_leaves(params)))

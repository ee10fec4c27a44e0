"""PIRender's multi-scale perceptual + style loss, and a cheap pixel-pyramid stand-in.

PIRender (`RenYurui/PIRender: loss/perceptual.py`, config/face.yaml):
  * for each of `num_scales` = 4 scales: sum over taps of weight * mean |F(x) - F(y)| (L1 mean over
    all feature elements), with VGG19 taps relu1_1..relu5_1 and per-tap weight 1.0;
  * between scales both images are downsampled by bilinear x0.5 (`F.interpolate(scale_factor=0.5,
    mode='bilinear', align_corners=False, recompute_scale_factor=True)`, no antialias);
  * style term at scale 0 only: sum over taps of mean |G(x) - G(y)|, G = F Fᵀ / (C H W);
  * target features are detached (stop_gradient here);
  * the trainer uses 2.5 * perc(warp, gt) + 4 * (perc(fake, gt) + 250 * style(fake, gt)).

PIRender normalises images to ImageNet statistics before building the pyramid; we downsample in
[-1, 1] and normalise inside the feature function. Bilinear weights sum to one and the
normalisation is a per-channel affine map, so both orders give the same features.

For speed, the target's feature pyramid can be computed once (`feature_pyramid`) and reused by
the warp and the final loss, and both inputs can go through the network in one batched pass per
scale (`perceptual_losses_from_target`).

`pixel_pyramid` is NOT the paper's loss: it is an L1 over the same 4-scale bilinear pyramid on
pixels plus L1 of horizontal/vertical image differences, needing no download and little compute,
for training demos on a 2-core CPU. It has the same call signature; it has no style term (a
3x3 colour Gram would dwarf the pixel terms at weight 250), so style weights are ignored.

Usage in a jitted step (params passed in, never closed over):
  loss = make_loss('vgg19', weights_path)
  ...
  [target] = loss.target_pyramids(loss_params, [gt])  # once, shared by both terms
  (warp_term, _), (final_term, aux) = loss.many_from_target(
      loss_params, [warp, fake], target, style_weights=[0.0, 250.0])
  total = 2.5 * warp_term + 4.0 * final_term
"""

import dataclasses
import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from animojax.convert import vgg19 as vgg19_convert
from animojax.nets import vgg19

# x: [B, H, W, C] -> {tap: [B, h, w, c]}; params already bound.
BoundFeaturesFn = Callable[[jax.Array], dict[str, jax.Array]]
Pyramid = list[dict[str, jax.Array]]

NUM_SCALES = 4


def _bilinear_half_matrix(size: int) -> np.ndarray:
  """[out, in] weights of torch bilinear downsampling by 0.5, align_corners=False.

  With recompute_scale_factor=True torch uses out = floor(in / 2) and the size ratio in / out as
  the scale; source coordinates below 0 are clamped to 0 and the upper neighbour to in - 1.
  Coordinates are computed in float32, as torch's CPU kernel does for float32 images, so that odd
  sizes match it to the last bits rather than to ~1e-5.
  """
  out = size // 2
  scale = np.float32(size) / np.float32(out)
  matrix = np.zeros((out, size), np.float32)
  for i in range(out):
    src = max(scale * (np.float32(i) + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    i0 = int(src)
    i1 = min(i0 + 1, size - 1)
    frac = src - np.float32(i0)
    matrix[i, i0] += np.float32(1) - frac
    matrix[i, i1] += frac
  return matrix


def downsample_half(x: jax.Array) -> jax.Array:
  """torch `F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False)` on NHWC.

  Even sizes reduce to exact 2x2 average pooling (taken as a reshape-mean); odd sizes use the
  general interpolation weights.
  """
  b, h, w, c = x.shape
  if h < 2 or w < 2:
    raise ValueError(f'cannot downsample a {h}x{w} image by 0.5; use fewer loss scales.')
  if h % 2 == 0 and w % 2 == 0:
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
  mh = jnp.asarray(_bilinear_half_matrix(h), x.dtype)
  mw = jnp.asarray(_bilinear_half_matrix(w), x.dtype)
  precision = jax.lax.Precision.HIGHEST
  x = jnp.einsum('oh,bhwc->bowc', mh, x, precision=precision)
  return jnp.einsum('ow,bhwc->bhoc', mw, x, precision=precision)


def image_pyramid(x: jax.Array, num_scales: int = NUM_SCALES) -> list[jax.Array]:
  """[x, x/2, x/4, ...] with `num_scales` entries (PIRender's bilinear x0.5 steps)."""
  levels = [x]
  for _ in range(num_scales - 1):
    levels.append(downsample_half(levels[-1]))
  return levels


def interleave(arrays: Sequence[jax.Array]) -> jax.Array:
  """[a0, b0, ..., a1, b1, ...]: equal-shape batches merged row by row.

  Interleaved rather than concatenated: on a batch-sharded mesh each device keeps its own rows
  (a concatenation would move activations across devices).
  """
  return jnp.stack(arrays, axis=1).reshape(len(arrays) * arrays[0].shape[0], *arrays[0].shape[1:])


def _split(features: dict[str, jax.Array], n: int) -> list[dict[str, jax.Array]]:
  """Undoes `interleave` on every tap of a features dict."""
  return [{tap: f.reshape(f.shape[0] // n, n, *f.shape[1:])[:, i] for tap, f in features.items()}
          for i in range(n)]


def feature_pyramid(features_fn: BoundFeaturesFn, y: jax.Array, num_scales: int = NUM_SCALES
                    ) -> Pyramid:
  """Target features per scale, gradient-stopped (PIRender detaches the target)."""
  return [jax.tree_util.tree_map(jax.lax.stop_gradient, features_fn(level))
          for level in image_pyramid(y, num_scales)]


def feature_pyramids(features_fn: BoundFeaturesFn, ys: Sequence[jax.Array],
                     num_scales: int = NUM_SCALES) -> list[Pyramid]:
  """`feature_pyramid` of several equal-shape batches with one network pass per scale."""
  if any(y.shape != ys[0].shape for y in ys):
    raise ValueError(f'targets {[y.shape for y in ys]} must have one shape.')
  merged = feature_pyramid(features_fn, interleave(ys), num_scales)
  per_scale = [_split(level, len(ys)) for level in merged]
  return [[per_scale[s][i] for s in range(num_scales)] for i in range(len(ys))]


def _matmul(spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
  """einsum in float32: bf16 operands as they are (float32 accumulation), others upcast and at
  full precision (see `gram_matrix`)."""
  if a.dtype == jnp.bfloat16:
    return jnp.einsum(spec, a, b.astype(a.dtype), preferred_element_type=jnp.float32)
  return jnp.einsum(spec, a.astype(jnp.float32), b.astype(jnp.float32),
                    precision=jax.lax.Precision.HIGHEST)


@jax.custom_vjp
def _gram(f: jax.Array) -> jax.Array:
  """[B, N, C] -> Fᵀ F `[B, C, C]` in float32 (see `gram_matrix` for the precision)."""
  return _matmul('bnc,bnd->bcd', f, f)


def _gram_fwd(f):
  return _gram(f), f


def _gram_bwd(f, g):
  # d(FᵀF) = F (G + Gᵀ): one GEMM, where autodiff of the einsum runs one per operand and adds.
  return (_matmul('bnc,bcd->bnd', f, g + jnp.swapaxes(g, 1, 2)).astype(f.dtype),)


_gram.defvjp(_gram_fwd, _gram_bwd)


def gram_matrix(f: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, C, C], F Fᵀ / (C H W), accumulated in float32.

  float32 features use full-precision products (no TF32); bf16 features (a bf16 compute policy)
  are multiplied as they are, with float32 accumulation, since upcasting adds no information.
  """
  b, h, w, c = f.shape
  return _gram(f.reshape(b, h * w, c)) / (c * h * w)


def _l1(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.mean(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)))


def _is_static_zero(value: Any) -> bool:
  return isinstance(value, (int, float)) and value == 0


def _terms(features: dict[str, jax.Array], target_features: dict[str, jax.Array],
           weights: dict[str, float], with_style: bool, scale: int, aux: dict[str, Any]
           ) -> tuple[jax.Array, jax.Array]:
  """Adds one scale's weighted L1 (and, if asked, Gram) terms to `aux`; returns their sums."""
  scale_term, style = 0.0, 0.0
  for tap, weight in weights.items():
    term = weight * _l1(features[tap], target_features[tap])
    aux[f'perceptual/{tap}'] = aux.get(f'perceptual/{tap}', 0.0) + term
    scale_term += term
    if with_style:
      style_term = _l1(gram_matrix(features[tap]), gram_matrix(target_features[tap]))
      aux[f'style/{tap}'] = style_term
      style += style_term
  aux[f'perceptual/scale{scale}'] = scale_term
  return scale_term, style


def perceptual_losses_from_target(features_fn: BoundFeaturesFn, xs: Sequence[jax.Array],
                                  target: Pyramid | Sequence[Pyramid], *,
                                  layer_weights: Sequence[float] | None = None,
                                  style_weights: Sequence[float] | None = None
                                  ) -> list[tuple[jax.Array, dict[str, Any]]]:
  """Losses of several images (e.g. warp and final output) against target pyramids.

  The inputs are interleaved along the batch so the network runs once per scale on [n * B]
  images: fewer, larger convolutions for accelerators and a smaller compiled program (on 2 CPU
  cores it measured the same speed as separate passes). The terms are computed per input.

  Args:
    features_fn: x -> {tap: features}, params bound.
    xs: images [B, H, W, C] in [-1, 1], each of the target's batch size and resolution.
    target: one `feature_pyramid(features_fn, y, num_scales)` shared by every input, or a list
      of pyramids, one per input (e.g. from `feature_pyramids`); the length of a pyramid sets the
      number of scales.
    layer_weights: one weight per tap (in the order `features_fn` returns them); default all 1.
    style_weights: one per input, multiplying its scale-0 Gram L1 term; a Python 0 (the
      default) skips computing that input's Gram matrices.

  Returns:
    One (loss, aux) per input: loss = perceptual + style_weight * style, aux holding
    'perceptual', 'style' (unweighted), 'perceptual/<tap>' (weighted, summed over scales),
    'perceptual/scale<k>' and 'style/<tap>'.
  """
  targets = list(target) if isinstance(target[0], (list, tuple)) else [target] * len(xs)
  if len(targets) != len(xs):
    raise ValueError(f'{len(targets)} target pyramids for {len(xs)} inputs.')
  taps = list(targets[0][0])
  if layer_weights is None:
    layer_weights = (1.0,) * len(taps)
  if len(layer_weights) != len(taps):
    raise ValueError(f'layer_weights has {len(layer_weights)} entries for {len(taps)} taps {taps}.')
  if style_weights is None:
    style_weights = (0.0,) * len(xs)
  if len(style_weights) != len(xs):
    raise ValueError(f'style_weights has {len(style_weights)} entries for {len(xs)} inputs.')
  weights = dict(zip(taps, layer_weights))
  batch = targets[0][0][taps[0]].shape[0]
  if any(x.shape[0] != batch for x in xs):
    raise ValueError(f'inputs {[x.shape for x in xs]} must have the target batch size {batch}.')
  with_style = [not _is_static_zero(w) for w in style_weights]
  auxes: list[dict[str, Any]] = [{} for _ in xs]
  perceptual = [0.0] * len(xs)
  style = [0.0] * len(xs)
  level = interleave(xs)
  for scale in range(len(targets[0])):
    if scale:
      level = downsample_half(level)
    for i, own in enumerate(_split(features_fn(level), len(xs))):
      scale_term, style_term = _terms(own, targets[i][scale], weights,
                                      with_style[i] and scale == 0, scale, auxes[i])
      perceptual[i] += scale_term
      style[i] += style_term
  results = []
  for i, aux in enumerate(auxes):
    aux['perceptual'] = perceptual[i]
    aux['style'] = jnp.asarray(style[i], jnp.float32)
    loss = perceptual[i] + style_weights[i] * style[i] if with_style[i] else perceptual[i]
    results.append((jnp.asarray(loss, jnp.float32), aux))
  return results


def perceptual_loss(features_fn: BoundFeaturesFn, x: jax.Array, y: jax.Array, *,
                    num_scales: int = NUM_SCALES, layer_weights: Sequence[float] | None = None,
                    style_weight: float = 0.0) -> tuple[jax.Array, dict[str, Any]]:
  """PIRender's perceptual loss of `x` against target `y` (both NHWC in [-1, 1]).

  See `perceptual_losses_from_target` for the terms; this computes the target pyramid itself.
  """
  target = feature_pyramid(features_fn, y, num_scales)
  return perceptual_losses_from_target(features_fn, [x], target, layer_weights=layer_weights,
                                       style_weights=[style_weight])[0]


def pixel_features(x: jax.Array, *, gradients: bool = True) -> dict[str, jax.Array]:
  """'Features' of the pixel_pyramid demo loss: the pixels and their finite differences."""
  out = {'pixels': x}
  if gradients:
    out['grad_x'] = x[:, :, 1:] - x[:, :, :-1]
    out['grad_y'] = x[:, 1:] - x[:, :-1]
  return out


@dataclasses.dataclass(frozen=True)
class ImageLoss:
  """A named image-reconstruction loss with frozen params, for use inside jitted steps.

  Attributes:
    name: registry name.
    features: `(params, x) -> {tap: features}`.
    params: frozen pytree to pass into the jitted step (empty for `pixel_pyramid`).
    taps: the tap names, in the order of `layer_weights`.
    paper_loss: False for stand-ins that are not PIRender's loss.
    has_style: False where style weights are ignored (`pixel_pyramid`).
  """
  name: str
  features: Callable[[Any, jax.Array], dict[str, jax.Array]]
  params: Any
  taps: tuple[str, ...]
  paper_loss: bool
  has_style: bool = True

  def _style(self, weight: float) -> float:
    return weight if self.has_style else 0.0

  def target_pyramids(self, params: Any, ys: Sequence[jax.Array], *,
                      num_scales: int = NUM_SCALES) -> list[Pyramid]:
    """Several targets' pyramids with one network pass per scale (see `feature_pyramids`)."""
    return feature_pyramids(functools.partial(self.features, params), ys, num_scales)

  def many_from_target(self, params: Any, xs: Sequence[jax.Array],
                       target: Pyramid | Sequence[Pyramid], *,
                       layer_weights: Sequence[float] | None = None,
                       style_weights: Sequence[float] | None = None
                       ) -> list[tuple[jax.Array, dict[str, Any]]]:
    """Losses of all `xs` (e.g. [warp, fake]) with one network pass per scale; `target` is one
    pyramid shared by all or one per input."""
    if style_weights is not None:
      style_weights = [self._style(w) for w in style_weights]
    return perceptual_losses_from_target(functools.partial(self.features, params), xs, target,
                                         layer_weights=layer_weights, style_weights=style_weights)

  def __call__(self, params: Any, x: jax.Array, y: jax.Array, *, num_scales: int = NUM_SCALES,
               layer_weights: Sequence[float] | None = None, style_weight: float = 0.0
               ) -> tuple[jax.Array, dict[str, Any]]:
    """Loss of `x` against `y`, both NHWC in [-1, 1]; returns (loss, aux)."""
    return perceptual_loss(functools.partial(self.features, params), x, y, num_scales=num_scales,
                           layer_weights=layer_weights, style_weight=self._style(style_weight))


LOSS_NAMES = ('vgg19', 'vgg19_random', 'pixel_pyramid')


def make_loss(name: str, weights_path: str | None = None, *, dtype: Any = jnp.float32
              ) -> ImageLoss:
  """Builds a registered loss.

  Args:
    name: 'vgg19' (PIRender's loss; needs the converted torchvision weights), 'vgg19_random'
      (same network, fixed random He-normal weights: compile/CPU tests only, not a training
      loss), or 'pixel_pyramid' (cheap demo stand-in, not the paper's loss).
    weights_path: the `.npz` from `python -m animojax.convert.vgg19` (used only by 'vgg19',
      ignored otherwise; defaults to `animojax.convert.vgg19.DEFAULT_NPZ_PATH`).
    dtype: VGG compute dtype (e.g. jnp.bfloat16).

  Raises:
    FileNotFoundError: 'vgg19' weights missing; the message says how to get and convert them.
    ValueError: unknown name.
  """
  if name == 'vgg19':
    fn, params = vgg19.make_vgg19_features(
        weights_path or vgg19_convert.DEFAULT_NPZ_PATH, dtype=dtype)
    return ImageLoss(name, fn, params, vgg19.TAPS, paper_loss=True)
  if name == 'vgg19_random':
    fn, params = vgg19.make_vgg19_features(vgg19.RANDOM, dtype=dtype)
    return ImageLoss(name, fn, params, vgg19.TAPS, paper_loss=False)
  if name == 'pixel_pyramid':
    return ImageLoss(name, lambda params, x: pixel_features(x), {},
                     ('pixels', 'grad_x', 'grad_y'), paper_loss=False, has_style=False)
  raise ValueError(f'unknown loss {name!r}; choose one of {LOSS_NAMES}.')

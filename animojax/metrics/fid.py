"""FID with pytorch-fid's network, preprocessing and numerics, over streamed feature statistics.

`mseitzer/pytorch-fid` (`src/pytorch_fid/{inception,fid_score}.py`) computes, per image set:

1. images as 8-bit RGB (PIL) -> `ToTensor` ([0, 1]) -> bilinear resize to 299x299
   (`F.interpolate`, `align_corners=False`, no antialias) -> x * 2 - 1;
2. the 2048-d pool3 features of the FID Inception (`animojax.nets.fid_inception`);
3. mu = mean, sigma = `np.cov(features, rowvar=False)` (ddof 1), in float64;
4. FID = |mu1 - mu2|² + Tr(sigma1) + Tr(sigma2) - 2 Tr(sqrtm(sigma1 sigma2)) with
   `scipy.linalg.sqrtm`; if that square root has non-finite entries, 1e-6 I is added to both
   covariances and it is recomputed; a complex result is an error if any diagonal imaginary part
   exceeds 1e-3 in magnitude, otherwise its real part is used.

Here images come as NHWC in [-1, 1]. `quantize=True` (the default) first rounds them to the 8-bit
levels that saving them as PNG would give (`animojax.utils.images.to_uint8`), so scores equal
pytorch-fid run on the saved frames; `quantize=False` scores the float images as they are.

Statistics are streamed: `FeatureStats.update` takes one batch of features at a time and keeps
float64 sums of (f - shift) and (f - shift)(f - shift)ᵀ, shift being the first batch's mean, which
gives `np.cov`'s result to float64 rounding without holding all features. `save`/`load` use
pytorch-fid's `.npz` layout (`mu`, `sigma`), so precomputed reference statistics are
interchangeable.
"""

import os
from typing import Any, Callable, Iterable

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import linalg

from animojax.nets import fid_inception
from animojax.ops import warp

INPUT_SIZE = 299
SQRTM_EPS = 1e-6
IMAG_ATOL = 1e-3


def preprocess(images: jax.Array, *, quantize: bool = True) -> jax.Array:
  """NHWC [-1, 1] -> the Inception input: ([0, 1], 8-bit levels) -> 299² bilinear -> [-1, 1]."""
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'FID expects NHWC RGB images in [-1, 1], got shape {images.shape}.')
  x = images.astype(jnp.float32)
  if quantize:
    x = jnp.clip(jnp.round((x + 1.0) * 127.5), 0.0, 255.0) / 255.0
  else:
    x = (x + 1.0) / 2.0
  # `resize_deformation` is exactly F.interpolate(bilinear, align_corners=False) on any NHWC map.
  x = warp.resize_deformation(x, (INPUT_SIZE, INPUT_SIZE))
  return 2.0 * x - 1.0


def make_fid_features(weights: str, *, quantize: bool = True,
                      precision: Any = jax.lax.Precision.HIGHEST
                      ) -> tuple[Callable[[Any, jax.Array], jax.Array], Any]:
  """Pure form: `(fn, params)`, jitted `fn(params, images [-1, 1]) -> pool3 features [B, 2048]`.

  Args:
    weights: converted `.npz` (`python -m animojax.convert.fetch fid_inception`) or `'random'`.
    quantize: round to 8-bit levels first (see module docstring).
    precision: convolution precision (HIGHEST keeps TF32/bf16 out of the metric).
  """
  graphdef, params = nnx.split(fid_inception.build(weights, precision=precision))

  @jax.jit
  def features_fn(params: Any, images: jax.Array) -> jax.Array:
    return nnx.merge(graphdef, params)(preprocess(images, quantize=quantize))['pool3']

  return features_fn, params


class FeatureStats:
  """Running mean and covariance (ddof 1, as `np.cov`) of feature vectors, in float64."""

  def __init__(self, dim: int = fid_inception.FEATURE_DIM):
    self.dim = dim
    self.count = 0
    self._shift = None
    self._sum = np.zeros(dim, np.float64)
    self._outer = np.zeros((dim, dim), np.float64)

  def update(self, features: Any) -> None:
    """Adds a batch `[B, dim]` of features (any float dtype, host or device array)."""
    f = np.asarray(jax.device_get(features), np.float64)
    if f.ndim != 2 or f.shape[1] != self.dim:
      raise ValueError(f'features must be [B, {self.dim}], got {f.shape}.')
    if not np.isfinite(f).all():
      raise ValueError('non-finite features: the images or the weights are broken.')
    if not len(f):
      return
    if self._shift is None:
      self._shift = f.mean(axis=0)
    centred = f - self._shift
    self._sum += centred.sum(axis=0)
    self._outer += centred.T @ centred
    self.count += len(f)

  def merge(self, other: 'FeatureStats') -> None:
    """Adds another accumulator's features (e.g. from another host)."""
    if other.count == 0:
      return
    if self.count == 0:
      self._shift, self._sum, self._outer = other._shift, other._sum.copy(), other._outer.copy()
      self.count = other.count
      return
    delta = other._shift - self._shift  # Re-centre the other sums on our shift.
    self._outer += (other._outer + np.outer(other._sum, delta) + np.outer(delta, other._sum)
                    + other.count * np.outer(delta, delta))
    self._sum += other._sum + other.count * delta
    self.count += other.count

  @property
  def mu(self) -> np.ndarray:
    self._need(1)
    return self._shift + self._sum / self.count

  @property
  def sigma(self) -> np.ndarray:
    self._need(2)
    mean = self._sum / self.count
    return (self._outer - self.count * np.outer(mean, mean)) / (self.count - 1)

  def _need(self, n: int) -> None:
    if self.count < n:
      raise ValueError(f'FID statistics need at least {n} image(s), got {self.count}.')

  def save(self, path: str) -> None:
    """pytorch-fid's `--save-stats` layout: `mu` [dim], `sigma` [dim, dim]."""
    np.savez(os.path.expanduser(path), mu=self.mu, sigma=self.sigma)


def load_stats(path: str) -> tuple[np.ndarray, np.ndarray]:
  """`(mu, sigma)` from a pytorch-fid statistics `.npz`."""
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'FID statistics {path!r} not found.')
  with np.load(path) as f:
    if 'mu' not in f or 'sigma' not in f:
      raise ValueError(f'{path}: FID statistics need arrays "mu" and "sigma", found {f.files}.')
    return f['mu'][:], f['sigma'][:]


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = SQRTM_EPS) -> float:
  """pytorch-fid's `calculate_frechet_distance` (same steps, fallback and tolerance)."""
  mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
  sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f'FID statistics differ in size: mu {mu1.shape} vs {mu2.shape}, sigma '
                     f'{sigma1.shape} vs {sigma2.shape}.')
  diff = mu1 - mu2
  covmean = linalg.sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    # The product is (close to) singular, e.g. fewer images than feature dimensions.
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAG_ATOL):
      raise ValueError(f'FID: sqrtm has an imaginary component of '
                       f'{np.max(np.abs(covmean.imag)):.3g}; the covariances are unusable.')
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
  return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


class FID:
  """Bound FID features with accumulation helpers: `stats(batches)`, `distance(a, b)`."""

  def __init__(self, weights: str, *, quantize: bool = True,
               precision: Any = jax.lax.Precision.HIGHEST):
    self._fn, self._params = make_fid_features(weights, quantize=quantize, precision=precision)

  def features(self, images: jax.Array) -> jax.Array:
    return self._fn(self._params, images)

  def update(self, stats: FeatureStats, images: jax.Array) -> None:
    stats.update(self.features(images))

  def stats(self, batches: Iterable[jax.Array]) -> FeatureStats:
    """Statistics over all batches; the next batch is dispatched before the host accumulates
    the previous one, so the device and the float64 host sums overlap."""
    stats, pending = FeatureStats(), None
    for images in batches:
      features = self.features(images)
      if pending is not None:
        stats.update(pending)
      pending = features
    if pending is not None:
      stats.update(pending)
    return stats

  def distance(self, images_a: Iterable[jax.Array], images_b: Iterable[jax.Array]) -> float:
    return fid_from_stats(self.stats(images_a), self.stats(images_b))

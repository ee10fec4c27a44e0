"""FID numerics: streamed statistics, pytorch-fid's Fréchet distance and its fallbacks,
preprocessing vs torch. (The network itself is checked in inception_test.py.)"""

import numpy as np
import pytest
from scipy import linalg
import torch
import torch.nn.functional as F

from animojax.metrics import fid


def _pytorch_fid_distance(mu1, sigma1, mu2, sigma2):
  """The happy path of pytorch-fid's `calculate_frechet_distance`, transcribed."""
  diff = mu1 - mu2
  covmean = linalg.sqrtm(sigma1.dot(sigma2))
  if np.iscomplexobj(covmean):
    covmean = covmean.real
  return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def _features(seed, n=200, dim=16, offset=0.0):
  rng = np.random.default_rng(seed)
  mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
  return (rng.standard_normal((n, dim)) @ mixing + offset + 5.0).astype(np.float32)


def test_streamed_stats_equal_np_cov_for_any_batching():
  f = _features(0)
  stats = fid.FeatureStats(16)
  for start, stop in ((0, 1), (1, 40), (40, 41), (41, 200)):
    stats.update(f[start:stop])
  np.testing.assert_allclose(stats.mu, f.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(stats.sigma, np.cov(f.astype(np.float64), rowvar=False),
                             rtol=1e-10, atol=1e-12)
  # Merging accumulators (e.g. from several hosts) gives the same statistics.
  a, b = fid.FeatureStats(16), fid.FeatureStats(16)
  a.update(f[:70])
  b.update(f[70:] + 0.0)
  a.merge(b)
  np.testing.assert_allclose(a.sigma, stats.sigma, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(a.mu, stats.mu, rtol=1e-12)
  with pytest.raises(ValueError, match='at least 2'):
    one = fid.FeatureStats(16)
    one.update(f[:1])
    _ = one.sigma


def test_distance_matches_pytorch_fid_and_the_closed_form(tmp_path):
  a, b = fid.FeatureStats(16), fid.FeatureStats(16)
  a.update(_features(1))
  b.update(_features(2, offset=0.3))
  expected = _pytorch_fid_distance(a.mu, a.sigma, b.mu, b.sigma)
  assert fid.fid_from_stats(a, b) == pytest.approx(expected, rel=1e-12)
  assert fid.fid_from_stats(a, a) == pytest.approx(0.0, abs=1e-9)
  # Commuting (diagonal) covariances: FID = |mu1 - mu2|² + sum (sqrt(s1) - sqrt(s2))².
  s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  closed = 1.0 + 4.0 + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
  assert fid.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(closed,
                                                                                  rel=1e-12)
  # pytorch-fid's statistics file layout round-trips.
  a.save(str(tmp_path / 'stats.npz'))
  mu, sigma = fid.load_stats(str(tmp_path / 'stats.npz'))
  np.testing.assert_array_equal(mu, a.mu)
  np.testing.assert_array_equal(sigma, a.sigma)


def test_singular_product_falls_back_to_the_eps_offset(monkeypatch):
  sigma1, sigma2 = np.diag([1.0, 2.0, 0.0]), np.diag([3.0, 0.0, 1.0])
  mu = np.zeros(3)
  calls = []
  real_sqrtm = linalg.sqrtm

  def sqrtm(matrix):  # The first (plain) product "fails" as it can for singular products.
    calls.append(matrix)
    return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

  monkeypatch.setattr(fid.linalg, 'sqrtm', sqrtm)
  value = fid.frechet_distance(mu, sigma1, mu, sigma2)
  eps = np.eye(3) * 1e-6
  np.testing.assert_allclose(calls[1], (sigma1 + eps) @ (sigma2 + eps))
  expected = 7.0 - 2 * np.trace(real_sqrtm((sigma1 + eps) @ (sigma2 + eps))).real
  assert value == pytest.approx(expected, rel=1e-12)


def test_large_imaginary_component_is_an_error():
  with pytest.raises(ValueError, match='imaginary component'):
    fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))


def test_preprocess_is_pytorch_fids_resize_and_scaling():
  rng = np.random.default_rng(3)
  images = rng.uniform(-1, 1, (2, 40, 57, 3)).astype(np.float32)
  x01 = torch.from_numpy((images + 1) / 2).permute(0, 3, 1, 2)
  expected = 2 * F.interpolate(x01, size=(299, 299), mode='bilinear', align_corners=False) - 1
  ours = fid.preprocess(images, quantize=False)
  # float32 rounding of a different summation order (a few 1e-6), far below the 1e-4 budget.
  np.testing.assert_allclose(ours, expected.permute(0, 2, 3, 1).numpy(), atol=1e-5)
  # quantize=True first rounds to the 8-bit levels a PNG would store (images.to_uint8).
  levels = np.clip(np.round((images + 1) * 127.5), 0, 255) / 127.5 - 1
  np.testing.assert_allclose(fid.preprocess(images), fid.preprocess(levels, quantize=False),
                             atol=2e-6)

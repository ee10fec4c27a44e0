"""Tests for image metrics against scikit-image and hand-written formulas."""

import pathlib

import numpy as np
from PIL import Image
import pytest
from skimage import metrics as skmetrics

from animojax.metrics import image as image_metrics

TESTDATA = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'testdata'


def _testdata(relative: str) -> pathlib.Path:
  path = TESTDATA / relative
  assert path.is_file(), f'missing shared test file {path} (see ../shared/testdata/README)'
  return path


def _random_pair(shape, seed):
  rng = np.random.default_rng(seed)
  x = rng.uniform(-1, 1, shape).astype(np.float32)
  y = np.clip(x + rng.normal(0, 0.3, shape), -1, 1).astype(np.float32)
  return x, y


def _structured_pair(h, w):
  yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
  channels = [np.sin(8 * xx + 3 * yy), np.cos(5 * yy) * xx, ((xx * 10).astype(int) % 2) - 0.5]
  x = np.clip(np.stack(channels, -1), -1, 1)
  y = np.roll(x, (1, 2), axis=(0, 1)) * 0.9 + 0.05
  return x[None].astype(np.float32), y[None].astype(np.float32)


def _real_pair():
  face = np.asarray(Image.open(_testdata('faces/lia_monroe.png')).convert('RGB'), np.float32)
  x = face / 127.5 - 1
  blurred = (x + np.roll(x, 1, 0) + np.roll(x, 1, 1) + np.roll(x, (1, 1), (0, 1))) / 4
  return x[None], blurred[None].astype(np.float32)


def _skimage_ssim(x, y):
  return np.array([
      skmetrics.structural_similarity((a.astype(np.float64) + 1) / 2,
                                      (b.astype(np.float64) + 1) / 2,
                                      data_range=1.0, channel_axis=-1)
      for a, b in zip(x, y)])


@pytest.mark.parametrize('pair', ['random', 'random_odd', 'structured', 'real'])
def test_ssim_psnr_l1_match_references(pair):
  x, y = {
      'random': lambda: _random_pair((3, 32, 32, 3), 0),
      'random_odd': lambda: _random_pair((2, 33, 45, 3), 1),
      'structured': lambda: _structured_pair(40, 56),
      'real': _real_pair,
  }[pair]()
  ssim = np.asarray(image_metrics.ssim(x, y))
  assert ssim.shape == (x.shape[0],)
  np.testing.assert_allclose(ssim, _skimage_ssim(x, y), atol=2e-5, rtol=0)

  psnr = np.asarray(image_metrics.psnr(x, y))
  expected_psnr = [skmetrics.peak_signal_noise_ratio((a + 1.0) / 2, (b + 1.0) / 2, data_range=1.0)
                   for a, b in zip(x.astype(np.float64), y.astype(np.float64))]
  np.testing.assert_allclose(psnr, expected_psnr, rtol=1e-5)

  l1 = np.asarray(image_metrics.l1(x, y))
  expected_l1 = np.abs(x.astype(np.float64) - y).mean(axis=(1, 2, 3)) / 2
  np.testing.assert_allclose(l1, expected_l1, rtol=1e-5)


def test_identical_and_clipping():
  x, _ = _random_pair((2, 16, 16, 3), 2)
  np.testing.assert_allclose(image_metrics.ssim(x, x), 1.0, atol=1e-6)
  assert np.all(np.isinf(image_metrics.psnr(x, x)))
  np.testing.assert_array_equal(image_metrics.l1(x, x), 0.0)
  # Out-of-range values count as they are unless clip=True.
  over = x * 3
  assert np.all(np.asarray(image_metrics.l1(over, x)) > 0)
  np.testing.assert_allclose(image_metrics.l1(over, np.clip(over, -1, 1), clip=True), 0.0)


def test_bad_shapes():
  x = np.zeros((1, 16, 16, 3), np.float32)
  with pytest.raises(ValueError, match='equal shape'):
    image_metrics.ssim(x, x[:, :8])
  with pytest.raises(ValueError, match='win_size'):
    image_metrics.ssim(x[:, :5], x[:, :5])

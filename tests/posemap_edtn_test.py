"""EDTN (DECA expression + jaw -> 17 anime morphs) against PyTorch on the released weights."""

import glob
import os

import numpy as np
import pytest

from animojax.posemap import edtn
from tests.conftest import shared_file


def _torch_edtn(state_dict):
  """The authors' `Generator2ani` (EDTN/train_EDTN.py), rebuilt in torch as the reference."""
  import torch  # pylint: disable=g-import-not-at-top
  nn = torch.nn

  class Generator2ani(nn.Module):

    def __init__(self):
      super().__init__()
      self.main = nn.Sequential(nn.Linear(53, 512), nn.LeakyReLU(0.2), nn.Linear(512, 512),
                                nn.LeakyReLU(0.2), nn.Linear(512, 512), nn.LeakyReLU(0.2),
                                nn.Linear(512, 17), nn.Sigmoid())

    def forward(self, x):
      return self.main(x)

  net = Generator2ani()
  net.load_state_dict(state_dict)
  return net.eval()


def test_edtn_matches_torch_on_real_deca_codes():
  import torch  # pylint: disable=g-import-not-at-top
  weights = shared_file('animeceleb', 'EDTN.pt')
  deca_dir = os.path.dirname(shared_file('animeceleb', 'vox_deca', '0000000.mat'))
  files = sorted(glob.glob(os.path.join(deca_dir, '*.mat')))
  assert len(files) == 16, files
  codes = [edtn.read_deca_mat(path) for path in files]
  exp = np.stack([c['exp'] for c in codes])
  pose = np.stack([c['pose'] for c in codes])
  x = edtn.deca_to_input(exp, pose)
  np.testing.assert_array_equal(x[:, 50:], pose[:, 3:6])

  model = edtn.load_edtn(weights)
  ours = np.asarray(model(x)['morphs'])
  reference = _torch_edtn(torch.load(weights, map_location='cpu'))
  with torch.no_grad():
    expected = reference(torch.from_numpy(x)).numpy()
  np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)
  assert ours.std(0).max() > 0.01  # Real inputs give varied, non-saturated morphs.

  anime_pose = np.asarray(edtn.deca_to_anime_pose(model, exp, pose))
  np.testing.assert_allclose(anime_pose[:, :17], expected, atol=1e-5, rtol=0)
  np.testing.assert_allclose(anime_pose[:, 17:], np.rad2deg(pose[:, [0, 2, 1]]), rtol=1e-5)


def test_edtn_errors(tmp_path):
  import torch  # pylint: disable=g-import-not-at-top
  bad = {f'main.{i}.weight': torch.zeros(4, 4) for i in (0, 2, 4, 6)}
  torch.save(bad, tmp_path / 'bad.pt')
  with pytest.raises(ValueError, match=r'bad.pt: not an EDTN .*main.0.bias'):
    edtn.load_edtn(tmp_path / 'bad.pt')
  with pytest.raises(FileNotFoundError, match='EDTN.pt'):
    edtn.load_edtn(tmp_path / 'missing.pt')
  from scipy import io as sio  # pylint: disable=g-import-not-at-top
  sio.savemat(tmp_path / 'no_pose.mat', {'exp': np.zeros((1, 50)), 'shape': np.zeros((1, 100))})
  with pytest.raises(ValueError, match="no_pose.mat: missing DECA field 'pose'"):
    edtn.read_deca_mat(tmp_path / 'no_pose.mat')
  with pytest.raises(ValueError, match=r'\[\.\.\., 53\]'):
    edtn.load_edtn(shared_file('animeceleb', 'EDTN.pt'))(np.zeros((2, 50), np.float32))

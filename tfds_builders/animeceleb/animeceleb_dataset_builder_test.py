"""Builds animeceleb from its dummy data (and the authors' real split lists) without TensorFlow.

`tfds.testing.DatasetBuilderTestCase` imports TensorFlow, so these are its pytest equivalents:
build into tmp_path as array_record, then check what `as_data_source` reads back.
"""

import csv
import os
import shutil

import numpy as np
import PIL.Image
import pytest

from animojax.data import building
from tests.conftest import shared_file
from tfds_builders.animeceleb import animeceleb_dataset_builder as lib
from tfds_builders.animeceleb import make_dummy_data

DUMMY = os.path.join(os.path.dirname(__file__), 'dummy_data')


def build(manual_dir, data_dir, config='default_64', **changes):
  return building.prepare(lib.Builder, config, manual_dir=manual_dir, data_dir=data_dir,
                          **changes)


def csv_rows():
  with open(os.path.join(DUMMY, 'combined_pose.csv')) as f:
    return list(csv.reader(f))[1:]


def test_configs():
  names = [c.name for c in lib.Builder.BUILDER_CONFIGS]
  assert names == ['default', 'cartoon', 'default_64', 'cartoon_64']
  default = lib.Builder.BUILDER_CONFIGS[0]
  assert default.angle_permutation == (0, 2, 1) and default.trees == ('rotation',)
  assert default.image_size == 256 and lib.Builder.disable_shuffling
  # JSON configs (`--config='{...}'`) arrive with lists.
  custom = lib.AnimeCelebConfig(name='x', trees=['expression', 'rotation'],
                                angle_permutation=[1, 2, 0])
  assert custom.trees == ('expression', 'rotation') and custom.angle_permutation == (1, 2, 0)
  with pytest.raises(ValueError, match='permutation'):
    lib.AnimeCelebConfig(name='x', angle_permutation=(0, 0, 1))


def test_build_dummy_and_read_back(tmp_path):
  builder = build(DUMMY, tmp_path)
  splits = builder.info.splits
  assert {s: splits[s].num_examples for s in splits} == {'train': 9, 'test': 3, 'unlisted': 3}
  metadata = builder.info.metadata
  assert metadata['angle_permutation'] == [0, 2, 1] and metadata['path_layout'] == 'padded'
  assert metadata['unlisted'] == {'identities': 1, 'rows': 3}
  poses = {row[2]: np.array(row[3:], np.float32) for row in csv_rows()}
  ids = {}
  for split in splits:
    examples = building.read_split(builder, split)
    ids[split] = [int(e['identity']) for e in examples]
    for e in examples:
      assert e['image'].shape == (64, 64, 3) and e['image'].dtype == np.uint8
      assert e['alpha'].shape == (64, 64, 1)
      name = e['file_name'].decode()
      np.testing.assert_array_equal(e['pose'], poses[name.split('/')[-1]])
      assert e['style'] == b'default' and e['group'] == lib.GROUPS.index('rotation')
      assert e['cluster'].decode() == str(make_dummy_data.folder_of(int(e['identity'])))
  assert ids == {'train': [0, 0, 0, 1, 1, 1, 2, 2, 2], 'test': [9] * 3, 'unlisted': [17] * 3}
  # Pixels: the PNG composited on white, then resized, exactly.
  first = building.read_split(builder, 'train')[0]
  rgb, alpha = building.split_alpha(PIL.Image.open(os.path.join(DUMMY,
                                                                first['file_name'].decode())))
  np.testing.assert_array_equal(first['image'], np.asarray(building.to_square(rgb, 64)))
  np.testing.assert_array_equal(first['alpha'][..., 0], np.asarray(building.to_square(alpha,
                                                                                       64)))
  # The metadata (angle order, skip report) survives a reload from disk.
  again = lib.Builder(config='default_64', data_dir=str(tmp_path))
  assert again.info.metadata['angle_permutation'] == [0, 2, 1]
  assert again.info.metadata['skipped']['train'] == {'count': 0, 'first': []}


def test_real_split_lists(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(DUMMY, manual, ignore=shutil.ignore_patterns('*_list.txt'))
  for name in ('train_list.txt', 'test_list.txt'):
    os.symlink(shared_file('animeceleb', name), manual / name)
  builder = build(manual, tmp_path / 'data')
  real = {s: {int(v) for v in open(shared_file('animeceleb', f'{s}_list.txt')).read().split()}
          for s in ('train', 'test')}
  for split in ('train', 'test', 'unlisted'):
    for e in building.read_split(builder, split):
      org_id = int(e['identity'])
      assert (org_id in real['train'], org_id in real['test']) == (
          split == 'train', split == 'test'), (split, org_id)


def test_both_trees_basis_and_angle_order(tmp_path):
  builder = build(DUMMY, tmp_path, trees=['expression', 'rotation'], include_basis=True,
                  angle_permutation=[1, 2, 0], image_size=32)
  assert builder.info.metadata['angle_permutation'] == [1, 2, 0]
  train = building.read_split(builder, 'train')
  assert len(train) == 3 * (3 * 2 + 1)
  first = train[:7]  # Identity 0: basis first, then rows, each expression before rotation.
  groups = [lib.GROUPS[int(e['group'])] for e in first]
  assert groups == ['basis'] + ['expression', 'rotation'] * 3
  assert first[0]['file_name'] == b'basis/00100/basis.png' and not first[0]['pose'].any()
  expression, rotation = first[1], first[2]
  np.testing.assert_array_equal(expression['pose'][:17], rotation['pose'][:17])
  assert not expression['pose'][17:].any() and rotation['pose'][17:].any()


def _write_bad_copy(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(DUMMY, manual)
  (manual / 'rotation/00101/char1_001.png').write_bytes(b'not a png')
  os.remove(manual / 'rotation/00102/char2_000.png')
  with open(manual / 'combined_pose.csv', 'a') as f:
    f.write('2,102,char2_009.png,0.5,oops\n')
  return manual


def test_bad_inputs_fail_naming_the_file_or_are_counted(tmp_path):
  manual = _write_bad_copy(tmp_path)
  with pytest.raises(building.BadExampleError, match=r'combined_pose.csv:17: malformed CSV row: '
                     r'5 columns.*skip_bad_examples'):
    build(manual, tmp_path / 'a')
  with open(manual / 'combined_pose.csv') as f:
    lines = f.readlines()
  (manual / 'combined_pose.csv').write_text(''.join(lines[:-1]))
  with pytest.raises(building.BadExampleError, match=r'char1_001.png: cannot decode the image'):
    build(manual, tmp_path / 'b')
  (manual / 'combined_pose.csv').write_text(''.join(lines))
  builder = build(manual, tmp_path / 'c', skip_bad_examples=True)
  skipped = builder.info.metadata['skipped']
  assert skipped['csv']['count'] == 1 and 'malformed' in skipped['csv']['first'][0]
  assert skipped['train']['count'] == 2
  assert any('char2_000.png: file not found' in m for m in skipped['train']['first'])
  assert builder.info.splits['train'].num_examples == 9 - 2


def test_missing_lists_say_where_to_get_them(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(DUMMY, manual, ignore=shutil.ignore_patterns('train_list.txt'))
  with pytest.raises(FileNotFoundError, match=r'train_list.txt not found.*Animo/data'):
    build(manual, tmp_path / 'data')
  with pytest.raises(FileNotFoundError, match='combined_pose.csv'):
    build(tmp_path, tmp_path / 'data')

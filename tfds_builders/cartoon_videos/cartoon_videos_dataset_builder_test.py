"""Builds cartoon_videos from its dummy clips (mp4, mov, frame folder) and from the real clips in
../shared/testdata/driving, then checks what `as_data_source` reads back (no TensorFlow)."""

import os
import shutil

import numpy as np
import PIL.Image
import pytest

from animojax.data import building
from tests.conftest import shared_file
from tfds_builders.cartoon_videos import cartoon_videos_dataset_builder as lib
from tfds_builders.cartoon_videos import make_dummy_data

DUMMY = os.path.join(os.path.dirname(__file__), 'dummy_data')
CLIPS = ('animeceleb_vox_example.mp4', 'lia_vox_driving1.mp4', 'lia_vox_driving2.mp4')


def build(manual_dir, data_dir, config='frames_64', **changes):
  return building.prepare(lib.Builder, config, manual_dir=manual_dir, data_dir=data_dir,
                          **changes)


def test_dummy_clips_by_list(tmp_path):
  builder = build(DUMMY, tmp_path)
  assert builder.info.metadata['split_from'] == 'lists'
  train, test = building.read_split(builder, 'train'), building.read_split(builder, 'test')
  assert [(e['video'].decode(), int(e['frame'])) for e in train] == [
      (v, f) for v in ('show_a/ep1.mp4', 'show_a/ep2.mov') for f in range(4)]
  assert [int(e['identity']) for e in train] == [0] * 4 + [1] * 4
  assert {e['video'] for e in test} == {b'show_b/clip3'} and int(test[0]['identity']) == 2
  # Frame folders are stored exactly: the 40 x 24 frame centre-cropped and resized.
  frame = PIL.Image.open(os.path.join(DUMMY, 'show_b/clip3/00000.png')).convert('RGB')
  np.testing.assert_array_equal(test[0]['image'], np.asarray(building.to_square(frame, 64)))
  # The decoded video frames are the rendered ones, up to compression.
  rendered = make_dummy_data.frames(0)
  expected = np.asarray(building.to_square(PIL.Image.fromarray(rendered[0]), 64), np.float32)
  assert np.abs(train[0]['image'] - expected).mean() < 12


def test_hash_split_padding_and_stride(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(DUMMY, manual, ignore=shutil.ignore_patterns('*_list.txt'))
  builder = build(manual, tmp_path / 'data', fit='pad', frame_stride=2, test_percent=50.0,
                  image_size=32)
  want = building.split_by_hash(sorted(make_dummy_data.VIDEOS), 50.0)
  for split, names in want.items():
    got = building.read_split(builder, split) if names else []
    assert sorted({e['video'].decode() for e in got}) == sorted(names)
    assert all(int(e['frame']) in (0, 2) for e in got)
  example = (building.read_split(builder, 'train') or building.read_split(builder, 'test'))[0]
  assert (example['image'][:3] == 255).all()  # Letterbox rows on white.


def test_real_clips(tmp_path):
  manual = tmp_path / 'manual'
  os.makedirs(manual)
  for clip in CLIPS:
    os.symlink(shared_file('driving', clip), manual / clip)
  (manual / 'test_list.txt').write_text('lia_vox_driving2\n')  # Names with or without suffix.
  (manual / 'train_list.txt').write_text('lia_vox_driving1.mp4\n')
  builder = build(manual, tmp_path / 'data', frame_stride=5, max_frames_per_video=3,
                  image_size=64)
  assert builder.info.metadata['videos'] == {'train': 1, 'test': 1, 'unlisted': 1}
  examples = [building.read_split(builder, s) for s in ('unlisted', 'train', 'test')]
  assert [(e['video'].decode(), int(e['frame'])) for e in sum(examples, [])] == [
      (c, f) for c in CLIPS for f in (0, 5, 10)]
  assert [int(e['identity']) for e in examples[1]] == [1] * 3
  for e in sum(examples, []):
    assert e['image'].shape == (64, 64, 3) and e['image'].std() > 10  # Real content.


def test_unreadable_video_is_named_or_counted(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(DUMMY, manual)
  (manual / 'show_a' / 'broken.mp4').write_bytes(b'\x00' * 64)
  with open(manual / 'train_list.txt', 'a') as f:
    f.write('show_a/broken.mp4\n')
  with pytest.raises(building.BadExampleError, match='broken.mp4: cannot decode the video'):
    build(manual, tmp_path / 'a')
  builder = build(manual, tmp_path / 'b', skip_bad_examples=True)
  skipped = builder.info.metadata['skipped']['train']
  assert skipped['count'] == 1 and 'broken.mp4' in skipped['first'][0]
  assert builder.info.splits['train'].num_examples == 8
  # A split whose every input is bad cannot be written: the error says why.
  only_bad = tmp_path / 'only_bad'
  os.makedirs(only_bad)
  shutil.copy(manual / 'show_a' / 'broken.mp4', only_bad)
  with pytest.raises(ValueError, match=r"nothing to build in split 'train'"):
    build(only_bad, tmp_path / 'c', skip_bad_examples=True, test_percent=0.0)
  with pytest.raises(FileNotFoundError, match='No videos'):
    build(tmp_path / 'a', tmp_path / 'd')

"""The real-data builders in the input pipeline: DECA motion vectors, video-grouped pairs,
dataset conventions checked against config.data, the TensorFlow-free `tfds build`, and a short
`--config=animo:deca` training run on a built dummy `animeceleb` + the real VoxCeleb frames."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from animojax.configs import animo as animo_config
from animojax.data import pairs
from animojax.data import pipeline
from animojax.data import samplers
from animojax.data import sources
from animojax.face3d import rotations
from animojax.posemap import mapping
from animojax.trainers.animo import train as trainer
from tests import helpers
from tests.conftest import shared_file
from tfds_builders.animeceleb import animeceleb_dataset_builder as animeceleb
from tfds_builders.voxceleb_3dmm import voxceleb_3dmm_dataset_builder as voxceleb

pytestmark = pytest.mark.integration  # Builds datasets with the CLIs and trains on them.

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOX_VIDEO = 'idvox#example#000000#000060.mp4'


@pytest.fixture(scope='module')
def real_data_dir(tmp_path_factory):
  """animeceleb/default_64 from its dummy data and voxceleb_3dmm/deca_64 from the real frames."""
  data_dir = tmp_path_factory.mktemp('tfds_real')
  manual = tmp_path_factory.mktemp('vox_manual')
  for tree, folder in (('images', 'vox_frames'), ('3dmm', 'vox_deca')):
    os.makedirs(manual / tree / 'train')
    os.symlink(os.path.dirname(shared_file('animeceleb', folder, '0000000.' + (
        'png' if tree == 'images' else 'mat'))), manual / tree / 'train' / VOX_VIDEO)
  for module, config, manual_dir in (
      (animeceleb, 'default_64', os.path.join(ROOT, 'tfds_builders/animeceleb/dummy_data')),
      (voxceleb, 'deca_64', manual)):
    module.Builder(config=config, data_dir=str(data_dir),
                   file_format='array_record').download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return str(data_dir)


def test_rotation_conversions():
  rng = np.random.default_rng(0)
  rotvec = rng.normal(0, 0.4, (50, 3))
  rot = rotations.axis_angle_to_matrix(rotvec)
  np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape),
                             atol=1e-12)
  angles = rotations.matrix_to_euler(rot)
  np.testing.assert_allclose(rotations.euler_to_matrix(angles), rot, atol=1e-12)
  # One axis at a time: rotation about x is pitch, about y yaw, about z roll.
  for axis in range(3):
    single = np.zeros(3)
    single[axis] = 0.3
    np.testing.assert_allclose(rotations.matrix_to_euler(rotations.axis_angle_to_matrix(single)),
                               single, atol=1e-12)


def test_deca_motion_and_adapter_dims():
  coeff = np.arange(156, dtype=np.float32) / 100
  coeff[150:153] = [0.1, -0.2, 0.05]
  motion = pairs.MotionAdapter('deca_coeff')({'coeff': coeff})
  assert motion.shape == (56,) and motion.dtype == np.float32
  np.testing.assert_array_equal(motion[:50], coeff[100:150])
  np.testing.assert_array_equal(motion[53:], coeff[153:156])
  np.testing.assert_allclose(
      rotations.euler_to_matrix(motion[50:53]), rotations.axis_angle_to_matrix(coeff[150:153]),
      atol=1e-6)
  flame_phi = np.load(shared_file('animeceleb', 'transform_matrix_08_30.npy'))
  anime = pairs.MotionAdapter('anime_pose', phi=mapping.load_phi(
      shared_file('animeceleb', 'transform_matrix_08_30.npy')))
  pose = np.linspace(0, 1, 20).astype(np.float32)
  out = anime({'pose': pose})
  assert anime.dim == 56 == pairs.MotionAdapter('deca_coeff').dim and out.shape == (56,)
  np.testing.assert_allclose(out[:50], pose[:17] @ flame_phi, rtol=1e-5)
  assert not out[53:].any()  # The jaw slot is zero for anime poses, as in EDTN's training.
  assert pairs.MotionAdapter('deep3d_coeff').dim == 70


def test_video_pairs_come_from_one_video():
  items = [{'image': np.full((4, 4, 3), i, np.uint8), 'coeff': np.zeros(257, np.float32),
            'identity': 0} for i in range(12)]
  groups = [[np.arange(0, 5), np.arange(5, 12)]]  # One person, two videos.
  reader = samplers.FrameReader(items, image_size=4, name='fake',
                                motion=pairs.MotionAdapter('deep3d_coeff'))
  sampler = samplers.PairSampler(reader, groups, seed=0, stream=1)
  seen = set()
  for index in range(40):
    pair = sampler(index)
    a, b = (int(round((pair[k][0, 0, 0] + 1) * 127.5)) for k in ('source', 'driving'))
    assert (a < 5) == (b < 5)
    seen.add(a < 5)
  assert seen == {True, False}


def test_pipeline_reads_built_datasets_and_checks_conventions(real_data_dir):
  c = animo_config.get_config('deca')
  c.data.data_dir = real_data_dir
  c.data.anime.name, c.data.human.name = 'animeceleb/default_64', 'voxceleb_3dmm/deca_64'
  c.data.image_size = 64
  c.data.phi = shared_file('animeceleb', 'transform_matrix_08_30.npy')
  batch = pipeline.make_dataset(c.data, 'train', batch_size=2, seed=0, process_index=0,
                                process_count=1)[0]
  assert batch['anime']['driving_pose'].shape == (2, 56)
  assert batch['human']['driving_pose'].shape == (2, 56)
  assert batch['human']['source'].shape == (2, 64, 64, 3)
  _, builder = sources.open_split('voxceleb_3dmm/deca_64', 'train', real_data_dir)
  assert [len(v) for v in sources.video_groups(builder, 'train')] == [1]
  bad = c.data.copy_and_resolve_references()
  bad.anime_angle_permutation = (1, 2, 0)
  with pytest.raises(ValueError, match=r'built with angle_permutation \(0, 2, 1\)'):
    pipeline.make_samplers(bad, 'train', seed=0)
  bad = c.data.copy_and_resolve_references()
  bad.human.pose = 'deep3d_coeff'
  with pytest.raises(ValueError, match="stores deca coefficients.*use pose='deca_coeff'"):
    pipeline.make_samplers(bad, 'train', seed=0)
  bad = c.data.copy_and_resolve_references()
  bad.phi = shared_file('animeceleb', 'pose_coeffs.npy')  # BFM Φ: 70-D against DECA's 56-D.
  with pytest.raises(ValueError, match='different sizes'):
    pipeline.make_samplers(bad, 'train', seed=0)


def test_short_animo_run_on_animeceleb_and_real_voxceleb(real_data_dir, tmp_path):
  # Warp stage only, one device, batch 2: compiling the (56-D) train step is most of the cost.
  c = animo_config.get_config('deca')
  config = helpers.tiny_config(real_data_dir, total_steps=2, warp_steps=2, log_every=1,
                                  sample_every=0, export_at_end=False, mesh=[('data', 1)],
                                  batch_size=2)
  config.data.anime = c.data.anime.to_dict() | {'name': 'animeceleb/default_64'}
  config.data.human = c.data.human.to_dict() | {'name': 'voxceleb_3dmm/deca_64'}
  config.data.phi = shared_file('animeceleb', 'transform_matrix_08_30.npy')
  config.model.pose_dim = 56
  config.eval.num_pairs = 0
  assert config.loss.network == 'pixel_pyramid'
  state = trainer.train_and_evaluate(config, str(tmp_path / 'run'))
  assert int(state['step']) == 2
  with open(tmp_path / 'run' / 'metrics.jsonl') as f:
    rows = [json.loads(line) for line in f]
  assert [r['step'] for r in rows] == [1, 2] and all(np.isfinite(r['loss']) for r in rows)
  assert 'tensorflow' not in sys.modules


def test_tfds_build_without_tensorflow(tmp_path):
  manual = os.path.join(ROOT, 'tfds_builders/cartoon_videos/dummy_data')
  custom = json.dumps({'name': 'tiny', 'image_size': 16, 'max_frames_per_video': 2})
  argv = ['tfds_builders/cartoon_videos', f'--config={custom}', f'--manual_dir={manual}',
          f'--data_dir={tmp_path}']
  # The command line of `python -m animojax.data.tfds_build ...`, then: was TensorFlow imported?
  code = ('import sys; from animojax.data import tfds_build; tfds_build.main(sys.argv[1:]); '
          "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'")
  proc = subprocess.run([sys.executable, '-c', code, *argv], cwd=ROOT, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  built = tfds.builder_from_directory(str(tmp_path / 'cartoon_videos' / 'tiny' / '1.0.0'))
  assert built.info.splits['train'].num_examples == 4  # 2 videos x 2 frames.
  assert built.info.file_format.value == 'array_record'


def _build_cartoon(tmp_path, name, *extra):
  manual = os.path.join(ROOT, 'tfds_builders/cartoon_videos/dummy_data')
  custom = json.dumps({'name': 'tiny', 'image_size': 16, 'max_frames_per_video': 2})
  data_dir = tmp_path / name
  argv = ['tfds_builders/cartoon_videos', f'--config={custom}', f'--manual_dir={manual}',
          f'--data_dir={data_dir}', *extra]
  proc = subprocess.run([sys.executable, '-m', 'animojax.data.tfds_build', *argv], cwd=ROOT,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Only the single-machine path streams with its own progress bar ('<name> <split>: ...').
  assert ('cartoon_videos train:' in proc.stderr) == (not extra), 'wrong build path'
  return tfds.builder_from_directory(str(data_dir / 'cartoon_videos' / 'tiny' / '1.0.0'))


def test_beam_build_writes_the_same_examples_as_the_plain_build(tmp_path):
  pytest.importorskip('apache_beam')
  plain = _build_cartoon(tmp_path, 'plain')
  beam = _build_cartoon(tmp_path, 'beam',
                        '--beam_pipeline_options=runner=DirectRunner,direct_num_workers=1')
  assert beam.info.splits['train'].num_examples == plain.info.splits['train'].num_examples == 4
  for split in plain.info.splits:
    a, b = plain.as_data_source(split), beam.as_data_source(split)
    assert len(a) == len(b)
    for i in range(len(a)):
      assert a[i]['video'] == b[i]['video'] and a[i]['frame'] == b[i]['frame']
      np.testing.assert_array_equal(a[i]['image'], b[i]['image'])

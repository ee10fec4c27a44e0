"""AniMo pair sampling, motion vectors, the grain pipeline and dataset look-up errors."""

import jax
import numpy as np
import pytest

from animojax.configs import animo as animo_config
from animojax.data import pairs
from animojax.data import pipeline
from animojax.data import samplers
from animojax.data import sources
from animojax.synthetic import face_model


def _fake_source(n=12, ids_per=4, size=8, nan_at=None):
  rng = np.random.default_rng(0)
  items = []
  for i in range(n):
    pose = rng.uniform(0, 1, 20).astype(np.float32)
    if i == nan_at:
      pose[3] = np.nan
    items.append({'image': rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                  'pose': pose, 'identity': i // ids_per})
  return items


def _sampler(items, size=8):
  groups = [np.arange(k, k + 4) for k in range(0, len(items), 4)]
  motion = pairs.MotionAdapter('anime_pose', phi=np.eye(17, 64, dtype=np.float32))
  reader = samplers.FrameReader(items, image_size=size, name='fake', motion=motion)
  return samplers.PairSampler(reader, groups, seed=0, stream=0)


def test_pairs_are_same_identity_deterministic_and_normalised():
  items = _fake_source()
  sampler = _sampler(items)
  for index in range(20):
    pair = sampler(index)
    assert pair['source'].dtype == np.float32 and pair['source_pose'].shape == (70,)
    assert -1.0 <= pair['source'].min() and pair['source'].max() <= 1.0
    ids = {items[i]['identity'] for i in range(len(items))
           if np.allclose(items[i]['image'] / 127.5 - 1, pair['source'], atol=1e-6)
           or np.allclose(items[i]['image'] / 127.5 - 1, pair['driving'], atol=1e-6)}
    assert ids == {int(pair['identity'])}
    again = sampler(index)
    np.testing.assert_array_equal(again['driving'], pair['driving'])


def test_nan_pose_names_the_example():
  sampler = _sampler(_fake_source(n=4, nan_at=2))
  with pytest.raises(ValueError, match=r'fake\[2\] motion vector contains NaN'):
    for index in range(50):
      sampler(index)


def test_wrong_image_shape_is_reported():
  sampler = _sampler(_fake_source(size=8), size=16)
  with pytest.raises(ValueError, match=r'image has shape \(8, 8, 3\), expected \(16, 16, 3\)'):
    sampler(0)


def test_motion_adapter_kinds():
  with pytest.raises(ValueError, match='Unknown pose kind'):
    pairs.MotionAdapter('deca')
  with pytest.raises(ValueError, match='needs the pose-mapping matrix'):
    pairs.MotionAdapter('anime_pose')
  coeff = np.arange(257, dtype=np.float32)
  np.testing.assert_array_equal(pairs.MotionAdapter('deep3d_coeff')({'coeff': coeff})[:64],
                                coeff[80:144])


def test_missing_real_dataset_and_unknown_name(tmp_path):
  with pytest.raises(FileNotFoundError, match='Unknown dataset'):
    sources.get_builder('no_such_dataset/x', str(tmp_path))


def _demo_data_config(data_dir):
  c = animo_config.get_config('demo').data
  c.data_dir = data_dir
  c.num_threads = 1
  return c


def test_pipeline_batches_and_motion_consistency(synthetic_data_dir):
  config = _demo_data_config(synthetic_data_dir)
  ds = pipeline.make_dataset(config, 'train', batch_size=4, seed=0, process_index=0,
                             process_count=1)
  batch = ds[0]
  phi = face_model.load_face_model().true_phi
  for domain in ('anime', 'human'):
    b = batch[domain]
    assert b['source'].shape == (4, 64, 64, 3) and b['driving_pose'].shape == (4, 70)
    assert b['source_semantic'].shape == (4, 20)
    # Both domains map the same semantic state to the same motion vector (up to translation):
    # anime through T with the true Φ, human through the 3DMM coefficient slices.
    sem = b['driving_semantic']
    np.testing.assert_allclose(b['driving_pose'][:, :64], sem[:, :17] @ phi, atol=1e-4)
    np.testing.assert_allclose(b['driving_pose'][:, 64:67], np.deg2rad(sem[:, 17:]), atol=1e-4)
  # Identity-disjoint splits.
  test = pipeline.make_dataset(config, 'test', batch_size=4, seed=0, process_index=0,
                               process_count=1)
  for domain in ('anime', 'human'):
    train_ids = {int(ds[i][domain]['identity'][j]) for i in range(5) for j in range(4)}
    test_ids = {int(test[i][domain]['identity'][j]) for i in range(5) for j in range(4)}
    assert not train_ids & test_ids


def test_global_batch_is_independent_of_process_count(synthetic_data_dir):
  config = _demo_data_config(synthetic_data_dir)
  def dataset(p, count):
    return pipeline.make_dataset(config, 'train', batch_size=8, seed=0, process_index=p,
                                 process_count=count)
  single = dataset(0, 1)
  for count in (2, 4):
    hosts = [dataset(p, count) for p in range(count)]
    for step in (0, 3):
      parts = [host[step] for host in hosts]
      assert parts[0]['anime']['source'].shape[0] == 8 // count
      # Process p holds rows p·B/P ... of the global batch: concatenated, the one-process batch.
      joined = jax.tree.map(lambda *xs: np.concatenate(xs), *parts)
      jax.tree.map(np.testing.assert_array_equal, joined, single[step])


def test_global_index_blocks():
  index = [pipeline.global_index(k, batch_size=8, local_batch_size=2, process_index=1)
           for k in range(5)]
  assert index == [2, 3, 10, 11, 18]


def test_iterator_state_restores_position(synthetic_data_dir):
  config = _demo_data_config(synthetic_data_dir)
  ds = pipeline.make_dataset(config, 'train', batch_size=2, seed=0, process_index=0,
                             process_count=1)
  it = pipeline.make_iterator(ds, config)
  next(it)
  state = it.get_state()
  expected = next(it)
  fresh = pipeline.make_iterator(ds, config)
  fresh.set_state(state)
  np.testing.assert_array_equal(next(fresh)['human']['driving'], expected['human']['driving'])


@pytest.mark.devices(8)
def test_global_batch_is_sharded_over_devices(synthetic_data_dir):
  from animojax.utils import sharding  # pylint: disable=g-import-not-at-top
  config = _demo_data_config(synthetic_data_dir)
  local = pipeline.make_dataset(config, 'train', batch_size=8, seed=0, process_index=0,
                                process_count=1)[0]
  mesh = sharding.make_mesh([('data', -1)])
  batch = pipeline.to_global(local, sharding.batch_sharding(mesh))
  x = batch['anime']['source']
  assert isinstance(x, jax.Array) and len(x.addressable_shards) == 8
  np.testing.assert_array_equal(np.asarray(x), local['anime']['source'])


def test_worker_processes_auto_rule():
  assert pipeline.worker_processes(3) == 3
  assert pipeline.worker_processes(-1, cpus=2) == 0
  assert pipeline.worker_processes(-1, cpus=16) == 4
  assert pipeline.worker_processes(-1, cpus=128) == 16
  with pytest.raises(ValueError, match='num_workers=-2'):
    pipeline.worker_processes(-2)


def test_worker_processes_give_the_thread_pipeline_batches_and_resume(synthetic_data_dir):
  config = _demo_data_config(synthetic_data_dir)
  ds = pipeline.make_dataset(config, 'train', batch_size=2, seed=0, process_index=0,
                             process_count=1)
  threads = pipeline.make_iterator(ds, config)
  expected = [next(threads) for _ in range(3)]
  with config.unlocked():
    config.num_workers = 2
  workers = pipeline.make_iterator(ds, config)
  next(workers)
  state = workers.get_state()
  for got, want in zip([next(workers), next(workers)], expected[1:]):
    np.testing.assert_array_equal(got['anime']['source'], want['anime']['source'])
  fresh = pipeline.make_iterator(ds, config)
  fresh.set_state(state)
  np.testing.assert_array_equal(next(fresh)['human']['driving'], expected[1]['human']['driving'])

"""Samplers (video pairs, unpaired singles), per-domain sampler configs and the index cache."""

import ml_collections
import numpy as np
import pytest
from etils import epath
from etils.epath import testing as epath_testing

from animojax.configs import animo as animo_config
from animojax.data import pipeline
from animojax.data import samplers
from animojax.data import sources
from animojax.synthetic import anime as synthetic_anime


def _indexed_items(n, size=4):
  """Examples whose image value encodes their index (recoverable from the normalised image)."""
  return [{'image': np.full((size, size, 3), i, np.uint8), 'identity': i // 5} for i in range(n)]


def _index_of(image):
  return int(round((float(image[0, 0, 0]) + 1.0) * 127.5))


def test_video_pairs_come_from_one_video_without_motion():
  items = _indexed_items(30)
  videos = [np.arange(0, 4), np.arange(4, 12), np.arange(12, 13), np.arange(13, 30)]
  video_of = {int(i): v for v, frames in enumerate(videos) for i in frames}
  reader = samplers.FrameReader(items, image_size=4, name='fake')
  sampler = samplers.VideoPairSampler(reader, videos, seed=1, stream=0)
  drawn = set()
  for index in range(60):
    pair = sampler(index)
    assert set(pair) == {'source', 'driving', 'identity'}  # No motion map: no poses.
    src, drv = _index_of(pair['source']), _index_of(pair['driving'])
    assert video_of[src] == video_of[drv] and src <= drv
    drawn.add(video_of[src])
    again = sampler(index)
    np.testing.assert_array_equal(again['driving'], pair['driving'])
  assert drawn == {0, 1, 2, 3}  # Uniform over videos: the one-frame video is drawn too.
  distinct = samplers.VideoPairSampler(reader, videos, seed=1, stream=0, distinct_frames=True)
  for index in range(30):
    pair = distinct(index)
    src, drv = _index_of(pair['source']), _index_of(pair['driving'])
    assert src != drv or video_of[src] == 2  # Only a one-frame video repeats its frame.


def test_single_draws_are_deterministic_and_independent_across_domains():
  items = _indexed_items(4)
  reader = samplers.FrameReader(items, image_size=4, name='fake')
  domain_a = samplers.SingleSampler(reader, np.arange(4), seed=0, stream=0)
  domain_b = samplers.SingleSampler(reader, np.arange(4), seed=0, stream=1)
  joint = samplers.JointSampler({'a': domain_a, 'b': domain_b})
  combos = []
  for index in range(200):
    item = joint(index)
    assert set(item['a']) == {'image', 'identity'} and item['a']['image'].shape == (4, 4, 3)
    combos.append((_index_of(item['a']['image']), _index_of(item['b']['image'])))
    np.testing.assert_array_equal(joint(index)['b']['image'], item['b']['image'])
  # Independent draws: every (a, b) combination occurs, about 200 / 16 times each.
  counts = np.bincount([4 * a + b for a, b in combos], minlength=16)
  assert counts.min() >= 3, counts
  subset = samplers.SingleSampler(reader, np.array([1, 3]), seed=0, stream=0)
  assert {_index_of(subset(i)['image']) for i in range(20)} == {1, 3}


def _two_domain_config(data_dir, a, b):
  c = animo_config.get_config('demo').data
  c.data_dir = data_dir
  c.num_threads = 1
  c.phi = '/nonexistent/phi.npy'  # Loading Φ would fail: no domain below needs it.
  with c.unlocked():
    del c['anime']
    del c['human']
    c.a = a
    c.b = b
  return c


def test_unpaired_and_video_pair_domains_need_no_phi(synthetic_data_dir):
  config = _two_domain_config(
      synthetic_data_dir, dict(name='synthetic_heads/anime_64', sample='single'),
      dict(name='synthetic_heads/human_64', sample='video_pairs'))
  assert pipeline.domains(config) == ['a', 'b']
  ds = pipeline.make_dataset(config, 'train', batch_size=4, seed=0, process_index=0,
                             process_count=1)
  batch = ds[1]
  assert set(batch) == {'a', 'b'}
  assert set(batch['a']) == {'image', 'identity', 'semantic'}
  assert batch['a']['image'].shape == (4, 64, 64, 3)
  assert set(batch['b']) == {'source', 'driving', 'identity', 'source_semantic',
                             'driving_semantic'}
  # Synthetic heads have no video_index: one "video" per identity.
  assert batch['b']['driving'].shape == (4, 64, 64, 3)
  np.testing.assert_array_equal(ds[1]['b']['driving'], batch['b']['driving'])


def test_domain_with_motion_gets_poses(synthetic_data_dir):
  config = _two_domain_config(
      synthetic_data_dir, dict(name='synthetic_heads/human_64', sample='single',
                               pose='deep3d_coeff'),
      dict(name='synthetic_heads/human_64', sample='video_pairs', pose='deep3d_coeff'))
  batch = pipeline.make_dataset(config, 'train', batch_size=2, seed=0, process_index=0,
                                process_count=1)[0]
  assert batch['a']['pose'].shape == (2, 70) and batch['b']['driving_pose'].shape == (2, 70)


@pytest.mark.parametrize('spec, message', [
    (dict(name='synthetic_heads/human_64', pose='anime_pose'),
     r"config.data.a.pose='anime_pose' needs the 'pose' feature, but dataset "
     r"'synthetic_heads/human_64/.*' has none"),
    (dict(name='synthetic_heads/anime_64', pair_within='video'),
     r"config.data.a.pair_within='video' needs the 'video_index' feature, but dataset "
     r"'synthetic_heads/anime_64/"),
    (dict(name='synthetic_heads/anime_64', sample='video_pairs', video_field='clip'),
     r"config.data.a.video_field='clip' needs the 'clip' feature"),
    (dict(name='synthetic_heads/anime_64', sample='single', domain_label='anime'),
     r"config.data.a.domain_label='anime' needs the 'domain' feature"),
    (dict(name='synthetic_heads/anime_64', sample='triplets'),
     r'config.data.a.sample must be one of'),
    (dict(name='synthetic_heads/anime_64', smaple='single'),
     r"config.data.a has unknown keys \['smaple'\]"),
])
def test_missing_fields_fail_at_start_up_naming_the_config_key(synthetic_data_dir, spec,
                                                                message):
  config = _two_domain_config(synthetic_data_dir, spec,
                              dict(name='synthetic_heads/anime_64', sample='single'))
  with pytest.raises(ValueError, match=message):
    pipeline.make_samplers(config, 'train', seed=0)


def test_no_domain_is_an_error():
  with pytest.raises(ValueError, match='config.data has no domain'):
    pipeline.make_samplers(ml_collections.ConfigDict({'data_dir': ''}), 'train', seed=0)


def test_label_indices_select_one_class(synthetic_data_dir):
  builder = sources.get_builder('synthetic_heads/anime_64', synthetic_data_dir)
  style = sources._column(builder, 'train', 'style', write=False)
  name = synthetic_anime.STYLE_NAMES[1]
  np.testing.assert_array_equal(sources.label_indices(builder, 'train', 'style', name),
                                np.flatnonzero(style == 1))
  with pytest.raises(ValueError, match="'style' has no class 'nope'"):
    sources.label_indices(builder, 'train', 'style', 'nope')


# The index cache.


def _cache_file(cache_dir, field='identity', split='train'):
  return epath.Path(cache_dir) / f'animojax_{field}_index_{split}.npy'


@pytest.fixture(name='builder')
def _builder(synthetic_data_dir):
  return sources.get_builder('synthetic_heads/anime_64', synthetic_data_dir)


def test_cache_is_written_by_the_writer_only_and_then_read(builder, tmp_path):
  reader_dir, writer_dir = tmp_path / 'reader', tmp_path / 'writer'
  reader_dir.mkdir()
  writer_dir.mkdir()
  scanned = sources._column(builder, 'train', 'identity', cache_dir=str(reader_dir), write=False)
  assert not list(reader_dir.iterdir())  # Processes other than 0 never write.
  assert scanned.dtype == np.int64 and scanned.shape == (builder.info.splits['train'].num_examples,)
  sources._column(builder, 'train', 'identity', cache_dir=str(writer_dir), write=True)
  assert [p.name for p in writer_dir.iterdir()] == ['animojax_identity_index_train.npy']
  np.testing.assert_array_equal(np.load(_cache_file(writer_dir)), scanned)
  # A valid cache is what every process reads (a marked one proves no rescan happened).
  np.save(_cache_file(writer_dir), scanned[::-1].copy())
  got = sources._column(builder, 'train', 'identity', cache_dir=str(writer_dir), write=False)
  np.testing.assert_array_equal(got, scanned[::-1])


@pytest.mark.parametrize('bad', ['garbage', 'short', 'float'])
def test_corrupt_or_wrong_length_cache_is_rebuilt(builder, tmp_path, bad):
  expected = sources._column(builder, 'train', 'identity', cache_dir=str(tmp_path), write=False)
  path = _cache_file(tmp_path)
  if bad == 'garbage':
    path.write_bytes(b'\x93NUMPY half a file')
  elif bad == 'short':
    np.save(path, expected[:-1])
  else:
    np.save(path, expected.astype(np.float64))
  got = sources._column(builder, 'train', 'identity', cache_dir=epath.Path(tmp_path), write=True)
  np.testing.assert_array_equal(got, expected)
  assert got.dtype == np.int64
  np.testing.assert_array_equal(np.load(path), expected)  # Overwritten with the good column.


def test_cache_goes_through_epath_with_an_atomic_rename(builder, tmp_path):
  calls = []
  def record(name):
    def fn(original, path, *args, **kwargs):
      calls.append((name, str(path)))
      return original(path, *args, **kwargs)
    return fn
  with epath_testing.mock_epath(open=record('open'), replace=record('replace'),
                                rename=record('rename'), exists=record('exists')):
    values = sources._column(builder, 'test', 'identity', cache_dir=epath.Path(tmp_path),
                             write=True)
  final = str(_cache_file(tmp_path, split='test'))
  opened = [path for name, path in calls if name == 'open']
  # The column is written under a temporary name, then renamed over the final one.
  assert opened and all(path.startswith(final + '.tmp-') for path in opened), calls
  assert ('replace', opened[-1]) in calls
  assert [p.name for p in tmp_path.iterdir()] == ['animojax_identity_index_test.npy']
  np.testing.assert_array_equal(np.load(final), values)


def test_unwritable_cache_dir_only_costs_a_rescan(builder, tmp_path):
  missing = tmp_path / 'no' / 'such' / 'dir'
  values = sources._column(builder, 'test', 'identity', cache_dir=str(missing), write=True)
  assert len(values) == builder.info.splits['test'].num_examples and not missing.exists()

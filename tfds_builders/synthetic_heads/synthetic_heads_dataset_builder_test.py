"""Builds synthetic_heads for real (tiny configs) and checks what `as_data_source` reads back.

`tfds.testing.DatasetBuilderTestCase` needs TensorFlow (and dill), which the project never
installs, so this is the pytest equivalent: build into tmp_path with array_record, then check
counts, shapes, dtypes, identity-disjoint splits, sorted order and label consistency.
"""

import numpy as np
import pytest

from animojax.synthetic import anime
from animojax.synthetic import dataset
from animojax.synthetic import face_model
from animojax.synthetic import semantics
from tfds_builders.synthetic_heads import synthetic_heads_dataset_builder as builder_lib


def _build(name: str, data_dir):
  config = builder_lib.builder_config(name)
  builder = builder_lib.Builder(config=config, data_dir=str(data_dir),
                                file_format='array_record')
  builder.download_and_prepare()
  return builder


def test_builder_configs_cover_all_synthetic_configs():
  names = [c.name for c in builder_lib.Builder.BUILDER_CONFIGS]
  assert names == list(dataset.CONFIGS)
  assert {'anime_64', 'human_64', 'anime_256', 'human_256'} <= set(names)
  assert builder_lib.Builder.disable_shuffling
  assert str(builder_lib.Builder.VERSION) == '1.0.0'


@pytest.mark.parametrize('name', ['anime_16', 'human_16'])
def test_build_and_read_back(name, tmp_path):
  config = dataset.get_config(name)
  builder = _build(name, tmp_path)
  info = builder.info
  assert info.disable_shuffling
  assert 'synthetic' in info.description.lower()
  assert 'AnimeCeleb' in info.citation
  size = config.image_size
  seen = {}
  for split in dataset.SPLITS:
    source = builder.as_data_source(split=split)
    expected_ids = list(config.identities(split))
    assert len(source) == len(expected_ids) * config.frames_per_identity
    examples = [source[i] for i in range(len(source))]
    order = [(int(e['identity']), int(e['frame'])) for e in examples]
    assert order == sorted(order)  # Identities contiguous, frames in order.
    assert sorted({i for i, _ in order}) == expected_ids
    seen[split] = {i for i, _ in order}
    for example in examples:
      assert example['image'].shape == (size, size, 3) and example['image'].dtype == np.uint8
      assert example['semantic'].shape == (20,) and example['semantic'].dtype == np.float32
      want = dataset.frame_semantics(config, int(example['identity']))[int(example['frame'])]
      np.testing.assert_array_equal(example['semantic'], want)
      if config.domain == 'anime':
        assert example['alpha'].shape == (size, size, 1) and example['alpha'].dtype == np.uint8
        assert example['pose'].shape == (20,) and example['pose'].dtype == np.float32
        np.testing.assert_array_equal(example['pose'][:17], example['semantic'][:17])
        np.testing.assert_array_equal(
            example['pose'][17:][list(semantics.ANIMO_ANGLE_PERMUTATION)],
            example['semantic'][17:])
        assert 0 <= int(example['style']) < len(anime.STYLE_NAMES)
      else:
        coeff = example['coeff']
        assert coeff.shape == (257,) and coeff.dtype == np.float32
        model = face_model.load_face_model()
        np.testing.assert_allclose(coeff[80:144], example['semantic'][:17] @ model.true_phi,
                                   atol=1e-6)
        np.testing.assert_allclose(coeff[224:227], np.radians(example['semantic'][17:]),
                                   atol=1e-6)
        assert np.abs(coeff[254:]).max() <= 0.05
  assert not seen['train'] & seen['test']
  # The stored pixels are exactly what the library renders.
  first = builder.as_data_source(split='train')[0]
  trans = first['coeff'][None, 254:] if config.domain == 'human' else None
  target = dataset.render_target(config, int(first['identity']), first['semantic'][None], trans)
  np.testing.assert_array_equal(target[0], first['image'].astype(np.float32) / 127.5 - 1.0)
  if config.domain == 'anime':
    features = builder.info.features
    assert features['style'].names == list(anime.STYLE_NAMES)

"""TFDS builder of `synthetic_heads`: procedurally rendered anime and human heads.

No download and no TensorFlow: images are rendered with numpy by `animojax.synthetic` and
handed to TFDS as PIL images. Build with
  tfds build tfds_builders/synthetic_heads --config anime_64 --file_format=array_record
(the `tfds` CLI of tfds 4.9.x itself imports TensorFlow), or without TensorFlow with
  python -c 'from tfds_builders.synthetic_heads import synthetic_heads_dataset_builder as b
  b.main(["--config", "anime_64"])'
and read with `builder.as_data_source(split)` / `tfds.data_source(...)`.
"""

import argparse
import dataclasses
import time

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from animojax.synthetic import anime
from animojax.synthetic import dataset
from animojax.synthetic import human
from animojax.synthetic import semantics


@dataclasses.dataclass(kw_only=True)
class SyntheticHeadsBuilderConfig(tfds.core.BuilderConfig):
  """One `animojax.synthetic.dataset` config; `synthetic_config` names it (CONFIGS or
  TEST_CONFIGS key)."""
  synthetic_config: str = 'anime_64'


def builder_config(name: str) -> SyntheticHeadsBuilderConfig:
  """The builder config of a synthetic config name; also accepts `dataset.TEST_CONFIGS` names,
  e.g. `Builder(config=builder_config('anime_16'), ...)` for tiny test builds."""
  config = dataset.get_config(name)
  return SyntheticHeadsBuilderConfig(
      name=name,
      synthetic_config=name,
      description=(f'{config.domain} heads at {config.image_size}x{config.image_size}: '
                   f'{config.num_train_identities} train / {config.num_test_identities} test '
                   f'identities x {config.frames_per_identity} frames (seed {config.seed}).'))


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for synthetic_heads."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [builder_config(name) for name in dataset.CONFIGS]
  # Examples must stay sorted by identity then frame: pair samplers rely on each identity's
  # frames being contiguous.
  disable_shuffling = True

  @property
  def synthetic_config(self) -> dataset.SyntheticConfig:
    return dataset.get_config(self.builder_config.synthetic_config)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.synthetic_config
    size = config.image_size
    features = {
        'image': tfds.features.Image(shape=(size, size, 3)),
        'semantic': tfds.features.Tensor(shape=(semantics.NUM_SEMANTICS,), dtype=np.float32),
        'identity': tfds.features.Scalar(dtype=np.int64),
        'frame': tfds.features.Scalar(dtype=np.int64),
    }
    if config.domain == 'anime':
      features.update({
          'alpha': tfds.features.Image(shape=(size, size, 1)),
          'pose': tfds.features.Tensor(shape=(semantics.NUM_SEMANTICS,), dtype=np.float32),
          'style': tfds.features.ClassLabel(names=anime.STYLE_NAMES),
      })
    else:
      features['coeff'] = tfds.features.Tensor(shape=(human.COEFF_DIM,), dtype=np.float32)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(features),
        supervised_keys=None,
        disable_shuffling=self.disable_shuffling,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Everything is rendered; nothing to download.
    return {split: self._generate_examples(split) for split in dataset.SPLITS}

  def _generate_examples(self, split: str):
    for key, example in dataset.generate_examples(self.synthetic_config, split):
      # PIL images keep TFDS away from tf.image.encode_png (TensorFlow is not installed).
      example['image'] = PIL.Image.fromarray(example['image'])
      if 'alpha' in example:
        example['alpha'] = PIL.Image.fromarray(example['alpha'][..., 0])  # 2D uint8 -> 'L'.
      yield key, example


def main(argv: list[str] | None = None) -> None:
  """Builds configs as array_record without the `tfds` CLI (which needs TensorFlow)."""
  parser = argparse.ArgumentParser(description='Build synthetic_heads (no TensorFlow needed).')
  parser.add_argument('--config', action='append', choices=list(dataset.CONFIGS),
                      help='config to build; repeat for several (default: anime_64, human_64)')
  parser.add_argument('--data_dir', default='tfds_data', help='TFDS data directory')
  args = parser.parse_args(argv)
  for name in args.config or ['anime_64', 'human_64']:
    start = time.perf_counter()
    builder = Builder(config=name, data_dir=args.data_dir, file_format='array_record')
    builder.download_and_prepare()
    print(f'{name}: built in {time.perf_counter() - start:.1f} s -> {builder.data_dir}')


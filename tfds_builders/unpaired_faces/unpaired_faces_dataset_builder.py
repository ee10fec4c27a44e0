"""TFDS builder of `unpaired_faces`: two image folders as two domains (e.g. anime and real faces).

For unpaired translation (CycleGAN, U-GAT-IT): the manual dir holds either CycleGAN's layout
`trainA/ trainB/ testA/ testB/` (e.g. selfie2anime), or two folders `A/` and `B/` split by a
deterministic hash of the file path. Images are composited on white if they have alpha,
centre-cropped (or padded) to a square and resized. Optional per-image landmarks (`<stem>.pts`
in the 300-W/iBUG format, `<stem>.txt` with one "x y" per line, or `<stem>.npy` [K, 2]) are
mapped through the same crop and resize. Examples are sorted by domain, then path. See README.md.
"""

import dataclasses
import io
import os
from typing import Any

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from animojax.data import building

LANDMARK_EXTENSIONS = ('.pts', '.txt', '.npy')


@dataclasses.dataclass(kw_only=True)
class UnpairedFacesConfig(tfds.core.BuilderConfig):
  """How to read the two folders (all fields can be set through a JSON `--config`).

  Attributes:
    domain_names: labels of domain A and B (the `domain` ClassLabel).
    image_size: output size S.
    fit: 'crop' (centre square) or 'pad' (letterbox on white) before resizing.
    num_landmarks: K > 0 adds `landmarks` [K, 2] (x, y in output pixels; NaN when an image has
      no landmark file) and `has_landmarks`; 0 for none.
    test_percent: share of images in 'test' for the A/ B/ layout.
    skip_bad_examples: skip and count unreadable images / landmark files instead of failing.
  """
  domain_names: tuple[str, str] = ('anime', 'real')
  image_size: int = 256
  fit: str = 'crop'
  num_landmarks: int = 0
  test_percent: float = 10.0
  skip_bad_examples: bool = False

  def __post_init__(self):
    self.domain_names = tuple(self.domain_names)
    if len(self.domain_names) != 2 or len(set(self.domain_names)) != 2:
      raise ValueError(f'domain_names must be two different names, got {self.domain_names}.')
    if self.fit not in building.FITS:
      raise ValueError(f'fit must be one of {building.FITS}, got {self.fit!r}.')


@dataclasses.dataclass(frozen=True)
class _Context:
  root: Any
  image_size: int
  fit: str
  num_landmarks: int
  total: int


def landmark_file(image_path) -> epath.Path | None:
  image_path = epath.Path(image_path)
  for ext in LANDMARK_EXTENSIONS:
    candidate = image_path.with_suffix(ext)
    if candidate.exists():
      return candidate
  return None


def read_landmarks(path, num: int) -> np.ndarray:
  """float32 [num, 2] (x, y) from a .pts / .txt / .npy landmark file."""
  path = epath.Path(path)
  try:
    if path.suffix == '.npy':
      points = np.load(io.BytesIO(building.read_bytes(path)))
    else:
      text = building.read_bytes(path).decode('utf-8')
      if path.suffix == '.pts':  # "version: 1 / n_points: 68 / { / x y ... / }"
        text = text[text.index('{') + 1:text.rindex('}')]
      points = np.array(text.split(), np.float32)
  except (ValueError, UnicodeDecodeError) as e:
    raise building.BadExampleError(path, f'cannot parse the landmarks ({e})') from e
  points = np.asarray(points, np.float32)
  if points.size != 2 * num:
    raise building.BadExampleError(
        path, f'holds {points.size} values, expected {num} (x, y) points (num_landmarks)')
  points = points.reshape(num, 2)
  if not np.all(np.isfinite(points)):
    raise building.BadExampleError(path, 'the landmarks contain NaN or Inf')
  return points


def map_points(points: np.ndarray, width: int, height: int, size: int, fit: str) -> np.ndarray:
  """Maps (x, y) pixel positions (centres at integers) through `building.to_square`."""
  if fit == 'pad':
    side = max(width, height)
    offset = np.array([(side - width) // 2, (side - height) // 2], np.float32)
    return (points + offset + 0.5) * (size / side) - 0.5
  left, top, right, _ = building.square_box(width, height)
  side = right - left
  return (points - np.array([left, top], np.float32) + 0.5) * (size / side) - 0.5


def _process(item, ctx: _Context):
  rank, domain, rel_path = item
  path = epath.Path(ctx.root) / rel_path
  image, _ = building.split_alpha(building.open_image(path))
  example = {'image': building.to_square(image, ctx.image_size, ctx.fit), 'domain': domain,
             'file_name': rel_path}
  if ctx.num_landmarks:
    found = landmark_file(path)
    points = np.full((ctx.num_landmarks, 2), np.nan, np.float32)
    if found is not None:
      points = map_points(read_landmarks(found, ctx.num_landmarks), *image.size, ctx.image_size,
                          ctx.fit).astype(np.float32)
    example.update(landmarks=points, has_landmarks=found is not None)
  yield building.ordered_key(rank, ctx.total), example


class Builder(building.BuilderMixin, tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for unpaired_faces (manual: two folders of images)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      UnpairedFacesConfig(name='faces_256', image_size=256,
                          description='Domains anime (A) and real (B), 256x256.'),
      UnpairedFacesConfig(name='faces_64', image_size=64,
                          description='Domains anime (A) and real (B), 64x64.'),
      UnpairedFacesConfig(name='landmarks_256', image_size=256, num_landmarks=68,
                          description='As faces_256, with 68 landmarks where provided.'),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Put domain A (e.g. anime faces) and domain B (e.g. CelebA) images in trainA/ trainB/ '
      'testA/ testB/ (CycleGAN layout) or A/ and B/, and pass the folder as --manual_dir. See '
      'tfds_builders/unpaired_faces/README.md.')
  disable_shuffling = True  # Sorted by domain, then path.

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    size = config.image_size
    features = {
        'image': tfds.features.Image(shape=(size, size, 3)),
        'domain': tfds.features.ClassLabel(names=config.domain_names),
        'file_name': tfds.features.Text(),
    }
    if config.num_landmarks:
      features['landmarks'] = tfds.features.Tensor(shape=(config.num_landmarks, 2),
                                                   dtype=np.float32)
      features['has_landmarks'] = tfds.features.Scalar(dtype=np.bool_)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(features),
        supervised_keys=None,
        disable_shuffling=self.disable_shuffling,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    root = epath.Path(dl_manager.manual_dir)
    folders = {(s, d): f'{s}{d}' for s in ('train', 'test') for d in 'AB'}
    if any((root / f).is_dir() for f in folders.values()):
      split_from = 'folders (trainA/trainB/testA/testB)'
      files = {key: [f'{f}/{p}' for p in building.list_files(root / f,
                                                             building.IMAGE_EXTENSIONS)]
               if (root / f).is_dir() else [] for key, f in folders.items()}
    elif (root / 'A').is_dir() and (root / 'B').is_dir():
      split_from = f'hash ({config.test_percent}% test)'
      files = {}
      for d in 'AB':
        names = [f'{d}/{p}' for p in building.list_files(root / d, building.IMAGE_EXTENSIONS)]
        for split, chosen in building.split_by_hash(names, config.test_percent).items():
          files[(split, d)] = chosen
    else:
      raise FileNotFoundError(
          f'{os.fspath(root)} holds neither trainA/ trainB/ testA/ testB/ nor A/ and B/ '
          '(see tfds_builders/unpaired_faces/README.md).')
    ordered = [(split, 0 if d == 'A' else 1, p) for (split, d), names in sorted(files.items())
               for p in names]
    total = len(ordered)
    if not total:  # Else TFDS would "prepare" a dataset without splits.
      looked = sorted({os.fspath(root / f) for f in folders.values() if (root / f).is_dir()}
                      or {os.fspath(root / 'A'), os.fspath(root / 'B')})
      raise FileNotFoundError(f'No images ({", ".join(building.IMAGE_EXTENSIONS)}) found in '
                              f'{", ".join(looked)}.')
    counts = {f'{s}{d}': len(v) for (s, d), v in files.items()}
    metadata = {'split_from': split_from, 'images': counts}
    if config.num_landmarks:
      metadata['images_without_landmarks'] = {
          f'{s}{"AB"[d]}': sum(1 for s2, d2, p in ordered if (s2, d2) == (s, d)
                               and landmark_file(root / p) is None)
          for s, d in {(s, d) for s, d, _ in ordered}}
    self._record_metadata(**metadata)
    ctx = _Context(root=root, image_size=config.image_size, fit=config.fit,
                   num_landmarks=config.num_landmarks, total=total)
    generators = {}
    for split in ('train', 'test'):
      items = [(rank, d, p) for rank, (s, d, p) in enumerate(ordered) if s == split]
      if items:
        generators[split] = self._stream(split, items, _process, ctx, unit='images')
    return generators

  def _generate_examples(self, **kwargs):  # Unused: _split_generators returns the streams.
    raise NotImplementedError

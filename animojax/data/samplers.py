"""Samplers: an item index -> one training example of one domain, as a pure function.

Every sampler draws from `np.random.default_rng((seed, stream, index))` and nothing else, so an
item depends only on the config, the seed, the domain's stream and its index: the grain iterator's
position alone resumes a run exactly, and any process can compute any item of the global batch.

- `PairSampler` ('pairs'): an identity drawn at random, then two of its frames drawn with
  replacement and sorted (AnimeCeleb's and PIRender's sampling); for datasets grouped by identity
  then video, a video of that identity is drawn first and both frames come from it (PIRender's and
  AniMo's VoxCeleb sampling). AniMo.
- `VideoPairSampler` ('video_pairs'): a video drawn uniformly among all videos, then two of its
  frames (ToonTalker: source and driving frame of one clip, no 3DMM motion needed).
- `SingleSampler` ('single'): one image drawn uniformly (CycleGAN, U-GAT-IT: unpaired domains;
  each domain has its own stream, so the draws of two domains are independent).

Frames are decoded by a `FrameReader`, whose motion map (a `pairs.MotionAdapter`) is optional:
samplers then return motion vectors (`*pose`) only when the domain's config names a pose kind.
"""

import abc

import numpy as np

KINDS = ('pairs', 'video_pairs', 'single')


def item_rng(seed, stream, index):
  """The random generator of one item: a pure function of (seed, stream, index)."""
  return np.random.default_rng((seed, stream, index))


def _check_finite(value, what):
  if not np.all(np.isfinite(value)):
    raise ValueError(f'{what} contains NaN or Inf: {value!r}')


class FrameReader:
  """Decodes example `index` of a random-access source into one frame.

  Returns `image` (float32 in [-1, 1]); `pose` (the motion vector) when `motion` is given;
  `identity` (int32) and `semantic` (the synthetic data's ground-truth state, float32) when the
  dataset has them.
  """

  def __init__(self, source, *, image_size, name, motion=None):
    self.source = source
    self.image_size = image_size
    self.name = name  # 'dataset:split', for error messages.
    self.motion = motion

  def __call__(self, index):
    example = self.source[int(index)]
    image = np.asarray(example['image'])
    if image.shape != (self.image_size, self.image_size, 3):
      raise ValueError(
          f'{self.name}[{index}]: image has shape {image.shape}, expected '
          f'{(self.image_size, self.image_size, 3)} (config.data.image_size). Use a dataset '
          'config built at that resolution.')
    out = {'image': image.astype(np.float32) / 127.5 - 1.0}
    if self.motion is not None:
      pose = np.asarray(self.motion(example), np.float32)
      _check_finite(pose, f'{self.name}[{index}] motion vector')
      out['pose'] = pose
    if 'identity' in example:
      out['identity'] = np.int32(example['identity'])
    if 'semantic' in example:
      out['semantic'] = np.asarray(example['semantic'], np.float32)
    return out


class _FramePairSampler(abc.ABC):
  """index -> two frames of one group of examples; subclasses say how the group is drawn."""

  def __init__(self, reader, groups, *, seed, stream, distinct_frames=False):
    if not groups:
      raise ValueError(f'{reader.name}: the split has no examples.')
    self.reader = reader
    self.groups = groups
    self.seed = seed
    self.stream = stream  # Separates the random streams of the domains.
    # Training draws with replacement (as AnimeCeleb/PIRender do); evaluation wants two
    # different frames, or "copy the source" would score a perfect (infinite-PSNR) match.
    self.distinct_frames = distinct_frames

  @abc.abstractmethod
  def _draw_frames(self, rng):
    """The example indices to pick the two frames from."""

  def __call__(self, index):
    rng = item_rng(self.seed, self.stream, index)
    frames = self._draw_frames(rng)
    replace = not (self.distinct_frames and len(frames) > 1)
    first, second = np.sort(rng.choice(frames, size=2, replace=replace))
    src, drv = self.reader(first), self.reader(second)
    pair = {'source': src['image'], 'driving': drv['image']}
    if 'pose' in src:
      pair['source_pose'] = src['pose']
      pair['driving_pose'] = drv['pose']
    if 'identity' in src:
      pair['identity'] = src['identity']
    if 'semantic' in src:
      pair['source_semantic'] = src['semantic']
      pair['driving_semantic'] = drv['semantic']
    return pair


class PairSampler(_FramePairSampler):
  """index -> a same-identity (source, driving) pair of one domain.

  `groups` holds, per identity, either an int array of example indices, or a list of them (one
  per video of that identity; both frames then come from one video).

  Returns `source`/`driving` images, `identity`, their motion vectors `source_pose`/
  `driving_pose` when the reader has a motion map, and `source_semantic`/`driving_semantic`
  when the dataset carries them.
  """

  def _draw_frames(self, rng):
    group = self.groups[rng.integers(len(self.groups))]
    if isinstance(group, list):  # The identity's videos: draw one, then frames within it.
      group = group[rng.integers(len(group))]
    return group


class VideoPairSampler(_FramePairSampler):
  """index -> two frames of one video, the video drawn uniformly among all `groups`.

  `groups` is a list of int arrays of example indices, one per video. Same outputs as
  `PairSampler` (motion vectors only if the reader has a motion map).
  """

  def _draw_frames(self, rng):
    return self.groups[rng.integers(len(self.groups))]


class SingleSampler:
  """index -> one example drawn uniformly from `indices` (the eligible example indices).

  Returns the reader's frame: `image`, and `pose`, `identity`, `semantic` when present.
  """

  def __init__(self, reader, indices, *, seed, stream):
    if not len(indices):  # pylint: disable=g-explicit-length-test  (an array)
      raise ValueError(f'{reader.name}: no examples to draw from.')
    self.reader = reader
    self.indices = np.asarray(indices, np.int64)
    self.seed = seed
    self.stream = stream

  def __call__(self, index):
    rng = item_rng(self.seed, self.stream, index)
    return self.reader(self.indices[rng.integers(len(self.indices))])


class JointSampler:
  """index -> {domain: sample}: one item of every domain per index (drawn independently)."""

  def __init__(self, samplers):
    self.samplers = dict(samplers)

  def __call__(self, index):
    return {domain: sampler(index) for domain, sampler in self.samplers.items()}

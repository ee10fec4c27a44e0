"""Same-identity (source, driving) pairs, drawn deterministically from an example index.

Every training item is a pure function of (seed, index): an identity drawn at random, then two of
its frames drawn with replacement and sorted (AnimeCeleb's and PIRender's sampling). Because
nothing depends on iteration history, the grain iterator's position alone is enough to resume a
run exactly, and each host can take a disjoint slice of the index space.
"""

import numpy as np

from animojax import posemap


def _check_finite(value, what):
  if not np.all(np.isfinite(value)):
    raise ValueError(f'{what} contains NaN or Inf: {value!r}')


class MotionAdapter:
  """Turns one decoded example into its 70-D motion vector (the AniMo driving signal)."""

  KINDS = ('anime_pose', 'deep3d_coeff')

  def __init__(self, kind, phi=None, angle_permutation=posemap.ANIMO_ANGLE_PERMUTATION):
    if kind not in self.KINDS:
      raise ValueError(f'Unknown pose kind {kind!r}; expected one of {self.KINDS}.')
    if kind == 'anime_pose' and phi is None:
      raise ValueError('The anime_pose kind needs the pose-mapping matrix phi.')
    self.kind = kind
    self.phi = None if phi is None else np.asarray(phi, np.float32)
    self.angle_permutation = tuple(angle_permutation)

  def __call__(self, example):
    if self.kind == 'anime_pose':
      return posemap.anime_pose_to_3dmm(example['pose'], self.phi, self.angle_permutation)
    return posemap.deep3d_coeff_to_motion(example['coeff'])


class PairSampler:
  """Maps an index to a same-identity pair of one domain.

  Returns a dict with `source`/`driving` images (float32 in [-1, 1]), their 70-D motion vectors
  `source_pose`/`driving_pose`, `identity`, and `source_semantic`/`driving_semantic` when the
  dataset carries the ground-truth semantic state (the synthetic data does).
  """

  def __init__(self, source, groups, motion, *, image_size, seed, stream, name):
    if not groups:
      raise ValueError(f'{name}: the split has no examples.')
    self.source = source
    self.groups = groups
    self.motion = motion
    self.image_size = image_size
    self.seed = seed
    self.stream = stream  # Separates the random streams of the two domains.
    self.name = name

  def _load(self, index):
    example = self.source[int(index)]
    image = np.asarray(example['image'])
    if image.shape != (self.image_size, self.image_size, 3):
      raise ValueError(
          f'{self.name}[{index}]: image has shape {image.shape}, expected '
          f'{(self.image_size, self.image_size, 3)} (config.data.image_size). Use a dataset '
          'config built at that resolution.')
    pose = np.asarray(self.motion(example), np.float32)
    _check_finite(pose, f'{self.name}[{index}] motion vector')
    out = {'image': image.astype(np.float32) / 127.5 - 1.0, 'pose': pose,
           'identity': np.int32(example['identity'])}
    if 'semantic' in example:
      out['semantic'] = np.asarray(example['semantic'], np.float32)
    return out

  def __call__(self, index):
    rng = np.random.default_rng((self.seed, self.stream, index))
    group = self.groups[rng.integers(len(self.groups))]
    first, second = np.sort(rng.choice(group, size=2, replace=True))
    src, drv = self._load(first), self._load(second)
    pair = {'source': src['image'], 'driving': drv['image'], 'source_pose': src['pose'],
            'driving_pose': drv['pose'], 'identity': src['identity']}
    if 'semantic' in src:
      pair['source_semantic'] = src['semantic']
      pair['driving_semantic'] = drv['semantic']
    return pair


class JointPairs:
  """index -> {domain: pair}: one pair of every domain per item (AniMo trains both at once)."""

  def __init__(self, samplers):
    self.samplers = dict(samplers)

  def __call__(self, index):
    return {domain: sampler(index) for domain, sampler in self.samplers.items()}

"""Same-identity (source, driving) pairs, drawn deterministically from an example index.

Every training item is a pure function of (seed, index): an identity drawn at random, then two of
its frames drawn with replacement and sorted (AnimeCeleb's and PIRender's sampling); for video
datasets grouped by identity then video, a video of that identity is drawn first and both frames
come from it (PIRender's and AniMo's VoxCeleb sampling). Because
nothing depends on iteration history, the grain iterator's position alone is enough to resume a
run exactly, and each host can take a disjoint slice of the index space.
"""

import numpy as np

from animojax import posemap
from animojax.data import coeffs


def _check_finite(value, what):
  if not np.all(np.isfinite(value)):
    raise ValueError(f'{what} contains NaN or Inf: {value!r}')


class MotionAdapter:
  """Turns one decoded example into its motion vector (the AniMo driving signal).

  Kinds: 'anime_pose' (AnimeCeleb 20-D pose through T with Φ: K + 6 dims for a 17 x K Φ),
  'deep3d_coeff' (Deep3DFaceRecon 257-D -> exp | angle | trans, 70-D) and 'deca_coeff' (DECA
  156-D -> exp | angle | jaw, 56-D; see `animojax.data.coeffs`). Both domains of a run must give
  the same size, which is the model's `pose_dim`.
  """

  KINDS = ('anime_pose', 'deep3d_coeff', 'deca_coeff')
  # The `voxceleb_3dmm` coefficient format each human kind reads.
  COEFF_FORMATS = {'deep3d_coeff': 'deep3d', 'deca_coeff': 'deca'}

  def __init__(self, kind, phi=None, angle_permutation=posemap.ANIMO_ANGLE_PERMUTATION):
    if kind not in self.KINDS:
      raise ValueError(f'Unknown pose kind {kind!r}; expected one of {self.KINDS}.')
    if kind == 'anime_pose' and phi is None:
      raise ValueError('The anime_pose kind needs the pose-mapping matrix phi.')
    self.kind = kind
    self.phi = None if phi is None else np.asarray(phi, np.float32)
    self.angle_permutation = tuple(angle_permutation)

  @property
  def dim(self):
    """Size of the motion vectors this adapter returns."""
    if self.kind == 'anime_pose':
      return self.phi.shape[1] + 6
    return posemap.MOTION_DIM if self.kind == 'deep3d_coeff' else coeffs.DECA_MOTION_DIM

  def __call__(self, example):
    if self.kind == 'anime_pose':
      return posemap.anime_pose_to_3dmm(example['pose'], self.phi, self.angle_permutation)
    if self.kind == 'deca_coeff':
      return coeffs.deca_coeff_to_motion(example['coeff'])
    return posemap.deep3d_coeff_to_motion(example['coeff'])


class PairSampler:
  """Maps an index to a same-identity pair of one domain.

  `groups` holds, per identity, either an int array of example indices, or a list of them (one
  per video of that identity; both frames then come from one video).

  Returns a dict with `source`/`driving` images (float32 in [-1, 1]), their 70-D motion vectors
  `source_pose`/`driving_pose`, `identity`, and `source_semantic`/`driving_semantic` when the
  dataset carries the ground-truth semantic state (the synthetic data does).
  """

  def __init__(self, source, groups, motion, *, image_size, seed, stream, name,
               distinct_frames=False):
    if not groups:
      raise ValueError(f'{name}: the split has no examples.')
    self.source = source
    self.groups = groups
    self.motion = motion
    self.image_size = image_size
    self.seed = seed
    self.stream = stream  # Separates the random streams of the two domains.
    self.name = name
    # Training draws with replacement (as AnimeCeleb/PIRender do); evaluation wants two
    # different frames, or "copy the source" would score a perfect (infinite-PSNR) match.
    self.distinct_frames = distinct_frames

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
    if isinstance(group, list):  # The identity's videos: draw one, then frames within it.
      group = group[rng.integers(len(group))]
    replace = not (self.distinct_frames and len(group) > 1)
    first, second = np.sort(rng.choice(group, size=2, replace=replace))
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

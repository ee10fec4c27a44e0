"""Motion vectors: the optional per-frame map from a decoded example to AniMo's driving signal.

Samplers (`animojax.data.samplers`) apply it only for domains whose config names a pose kind
(`config.data.<domain>.pose`); Φ is loaded only when one of them is 'anime_pose'.
"""

import numpy as np

from animojax import posemap
from animojax.data import coeffs


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

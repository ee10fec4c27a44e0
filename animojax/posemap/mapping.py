"""The pose mapping T(b, h) = (b·Φ) ⊕ radians(h in pitch/yaw/roll order) ⊕ 0₃.

AniMo drives both domains with one 70-D motion vector laid out like Deep3DFaceRecon's coefficients:
expression (64) | angles (3, radians, pitch/yaw/roll) | translation (3). Human frames give it
directly (slices of the 257-D coefficient vector); anime frames give a 20-D AnimeCeleb pose
(17 morph weights + 3 head angles in degrees) that T maps into the same space.

The head-angle column order of AnimeCeleb's CSV is ambiguous in the authors' code
(kangyeolk/AnimeCeleb `Animo/`, `EDTN/` data loaders): AniMo's runner reorders with (0, 2, 1),
EDTN with (1, 2, 0). The permutation is therefore always an explicit argument; AniMo's choice is the default.
The layouts are `animojax.face3d.layouts` (MOTION, DEEP3D, ANIME_POSE).
"""

import os

import jax.numpy as jnp
import numpy as np

from animojax.face3d import layouts
from animojax.face3d import semantics

MOTION_DIM = layouts.MOTION.dim
NUM_MORPHS = semantics.NUM_MORPHS
NUM_POSE = layouts.ANIME_POSE.dim
# Index i of the result takes column ANIMO_ANGLE_PERMUTATION[i] of pose[17:20].
ANIMO_ANGLE_PERMUTATION = semantics.ANIMO_ANGLE_PERMUTATION
DEEP3D_SLICES = layouts.DEEP3D.slices


def load_phi(path, setting='config.data.phi'):
  """Loads Φ (17 × K) from a .npy file; errors name `setting` (the flag or config key given).

  Accepts the released AniMo `pose_coeffs.npy` (17 × 257, one Deep3DFaceRecon coefficient vector
  per morph; Φ is its expression block [:, 80:144]) or a plain 17 × K matrix.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    synthetic = (', or use "synthetic" for the synthetic dataset\'s true map'
                 if setting.startswith('config') else '')
    raise FileNotFoundError(
        f'Pose-mapping matrix {path!r} not found. Point {setting} at a 17×K .npy file '
        '(e.g. AniMo\'s released Animo/data/pose_coeffs.npy, or one written by `python -m '
        f'animojax.posemap fit`){synthetic}.')
  try:
    phi = np.load(path, allow_pickle=False)
  except Exception as e:  # numpy raises several types for corrupt files.
    raise ValueError(f'Could not read pose-mapping matrix {path!r} ({setting}): {e}') from e
  if not np.issubdtype(phi.dtype, np.number) or np.iscomplexobj(phi):
    raise ValueError(f'{path!r} ({setting}): expected a real-valued matrix, got dtype '
                     f'{phi.dtype}.')
  if phi.ndim != 2 or phi.shape[0] != NUM_MORPHS:
    raise ValueError(f'{path!r} ({setting}): expected a ({NUM_MORPHS}, K) matrix, got shape '
                     f'{phi.shape}.')
  if phi.shape[1] == layouts.DEEP3D.dim:
    phi = phi[:, DEEP3D_SLICES['exp']]
  if not np.all(np.isfinite(phi)):
    raise ValueError(f'{path!r} ({setting}): the pose-mapping matrix contains NaN or Inf.')
  return phi.astype(np.float32)


def anime_pose_to_3dmm(pose, phi, angle_permutation=ANIMO_ANGLE_PERMUTATION):
  """Maps AnimeCeleb pose vectors [..., 20] to motion vectors [..., K + 6] (K = 64 for BFM).

  Works on numpy and jax arrays alike (only indexing, matmul and concatenation).
  """
  if pose.shape[-1] != NUM_POSE:
    raise ValueError(f'AnimeCeleb pose vectors have {NUM_POSE} entries, got shape {pose.shape}.')
  xp = np if isinstance(pose, np.ndarray) else jnp
  morphs, angles_deg = pose[..., :NUM_MORPHS], pose[..., NUM_MORPHS:]
  angles = angles_deg[..., list(angle_permutation)] * (np.pi / 180.0)
  exp = morphs @ phi
  trans = xp.zeros(pose.shape[:-1] + (3,), dtype=exp.dtype)
  return xp.concatenate([exp, angles.astype(exp.dtype), trans], axis=-1)


def deep3d_coeff_to_motion(coeff):
  """Takes exp | angles | trans (70-D) out of Deep3DFaceRecon 257-D coefficients [..., 257]."""
  # 260: PIRender's LMDB appends 3 crop parameters.
  if coeff.shape[-1] not in (layouts.DEEP3D.dim, layouts.DEEP3D.dim + 3):
    raise ValueError(f'Deep3DFaceRecon coefficients have 257 (or 260) entries, got {coeff.shape}.')
  xp = np if isinstance(coeff, np.ndarray) else jnp
  s = DEEP3D_SLICES
  return xp.concatenate([coeff[..., s['exp']], coeff[..., s['angle']], coeff[..., s['trans']]],
                        axis=-1)

"""3DMM coefficient files and layouts of human video datasets, and their motion vectors.

Two per-frame 3DMMs are supported, stored by the `voxceleb_3dmm` builder as a `coeff` vector:

* **deep3d** (Deep3DFaceRecon, BFM; `face3d.layouts.DEEP3D`), 257-D:
  id 80 | exp 64 | tex 80 | angle 3 (radians; x, y, z = pitch, yaw, roll) | gamma 27 | trans 3.
  Its motion vector (AniMo's 70-D) is exp | angle | trans.
* **deca** (DECA, FLAME; `face3d.layouts.DECA`), 156-D, AniMo's `read_deca` order:
  shape 100 | exp 50 | pose 6, where pose = global rotation 3 | jaw rotation 3, both axis-angle
  (rotation vectors, radians) in FLAME's frame (x right, y up, z out of the face: the same axes
  as Deep3DFaceRecon's). Its motion vector, 56-D (`face3d.layouts.DECA_MOTION`), is
  exp 50 | angle 3 | jaw 3: the global rotation converted to Deep3DFaceRecon's Euler angles
  (`face3d.rotations`: R = Rz(roll) Ry(yaw) Rx(pitch)), so that head angles mean the same in
  both 3DMMs and in AnimeCeleb poses mapped by T; the jaw takes the slot of Deep3D's
  translation. An anime pose maps into the same space with EDTN's 17 x 50 morph -> FLAME
  expression matrix (`transform_matrix_08_30.npy`) and a zero jaw, as EDTN's own training does.
  DECA's camera (`cam`: orthographic scale, tx, ty) is stored separately, not in the motion.

File readers raise `building.BadExampleError` naming the file and what is wrong.
"""

import io

import numpy as np

from animojax.data import building
from animojax.face3d import layouts
from animojax.face3d import rotations

DEEP3D_DIM = layouts.DEEP3D.dim
DEEP3D_SLICES = layouts.DEEP3D.slices
# Deep3DFaceRecon_pytorch saves the coefficients split by name; the TF original as one `coeff`.
DEEP3D_KEYS = layouts.DEEP3D.blocks
DECA_DIM = layouts.DECA.dim
DECA_SLICES = layouts.DECA.slices
DECA_KEYS = layouts.DECA.blocks
DECA_MOTION_DIM = layouts.DECA_MOTION.dim
FORMATS = ('deep3d', 'deca')
COEFF_DIMS = {'deep3d': DEEP3D_DIM, 'deca': DECA_DIM}


def layout(fmt: str) -> dict:
  """A JSON-able description of a stored `coeff` layout (kept in the dataset's metadata)."""
  slices = DEEP3D_SLICES if fmt == 'deep3d' else DECA_SLICES
  return {'format': fmt, 'dim': COEFF_DIMS[fmt],
          'slices': {k: [s.start, s.stop] for k, s in slices.items()}}


def load_mat(path, data: bytes | None = None) -> dict:
  import scipy.io  # pylint: disable=g-import-not-at-top  # Only the voxceleb_3dmm builder needs it.
  data = building.read_bytes(path) if data is None else data
  try:
    return scipy.io.loadmat(io.BytesIO(data))
  except Exception as e:  # scipy raises several types (ValueError, MatReadError, ...).
    raise building.BadExampleError(path, f'cannot read the .mat file ({e})') from e


def _vector(mat, key, size, path, rows=1):
  """mat[key] as float32[rows, size]; rows=None accepts any number of rows (a per-video file)."""
  if key not in mat:
    raise building.BadExampleError(
        path, f'has no {key!r} entry (keys: {sorted(k for k in mat if not k.startswith("__"))})')
  try:
    value = np.asarray(mat[key], np.float32)
  except (TypeError, ValueError) as e:
    raise building.BadExampleError(path, f'{key!r} is not numeric ({e})') from e
  n = value.size // size if rows is None else rows
  if value.size != n * size or n == 0 or (rows is None and value.ndim != 2):
    want = f'N x {size}' if rows is None else f'{rows} x {size} values'
    raise building.BadExampleError(path, f'{key!r} has shape {value.shape}, expected {want}')
  value = value.reshape(n, size)
  if not np.all(np.isfinite(value)):
    raise building.BadExampleError(path, f'{key!r} contains NaN or Inf')
  return value


def read_deep3d(path, data: bytes | None = None, rows: int | None = 1
                ) -> tuple[np.ndarray, np.ndarray]:
  """(coeff float32[N, 257], crop float32[N, 3]) from a Deep3DFaceRecon .mat.

  Reads the TF release's `coeff` (N x 257) or the PyTorch release's split keys (id, exp, ...);
  `transform_params` (N x 5) gives the crop, NaN when the file has none. rows=None reads a
  per-video file of any length (PIRender's `face_recon_videos.py`: one row per frame).
  """
  mat = load_mat(path, data)
  if 'coeff' in mat:
    coeff = _vector(mat, 'coeff', DEEP3D_DIM, path, rows)
  elif all(k in mat for k, _ in DEEP3D_KEYS):
    coeff = np.concatenate([_vector(mat, k, n, path, rows) for k, n in DEEP3D_KEYS], axis=1)
  elif all(k in mat for k, _ in DECA_KEYS):
    raise building.BadExampleError(
        path, 'is a DECA file (shape/exp/pose), but the config reads Deep3DFaceRecon files: '
        'use a deca_* config')
  else:
    raise building.BadExampleError(
        path, 'is not a Deep3DFaceRecon coefficient file: expected a `coeff` (N x 257) entry or '
        f'the entries {[k for k, _ in DEEP3D_KEYS]}; it has '
        f'{sorted(k for k in mat if not k.startswith("__"))}')
  if 'transform_params' in mat:
    # PIRender keeps (s, tx, ty) of Deep3DFaceRecon's [w0, h0, s, tx, ty].
    crop = _vector(mat, 'transform_params', 5, path, coeff.shape[0])[:, 2:5]
  else:
    crop = np.full((coeff.shape[0], 3), np.nan, np.float32)
  return coeff, crop


def read_deca(path, data: bytes | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(coeff float32[156] = shape | exp | pose, cam float32[3], NaN if absent) from a DECA .mat."""
  mat = load_mat(path, data)
  if not all(k in mat for k, _ in DECA_KEYS):
    hint = (' (a Deep3DFaceRecon file: use a deep3d_* config)'
            if 'coeff' in mat or 'angle' in mat else '')
    raise building.BadExampleError(
        path, f'is not a DECA file{hint}: expected entries shape (100), exp (50), pose (6); it '
        f'has {sorted(k for k in mat if not k.startswith("__"))}')
  coeff = np.concatenate([_vector(mat, k, n, path)[0] for k, n in DECA_KEYS])
  cam = _vector(mat, 'cam', 3, path)[0] if 'cam' in mat else np.full(3, np.nan, np.float32)
  return coeff, cam


def deca_coeff_to_motion(coeff: np.ndarray) -> np.ndarray:
  """DECA [..., 156] -> the 56-D motion exp 50 | angle 3 (radians; pitch, yaw, roll) | jaw 3."""
  coeff = np.asarray(coeff, np.float32)
  if coeff.shape[-1] != DECA_DIM:
    raise ValueError(f'DECA coefficients have {DECA_DIM} entries (shape 100 | exp 50 | pose 6), '
                     f'got shape {coeff.shape}.')
  angles = rotations.matrix_to_euler(
      rotations.axis_angle_to_matrix(coeff[..., DECA_SLICES['global_pose']]))
  return np.concatenate([coeff[..., DECA_SLICES['exp']], angles.astype(np.float32),
                         coeff[..., DECA_SLICES['jaw_pose']]], axis=-1)

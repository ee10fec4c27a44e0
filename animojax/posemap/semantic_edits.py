"""T.1: the 17 AnimeCeleb semantics as edits of the 68 iBUG landmarks of a neutral face.

AnimeCeleb (§3.1) fits Φ by editing a 3DMM's landmarks once per anime morph and solving for the
expression coefficients that reproduce each edit; the edits themselves were never released. Ours
are authored once, in centimetres, on the reference face of the embedded model
(`animojax.face3d.make_embedded_model`: `semantic_offsets`, which is also what the synthetic
generator renders), and transferred to any other neutral face:

1. both faces get a face frame: x from the right eye centre to the left eye centre, y toward the
   eyes from the chin (orthogonalised), z = x × y (out of the face);
2. each landmark belongs to a region (eyes, brows, mouth + jaw, nose) whose size is measured on
   both faces along each frame axis -- eyes: width and lid opening; brows: length and height
   above the eye; mouth and jaw: mouth width and nose-to-chin height; depth scales like width;
3. a reference displacement is expressed in the reference frame, scaled per axis by the region's
   size ratio, and put back in the new face's frame.

So "eye closed" shuts the same fraction of the lid opening on a face with narrower eyes, and
"mouth A" drops the jaw by the same fraction of the lower face. On the reference face
every ratio is 1 and the edits are the generator's own, which is what makes the closed-loop test
(fit on the embedded model -> its true Φ) exact. Pictures: docs/posemap/semantics.png.
"""

import numpy as np

from animojax.face3d import embedded
from animojax.face3d import ibug68
from animojax.face3d import semantics

SEMANTIC_NAMES = semantics.MORPH_NAMES
NUM_SEMANTICS = semantics.NUM_MORPHS

_EYE_RIGHT, _EYE_LEFT = ibug68.EYE_RIGHT, ibug68.EYE_LEFT
_BROW_RIGHT, _BROW_LEFT = ibug68.BROW_RIGHT, ibug68.BROW_LEFT
# Region of each landmark: 0 mouth + jaw, 1 brows, 2 eyes, 3 nose (never edited).
_REGION = np.zeros(68, np.int32)
_REGION[17:27], _REGION[36:48], _REGION[27:36] = 1, 2, 3
# The part of the face each semantic edits (for cropping pictures): one eye with its brow
# ("left" = the subject's own left, iBUG 22-26 / 42-47), or mouth, nose base and lower jaw.
_FOCUS = {'left': np.r_[22:27, 42:48], 'right': np.r_[17:22, 36:42],
          'mouth': np.r_[3:14, 31:36, 48:68]}
SEMANTIC_FOCUS = tuple(_FOCUS[name.rsplit('_', 1)[1] if name.endswith(('left', 'right'))
                              else 'mouth'] for name in SEMANTIC_NAMES)


def face_frame(points: np.ndarray) -> np.ndarray:
  """Orthonormal face axes (rows x, y, z) of landmarks [68, 3]; `frame @ p` = face coordinates."""
  points = np.asarray(points, np.float64)
  x = points[_EYE_LEFT].mean(0) - points[_EYE_RIGHT].mean(0)
  x /= np.linalg.norm(x)
  up = points[36:48].mean(0) - points[ibug68.CHIN]
  y = up - (up @ x) * x
  y /= np.linalg.norm(y)
  return np.stack([x, y, np.cross(x, y)])


def region_sizes(points: np.ndarray) -> np.ndarray:
  """Size of each region along the face axes, float64 [4, 3] (rows follow `_REGION` ids)."""
  p = np.asarray(points, np.float64) @ face_frame(points).T  # Face coordinates.

  def mean_dist(pairs, axis=None):
    d = np.array([p[a] - p[b] for a, b in pairs])
    return float(np.mean(np.abs(d[:, axis]) if axis is not None else np.linalg.norm(d, axis=1)))

  eye_width = mean_dist([(39, 36), (45, 42)])
  eye_open = mean_dist([(37, 41), (38, 40), (43, 47), (44, 46)], axis=1)
  brow_len = mean_dist([(21, 17), (26, 22)])
  brow_height = float(np.mean([p[_BROW_RIGHT, 1].mean() - p[[37, 38], 1].mean(),
                               p[_BROW_LEFT, 1].mean() - p[[43, 44], 1].mean()]))
  mouth_width = mean_dist([(54, 48)])
  lower_face = mean_dist([(33, 8)], axis=1)
  iod = mean_dist([(45, 36)])
  sizes = np.array([[mouth_width, lower_face, mouth_width],
                    [brow_len, brow_height, brow_len],
                    [eye_width, eye_open, eye_width],
                    [iod, iod, iod]])
  if not np.all(sizes > 0):
    raise ValueError(f'Degenerate neutral face (region sizes {sizes.tolist()}): the landmarks must '
                     'be in iBUG-68 order, y up, with open eyes and brows above the eyes.')
  return sizes


def _reference():
  model = embedded.load_face_model()
  return np.asarray(model.mean, np.float64), np.asarray(model.semantic_offsets, np.float64)


def transfer_displacements(displacements: np.ndarray, reference: np.ndarray,
                           neutral: np.ndarray) -> np.ndarray:
  """Moves landmark displacements [..., 68, 3] authored on `reference` onto `neutral` [68, 3]."""
  ref_frame, new_frame = face_frame(reference), face_frame(neutral)
  ratio = (region_sizes(neutral) / region_sizes(reference))[_REGION]  # [68, 3]
  local = np.einsum('ij,...lj->...li', ref_frame, displacements) * ratio
  return np.einsum('ji,...lj->...li', new_frame, local)


def semantic_targets(neutral: np.ndarray) -> np.ndarray:
  """T.1: target landmarks of the 17 semantics at weight 1, float32 [17, 68, 3].

  Args:
    neutral: [68, 3] neutral landmarks (iBUG-68, any units, x to the subject's left, y up).
  """
  neutral = np.asarray(neutral, np.float64)
  if neutral.shape != (68, 3):
    raise ValueError(f'semantic_targets expects neutral landmarks [68, 3], got {neutral.shape}.')
  reference, offsets = _reference()
  return (neutral + transfer_displacements(offsets, reference, neutral)).astype(np.float32)

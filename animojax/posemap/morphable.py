"""One interface for morphable face models, reduced to what pose mapping needs: 68 landmarks.

Pose mapping (AnimeCeleb §3.1, T.1-T.3) only ever looks at the 68 iBUG landmarks of a 3DMM, so
every model -- Deep3DFaceRecon's BFM, the 3DDFA landmark bases, the Surrey Face Model, the embedded
synthetic model -- is loaded into the same landmark-level `MorphableModel`:

  landmarks = mean + id_basis @ id_coeff + exp_basis @ exp_coeff          ([68, 3])

Conventions (sicxu/Deep3DFaceRecon_pytorch `models/bfm.py`): units are decimetres (BFM's micrometres
/ 1e5), x points to the subject's left, y up, z toward the camera, iBUG-68 order with 0-based
indices. Models that have a mesh also keep its mean vertices and triangles (for pictures) and how
each landmark is read off the mesh (two vertex ids and interpolation weights: a plain vertex has
weights (1, 0); the Surrey model's jaw contour landmarks lie between contour vertices).
"""

import dataclasses

import numpy as np

from animojax.face3d import embedded
from animojax.face3d import ibug68

NUM_LANDMARKS = ibug68.NUM_LANDMARKS
OUTER_EYE_CORNERS = ibug68.OUTER_EYE_CORNERS


@dataclasses.dataclass(frozen=True, eq=False)
class MorphableModel:
  """Landmark-level arrays of a morphable model (float32, decimetres).

  Attributes:
    name: short name ('bfm', '3ddfa', 'sfm', 'embedded').
    mean: [68, 3] landmarks of the mean identity with zero expression (the neutral face).
    id_basis: [68, 3, I] identity basis at the landmarks.
    exp_basis: [68, 3, K] expression basis at the landmarks (Φ has K columns).
    exp_std: [K] prior standard deviation of each expression coefficient; the fit's ℓ2
      regulariser is sum((φ / exp_std)**2), a Gaussian prior in the model's own units.
    landmark_valid: bool [68]; False where the model defines no point for that landmark (its
      entry then repeats a neighbour for drawing, and the fit gives it zero weight).
    exp_names: names of the expression components, when the model has them (blendshapes).
    vertices: [N, 3] mean mesh, or None for landmark-only models.
    triangles: int32 [T, 3] 0-based, or None.
    keypoints: int32 [68, 2] vertex ids each landmark interpolates, or None.
    keypoint_weights: float32 [68, 2] interpolation weights (rows sum to 1), or None.
    source: where the model was read from.
  """
  name: str
  mean: np.ndarray
  id_basis: np.ndarray
  exp_basis: np.ndarray
  exp_std: np.ndarray
  landmark_valid: np.ndarray
  exp_names: tuple[str, ...] | None = None
  vertices: np.ndarray | None = None
  triangles: np.ndarray | None = None
  keypoints: np.ndarray | None = None
  keypoint_weights: np.ndarray | None = None
  source: str = ''

  def __post_init__(self):
    k = self.exp_basis.shape[-1]
    expected = {'mean': (NUM_LANDMARKS, 3), 'exp_std': (k,), 'landmark_valid': (NUM_LANDMARKS,)}
    for field, shape in expected.items():
      if getattr(self, field).shape != shape:
        raise ValueError(f'{self.source or self.name}: {field} has shape '
                         f'{getattr(self, field).shape}, expected {shape}.')
    for field in ('id_basis', 'exp_basis'):
      if getattr(self, field).shape[:2] != (NUM_LANDMARKS, 3):
        raise ValueError(f'{self.source or self.name}: {field} has shape '
                         f'{getattr(self, field).shape}, expected (68, 3, components).')
    if not np.all(self.exp_std > 0):
      raise ValueError(f'{self.source or self.name}: exp_std must be positive.')

  @property
  def num_exp(self) -> int:
    return self.exp_basis.shape[-1]

  @property
  def num_id(self) -> int:
    return self.id_basis.shape[-1]

  def landmarks(self, exp_coeff=None, id_coeff=None) -> np.ndarray:
    """Landmarks [..., 68, 3] for expression [..., K] and identity [..., I] coefficients."""
    out = self.mean
    if id_coeff is not None:
      out = out + np.einsum('lck,...k->...lc', self.id_basis, np.asarray(id_coeff, np.float32))
    if exp_coeff is not None:
      out = out + np.einsum('lck,...k->...lc', self.exp_basis, np.asarray(exp_coeff, np.float32))
    return np.asarray(out, np.float32)

  def with_identity(self, id_coeff) -> 'MorphableModel':
    """The same model whose neutral face is a given identity (fit Φ for one person)."""
    return dataclasses.replace(self, mean=self.landmarks(id_coeff=id_coeff))


def landmarks_from_vertices(vertices: np.ndarray, keypoints: np.ndarray,
                            weights: np.ndarray) -> np.ndarray:
  """Reads landmarks off per-vertex arrays [N, 3, ...] -> [68, 3, ...] by interpolation."""
  w = weights.reshape(weights.shape + (1,) * (vertices.ndim - 1))
  return (vertices[keypoints[:, 0]] * w[:, 0] + vertices[keypoints[:, 1]] * w[:, 1]).astype(
      np.float32)


def embedded_model() -> MorphableModel:
  """The embedded sparse model (`animojax.face3d.embedded`), in decimetres."""
  fm = embedded.load_face_model()
  s = np.float32(embedded.DM_PER_UNIT)
  return MorphableModel(
      name='embedded', mean=fm.mean * s, id_basis=fm.id_basis * s, exp_basis=fm.exp_basis * s,
      exp_std=np.ones(fm.exp_basis.shape[-1], np.float32),
      landmark_valid=np.ones(NUM_LANDMARKS, bool), source='animojax.face3d.embedded')

"""Captured faces -> the motion vectors a trained model reads: exp K | angles 3 | trans 3.

A target space is a landmark-level morphable model (`animojax.posemap.MorphableModel`): the
embedded model of the synthetic data ('embedded', so a demo-trained AniMo can be driven by a
real video), Deep3DFaceRecon's BFM ('bfm:PATH/BFM_model_front.mat', K = 64: AniMo's 70-D
motion) or 3DDFA's own bases ('3ddfa', K = 10, from the converted bundle).

Per frame (all frames of a clip in one jitted least-squares call):

* expression: 3DDFA_V2's expression displacement of the 68 landmarks, `w_exp_base @ exp`, scaled
  by the ratio of the two models' inter-ocular distances (so that a mouth opening of a third of
  the eye distance stays a third), is fitted by the target's expression basis with the ridge
  least squares of the pose-mapping fit (`animojax.posemap.fit.solve_phi` with the linear
  'landmarks3d' camera: one Cholesky factorisation for all frames). The identity (3DDFA's 40 shape
  coefficients) is left out on purpose: it is the driving person's, not the source's.
* angles: 3DDFA_V2's rotation (rows of its camera matrix, normalised) shares Deep3DFaceRecon's
  axes (x to the subject's left, y up, z toward the camera: 3DDFA flips y only when it maps to
  image rows), so it is expressed as Deep3DFaceRecon's (pitch, yaw, roll)
  (`animojax.face3d.rotations.matrix_to_euler`).
* translation: where the posed model origin lands in the frame, relative to the first frame
  with a face, converted from pixels to target units with the face's own scale; depth from the
  change of that scale under the targets' camera at distance 10 (z = 10 (1 - s0 / s)). Absolute
  translations are not comparable between a video's camera and the training data's, so motion is
  always relative in translation.

`drive` then combines a driving sequence with the source's own motion: relative (the default, as
FOMM and LivePortrait do): exp_src + exp_t - exp_0, R_t R_0^T R_src, trans_src + trans_t; or
absolute: the driving expression and angles as they are. Frames without a face hold the last
motion (before the first face: the first face's).
"""

import dataclasses
import functools

import jax.numpy as jnp
import numpy as np

from animojax.face3d import cameras
from animojax.face3d import embedded
from animojax.face3d import ibug68
from animojax.face3d import rotations
from animojax.nets import tddfa
from animojax.posemap import fit as fit_lib
from animojax.posemap import loaders
from animojax.posemap import morphable

_UM_TO_DM = 1e-5  # 3DDFA's BFM is in micrometres, the landmark models in decimetres.
DEFAULT_REG = 1e-3


def tddfa_model(weights) -> morphable.MorphableModel:
  """3DDFA_V2's 68-landmark model (decimetres) from a loaded capture bundle."""
  def per_landmark(flat):
    flat = np.asarray(flat, np.float32) * _UM_TO_DM
    return flat.reshape((tddfa.NUM_LANDMARKS, 3) + flat.shape[1:])

  return morphable.MorphableModel(
      name='3ddfa', mean=per_landmark(weights.u_base), id_basis=per_landmark(weights.w_shp_base),
      exp_basis=per_landmark(weights.w_exp_base),
      exp_std=np.asarray(weights.param_std, np.float32)[52:],
      landmark_valid=np.ones(tddfa.NUM_LANDMARKS, bool), source='tddfa_v2.npz')


def target_model(spec: str, weights=None) -> tuple[morphable.MorphableModel, float]:
  """(landmark model, decimetres per motion translation unit) for 'embedded' | 'bfm:PATH' | '3ddfa'.

  The embedded model's motion vectors count translation in its own unit (7 cm); the BFM's in
  decimetres.
  """
  if spec == '3ddfa':
    if weights is None:
      raise ValueError("target '3ddfa' needs the capture weights (tddfa_v2.npz).")
    return tddfa_model(weights), 1.0
  model = loaders.load_model(spec)
  return model, (embedded.DM_PER_UNIT if model.name == 'embedded' else 1.0)


def _iod(points):
  return float(np.linalg.norm(points[ibug68.OUTER_EYE_CORNERS[1]]
                              - points[ibug68.OUTER_EYE_CORNERS[0]]))


@dataclasses.dataclass(frozen=True)
class Fitter:
  """Fits captured frames into one target space.

  Attributes:
    model: the target landmark model (decimetres).
    source_model: 3DDFA_V2's landmark model (decimetres).
    unit_dm: decimetres per translation unit of the target's motion vectors.
    reg: ridge weight (`posemap.fit`: relative to squared landmark error in inter-ocular units).
  """
  model: morphable.MorphableModel
  source_model: morphable.MorphableModel
  unit_dm: float = 1.0
  reg: float = DEFAULT_REG

  @property
  def motion_dim(self) -> int:
    return self.model.num_exp + 6

  @property
  def face_ratio(self) -> float:
    """Target face size / 3DDFA face size (inter-ocular distances of the mean faces)."""
    return _iod(self.model.mean) / _iod(self.source_model.mean)

  def solve_expression(self, exp10) -> np.ndarray:
    """3DDFA expression coefficients [N, 10] -> target expression coefficients [N, K], by the
    ridge least-squares fit of the expressions' landmarks (`posemap.fit.solve_phi`)."""
    exp10 = jnp.asarray(exp10, jnp.float32)
    shift = jnp.einsum('lck,nk->nlc', jnp.asarray(self.source_model.exp_basis), exp10)
    targets = jnp.asarray(self.model.mean) + shift * self.face_ratio
    return np.asarray(fit_lib.solve_phi(
        self.model.mean, self.model.exp_basis, self.model.exp_std, targets,
        self.model.landmark_valid.astype(np.float32), np.eye(3, dtype=np.float32)[None],
        np.float32(self.reg), camera='landmarks3d', iterations=0))

  @functools.cached_property
  def _expression_map(self) -> tuple[np.ndarray, np.ndarray]:
    # The fit is linear in the 3DDFA expression (the targets are, and with a linear camera one
    # Gauss-Newton step from 0 is the exact ridge solution), so it is solved once, for 0 and the
    # 10 unit vectors; every frame is then a [10, K] product on the host, no device call.
    phi = self.solve_expression(np.concatenate([np.zeros((1, 10)), np.eye(10)]))
    return phi[0].astype(np.float64), (phi[1:] - phi[0]).astype(np.float64)

  def expression(self, exp10) -> np.ndarray:
    """3DDFA expression coefficients [N, 10] -> target expression coefficients [N, K] (the
    result of `solve_expression`, through its precomputed linear map)."""
    offset, matrix = self._expression_map
    return (np.asarray(exp10, np.float64) @ matrix + offset).astype(np.float32)

  def __call__(self, captured: dict) -> dict[str, np.ndarray]:
    """Capture results (`capture.Capturer`, [N] frames) -> {'motion' [N, K+6], 'found' [N]}.

    Raises:
      ValueError: no frame has a face.
    """
    found = np.asarray(captured['found'], bool)
    if not found.any():
      raise ValueError('no face was found in any frame.')
    faces = np.nonzero(found)[0]  # Only frames with a face are fitted ...
    param = np.asarray(captured['param'], np.float32)[faces]
    rot = np.asarray(captured['rotation'], np.float64)[faces]
    scale = np.asarray(captured['scale'], np.float64)[faces]
    roi = np.asarray(captured['roi'], np.float64)[faces]
    exp = self.expression(param[:, 52:62])
    angles = rotations.matrix_to_euler(rot)
    # The posed model origin in frame pixels (x right, y down) and pixels per 3DDFA decimetre.
    crop_scale = (roi[:, 2] - roi[:, 0]) / tddfa.INPUT_SIZE
    origin_x = (param[:, 3] - 1) * crop_scale + roi[:, 0]
    origin_y = (tddfa.INPUT_SIZE - param[:, 7]) * crop_scale + roi[:, 1]
    px_per_dm = scale * crop_scale / _UM_TO_DM
    units_per_dm = self.face_ratio / self.unit_dm
    trans = np.stack([
        (origin_x - origin_x[0]) / px_per_dm * units_per_dm,
        -(origin_y - origin_y[0]) / px_per_dm * units_per_dm,  # Rows grow down, y is up.
        cameras.CAMERA_DISTANCE * (1.0 - px_per_dm[0] / px_per_dm)], axis=-1)
    motion = np.concatenate([exp, angles, trans], axis=-1).astype(np.float32)
    # ... the others repeat the last one (the first one before any).
    motion = motion[np.searchsorted(faces, hold_last(np.arange(len(found)), found))]
    return {'motion': motion, 'found': found}


def hold_last(index: np.ndarray, found: np.ndarray) -> np.ndarray:
  """For each frame the index of the last frame with a face (the first face before any)."""
  found = np.asarray(found, bool)
  last = np.where(found, np.asarray(index), -1)
  last = np.maximum.accumulate(last)
  return np.where(last < 0, int(np.argmax(found)), last)


def make_fitter(spec: str, weights, reg: float = DEFAULT_REG) -> Fitter:
  model, unit_dm = target_model(spec, weights)
  return Fitter(model=model, source_model=tddfa_model(weights), unit_dm=unit_dm, reg=reg)


def drive(driving: np.ndarray, source: np.ndarray, *, relative: bool = True,
          num_exp: int | None = None) -> np.ndarray:
  """Motion for the output frames from a driving sequence [N, K+6] and the source's own [K+6].

  Relative: exp_src + (exp_t - exp_0), rotation R_t R_0^T R_src, trans_src + (trans_t - trans_0).
  Absolute: the driving expression and rotation, trans_src + (trans_t - trans_0).
  """
  driving = np.asarray(driving, np.float64)
  source = np.asarray(source, np.float64)
  k = driving.shape[-1] - 6 if num_exp is None else num_exp
  if source.shape != driving.shape[-1:]:
    raise ValueError(f'source motion has shape {source.shape}, the driving motion '
                     f'{driving.shape[-1:]}.')
  exp, angles, trans = driving[:, :k], driving[:, k:k + 3], driving[:, k + 3:k + 6]
  trans = source[k + 3:k + 6] + (trans - trans[0])
  if relative:
    exp = source[:k] + (exp - exp[0])
    rot = (rotations.euler_to_matrix(angles) @ rotations.euler_to_matrix(angles[0]).T
           @ rotations.euler_to_matrix(source[k:k + 3]))
    angles = rotations.matrix_to_euler(rot)
  return np.concatenate([exp, angles, trans], axis=-1).astype(np.float32)


def smooth(motion: np.ndarray, window: int) -> np.ndarray:
  """Centred moving average over `window` frames (edges padded by repetition); 1 = off."""
  if window <= 1:
    return np.asarray(motion, np.float32)
  motion = np.asarray(motion, np.float64)
  left = (window - 1) // 2
  padded = np.concatenate([np.repeat(motion[:1], left, 0), motion,
                           np.repeat(motion[-1:], window - 1 - left, 0)])
  kernel = np.ones(window) / window
  out = np.stack([np.convolve(padded[:, j], kernel, mode='valid')
                  for j in range(motion.shape[1])], axis=-1)
  return out.astype(np.float32)

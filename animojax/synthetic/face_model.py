"""The embedded sparse morphable face model: loading, landmark geometry and camera projection.

`face_model.npz` is package data written by `make_face_model.py` (see there for how the bases are
built). Conventions follow Deep3DFaceRecon: landmarks = mean + id_basis @ id + exp_basis @ exp,
rotation R = Rz(roll) Ry(yaw) Rx(pitch) in radians (right-handed, x = subject's left, y up,
z toward the camera), posed points = R p + trans. A positive yaw turns the nose toward image
right, a positive pitch tilts the nose down, a positive roll turns the head counter-clockwise on
screen.
"""

import dataclasses
import functools
import importlib.resources

import numpy as np

NPZ_NAME = 'face_model.npz'
NUM_LANDMARKS = 68
NUM_ID = 80
NUM_EXP = 64
# The camera sits on the +z axis looking at the origin, like Deep3DFaceRecon's (at 10 units).
CAMERA_DISTANCE = 10.0

# iBUG-68 groups. "right"/"left" are the subject's own sides (right = image left).
JAW = np.arange(0, 17)
BROW_RIGHT = np.arange(17, 22)
BROW_LEFT = np.arange(22, 27)
NOSE_BRIDGE = np.arange(27, 31)
NOSE_BASE = np.arange(31, 36)
EYE_RIGHT = np.arange(36, 42)
EYE_LEFT = np.arange(42, 48)
LIPS_OUTER = np.arange(48, 60)
LIPS_INNER = np.arange(60, 68)


@dataclasses.dataclass(frozen=True, eq=False)
class FaceModel:
  """Arrays of the embedded face model (all float32, model units: 1 unit = 7 cm).

  Attributes:
    mean: [68, 3] mean landmarks (iBUG-68 order).
    id_basis: [68, 3, 80] identity modes, scaled by their std (coefficients ~ N(0, 1)).
    exp_basis: [68, 3, 64] expression modes.
    true_phi: [17, 64] the true linear map morphs -> expression coefficients
      (exp64 = morphs17 @ true_phi).
    semantic_offsets: [17, 68, 3] landmark displacement of each morph at weight 1;
      exp_basis @ true_phi[k] == semantic_offsets[k] up to float32 rounding.
    mirror_index: int32[68], left/right partner of each landmark.
  """
  mean: np.ndarray
  id_basis: np.ndarray
  exp_basis: np.ndarray
  true_phi: np.ndarray
  semantic_offsets: np.ndarray
  mirror_index: np.ndarray


def load_face_model_from(path) -> FaceModel:
  """Reads a face model npz from `path` (a str, pathlib.Path or importlib resource)."""
  try:
    with np.load(path) as data:
      arrays = {field.name: np.asarray(data[field.name])
                for field in dataclasses.fields(FaceModel)}
  except FileNotFoundError:
    raise FileNotFoundError(
        f'Face model {path} is missing; regenerate it with '
        '`python -m animojax.synthetic.make_face_model`.') from None
  except KeyError as e:
    raise ValueError(f'Face model {path} lacks array {e}; regenerate it with '
                     '`python -m animojax.synthetic.make_face_model`.') from None
  for array in arrays.values():
    array.setflags(write=False)  # The cached model is shared; nobody may edit it in place.
  return FaceModel(**arrays)


@functools.cache
def load_face_model() -> FaceModel:
  """The packaged face model (cached; arrays are read-only)."""
  resource = importlib.resources.files('animojax.synthetic').joinpath(NPZ_NAME)
  with importlib.resources.as_file(resource) as path:
    return load_face_model_from(path)


def landmarks(model: FaceModel, id_coeff: np.ndarray, exp_coeff: np.ndarray) -> np.ndarray:
  """Landmarks in model space, [..., 68, 3], for id [..., 80] and exp [..., 64] coefficients."""
  id_coeff = np.asarray(id_coeff, np.float32)
  exp_coeff = np.asarray(exp_coeff, np.float32)
  if id_coeff.shape[-1] != NUM_ID or exp_coeff.shape[-1] != NUM_EXP:
    raise ValueError(f'landmarks expects id_coeff [..., {NUM_ID}] and exp_coeff [..., {NUM_EXP}], '
                     f'got {id_coeff.shape} and {exp_coeff.shape}.')
  return (model.mean + np.einsum('lck,...k->...lc', model.id_basis, id_coeff)
          + np.einsum('lck,...k->...lc', model.exp_basis, exp_coeff))


def rotation_matrix(pitch, yaw, roll) -> np.ndarray:
  """R = Rz(roll) @ Ry(yaw) @ Rx(pitch) for angles in radians (any broadcastable shapes).

  Returns:
    float32 [..., 3, 3], to be applied to column vectors (posed = R @ p).
  """
  pitch, yaw, roll = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (pitch, yaw, roll)))
  zeros, ones = np.zeros_like(pitch), np.ones_like(pitch)
  cx, sx, cy, sy, cz, sz = (np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll),
                            np.sin(roll))
  rot_x = np.stack([ones, zeros, zeros, zeros, cx, -sx, zeros, sx, cx], -1)
  rot_y = np.stack([cy, zeros, sy, zeros, ones, zeros, -sy, zeros, cy], -1)
  rot_z = np.stack([cz, -sz, zeros, sz, cz, zeros, zeros, zeros, ones], -1)
  shape = pitch.shape + (3, 3)
  return (rot_z.reshape(shape) @ rot_y.reshape(shape) @ rot_x.reshape(shape)).astype(np.float32)


def pose_points(points: np.ndarray, angles: np.ndarray, trans: np.ndarray | None = None,
                pivot: np.ndarray | None = None) -> np.ndarray:
  """Rotates points [N, K, 3] by angles [N, 3] (radians: pitch, yaw, roll) about `pivot`, then
  translates by trans [N, 3]."""
  angles = np.asarray(angles, np.float32)
  rot = rotation_matrix(angles[..., 0], angles[..., 1], angles[..., 2])
  pivot = np.zeros(3, np.float32) if pivot is None else np.asarray(pivot, np.float32)
  posed = np.einsum('nij,nkj->nki', rot, np.asarray(points, np.float32) - pivot) + pivot
  if trans is not None:
    posed = posed + np.asarray(trans, np.float32)[:, None, :]
  return posed


def project(points: np.ndarray, image_size: int, scale: float, center_y: float = 0.0,
            camera_distance: float | None = CAMERA_DISTANCE) -> np.ndarray:
  """Projects posed model-space points [..., 3] to pixel coordinates [..., 2] (x = column, y = row).

  Pixel (row i, col j) has its centre at (j + 0.5, i + 0.5). The model's y axis points up, the
  image row grows downward.

  Args:
    points: [..., 3] posed points.
    image_size: S, the output image is S x S.
    scale: pixels per model unit at z = 0, as a fraction of S (e.g. 0.22 -> 0.22 * S px/unit).
    center_y: model-space y that maps to the image centre.
    camera_distance: perspective camera on +z at this distance; None = orthographic.

  Returns:
    float32 [..., 2] pixel coordinates.
  """
  points = np.asarray(points, np.float32)
  focal = scale * image_size
  if camera_distance is None:
    factor = np.float32(focal)
  else:
    factor = focal * camera_distance / np.maximum(camera_distance - points[..., 2], 1e-3)
  x = image_size / 2 + points[..., 0] * factor
  y = image_size / 2 - (points[..., 1] - center_y) * factor
  return np.stack([x, y], -1).astype(np.float32)

"""Landmark projection with Deep3DFaceRecon's camera, a weak-perspective one, or none (3D).

Deep3DFaceRecon (reference models.md §7.3-7.4): a posed point is p' = R p + t with
R = Rz(roll) Ry(yaw) Rx(pitch); the camera sits on +z at distance 10 (z_cam = 10 - z) with a
224 x 224 pinhole K = [[1015, 0, 112], [0, 1015, 112], [0, 0, 1]]; the projected (u, v) is y-up
(image row = 223 - v). The weak-perspective camera replaces 1 / z_cam by 1 / 10, so it is linear
in the points, and 'landmarks3d' keeps all three coordinates at the same scale (f / 10 px per
decimetre) -- both make the fit a closed-form ridge regression.
"""

import jax.numpy as jnp
import numpy as np

from animojax.synthetic import face_model

CAMERAS = ('perspective', 'weak_perspective', 'landmarks3d')
FOCAL = 1015.0
PRINCIPAL_POINT = 112.0
CAMERA_DISTANCE = 10.0
IMAGE_SIZE = 224


def check_camera(camera: str) -> str:
  if camera not in CAMERAS:
    raise ValueError(f'Unknown camera {camera!r}; expected one of {CAMERAS}.')
  return camera


def view_rotations(views_deg) -> np.ndarray:
  """Rotation matrices float32 [V, 3, 3] for (pitch, yaw, roll) views in degrees."""
  views = np.deg2rad(np.asarray(views_deg, np.float64).reshape(-1, 3))
  return face_model.rotation_matrix(views[:, 0], views[:, 1], views[:, 2])


def project(points, camera: str, rotation=None, trans=None):
  """Projects points [..., 3] (jax or numpy) to [..., 2] pixels (y-up), or [..., 3] for 3D.

  Args:
    points: model-space points in decimetres.
    camera: one of CAMERAS.
    rotation: optional [3, 3] head rotation applied first (p' = R p).
    trans: optional [3] head translation added after the rotation.
  """
  check_camera(camera)
  if rotation is not None:
    points = points @ jnp.swapaxes(jnp.asarray(rotation), -1, -2)
  if trans is not None:
    points = points + trans
  scale = FOCAL / CAMERA_DISTANCE
  if camera == 'landmarks3d':
    return points * scale
  if camera == 'weak_perspective':
    return points[..., :2] * scale + PRINCIPAL_POINT
  z_cam = CAMERA_DISTANCE - points[..., 2:3]
  return FOCAL * points[..., :2] / z_cam + PRINCIPAL_POINT


def to_image_xy(uv: np.ndarray, image_size: int = IMAGE_SIZE) -> np.ndarray:
  """Deep3DFaceRecon's y-up (u, v) -> image (column, row) for drawing: row = size - 1 - v."""
  uv = np.asarray(uv)
  return np.stack([uv[..., 0], image_size - 1 - uv[..., 1]], -1)

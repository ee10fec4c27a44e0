"""Deep3DFaceRecon's camera, and the two linear approximations of it that landmark fits use.

Deep3DFaceRecon (sicxu/Deep3DFaceRecon_pytorch, models/bfm.py `ParametricFaceModel`: the
default focal, center and camera_distance, `to_camera`, `to_image`; 224 x 224 crops): the camera
sits on +z at distance 10 (z_cam = 10 - z, in decimetres) with the pinhole K = [[1015, 0, 112],
[0, 1015, 112], [0, 0, 1]]; the projected (u, v) has v pointing up, so image row = 223 - v.
`weak_perspective` replaces 1 / z_cam by 1 / 10 (linear in the points) and `landmarks3d` keeps
all three coordinates at the same scale, f / 10 pixels per decimetre. Points must already be posed
(R p + t, `rotations`). Every function is plain arithmetic, so numpy and jax arrays both work.
"""

import numpy as np

FOCAL = 1015.0
PRINCIPAL_POINT = 112.0
CAMERA_DISTANCE = 10.0
IMAGE_SIZE = 224


def perspective(points):
  """Posed points [..., 3] -> Deep3DFaceRecon pixels (u, v) [..., 2], v up."""
  z_cam = CAMERA_DISTANCE - points[..., 2:3]
  return FOCAL * points[..., :2] / z_cam + PRINCIPAL_POINT


def weak_perspective(points):
  """Posed points [..., 3] -> (u, v) [..., 2] with every point at the camera distance's depth."""
  return points[..., :2] * (FOCAL / CAMERA_DISTANCE) + PRINCIPAL_POINT


def landmarks3d(points):
  """Posed points [..., 3] scaled to pixels at the camera distance (no projection)."""
  return points * (FOCAL / CAMERA_DISTANCE)


def to_image_xy(uv, image_size: int = IMAGE_SIZE) -> np.ndarray:
  """Deep3DFaceRecon's y-up (u, v) -> image (column, row) for drawing: row = size - 1 - v."""
  uv = np.asarray(uv)
  return np.stack([uv[..., 0], image_size - 1 - uv[..., 1]], -1)

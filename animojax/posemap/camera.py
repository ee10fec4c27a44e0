"""Landmark projection for the fit: Deep3DFaceRecon's camera, a weak-perspective one, or none.

The cameras are `animojax.face3d.cameras` (Deep3DFaceRecon's pinhole: f = 1015, c = 112 on
224 x 224, the camera on +z at distance 10, y-up (u, v)); rotations are `face3d.rotations`
(p' = R p + t, R = Rz(roll) Ry(yaw) Rx(pitch)). The weak-perspective camera and 'landmarks3d'
are linear in the points, which makes the fit a closed-form ridge regression.
"""

import jax.numpy as jnp
import numpy as np

from animojax.face3d import cameras
from animojax.face3d import rotations

_PROJECTIONS = {'perspective': cameras.perspective, 'weak_perspective': cameras.weak_perspective,
                'landmarks3d': cameras.landmarks3d}
CAMERAS = tuple(_PROJECTIONS)
# Deep3DFaceRecon's camera, re-exported for the fit's callers.
FOCAL = cameras.FOCAL
PRINCIPAL_POINT = cameras.PRINCIPAL_POINT
CAMERA_DISTANCE = cameras.CAMERA_DISTANCE
IMAGE_SIZE = cameras.IMAGE_SIZE
to_image_xy = cameras.to_image_xy


def check_camera(camera: str) -> str:
  if camera not in CAMERAS:
    raise ValueError(f'Unknown camera {camera!r}; expected one of {CAMERAS}.')
  return camera


def view_rotations(views_deg) -> np.ndarray:
  """Rotation matrices float32 [V, 3, 3] for (pitch, yaw, roll) views in degrees."""
  views = np.deg2rad(np.asarray(views_deg, np.float64).reshape(-1, 3))
  return rotations.rotation_matrix(views[:, 0], views[:, 1], views[:, 2])


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
  return _PROJECTIONS[camera](points)

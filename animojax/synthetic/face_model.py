"""How the synthetic renderers pose and project the embedded face model.

The model itself (`animojax.face3d.embedded`: arrays, loading, landmarks) and its conventions live
in `animojax.face3d`; rotations are Deep3DFaceRecon's (`face3d.rotations`: R = Rz(roll) Ry(yaw)
Rx(pitch), radians, posed points = R p + trans) and the camera sits on +z at Deep3DFaceRecon's
distance of 10 (here in model units). `load_face_model` is re-exported for callers that reach the
model through this module.
"""

import numpy as np

from animojax.face3d import cameras
from animojax.face3d import embedded
from animojax.face3d import rotations

# The camera sits on the +z axis looking at the origin, like Deep3DFaceRecon's (at 10 units).
CAMERA_DISTANCE = cameras.CAMERA_DISTANCE
load_face_model = embedded.load_face_model


def pose_points(points: np.ndarray, angles: np.ndarray, trans: np.ndarray | None = None,
                pivot: np.ndarray | None = None) -> np.ndarray:
  """Rotates points [N, K, 3] by angles [N, 3] (radians: pitch, yaw, roll) about `pivot`, then
  translates by trans [N, 3]."""
  angles = np.asarray(angles, np.float32)
  rot = rotations.rotation_matrix(angles[..., 0], angles[..., 1], angles[..., 2])
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

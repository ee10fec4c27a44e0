"""Head rotations: Deep3DFaceRecon's Euler angles and DECA/FLAME's axis-angle vectors.

Euler angles follow Deep3DFaceRecon (sicxu/Deep3DFaceRecon_pytorch, models/bfm.py
`ParametricFaceModel.compute_rotation`): angles (pitch, yaw, roll) in radians, rotations about
x, y, z, composed as R = Rz(roll) @ Ry(yaw) @ Rx(pitch) and applied to column vectors
(posed = R @ p; Deep3DFaceRecon stores the transpose and multiplies row vectors, the same map).
Axes are right-handed with x to the subject's left, y up, z toward the camera, so a positive yaw
turns the nose toward image right, a positive pitch tilts the nose down and a positive roll turns
the head counter-clockwise on screen.

DECA (yfeng95/DECA, decalib/utils/rotation_converter.py `batch_rodrigues`) stores FLAME's global
and jaw rotations as rotation vectors (axis * angle, radians) in the same axes; Rodrigues' formula
turns them into matrices, and `matrix_to_euler` expresses a matrix in Deep3DFaceRecon's angles so
that head angles mean the same in both 3DMMs.
"""

import numpy as np


def _euler_factors(pitch, yaw, roll) -> np.ndarray:
  """Rz(roll) @ Ry(yaw) @ Rx(pitch) in float64, [..., 3, 3], for broadcast float64 angles."""
  zeros, ones = np.zeros_like(pitch), np.ones_like(pitch)
  cx, sx, cy, sy, cz, sz = (np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll),
                            np.sin(roll))
  rot_x = np.stack([ones, zeros, zeros, zeros, cx, -sx, zeros, sx, cx], -1)
  rot_y = np.stack([cy, zeros, sy, zeros, ones, zeros, -sy, zeros, cy], -1)
  rot_z = np.stack([cz, -sz, zeros, sz, cz, zeros, zeros, zeros, ones], -1)
  shape = pitch.shape + (3, 3)
  return rot_z.reshape(shape) @ rot_y.reshape(shape) @ rot_x.reshape(shape)


def rotation_matrix(pitch, yaw, roll) -> np.ndarray:
  """R = Rz(roll) @ Ry(yaw) @ Rx(pitch) for angles in radians (any broadcastable shapes).

  Computed in float64 and rounded once, so every caller gets the same float32 matrices.

  Returns:
    float32 [..., 3, 3], to be applied to column vectors (posed = R @ p).
  """
  pitch, yaw, roll = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (pitch, yaw, roll)))
  return _euler_factors(pitch, yaw, roll).astype(np.float32)


def euler_to_matrix(angles) -> np.ndarray:
  """(pitch, yaw, roll) [..., 3], radians -> float64 R = Rz(roll) Ry(yaw) Rx(pitch) [..., 3, 3]."""
  angles = np.asarray(angles, np.float64)
  if angles.shape[-1:] != (3,):
    raise ValueError(f'euler_to_matrix expects angles [..., 3] (pitch, yaw, roll), got '
                     f'{angles.shape}.')
  pitch, yaw, roll = np.moveaxis(angles, -1, 0)
  return _euler_factors(pitch, yaw, roll)


def matrix_to_euler(rot) -> np.ndarray:
  """Rotation matrices [..., 3, 3] -> float64 (pitch, yaw, roll) [..., 3] with R = Rz Ry Rx.

  The inverse of `euler_to_matrix` for |yaw| < 90 degrees (at ±90 degrees pitch and roll are one
  degree of freedom and only their sum is recovered).
  """
  rot = np.asarray(rot, np.float64)
  pitch = np.arctan2(rot[..., 2, 1], rot[..., 2, 2])
  yaw = np.arctan2(-rot[..., 2, 0], np.hypot(rot[..., 0, 0], rot[..., 1, 0]))
  roll = np.arctan2(rot[..., 1, 0], rot[..., 0, 0])
  return np.stack([pitch, yaw, roll], axis=-1)


def axis_angle_to_matrix(rotvec) -> np.ndarray:
  """Rodrigues' formula: rotation vectors [..., 3] (radians) -> float64 matrices [..., 3, 3]."""
  rotvec = np.asarray(rotvec, np.float64)
  theta = np.linalg.norm(rotvec, axis=-1, keepdims=True)
  # A zero vector has no axis; any unit axis gives the identity, and this one avoids 0 / 0.
  axis = rotvec / np.maximum(theta, 1e-12)
  x, y, z = np.moveaxis(axis, -1, 0)
  zero = np.zeros_like(x)
  k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(rotvec.shape + (3,))
  theta = theta[..., None]
  return np.eye(3) + np.sin(theta) * k + (1.0 - np.cos(theta)) * (k @ k)

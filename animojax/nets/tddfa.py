"""3DDFA_V2 (Guo et al. ECCV 2020) with the MobileNet-0.5 regressor, in Flax NNX and jnp.

Follows cleardusk/3DDFA_V2 (`models/mobilenet_v1.py`, `TDDFA.py`, `utils/tddfa_util.py`,
`utils/functions.py`, `utils/pose.py`, `bfm/bfm.py`):

* `MobileNet`: MobileNet v1 at width 0.5 (`mb05_120x120`): conv 3x3/2 (3->16) + BN + ReLU, then
  13 depthwise-separable blocks (3x3 depthwise + BN + ReLU, 1x1 + BN + ReLU; BN eps 1e-5,
  running statistics), global average pool and `fc` 512 -> 62. The checkpoint's 136-d landmark
  head `fc_lm` is unused by 3DDFA_V2 and not built; its `fc_param` is our `fc`.
* Input: a 120 x 120 BGR crop, (pixel - 127.5) / 128.
* `crop_and_resize`: upstream's `crop_img` (the ROI rounded to whole pixels, zeros outside the
  frame) followed by `cv2.resize(..., INTER_LINEAR)` (half-pixel centres, source coordinates
  clamped to the crop). Deviation: upstream resizes uint8 pixels with OpenCV's 11-bit fixed-point
  weights and rounds the result to uint8; we interpolate in float32 (differences of at most one
  grey level in the network input).
* ROIs: `roi_from_box` (a detector box, enlarged 1.58x and moved down by 0.14 of its size) and
  `roi_from_landmarks` (the square around the 68 landmarks, side = their bounding square's
  diagonal), the two crop policies upstream uses to start and to track a face.
* Parameters: the network predicts the 62 parameters normalised; `denormalise` maps them back with
  `param_mean_std_62d_120x120.pkl`. Layout: `animojax.face3d.layouts.TDDFA` (pose 12 as the rows
  of [s R | t], shape 40, exp 10).
* `landmarks`: the 68 3-D landmarks from the BFM bases, posed by [s R | t] and mapped from the
  120-px crop back to the frame (`similar_transform`, including its 1-pixel shift of x and z and
  its z offset that puts the deepest landmark at 0).
* `decompose_pose`: `P2sRt` and `matrix2angle` (yaw, pitch, roll in upstream's naming).

Everything is jnp on batches, so the whole chain (crop -> net -> landmarks) is one jitted call.
"""

from typing import Any

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from animojax.face3d import layouts

INPUT_SIZE = 120
NUM_PARAMS = 62
BN_EPSILON = 1e-5
NUM_LANDMARKS = 68
# (name, input channels, output channels, stride) of the depthwise-separable blocks at width 0.5.
BLOCKS = (('dw2_1', 16, 32, 1), ('dw2_2', 32, 64, 2), ('dw3_1', 64, 64, 1),
          ('dw3_2', 64, 128, 2), ('dw4_1', 128, 128, 1), ('dw4_2', 128, 256, 2),
          ('dw5_1', 256, 256, 1), ('dw5_2', 256, 256, 1), ('dw5_3', 256, 256, 1),
          ('dw5_4', 256, 256, 1), ('dw5_5', 256, 256, 1), ('dw5_6', 256, 512, 2),
          ('dw6', 512, 512, 1))
STEM_CHANNELS = 16
FEATURE_DIM = 512
# upstream's `parse_roi_box_from_bbox`.
BOX_ENLARGE = 1.58
BOX_SHIFT_DOWN = 0.14


def _bn(channels, rngs):
  return nnx.BatchNorm(channels, use_running_average=True, epsilon=BN_EPSILON, rngs=rngs)


class DepthWiseBlock(nnx.Module):
  """3x3 depthwise conv + BN + ReLU, 1x1 conv + BN + ReLU (no biases)."""

  def __init__(self, cin: int, cout: int, stride: int, *, precision: Any, rngs: nnx.Rngs):
    self.conv_dw = nnx.Conv(cin, cin, (3, 3), strides=(stride, stride), padding=((1, 1), (1, 1)),
                            feature_group_count=cin, use_bias=False, precision=precision,
                            rngs=rngs)
    self.bn_dw = _bn(cin, rngs)
    self.conv_sep = nnx.Conv(cin, cout, (1, 1), use_bias=False, precision=precision, rngs=rngs)
    self.bn_sep = _bn(cout, rngs)

  def __call__(self, x):
    x = jax.nn.relu(self.bn_dw(self.conv_dw(x)))
    return jax.nn.relu(self.bn_sep(self.conv_sep(x)))


class MobileNet(nnx.Module):
  """The mb05 regressor: normalised 120 x 120 BGR crops [B, 120, 120, 3] -> {'param_norm' [B, 62]}."""

  def __init__(self, *, precision: Any = None, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(3, STEM_CHANNELS, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)),
                          use_bias=False, precision=precision, rngs=rngs)
    self.bn1 = _bn(STEM_CHANNELS, rngs)
    for name, cin, cout, stride in BLOCKS:
      setattr(self, name, DepthWiseBlock(cin, cout, stride, precision=precision, rngs=rngs))
    self.fc = nnx.Linear(FEATURE_DIM, NUM_PARAMS, precision=precision, rngs=rngs)

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f'3DDFA_V2 MobileNet expects NHWC BGR crops, got shape {x.shape}.')
    x = jax.nn.relu(self.bn1(self.conv1(x)))
    for name, *_ in BLOCKS:
      x = getattr(self, name)(x)
    features = jnp.mean(x, axis=(1, 2))
    return {'features': features, 'param_norm': self.fc(features)}


def normalise_input(crops_bgr):
  """BGR crops (0..255) -> the network input, (x - 127.5) / 128."""
  return (crops_bgr - 127.5) / 128.0


def roi_from_box(box):
  """Detector boxes [..., 4+] (x1, y1, x2, y2) -> square ROIs [..., 4] (upstream's policy)."""
  left, top, right, bottom = (box[..., i] for i in range(4))
  old_size = (right - left + bottom - top) / 2
  centre_x = right - (right - left) / 2.0
  centre_y = bottom - (bottom - top) / 2.0 + old_size * BOX_SHIFT_DOWN
  size = jnp.floor(old_size * BOX_ENLARGE)  # upstream's int() of a positive size.
  x0, y0 = centre_x - size / 2, centre_y - size / 2
  return jnp.stack([x0, y0, x0 + size, y0 + size], axis=-1)


def roi_from_landmarks(points):
  """Landmarks [..., 68, 2+] in pixels -> square ROIs [..., 4] for tracking (upstream's policy)."""
  lo, hi = jnp.min(points[..., :2], axis=-2), jnp.max(points[..., :2], axis=-2)
  centre = (lo + hi) / 2
  radius = jnp.max(hi - lo, axis=-1) / 2
  side = jnp.sqrt(2.0) * 2 * radius  # The diagonal of the landmarks' bounding square.
  x0, y0 = centre[..., 0] - side / 2, centre[..., 1] - side / 2
  return jnp.stack([x0, y0, x0 + side, y0 + side], axis=-1)


def crop_and_resize(frame, roi, size: int = INPUT_SIZE):
  """One frame [H, W, C] and ROI [4] -> [size, size, C]: `crop_img` then bilinear `cv2.resize`.

  The ROI is rounded to whole pixels (half to even, as Python's `round`); pixels outside the frame
  are zeros; sample points are clamped to the rounded crop, as OpenCV clamps to its input.
  """
  height, width = frame.shape[:2]
  sx, sy, ex, ey = (jnp.round(roi[i]) for i in range(4))
  crop_w, crop_h = jnp.maximum(ex - sx, 1.0), jnp.maximum(ey - sy, 1.0)
  pixel = jnp.arange(size, dtype=jnp.float32) + 0.5
  xs = jnp.clip(pixel * (crop_w / size) - 0.5, 0.0, crop_w - 1.0)
  ys = jnp.clip(pixel * (crop_h / size) - 0.5, 0.0, crop_h - 1.0)
  x0, y0 = jnp.floor(xs), jnp.floor(ys)
  fx, fy = xs - x0, ys - y0
  # The right/bottom neighbour, clamped to the crop (its weight is 0 at the last column anyway).
  x1, y1 = jnp.minimum(x0 + 1, crop_w - 1), jnp.minimum(y0 + 1, crop_h - 1)

  def gather(cy, cx):
    fy_, fx_ = cy + sy, cx + sx  # Frame coordinates; outside the frame reads zeros.
    inside = ((fy_ >= 0) & (fy_ < height))[:, None] & ((fx_ >= 0) & (fx_ < width))[None, :]
    iy = jnp.clip(fy_, 0, height - 1).astype(jnp.int32)
    ix = jnp.clip(fx_, 0, width - 1).astype(jnp.int32)
    values = frame[iy[:, None], ix[None, :]].astype(jnp.float32)
    return jnp.where(inside[..., None], values, 0.0)

  wx, wy = fx[None, :, None], fy[:, None, None]
  top = gather(y0, x0) * (1 - wx) + gather(y0, x1) * wx
  bottom = gather(y1, x0) * (1 - wx) + gather(y1, x1) * wx
  return top * (1 - wy) + bottom * wy


def denormalise(param_norm, param_mean, param_std):
  """The network's output [..., 62] -> 3DDFA_V2 parameters (`param * std + mean`)."""
  return param_norm * param_std + param_mean


def model_landmarks(param, u_base, w_shp_base, w_exp_base):
  """Unposed landmarks [..., 68, 3] of parameters [..., 62] (BFM units, model axes).

  Bases are 3DDFA's 68-landmark ones: u [204], w_shp [204, 40], w_exp [204, 10], with x, y, z
  interleaved per landmark (upstream reshapes (3, 68) in Fortran order).
  """
  blocks = layouts.TDDFA.split(param)
  flat = u_base + blocks['shape'] @ w_shp_base.T + blocks['exp'] @ w_exp_base.T
  return flat.reshape(flat.shape[:-1] + (NUM_LANDMARKS, 3))


def landmarks(param, roi, u_base, w_shp_base, w_exp_base, size: int = INPUT_SIZE):
  """The 68 3-D landmarks [..., 68, 3] in frame pixels (x, y down, z), as `recon_vers`."""
  rotation, offset = layouts.tddfa_pose(param)
  points = model_landmarks(param, u_base, w_shp_base, w_exp_base)
  posed = jnp.einsum('...ij,...lj->...li', rotation, points) + offset[..., None, :]
  scale_x = (roi[..., 2] - roi[..., 0]) / size
  scale_y = (roi[..., 3] - roi[..., 1]) / size
  x = (posed[..., 0] - 1) * scale_x[..., None] + roi[..., 0:1]
  y = (size - posed[..., 1]) * scale_y[..., None] + roi[..., 1:2]
  z = (posed[..., 2] - 1) * ((scale_x + scale_y) / 2)[..., None]
  z = z - jnp.min(z, axis=-1, keepdims=True)
  return jnp.stack([x, y, z], axis=-1)


def decompose_pose(param):
  """`P2sRt` + `matrix2angle` of parameters [..., 62].

  Returns:
    {'scale' [...], 'rotation' [..., 3, 3] (rows: normalised first two rows of the camera matrix
    and their cross product), 'translation' [..., 3], 'angles' [..., 3] radians in upstream's
    (yaw, pitch, roll) order and naming: yaw = asin(R[2, 0]), pitch = atan2(R[2, 1], R[2, 2]),
    roll = atan2(R[1, 0], R[0, 0]), with upstream's gimbal-lock branches at |R[2, 0]| > 0.998}.
  """
  camera = layouts.TDDFA.split(param)['pose'].reshape(param.shape[:-1] + (3, 4))
  r1, r2 = camera[..., 0, :3], camera[..., 1, :3]
  n1, n2 = jnp.linalg.norm(r1, axis=-1), jnp.linalg.norm(r2, axis=-1)
  r1, r2 = r1 / n1[..., None], r2 / n2[..., None]
  rot = jnp.stack([r1, r2, jnp.cross(r1, r2)], axis=-2)
  r20 = rot[..., 2, 0]
  cos_x = jnp.cos(jnp.arcsin(jnp.clip(r20, -1.0, 1.0)))
  safe_cos = jnp.where(jnp.abs(r20) > 0.998, 1.0, cos_x)
  yaw = jnp.where(r20 > 0.998, np.pi / 2,
                  jnp.where(r20 < -0.998, -np.pi / 2, jnp.arcsin(jnp.clip(r20, -1.0, 1.0))))
  pitch = jnp.where(
      r20 > 0.998, jnp.arctan2(-rot[..., 0, 1], -rot[..., 0, 2]),
      jnp.where(r20 < -0.998, jnp.arctan2(rot[..., 0, 1], rot[..., 0, 2]),
                jnp.arctan2(rot[..., 2, 1] / safe_cos, rot[..., 2, 2] / safe_cos)))
  roll = jnp.where(jnp.abs(r20) > 0.998, 0.0,
                   jnp.arctan2(rot[..., 1, 0] / safe_cos, rot[..., 0, 0] / safe_cos))
  return {'scale': (n1 + n2) / 2, 'rotation': rot, 'translation': camera[..., 3],
          'angles': jnp.stack([yaw, pitch, roll], axis=-1)}

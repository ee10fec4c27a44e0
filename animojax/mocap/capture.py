"""Face capture from real frames: FaceBoxes -> 3DDFA_V2 -> 62 parameters, 68 3-D landmarks, pose.

`Capturer` holds the converted `tddfa_v2.npz` (`python -m animojax.convert.fetch tddfa_v2`) and
two jitted, batched functions:

* `capture(frames)`: every frame independently. Detection at the frame's size; the best face
  (what upstream's NMS keeps first) starts a box-ROI regression; its landmarks then give a
  landmark ROI and a second regression -- the refinement 3DDFA_V2's video demo
  (`demo_video.py`) runs on its first frame. Batched over frames, one device call per batch.
* `track(frame, previous)`: upstream's frame-to-frame policy for streams: the previous frame's
  landmarks give this frame's ROI; a box ROI (and its refinement) starts a track when there is no
  previous face or that ROI's area falls below 2020 px² (upstream's lost-track test). Unlike
  upstream the detector also runs on every frame, so that a frame without a face is noticed.

Frames are RGB uint8 [B, H, W, 3] (any size; upstream's detector shrinks frames over 720 x 1080
and so do we). A frame "has a face" when the best detection scores above 0.5 (upstream's
`vis_thres`); the others are reported as `found = False` and their numbers must not be used.
"""

import dataclasses
import functools
import os

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from animojax.convert import sources
from animojax.models.blocks import initializers
from animojax.nets import faceboxes
from animojax.nets import tddfa
from animojax.utils import tree as tree_utils

NAME = 'tddfa_v2'
MIN_TRACK_AREA = 2020.0  # upstream demo_video.py: re-detect when the landmark ROI is smaller.


def _module_state(constructor, flat, prefix, path):
  module = nnx.eval_shape(constructor)
  graphdef, state = nnx.split(module)
  sub = {k[len(prefix) + 1:]: v for k, v in flat.items() if k.startswith(prefix + '/')}
  try:
    values = tree_utils.restore_like(sub, nnx.to_pure_dict(state))
  except ValueError as e:
    raise ValueError(f'{path}: {prefix}: {e} Re-create it with `python -m animojax.convert.fetch '
                     f'{NAME}`.') from e
  nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, values))
  return graphdef, state


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=('detector_state', 'regressor_state', 'param_mean', 'param_std',
                                'u_base', 'w_shp_base', 'w_exp_base'),
                   meta_fields=('detector_graph', 'regressor_graph'))
@dataclasses.dataclass(frozen=True, eq=False)
class Weights:
  """Everything of the converted bundle: a pytree (NNX graph definitions are static fields)."""
  detector_graph: nnx.GraphDef
  detector_state: nnx.State
  regressor_graph: nnx.GraphDef
  regressor_state: nnx.State
  param_mean: jax.Array
  param_std: jax.Array
  u_base: jax.Array
  w_shp_base: jax.Array
  w_exp_base: jax.Array


def load_weights(path: str | None = None) -> Weights:
  """Reads `tddfa_v2.npz` (default `~/.cache/animojax/tddfa_v2.npz`); says how to make it."""
  path = os.path.expanduser(path or sources.default_npz_path(NAME))
  if not os.path.isfile(path):
    raise FileNotFoundError(sources.missing_weights_message(NAME, path))
  flat = tree_utils.load_npz_flat(path)
  missing = [k for k in ('param_mean', 'param_std', 'u_base', 'w_shp_base', 'w_exp_base')
             if k not in flat]
  if missing:
    raise ValueError(f'{path}: missing {missing}; re-create it with `python -m '
                     f'animojax.convert.fetch {NAME}`.')
  detector = _module_state(lambda: faceboxes.FaceBoxesNet(rngs=initializers.KeyStream(0)), flat,
                           'faceboxes', path)
  regressor = _module_state(lambda: tddfa.MobileNet(rngs=initializers.KeyStream(0)), flat,
                            'regressor', path)
  return Weights(
      detector_graph=detector[0], detector_state=detector[1], regressor_graph=regressor[0],
      regressor_state=regressor[1],
      **{k: jnp.asarray(flat[k], jnp.float32) for k in
         ('param_mean', 'param_std', 'u_base', 'w_shp_base', 'w_exp_base')})


def _resize_bilinear(frames, height, width):
  """Upstream shrinks large frames with cv2.resize (bilinear, no antialiasing); so do we."""
  return jax.image.scale_and_translate(
      frames, (frames.shape[0], height, width, frames.shape[3]), (1, 2),
      jnp.asarray([height / frames.shape[1], width / frames.shape[2]], jnp.float32),
      jnp.zeros(2, jnp.float32), method='linear', antialias=False)


def detect(weights: Weights, frames):
  """All decoded boxes [B, P, 4] (frame pixels) and face scores [B, P] (jit-able)."""
  frames = jnp.asarray(frames, jnp.float32)
  height, width = frames.shape[1:3]
  scale = faceboxes.scale_to_limit(height, width)
  if scale != 1.0:
    frames = _resize_bilinear(frames, int(scale * height), int(scale * width))
  net = nnx.merge(weights.detector_graph, weights.detector_state)
  out = net(faceboxes.preprocess(frames))
  boxes = faceboxes.boxes_in_pixels(out['loc'], frames.shape[1], frames.shape[2], scale)
  return boxes, out['scores']


def regress(weights: Weights, frames, rois):
  """62 parameters [B, 62] and landmarks [B, 68, 3] of ROIs [B, 4] of frames (jit-able)."""
  frames = jnp.asarray(frames, jnp.float32)
  crops = jax.vmap(tddfa.crop_and_resize)(frames[..., ::-1], rois)  # RGB -> BGR, as trained.
  net = nnx.merge(weights.regressor_graph, weights.regressor_state)
  param = tddfa.denormalise(net(tddfa.normalise_input(crops))['param_norm'], weights.param_mean,
                            weights.param_std)
  points = tddfa.landmarks(param, rois, weights.u_base, weights.w_shp_base, weights.w_exp_base)
  return param, points


def _outputs(param, points, roi, box, score):
  return {'param': param, 'landmarks': points, 'roi': roi, 'box': box, 'score': score,
          'found': score > faceboxes.VIS_THRESHOLD, **tddfa.decompose_pose(param)}


def capture(weights: Weights, frames):
  """Independent frames -> {'param', 'landmarks', 'roi', 'box', 'score', 'found', pose...}."""
  boxes, scores = detect(weights, frames)
  box, score = faceboxes.best_box(boxes, scores)
  _, points = regress(weights, frames, tddfa.roi_from_box(box))
  roi = tddfa.roi_from_landmarks(points)
  param, points = regress(weights, frames, roi)
  return _outputs(param, points, roi, box, score)


# Module-level, so that every Capturer shares one compilation per frame size and batch.
_capture_jit = jax.jit(capture)


def track(weights: Weights, frames, previous_landmarks, has_previous):
  """`Capturer.track` as one jit-able function of frames [1, H, W, 3] (a batch of one stream)."""
  box, score = faceboxes.best_box(*detect(weights, frames))
  tracked = tddfa.roi_from_landmarks(previous_landmarks)
  area = (tracked[:, 2] - tracked[:, 0]) * (tracked[:, 3] - tracked[:, 1])
  use_previous = has_previous & jnp.all(area >= MIN_TRACK_AREA)

  def restart():  # As `capture`: box ROI, then the landmark ROI of that first estimate.
    return tddfa.roi_from_landmarks(regress(weights, frames, tddfa.roi_from_box(box))[1])

  roi = jax.lax.cond(use_previous, lambda: tracked, restart)
  param, points = regress(weights, frames, roi)
  return _outputs(param, points, roi, box, score)


_track_jit = jax.jit(track)


class Capturer:
  """The capture functions bound to loaded weights, jitted (one compile per frame size/batch)."""

  def __init__(self, weights: Weights | str | None = None):
    self.weights = weights if isinstance(weights, Weights) else load_weights(weights)
    self._capture = _capture_jit
    self._track = _track_jit

  def __call__(self, frames) -> dict[str, np.ndarray]:
    """Batched capture of RGB uint8 frames [B, H, W, 3] (numpy results)."""
    return jax.device_get(self._capture(self.weights, jnp.asarray(frames)))

  def track(self, frame, previous: dict | None = None) -> dict[str, np.ndarray]:
    """One RGB frame [H, W, 3]; `previous` is this method's last result (or None).

    Deviation from upstream's tracking, which never notices a lost face: the detector runs on
    every frame (FaceBoxes is the cheap half of the pipeline) and decides `found`; the ROI still
    comes from the previous landmarks while they give one of at least 2020 px². One device call.
    """
    has_previous = previous is not None and bool(previous['found'])
    landmarks = (previous['landmarks'] if has_previous
                 else np.zeros((tddfa.NUM_LANDMARKS, 3), np.float32))
    # Host arrays in, one transfer out: slicing the device results first cost an eager op and a
    # transfer per key (5 of this method's 7 ms on an H200; the program itself takes 2 ms).
    out = self._track(self.weights, np.asarray(frame)[None], np.asarray(landmarks)[None],
                      np.asarray(has_previous))
    return {k: v[0] for k, v in jax.device_get(out).items()}


@functools.cache
def default_capturer() -> Capturer:
  return Capturer()

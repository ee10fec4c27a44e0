"""FaceBoxes (Zhang et al. 2017), the face detector 3DDFA_V2 ships, in Flax NNX.

Architecture, anchors and post-processing follow cleardusk/3DDFA_V2 `FaceBoxes/`
(`models/faceboxes.py`, `utils/prior_box.py`, `utils/box_utils.py: decode`, `FaceBoxes.py`):

* Net: CReLU 7x7/4 (3->24, output [x, -x]) | max pool 3x3/2 pad 1 | CReLU 5x5/2 (48->64) | max
  pool | 3 Inception blocks (128 ch) -> source 1 | conv 1x1 + 3x3/2 (256) -> source 2 | again ->
  source 3. Every conv is conv (no bias) + BatchNorm (eps 1e-5, running statistics) + ReLU.
  Heads are 3x3 convs with bias: 21 anchors per cell on source 1, one on sources 2 and 3, 4 box
  offsets and 2 class logits each; a softmax over the two classes gives the face score.
* Anchors (`prior_boxes`): steps 32/64/128, sizes (32, 64, 128) / 256 / 512 px; 32-px anchors are
  densified 4x4 per cell and 64-px ones 2x2, in (cx, cy, w, h) relative to the image.
* Decoding: SSD's with variances (0.1, 0.2).
* Selection (upstream `FaceBoxes.__call__`): score > 0.05, the 5000 best, greedy NMS at IoU 0.3
  with Fast R-CNN's `+1` pixel areas, at most 750, then score > 0.5.

Module paths equal the PyTorch state-dict names except the heads (`loc.0` -> `loc0`), so the
converter (`animojax.convert.tddfa`) is a rename.

Input: NHWC float32 BGR pixels (0..255) minus the Caffe means (104, 117, 123) -- what the weights
were trained on; `preprocess` makes it from RGB uint8/float frames. Any size; upstream first
shrinks frames larger than 720 x 1080 (`scale_to_limit`).

NMS runs on the host in numpy (`nms`): the number of kept boxes is data dependent and the greedy
loop is sequential, so a jitted version would pad to 5000 candidates and loop over them on the
device for a result that is usually one box. The reenactment pipeline needs only the best face
per frame, which greedy NMS always keeps first: `best_box` picks it on the device, jitted and
batched, with no NMS at all.
"""

import functools
import itertools
import math
from typing import Any

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

BN_EPSILON = 1e-5
BGR_MEAN = (104.0, 117.0, 123.0)
MIN_SIZES = ((32, 64, 128), (256,), (512,))
STEPS = (32, 64, 128)
VARIANCES = (0.1, 0.2)
CONFIDENCE_THRESHOLD = 0.05
TOP_K = 5000
NMS_THRESHOLD = 0.3
KEEP_TOP_K = 750
VIS_THRESHOLD = 0.5
MAX_HEIGHT, MAX_WIDTH = 720, 1080
# Anchors per cell of each source (21 = 16 + 4 + 1 on the first).
ANCHORS_PER_CELL = (21, 1, 1)


class BasicConv2d(nnx.Module):
  """conv (no bias) -> BatchNorm (running statistics) -> ReLU."""

  def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, *,
               precision: Any, rngs: nnx.Rngs):
    self.conv = nnx.Conv(cin, cout, (kernel, kernel), strides=(stride, stride),
                         padding=((padding, padding), (padding, padding)), use_bias=False,
                         precision=precision, rngs=rngs)
    self.bn = nnx.BatchNorm(cout, use_running_average=True, epsilon=BN_EPSILON, rngs=rngs)

  def __call__(self, x):
    return jax.nn.relu(self.bn(self.conv(x)))


class CRelu(BasicConv2d):
  """conv -> BatchNorm -> concat(x, -x) -> ReLU (twice the channels out)."""

  def __call__(self, x):
    x = self.bn(self.conv(x))
    return jax.nn.relu(jnp.concatenate([x, -x], axis=-1))


class Inception(nnx.Module):
  """128 -> 4 x 32 channels: 1x1 | avgpool-1x1 | 1x1-3x3 | 1x1-3x3-3x3."""

  def __init__(self, **kw):
    self.branch1x1 = BasicConv2d(128, 32, 1, **kw)
    self.branch1x1_2 = BasicConv2d(128, 32, 1, **kw)
    self.branch3x3_reduce = BasicConv2d(128, 24, 1, **kw)
    self.branch3x3 = BasicConv2d(24, 32, 3, padding=1, **kw)
    self.branch3x3_reduce_2 = BasicConv2d(128, 24, 1, **kw)
    self.branch3x3_2 = BasicConv2d(24, 32, 3, padding=1, **kw)
    self.branch3x3_3 = BasicConv2d(32, 32, 3, padding=1, **kw)

  def __call__(self, x):
    # torch's avg_pool2d counts the zero padding (count_include_pad=True), as nnx does.
    pooled = nnx.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    return jnp.concatenate([
        self.branch1x1(x), self.branch1x1_2(pooled),
        self.branch3x3(self.branch3x3_reduce(x)),
        self.branch3x3_3(self.branch3x3_2(self.branch3x3_reduce_2(x)))], axis=-1)


def _max_pool(x):
  return nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


class FaceBoxesNet(nnx.Module):
  """Returns {'loc' [B, P, 4] encoded offsets, 'scores' [B, P] face probabilities, 'logits'}."""

  def __init__(self, *, precision: Any = None, rngs: nnx.Rngs):
    kw = dict(precision=precision, rngs=rngs)
    self.conv1 = CRelu(3, 24, 7, stride=4, padding=3, **kw)
    self.conv2 = CRelu(48, 64, 5, stride=2, padding=2, **kw)
    self.inception1 = Inception(**kw)
    self.inception2 = Inception(**kw)
    self.inception3 = Inception(**kw)
    self.conv3_1 = BasicConv2d(128, 128, 1, **kw)
    self.conv3_2 = BasicConv2d(128, 256, 3, stride=2, padding=1, **kw)
    self.conv4_1 = BasicConv2d(256, 128, 1, **kw)
    self.conv4_2 = BasicConv2d(128, 256, 3, stride=2, padding=1, **kw)
    for k, (cin, anchors) in enumerate(zip((128, 256, 256), ANCHORS_PER_CELL)):
      head = lambda cout: nnx.Conv(cin, cout, (3, 3), padding=((1, 1), (1, 1)),
                                   precision=precision, rngs=rngs)
      setattr(self, f'loc{k}', head(anchors * 4))
      setattr(self, f'conf{k}', head(anchors * 2))

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f'FaceBoxes expects NHWC BGR images, got shape {x.shape}.')
    x = _max_pool(self.conv1(x))
    x = _max_pool(self.conv2(x))
    x = self.inception3(self.inception2(self.inception1(x)))
    sources = [x]
    x = self.conv3_2(self.conv3_1(x))
    sources.append(x)
    x = self.conv4_2(self.conv4_1(x))
    sources.append(x)
    batch = x.shape[0]
    # NHWC flattening = torch's permute(0, 2, 3, 1).view: cells row-major, anchors inside.
    loc = jnp.concatenate([getattr(self, f'loc{k}')(s).reshape(batch, -1, 4)
                           for k, s in enumerate(sources)], axis=1)
    logits = jnp.concatenate([getattr(self, f'conf{k}')(s).reshape(batch, -1, 2)
                              for k, s in enumerate(sources)], axis=1)
    return {'loc': loc, 'logits': logits, 'scores': jax.nn.softmax(logits, axis=-1)[..., 1]}


def preprocess(frames_rgb) -> jax.Array:
  """RGB frames [B, H, W, 3] (0..255, any dtype) -> the net's BGR mean-subtracted input."""
  bgr = jnp.asarray(frames_rgb, jnp.float32)[..., ::-1]
  return bgr - jnp.asarray(BGR_MEAN, jnp.float32)


def scale_to_limit(height: int, width: int) -> float:
  """Upstream's speed-up factor: frames taller than 720 or wider than 1080 are shrunk to fit."""
  scale = 1.0
  if height > MAX_HEIGHT:
    scale = MAX_HEIGHT / height
  if width * scale > MAX_WIDTH:
    scale *= MAX_WIDTH / (width * scale)
  return scale


@functools.cache
def prior_boxes(height: int, width: int) -> np.ndarray:
  """Anchors float32 [P, 4] (cx, cy, w, h) relative to a `height` x `width` input, net order."""
  anchors = []
  for step, sizes in zip(STEPS, MIN_SIZES):
    rows, cols = math.ceil(height / step), math.ceil(width / step)
    for i, j in itertools.product(range(rows), range(cols)):
      for size in sizes:
        # 32-px anchors are spread 4 x 4 over the cell, 64-px ones 2 x 2 (densification).
        offsets = {32: (0.0, 0.25, 0.5, 0.75), 64: (0.0, 0.5)}.get(size, (0.5,))
        for dy, dx in itertools.product(offsets, offsets):
          anchors.append(((j + dx) * step / width, (i + dy) * step / height, size / width,
                          size / height))
  out = np.asarray(anchors, np.float32)
  out.setflags(write=False)
  return out


def decode(loc, priors):
  """SSD decoding: offsets [..., P, 4] + priors [P, 4] -> boxes (x1, y1, x2, y2), relative."""
  centre = priors[:, :2] + loc[..., :2] * VARIANCES[0] * priors[:, 2:]
  size = priors[:, 2:] * jnp.exp(loc[..., 2:] * VARIANCES[1])
  top_left = centre - size / 2
  return jnp.concatenate([top_left, top_left + size], axis=-1)


def boxes_in_pixels(loc, height: int, width: int, scale: float = 1.0):
  """Decoded boxes [..., P, 4] in pixels of the original frame (the net saw it `scale`d)."""
  boxes = decode(loc, jnp.asarray(prior_boxes(height, width)))
  return boxes * jnp.asarray([width, height, width, height], jnp.float32) / scale


def best_box(boxes, scores):
  """The highest-scoring box per frame: (box [B, 4], score [B]); what NMS would keep first."""
  index = jnp.argmax(scores, axis=-1)
  box = jnp.take_along_axis(boxes, index[:, None, None], axis=1)[:, 0]
  return box, jnp.take_along_axis(scores, index[:, None], axis=1)[:, 0]


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = NMS_THRESHOLD) -> np.ndarray:
  """Greedy NMS (Fast R-CNN's `cpu_nms`, areas with +1 px): kept indices, best first."""
  boxes = np.asarray(boxes, np.float32)
  x1, y1, x2, y2 = boxes.T
  areas = (x2 - x1 + 1) * (y2 - y1 + 1)
  order = np.argsort(-np.asarray(scores), kind='stable')
  keep = []
  while order.size:
    i = order[0]
    keep.append(i)
    rest = order[1:]
    w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
    h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
    inter = w * h
    order = rest[inter / (areas[i] + areas[rest] - inter) < threshold]
  return np.asarray(keep, np.int64)


def select(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
  """Upstream's post-processing of one frame: [N, 5] (x1, y1, x2, y2, score), best first."""
  boxes, scores = np.asarray(boxes, np.float32), np.asarray(scores, np.float32)
  candidates = np.nonzero(scores > CONFIDENCE_THRESHOLD)[0]
  candidates = candidates[np.argsort(-scores[candidates], kind='stable')][:TOP_K]
  kept = candidates[nms(boxes[candidates], scores[candidates])][:KEEP_TOP_K]
  kept = kept[scores[kept] > VIS_THRESHOLD]
  return np.concatenate([boxes[kept], scores[kept, None]], axis=1)

"""Reenactment as a library: a trained generator, a source image, motion from videos or files.

The pieces `python -m animojax.reenact` is made of, usable from Python:

  from animojax import reenactor
  generator = reenactor.load_generator(workdir='/tmp/animo_demo')   # or params=..., config=...
  live = reenactor.Reenactor(generator, source_rgb, direction='anime<-human')
  for frame in webcam_frames:            # RGB uint8 [H, W, 3], any size
    out = live(frame)                    # RGB uint8 [S, S, 3]

`Generator.__call__(source, motion, domain)` is AniMo's generator: `source` [B, S, S, 3] float32
in [-1, 1] (S = config.data.image_size), `motion` [B, pose_dim] (exp | angles (radians; pitch,
yaw, roll) | trans), `domain` the source's domain ('anime' or 'human'); it returns the generated
images [B, S, S, 3] in [-1, 1].

A ToonTalker run loads as a `FrameGenerator` instead: driven by frames of the driving domain
(its own motion encoders), `frames(source, driving, start, source_domain, driving_domain)`.

Human motion comes from `animojax.mocap` (FaceBoxes + 3DDFA_V2, then a least-squares fit into
the model's coefficient space: the synthetic data's embedded model for configs trained on
`synthetic_heads`, Deep3DFaceRecon's BFM given `BFM_model_front.mat` otherwise); anime motion
from 20-D AnimeCeleb poses mapped by the config's Φ.
"""

import dataclasses
import importlib
import json
import os
from typing import Any, Callable

from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from animojax import export
from animojax import trainers
from animojax.data import building
from animojax.mocap import capture as capture_lib
from animojax.mocap import motion as motion_lib
from animojax.models.blocks import initializers
from animojax.models.toontalker import toontalker as tt_model
from animojax.nets import faceboxes
from animojax.ops import kernels
from animojax.posemap import mapping
from animojax.trainers.animo import state as animo_state
from animojax.trainers.animo import step as animo_step
from animojax.trainers.toontalker import state as tt_state
from animojax.utils import images
from animojax.utils import tree as tree_util

DIRECTIONS = ('anime<-human', 'human<-human', 'human<-anime', 'anime<-anime')
# A human source is cropped to a square this many times the detector box's larger side, centred on
# the box (VoxCeleb-style framing: the whole head and some shoulders).
HUMAN_CROP_MARGIN = 1.9


def parse_direction(direction: str) -> tuple[str, str]:
  if direction not in DIRECTIONS:
    raise ValueError(f'--direction={direction!r}: expected one of {DIRECTIONS} (source<-driving).')
  source, _, driving = direction.partition('<-')
  return source, driving


def load_config(spec: str) -> ml_collections.ConfigDict:
  """A config from a run's `config.json`, a config file, or a packaged name `animo[:arg]`."""
  if spec.endswith('.json'):
    if not os.path.isfile(spec):
      raise FileNotFoundError(f'--config {spec!r}: file not found.')
    with open(spec) as f:
      return ml_collections.ConfigDict(json.load(f))
  name, _, arg = spec.partition(':')
  try:
    module = importlib.import_module(f'animojax.configs.{name}')
  except ModuleNotFoundError:
    raise ValueError(f'--config {spec!r}: expected a config.json, or a packaged config name such '
                     'as animo:demo.') from None
  return module.get_config(arg or None)


@dataclasses.dataclass
class Generator:
  """A trained AniMo generator with its parameters (see the module docstring for the call)."""
  config: Any
  params: dict
  generate: Callable

  @property
  def image_size(self) -> int:
    return int(self.config.data.image_size)

  @property
  def pose_dim(self) -> int:
    return int(self.config.model.get('pose_dim', mapping.MOTION_DIM))

  def __call__(self, source, motion, domain: str):
    out = self.generate(self.params, jnp.asarray(source, jnp.float32),
                        jnp.asarray(motion, jnp.float32), domain=domain)
    return out['fake_image']


def load_generator(workdir: str | None = None, params: str | None = None,
                   config: str | None = None, weights: str = 'ema'):
  """From a training workdir (latest checkpoint) or an exported `.npz` plus its config.

  Returns a `Generator` (AniMo: driven by motion vectors) or a `FrameGenerator` (ToonTalker:
  driven by frames), by the config's `trainer`.

  Raises:
    ValueError / FileNotFoundError: with a message naming the input at fault.
  """
  if (workdir is None) == (params is None):
    raise ValueError('give either --workdir (a training run) or --params (an exported .npz) with '
                     '--config.')
  if workdir is not None:
    cfg, _, state_params = export.restore_latest(workdir, weights)
    if cfg.trainer == 'toontalker':
      return _frame_generator(cfg, trainers.get('toontalker').model_params(state_params))
    if cfg.trainer != 'animo':
      raise ValueError(f'--workdir {workdir!r} holds a {cfg.trainer!r} run; reenactment takes '
                       'an AniMo or a ToonTalker run.')
    graphdef = animo_state.graphdef_of(animo_state.model_config(cfg))
    groups = state_params
  else:
    if config is None:
      raise ValueError('--params needs --config (the run\'s config.json or e.g. animo:demo).')
    if not os.path.isfile(params):
      raise FileNotFoundError(f'--params {params!r}: file not found.')
    cfg = load_config(config)
    if cfg.get('trainer') == 'toontalker':
      abstract = nnx.to_pure_dict(nnx.state(nnx.eval_shape(
          lambda: tt_state.build_generator(tt_state.model_config(cfg),
                                           initializers.KeyStream(0)))))
      try:
        loaded = tree_util.restore_like(tree_util.load_npz_flat(params), abstract)
      except ValueError as e:
        raise ValueError(f'--params {params!r} does not fit --config {config!r}: {e}') from None
      return _frame_generator(cfg, jax.tree.map(jnp.asarray, loaded))
    try:
      model = export.load_model(params, animo_state.model_config(cfg))
    except ValueError as e:
      raise ValueError(f'--params {params!r} does not fit --config {config!r} (model '
                       f'{dict(animo_state.model_config(cfg))}): {e}') from None
    graphdef, groups = animo_state.split_params(model)
  generate = animo_step.make_generate(graphdef, kernels_choice=cfg.get('kernels', 'auto'))
  return Generator(config=cfg, params=groups, generate=generate)


def is_frame_driven(workdir: str | None = None, config: str | None = None) -> bool:
  """Whether the model a command names is driven by frames (ToonTalker), read from its config
  alone, so that the driving input can be checked before any weights load."""
  if workdir is not None:
    return export.read_config(workdir).get('trainer') == 'toontalker'
  if config is not None:
    return load_config(config).get('trainer') == 'toontalker'
  return False


# ToonTalker's domain for each of the directions' domain names.
TOONTALKER_DOMAINS = {'anime': 'cartoon', 'human': 'real'}


@dataclasses.dataclass
class FrameGenerator:
  """A trained ToonTalker: driven by frames of the driving domain, not by motion vectors.

  `frames(source, driving, start, source_domain, driving_domain)`: `source` [S, S, 3] and
  `driving` [B, S, S, 3] float32 in [-1, 1] (S = `image_size`), `start` the first driving frame
  [S, S, 3] for relative motion (eq. 5 of the paper) or None for absolute (eq. 3); domains are
  'anime' or 'human'. Returns RGB uint8 [B, S, S, 3].
  """
  config: Any
  params: dict
  frames_fn: Callable

  @property
  def image_size(self) -> int:
    return int(tt_model.resolve_config(**tt_state.model_config(self.config))['size'])

  def frames(self, source, driving, start, source_domain: str, driving_domain: str):
    return self.frames_fn(self.params, jnp.asarray(source, jnp.float32),
                          jnp.asarray(driving, jnp.float32),
                          None if start is None else jnp.asarray(start, jnp.float32),
                          source_domain=TOONTALKER_DOMAINS[source_domain],
                          driving_domain=TOONTALKER_DOMAINS[driving_domain])


def _frame_generator(cfg, params) -> FrameGenerator:
  gen_def, _ = tt_state.graphdefs(tt_state.model_config(cfg))

  def frames(params, source, driving, start, source_domain, driving_domain):
    model = nnx.merge(gen_def, params)
    batch = lambda image: jnp.broadcast_to(image, driving.shape)
    out = model(batch(source), driving, source_domain=source_domain,
                driving_domain=driving_domain, start=None if start is None else batch(start))
    return images.to_uint8_jax(out['fake_image'])

  frames = kernels.traced_with(cfg.get('kernels', 'auto'), frames, None)
  return FrameGenerator(config=cfg, params=params, frames_fn=jax.jit(
      frames, static_argnames=('source_domain', 'driving_domain')))


def read_image(path: str) -> np.ndarray:
  """An image file as RGB uint8 [H, W, 3]; transparency composited on white (AnimeCeleb's)."""
  try:
    image = building.open_image(path)
  except building.BadExampleError as e:
    raise ValueError(str(e)) from None
  return np.asarray(building.split_alpha(image)[0])


def resize(image: np.ndarray, size: int) -> np.ndarray:
  return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))


def to_model(images_uint8) -> np.ndarray:
  return np.asarray(images_uint8, np.float32) / 127.5 - 1.0


def crop_box(image: np.ndarray, box) -> np.ndarray:
  """Crops (x0, y0, x1, y1) in pixels, padding with white outside the image."""
  x0, y0, x1, y1 = (int(round(v)) for v in box)
  if x1 <= x0 or y1 <= y0:
    raise ValueError(f'crop box {tuple(box)} is empty.')
  out = np.full((y1 - y0, x1 - x0, 3), 255, np.uint8)
  h, w = image.shape[:2]
  sx, sy, ex, ey = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
  if ex > sx and ey > sy:
    out[sy - y0:ey - y0, sx - x0:ex - x0] = image[sy:ey, sx:ex]
  return out


def human_face_box(image: np.ndarray, capturer: capture_lib.Capturer, name: str) -> tuple:
  """The square (x0, y0, x1, y1) around the detected face (`HUMAN_CROP_MARGIN` times the box)."""
  captured = capturer(image[None])
  if not captured['found'][0]:
    raise ValueError(f'{name}: no face found (detector score {float(captured["score"][0]):.2f} '
                     f'<= {faceboxes.VIS_THRESHOLD}); crop the image to the face or check it.')
  x0, y0, x1, y1 = captured['box'][0]
  side = HUMAN_CROP_MARGIN * max(x1 - x0, y1 - y0)
  cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
  return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def human_face_crop(image: np.ndarray, capturer: capture_lib.Capturer, name: str) -> np.ndarray:
  """The square around the detected face (`HUMAN_CROP_MARGIN` times the box)."""
  return crop_box(image, human_face_box(image, capturer, name))


class MotionCapture:
  """Human frames -> motion vectors in a generator's space (batched and per frame)."""

  def __init__(self, generator: Generator, capturer: capture_lib.Capturer | None = None,
               bfm: str | None = None, reg: float = motion_lib.DEFAULT_REG):
    self.capturer = capturer or capture_lib.default_capturer()
    human = generator.config.data.get('human', {})
    if bfm:
      spec = f'bfm:{bfm}'
    elif str(human.get('name', '')).startswith('synthetic_heads'):
      spec = 'embedded'
    else:
      raise ValueError('this model was trained on real 3DMM coefficients: give --bfm '
                       'PATH/BFM_model_front.mat (Deep3DFaceRecon\'s BFM) so that video motion '
                       'can be fitted into its coefficient space.')
    self.fitter = motion_lib.make_fitter(spec, self.capturer.weights, reg)
    if self.fitter.motion_dim != generator.pose_dim:
      raise ValueError(f'the model reads {generator.pose_dim}-D motion, the {spec} fit gives '
                       f'{self.fitter.motion_dim}-D (DECA-trained models cannot be driven by '
                       'video capture yet).')

  def frames(self, frames: np.ndarray) -> dict:
    """Captures of RGB frames [N, H, W, 3] (batched)."""
    return self.capturer(frames)

  def motion(self, captured: dict) -> dict:
    return self.fitter(captured)


class Reenactor:
  """Streaming reenactment: one driving frame in, one generated frame out (e.g. a webcam).

  The first frame with a face is the reference of relative motion; frames without a face repeat
  the last motion (`missing` counts them). `smoothing` in [0, 1) is an exponential moving
  average of the motion (0 = off).
  """

  def __init__(self, generator: Generator, source_rgb: np.ndarray, *,
               direction: str = 'anime<-human', relative: bool = True, smoothing: float = 0.0,
               capture: MotionCapture | None = None, bfm: str | None = None):
    self.generator = generator
    self.source_domain, driving = parse_direction(direction)
    if driving != 'human':
      raise ValueError('streaming takes human video frames; for anime poses use reenact_motion.')
    if not 0.0 <= smoothing < 1.0:
      raise ValueError(f'smoothing must be in [0, 1), got {smoothing}.')
    self.capture = capture or MotionCapture(generator, bfm=bfm)
    crop = source_crop(source_rgb, self.source_domain, self.capture.capturer)
    self.source = resize(crop, generator.image_size)
    self.source_motion = source_motion(crop, self.source_domain, generator, self.capture)
    self.relative, self.smoothing = relative, smoothing
    self._source_on_device = jnp.asarray(to_model(self.source))
    self._first = self._previous = self._motion = None
    self.missing = 0

  def __call__(self, frame_rgb: np.ndarray) -> np.ndarray:
    captured = self.capture.capturer.track(np.asarray(frame_rgb), self._previous)
    self._previous = captured if captured['found'] else None
    if not captured['found']:
      self.missing += 1
    elif self._first is None:
      self._first = captured
    if self._first is None:  # No face yet: show the source as it is.
      motion = self.source_motion
    elif captured['found']:
      pair = jax.tree.map(lambda a, b: np.stack([a, b]), self._first, captured)
      driving = self.capture.motion(pair)['motion']
      motion = motion_lib.drive(driving, self.source_motion, relative=self.relative)[1]
      if self._motion is not None and self.smoothing:
        motion = self.smoothing * self._motion + (1 - self.smoothing) * motion
    else:
      motion = self._motion
    self._motion = motion
    return np.asarray(_uint8_frames_jit(self.generator.generate, self.generator.params,
                                        self._source_on_device, motion[None].astype(np.float32),
                                        self.source_domain))[0]


def source_crop(image: np.ndarray, domain: str, capturer: capture_lib.Capturer | None = None,
                crop=None, name: str = 'source image') -> np.ndarray:
  """The part of the source the model sees (at the image's resolution): `crop`, else the detected
  face of a human source, else the whole image; resize it to the model's size with `resize`."""
  if crop is not None:
    return crop_box(image, crop)
  if domain == 'human':
    return human_face_crop(image, capturer or capture_lib.default_capturer(), name)
  return image


def source_motion(crop: np.ndarray, domain: str, generator: Generator,
                  capture: MotionCapture | None, name: str = 'source image') -> np.ndarray:
  """The source's own motion: captured on a human face crop; neutral and frontal for anime."""
  if domain == 'anime' or capture is None:
    return np.zeros(generator.pose_dim, np.float32)
  try:
    return capture.motion(capture.frames(crop[None]))['motion'][0]
  except ValueError as e:
    raise ValueError(f'{name}: {e} (its own pose is needed for relative motion).') from None


def _uint8_frames(generate, params, source, motions, domain):
  """The generator on `source` [S, S, 3] for each motion, as RGB uint8."""
  out = generate(params, jnp.broadcast_to(source, (len(motions),) + source.shape), motions,
                 domain=domain)['fake_image']
  return images.to_uint8_jax(out)


_uint8_frames_jit = jax.jit(_uint8_frames, static_argnames=('generate', 'domain'))


def generate_all(generator: Generator, source: np.ndarray, motions: np.ndarray, domain: str,
                 batch_size: int = 16, progress: Callable | None = None):
  """Yields generated RGB uint8 frames for motions [N, D], in fixed-size batches (one compile).

  The source goes to the device once and frames come back as uint8 (a quarter of float32's
  bytes); each batch is dispatched before the previous one is fetched, so the host's copy and the
  caller's work on a batch overlap the device's work on the next.
  """
  src = jnp.asarray(to_model(source))
  pending = None
  for start in range(0, len(motions) + batch_size, batch_size):
    out = None
    if start < len(motions):
      chunk = np.asarray(motions[start:start + batch_size], np.float32)
      padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - len(chunk), 0)])
      out = (_uint8_frames_jit(generator.generate, generator.params, src, padded, domain),
             len(chunk))
    if pending is not None:
      frames, count = pending
      if progress:
        progress(count)
      yield from np.asarray(frames)[:count]
    pending = out


def anime_motion(poses: np.ndarray, generator: Generator) -> np.ndarray:
  """AnimeCeleb poses [N, 20] -> motion [N, pose_dim] with the config's Φ (pose mapping T)."""
  from animojax.data import pipeline  # pylint: disable=g-import-not-at-top
  phi = pipeline.load_phi(generator.config.data.phi)
  motion = mapping.anime_pose_to_3dmm(np.asarray(poses, np.float32), phi,
                                      tuple(generator.config.data.anime_angle_permutation))
  if motion.shape[-1] != generator.pose_dim:
    raise ValueError(f'Φ maps poses to {motion.shape[-1]}-D motion; the model reads '
                     f'{generator.pose_dim}-D.')
  return motion

r"""Makes a still image move like a driving video: `python -m animojax.reenact`.

  python -m animojax.reenact --workdir=/tmp/animo_demo --source=character.png \
      --driving=my_video.mp4 --out=out.mp4 [--side_by_side] [--frames_dir=frames/]

  python -m animojax.reenact --params=params.npz --config=animo:demo --direction='human<-anime' \
      --source=face.jpg --driving=poses.npy --out=out.mp4

Model: `--workdir` (a training run: its config.json and latest checkpoint, EMA weights) or
`--params` (an exported `.npz`, `python -m animojax.export`) with `--config` (the run's
config.json or a packaged name such as animo:demo).

Source (`--source`): any image file and size; transparency is composited on white. A human
source is cropped around the detected face; an anime source is resized whole, or `--crop=x0,y0,
x1,y1` first.

Driving (`--driving`), by `--direction` (source<-driving, default anime<-human):
* human: a video file (mp4, mov, mkv, avi, webm), a folder of frames, or coefficient files: a
  Deep3DFaceRecon or DECA `.mat` (one file with N rows, or a folder of per-frame files) or a
  `.npy` [N, 257] (Deep3DFaceRecon) / [N, pose_dim] (motion vectors). Video frames go through
  face detection (FaceBoxes), 3DDFA_V2 and a least-squares fit into the model's coefficient
  space (`animojax.mocap`; weights: `python -m animojax.convert.fetch tddfa_v2`); models trained
  on real Deep3DFaceRecon coefficients also need `--bfm=BFM_model_front.mat`.
* anime: a `.npy` or `.csv` [N, 20] of AnimeCeleb poses (17 morphs, 3 angles in degrees), mapped
  with the config's Φ.

A ToonTalker run (`config.trainer == 'toontalker'`) is driven by frames, not motion: `--driving`
is a video or a frame folder of the driving domain (human: each frame cropped to the square
around the face found in the first frame; anime: whole frames), read by the model's own motion
encoders; `--direction` names the domains as above (human = ToonTalker's real, anime = its
cartoon). Relative motion (eq. 5 of the paper) takes the first driving frame as the reference.

Motion is relative by default (each driving frame's change from the first applied to the
source's own pose: captured for a human source, neutral for an anime one); `--absolute` uses the
driving expression and head angles as they are. `--smooth=K` averages K frames. Frames without a
face repeat the last motion; their count is reported. The mp4 keeps the driving video's frame
rate and audio (`--fps` for folders and files). Nothing is written when the inputs are unusable.
"""

import csv
import fractions
import os
import shutil
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging
import numpy as np
import PIL.Image
import tqdm

from animojax import reenactor
from animojax.data import building
from animojax.data import coeffs
from animojax.data import video
from animojax.mocap import capture as capture_lib
from animojax.posemap import mapping
from animojax.utils import background
from animojax.utils import cli

CAPTURE_BATCH = 32


class InputError(ValueError):
  """A user input that cannot be used; printed without a traceback."""


def _video_info(path):
  """(fps, has audio) of a video file; raises InputError when it cannot be opened."""
  import av  # pylint: disable=g-import-not-at-top
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise InputError(f'--driving {path!r}: the file has no video stream.')
      stream = container.streams.video[0]
      return stream.average_rate or stream.guessed_rate, bool(container.streams.audio)
  except av.FFmpegError as e:
    raise InputError(f'--driving {path!r}: cannot open the video ({e}).') from None


def iter_driving_frames(path, size=None):
  """RGB uint8 frames of a video file or frame folder (resized to `size` when given)."""
  try:
    for item in video.iter_frames(path):
      if isinstance(item, building.BadExampleError):
        raise InputError(f'--driving: {item}')
      frame = np.asarray(item[2])
      yield reenactor.resize(frame, size) if size else frame
  except building.BadExampleError as e:
    raise InputError(f'--driving: {e}') from None


def _read_table(path):
  if path.endswith('.npy'):
    try:
      return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
      raise InputError(f'--driving {path!r}: cannot read the .npy file ({e}).') from None
  try:
    with open(path, newline='') as f:
      rows = [r for r in csv.reader(f) if r]
    start = 0 if rows and _is_number(rows[0][0]) else 1  # An optional header row.
    return np.asarray([[float(v) for v in r] for r in rows[start:]], np.float32)
  except (OSError, ValueError) as e:
    raise InputError(f'--driving {path!r}: not a table of numbers ({e}).') from None


def _is_number(text):
  try:
    float(text)
    return True
  except ValueError:
    return False


def _mat_motion(paths, pose_dim):
  motions = []
  for path in paths:
    try:
      mat = coeffs.load_mat(path)
      if 'coeff' in mat or 'angle' in mat:
        motions.append(mapping.deep3d_coeff_to_motion(coeffs.read_deep3d(path, rows=None)[0]))
      else:
        motions.append(coeffs.deca_coeff_to_motion(coeffs.read_deca(path)[0])[None])
    except building.BadExampleError as e:
      raise InputError(f'--driving: {e}') from None
  motion = np.concatenate(motions)
  if motion.shape[-1] != pose_dim:
    raise InputError(f'--driving: the coefficient files give {motion.shape[-1]}-D motion, the '
                     f'model reads {pose_dim}-D (Deep3DFaceRecon: 70, DECA: 56).')
  return motion


def driving_kind(path, driving_domain, frame_driven=False):
  """'video' | 'frames' | 'mat' | 'table', checking that the path exists and suits the domain
  (and, for a frame-driven model, ToonTalker, that it is a video or a frame folder)."""
  if not os.path.exists(path):
    raise InputError(f'--driving {path!r}: no such file or folder.')
  if frame_driven:
    if os.path.isdir(path) and any(n.lower().endswith(building.IMAGE_EXTENSIONS)
                                   for n in os.listdir(path)):
      return 'frames'
    if os.path.isfile(path) and path.lower().endswith(video.VIDEO_EXTENSIONS):
      return 'video'
    raise InputError(f'--driving {path!r}: a ToonTalker model is driven by frames of the driving '
                     f'domain: give a video ({", ".join(video.VIDEO_EXTENSIONS)}) or a folder of '
                     'frames.')
  if driving_domain == 'anime':
    if not path.endswith(('.npy', '.csv')):
      raise InputError(f'--driving {path!r}: anime driving is a .npy or .csv of [N, 20] '
                       'AnimeCeleb poses.')
    return 'table'
  if os.path.isdir(path):
    names = os.listdir(path)
    if any(n.lower().endswith('.mat') for n in names):
      return 'mat'
    if any(n.lower().endswith(building.IMAGE_EXTENSIONS) for n in names):
      return 'frames'
    raise InputError(f'--driving {path!r}: the folder holds neither frames nor .mat files.')
  if path.lower().endswith(video.VIDEO_EXTENSIONS):
    return 'video'
  if path.endswith('.mat'):
    return 'mat'
  if path.endswith(('.npy', '.csv')):
    return 'table'
  raise InputError(f'--driving {path!r}: expected a video ({", ".join(video.VIDEO_EXTENSIONS)}),'
                   ' a frame folder, .mat coefficient files or a .npy/.csv table.')


def driving_motion(path, kind, driving_domain, generator, capture, batch=CAPTURE_BATCH):
  """(motion [N, pose_dim] in the driving's own frame of reference, frames without a face)."""
  if kind == 'table':
    table = _read_table(path)
    if table.ndim != 2 or len(table) == 0:
      raise InputError(f'--driving {path!r}: expected a non-empty [N, D] table, got shape '
                       f'{table.shape}.')
    if driving_domain == 'anime' or table.shape[1] == mapping.NUM_POSE:
      if table.shape[1] != mapping.NUM_POSE:
        raise InputError(f'--driving {path!r}: anime poses have 20 columns, got {table.shape[1]}.')
      return reenactor.anime_motion(table, generator), 0
    if table.shape[1] in (coeffs.DEEP3D_DIM, coeffs.DEEP3D_DIM + 3):
      table = mapping.deep3d_coeff_to_motion(table.astype(np.float32))
    if table.shape[1] != generator.pose_dim:
      raise InputError(f'--driving {path!r}: {table.shape[1]} columns; expected motion vectors '
                       f'({generator.pose_dim}), Deep3DFaceRecon coefficients (257) or anime '
                       'poses (20).')
    return table.astype(np.float32), 0
  if kind == 'mat':
    paths = ([os.path.join(path, n) for n in sorted(os.listdir(path)) if n.endswith('.mat')]
             if os.path.isdir(path) else [path])
    return _mat_motion(paths, generator.pose_dim), 0
  captured = []
  frames = background.prefetch(iter_driving_frames(path))  # Decoding ahead, in a thread.
  with tqdm.tqdm(desc='capture', unit='frame') as bar:
    while True:
      chunk = [f for _, f in zip(range(batch), frames)]
      if not chunk:
        break
      if any(c.shape != chunk[0].shape for c in chunk):
        raise InputError(f'--driving {path!r}: frames of different sizes; resize them first.')
      n = len(chunk)
      chunk += [chunk[-1]] * (batch - n)  # One compiled batch size.
      out = capture.frames(np.stack(chunk))
      captured.append({k: v[:n] for k, v in out.items()})
      bar.update(n)
  if not captured:
    raise InputError(f'--driving {path!r}: no frames.')
  captured = {k: np.concatenate([c[k] for c in captured]) for k in captured[0]}
  try:
    fitted = capture.motion(captured)
  except ValueError as e:
    raise InputError(f'--driving {path!r}: {e}') from None
  return fitted['motion'], int((~fitted['found']).sum())


class Writer:
  """mp4 (PyAV, H.264) and/or PNG frames, written to temporary names and moved into place."""

  def __init__(self, out, frames_dir, fps, audio_from=None):
    self.out, self.frames_dir, self.fps, self.audio_from = out, frames_dir, fps, audio_from
    self.count = 0
    self._container = None
    if out:
      import av  # pylint: disable=g-import-not-at-top
      os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
      fd, self._tmp = tempfile.mkstemp(suffix='.mp4', dir=os.path.dirname(os.path.abspath(out)))
      os.close(fd)
      self._container = av.open(self._tmp, 'w')
      rate = fractions.Fraction(fps).limit_denominator(1001)  # 29.97 -> 30000/1001.
      self._stream = self._container.add_stream('libx264', rate=rate)
      self._stream.pix_fmt = 'yuv420p'
      self._stream.options = {'crf': '18'}
      self._audio = None
      if audio_from:  # Streams must all exist before the first packet is written.
        with av.open(audio_from) as source:
          self._audio = self._container.add_stream_from_template(source.streams.audio[0])
    if frames_dir:
      self._frames_tmp = tempfile.mkdtemp(prefix='.frames', dir=os.path.dirname(
          os.path.abspath(frames_dir)) or '.')

  def add(self, image):
    if self._container is not None:
      import av  # pylint: disable=g-import-not-at-top
      if self.count == 0:
        self._stream.height, self._stream.width = image.shape[:2]
      for packet in self._stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
        self._container.mux(packet)
    if self.frames_dir:
      PIL.Image.fromarray(image).save(
          os.path.join(self._frames_tmp, f'{self.count:06d}.png'))
    self.count += 1

  def close(self):
    if self._container is not None:
      for packet in self._stream.encode():
        self._container.mux(packet)
      if self.audio_from:
        self._copy_audio()
      self._container.close()
      os.replace(self._tmp, self.out)
    if self.frames_dir:
      os.replace(self._frames_tmp, self.frames_dir)

  def _copy_audio(self):
    import av  # pylint: disable=g-import-not-at-top
    with av.open(self.audio_from) as source:
      audio_in = source.streams.audio[0]
      for packet in source.demux(audio_in):
        if packet.dts is None:
          continue
        packet.stream = self._audio
        self._container.mux(packet)

  def abort(self):
    if self._container is not None:
      self._container.close()
      os.remove(self._tmp)
    if self.frames_dir:
      shutil.rmtree(self._frames_tmp, ignore_errors=True)


def run(*, source, driving, out=None, frames_dir=None, workdir=None, params=None, config=None,
        direction='anime<-human', absolute=False, smooth=1, side_by_side=False, crop=None,
        bfm=None, fps=25.0, batch_size=16, weights='ema', tddfa_weights=None,
        capture_batch=CAPTURE_BATCH, generator=None, capturer=None):
  """The command as a function; returns a summary dict. Raises InputError/ValueError for bad input.

  `generator` (a `reenactor.Generator`) and `capturer` (a `mocap.capture.Capturer`), when given,
  replace loading them from the model and weight paths (to reuse them across calls).
  """
  if not out and not frames_dir:
    raise InputError('give --out (an .mp4) and/or --frames_dir.')
  if out and not out.endswith('.mp4'):
    raise InputError(f'--out {out!r}: the output is an .mp4 file.')
  if frames_dir and os.path.exists(frames_dir):
    raise InputError(f'--frames_dir {frames_dir!r} exists; give a new folder.')
  source_domain, driving_domain = reenactor.parse_direction(direction)
  frame_driven = (isinstance(generator, reenactor.FrameGenerator) if generator is not None
                  else reenactor.is_frame_driven(workdir, config if params else None))
  kind = driving_kind(driving, driving_domain, frame_driven)
  if out or kind == 'video':
    try:
      import av  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      raise InputError("videos are read and written with PyAV: pip install 'animojax[data]' "
                       '(or write PNG frames with --frames_dir only).') from None
  if kind == 'table' and driving_domain == 'anime':  # Checked before any model is loaded.
    table = _read_table(driving)
    if table.ndim != 2 or table.shape[1] != mapping.NUM_POSE:
      raise InputError(f'--driving {driving!r}: anime poses have 20 columns, got shape '
                       f'{table.shape}.')
  source_image = reenactor.read_image(source)
  if generator is None:
    generator = reenactor.load_generator(workdir=workdir, params=params, config=config,
                                         weights=weights)
  if isinstance(generator, reenactor.FrameGenerator):
    return _run_frame_driven(generator, source, source_image, driving, kind, source_domain,
                             driving_domain, out=out, frames_dir=frames_dir, absolute=absolute,
                             side_by_side=side_by_side, crop=crop, fps=fps,
                             batch_size=batch_size, capturer=capturer,
                             tddfa_weights=tddfa_weights)
  capture = None
  # Video frames are captured; a human source is cropped by the detector and has its own pose.
  if kind in ('video', 'frames') or source_domain == 'human':
    capture = reenactor.MotionCapture(generator, capturer or capture_lib.Capturer(tddfa_weights),
                                      bfm=bfm)
  src_crop = reenactor.source_crop(source_image, source_domain,
                                   capture.capturer if capture else None, crop, name=source)
  src = reenactor.resize(src_crop, generator.image_size)
  src_motion = reenactor.source_motion(src_crop, source_domain, generator, capture, name=source)
  motion, missing = driving_motion(driving, kind, driving_domain, generator, capture,
                                   capture_batch)
  if len(motion) == missing:
    raise InputError(f'--driving {driving!r}: no face found in any frame.')
  motion = reenactor.motion_lib.smooth(
      reenactor.motion_lib.drive(motion, src_motion, relative=not absolute), smooth)
  video_fps, audio = (_video_info(driving) if kind == 'video' else (fps, False))
  writer = Writer(out, frames_dir, video_fps, driving if audio else None)
  panels = None
  if side_by_side:
    if kind in ('video', 'frames'):
      panels = background.prefetch(iter_driving_frames(driving, generator.image_size))
    else:
      panels = iter(())
  _write_all(writer, lambda progress: reenactor.generate_all(
      generator, src, motion, source_domain, batch_size, progress), src, panels, len(motion))
  return {'frames': len(motion), 'missing': missing, 'fps': float(video_fps), 'audio': audio}


def _write_all(writer, generated, src, panels, total):
  """Writes the frames of `generated(progress)` (with the source and driving panels when `panels`
  is given); nothing is left behind when it fails."""
  # Encoding runs in a thread behind the generator (PyAV releases the GIL), so the two overlap.
  encoder = background.InOrder()
  try:
    with tqdm.tqdm(total=total, desc='generate', unit='frame') as bar:
      for image in generated(bar.update):
        if panels is not None:
          row = [src, image]
          drive_frame = next(panels, None)
          if drive_frame is not None:
            row.insert(1, drive_frame)
          image = np.concatenate(row, axis=1)
        encoder.submit(writer.add, image)
    encoder.join()
    writer.close()
  except BaseException:
    encoder.cancel()
    writer.abort()
    raise


def _run_frame_driven(generator, source, source_image, driving, kind, source_domain,
                      driving_domain, *,
                      out, frames_dir, absolute, side_by_side, crop, fps, batch_size, capturer,
                      tddfa_weights):
  """`run` for a ToonTalker model: the driving frames themselves go through its motion encoder.

  A human driving video is cropped, for every frame, to the square around the face found in its
  first frame (fixed framing, as the talking-head datasets' clips are cut); an anime one is used
  whole. Relative motion takes the first driving frame as the reference (eq. 5).
  """
  size = generator.image_size
  if source_domain == 'human' or driving_domain == 'human':
    capturer = capturer or capture_lib.Capturer(tddfa_weights)
  src_crop = reenactor.source_crop(source_image, source_domain, capturer, crop, name=source)
  src = reenactor.resize(src_crop, size)
  frames = list(iter_driving_frames(driving))
  if not frames:
    raise InputError(f'--driving {driving!r}: no frames.')
  if any(f.shape != frames[0].shape for f in frames):
    raise InputError(f'--driving {driving!r}: frames of different sizes; resize them first.')
  if driving_domain == 'human':
    try:
      box = reenactor.human_face_box(frames[0], capturer, f'--driving {driving!r} (first frame)')
    except ValueError as e:
      raise InputError(str(e)) from None
    frames = [reenactor.crop_box(f, box) for f in frames]
  frames = np.stack([reenactor.resize(f, size) for f in frames])
  start = None if absolute else reenactor.to_model(frames[0])
  source = reenactor.to_model(src)

  def generated(progress):
    for first in range(0, len(frames), batch_size):
      chunk = frames[first:first + batch_size]
      padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - len(chunk), 0)])
      out_frames = generator.frames(source, reenactor.to_model(padded), start, source_domain,
                                    driving_domain)
      progress(len(chunk))
      yield from np.asarray(out_frames)[:len(chunk)]

  video_fps, audio = (_video_info(driving) if kind == 'video' else (fps, False))
  writer = Writer(out, frames_dir, video_fps, driving if audio else None)
  _write_all(writer, generated, src, iter(frames) if side_by_side else None, len(frames))
  return {'frames': len(frames), 'missing': 0, 'fps': float(video_fps), 'audio': audio}


FLAGS = flags.FLAGS


def _parse_crop(text):
  if not text:
    return None
  try:
    values = [float(v) for v in text.split(',')]
  except ValueError:
    values = []
  if len(values) != 4:
    raise InputError(f'--crop {text!r}: expected x0,y0,x1,y1 in pixels.')
  return values


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Checkpoint restore logs every step at INFO.
  with cli.user_errors('reenact'):  # One line naming the input (exit 1); bugs keep tracebacks.
    summary = run(source=FLAGS.source, driving=FLAGS.driving, out=FLAGS.out,
                  frames_dir=FLAGS.frames_dir, workdir=FLAGS.workdir, params=FLAGS.params,
                  config=FLAGS.config, direction=FLAGS.direction, absolute=FLAGS.absolute,
                  smooth=FLAGS.smooth, side_by_side=FLAGS.side_by_side,
                  crop=_parse_crop(FLAGS.crop), bfm=FLAGS.bfm, fps=FLAGS.fps,
                  batch_size=FLAGS.batch_size, weights=FLAGS.weights,
                  tddfa_weights=FLAGS.tddfa_weights)
  where = ' and '.join(p for p in (FLAGS.out, FLAGS.frames_dir) if p)
  print(f'Wrote {summary["frames"]} frames at {summary["fps"]:g} fps to {where}'
        + (' (with the driving audio)' if summary['audio'] else '') + '.')
  if summary['missing']:
    print(f'{summary["missing"]} of {summary["frames"]} driving frames had no face; they repeat '
          'the last motion.')
  return 0


if __name__ == '__main__':
  flags.DEFINE_string('source', None, 'Source image (any size; RGBA composited on white).')
  flags.DEFINE_string('driving', None, 'Driving video, frame folder, .mat/.npy/.csv motion.')
  flags.DEFINE_string('out', None, 'Output .mp4.')
  flags.DEFINE_string('frames_dir', None, 'Also (or instead) write PNG frames to this new folder.')
  flags.DEFINE_string('workdir', None, 'Training workdir (latest checkpoint).')
  flags.DEFINE_string('params', None, 'Exported .npz (with --config).')
  flags.DEFINE_string('config', None, "The run's config.json, or a packaged name (animo:demo).")
  flags.DEFINE_enum('direction', 'anime<-human', reenactor.DIRECTIONS, 'source<-driving.')
  flags.DEFINE_bool('absolute', False, 'Driving expression and angles as they are.')
  flags.DEFINE_integer('smooth', 1, 'Moving average over this many frames (1 = off).')
  flags.DEFINE_bool('side_by_side', False, 'source | driving | output in each frame.')
  flags.DEFINE_string('crop', None, 'x0,y0,x1,y1: crop the source first (skips face detection).')
  flags.DEFINE_string('bfm', None, "Deep3DFaceRecon's BFM_model_front.mat (real-data models).")
  flags.DEFINE_float('fps', 25.0, 'Frame rate for frame folders and coefficient files.')
  flags.DEFINE_integer('batch_size', 16, 'Frames per generator call.')
  flags.DEFINE_enum('weights', 'ema', ['ema', 'raw'], 'EMA (default) or raw parameters.')
  flags.DEFINE_string('tddfa_weights', None, 'Converted 3DDFA_V2 bundle (default: the cache).')
  flags.mark_flags_as_required(['source', 'driving'])
  app.run(lambda argv: sys.exit(main(argv)))

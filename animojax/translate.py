r"""Translates face images with a trained run (any translation method), batched and jitted.

  python -m animojax.translate --workdir=/tmp/tr_cyclegan --input=faces/ --out=translated/ \
      [--direction=anime->real] [--batch_size=16] [--angle=0]

`--input` is an image or a folder of images (.png, .jpg, .jpeg, .webp, .bmp; not recursive).
Each image is prepared as the training data were (`tfds_builders/unpaired_faces`): composited on
white if it has alpha, centre-cropped to a square, resized to the run's `config.data.image_size`
(bicubic); the translation is written as `<out>/<name>.png` at that size. Batches are padded to
`--batch_size`, so one program is compiled. `cyclegan_angle` also reads each face's in-plane
angle: `--angle` (degrees, the same for every image; the landmark-based estimate of the paper is
not part of this tool).
"""

import os

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from animojax.utils import cli

EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp')


def list_inputs(path):
  """The image files of `path` (a file or a folder), sorted; a clear error when there are none."""
  path = os.path.expanduser(path)
  if os.path.isfile(path):
    return [path]
  if not os.path.isdir(path):
    raise FileNotFoundError(f'--input {path!r} does not exist.')
  files = sorted(os.path.join(path, f) for f in os.listdir(path)
                 if f.lower().endswith(EXTENSIONS))
  if not files:
    raise ValueError(f'--input {path!r} holds no image ({", ".join(EXTENSIONS)}).')
  return files


def load_image(path, size):
  """RGB float32 [size, size, 3] in [-1, 1]: alpha over white, centre square, bicubic resize."""
  try:
    with Image.open(path) as im:
      im.load()
      if im.mode in ('RGBA', 'LA', 'P'):
        im = im.convert('RGBA')
        white = Image.new('RGBA', im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
      im = im.convert('RGB')
  except (OSError, SyntaxError) as e:
    raise ValueError(f'{path}: not a readable image ({e}).') from e
  w, h = im.size
  side = min(w, h)
  left, top = (w - side) // 2, (h - side) // 2
  im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
  return np.asarray(im, np.float32) / 127.5 - 1.0


def translate_files(workdir, files, out_dir, *, direction='anime->real', batch_size=16,
                    angle_deg=0.0):
  """Writes the translation of every file to `out_dir`; returns the written paths."""
  import jax  # pylint: disable=g-import-not-at-top
  from animojax import export  # pylint: disable=g-import-not-at-top
  from animojax.trainers.translate import common  # pylint: disable=g-import-not-at-top
  from animojax.trainers.translate import evaluation  # pylint: disable=g-import-not-at-top
  from animojax.utils import images  # pylint: disable=g-import-not-at-top
  from animojax.utils import sharding  # pylint: disable=g-import-not-at-top

  common.split_direction(direction)  # A clear error for a bad direction.
  if batch_size < 1:
    raise ValueError(f'--batch_size must be >= 1, got {batch_size}.')
  if export.read_config(workdir).trainer != 'translate':
    raise ValueError(f'{workdir!r} is not a translation run (config.trainer is not '
                     "'translate').")
  config, _, params = export.restore_latest(workdir, 'raw')
  mesh = sharding.make_mesh([('data', 1)], jax.local_devices()[:1])
  params = jax.device_put(params, sharding.replicated(mesh))
  translate = evaluation.make_translate_fn(config, sharding.replicated(mesh))
  size = config.data.image_size
  angle = angle_deg / common.ANGLE_SCALE_DEG
  os.makedirs(out_dir, exist_ok=True)
  written = []
  for start in range(0, len(files), batch_size):
    chunk = files[start:start + batch_size]
    batch = np.stack([load_image(f, size) for f in chunk])
    padded = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(chunk), axis=0)])
    angles = (np.full((batch_size,), angle, np.float32) if config.method == 'cyclegan_angle'
              else None)
    out = images.to_uint8(translate(params, padded, direction, angles)[:len(chunk)])
    for f, image in zip(chunk, out):
      path = os.path.join(out_dir, os.path.splitext(os.path.basename(f))[0] + '.png')
      Image.fromarray(image).save(path)
      written.append(path)
  return written


def main(argv):
  del argv
  from animojax.utils import logs  # pylint: disable=g-import-not-at-top
  logs.quiet_library_logs()
  with cli.user_errors('translate'):  # One line naming the input (exit 1); bugs keep tracebacks.
    files = list_inputs(FLAGS.input)
    written = translate_files(FLAGS.workdir, files, FLAGS.out, direction=FLAGS.direction,
                              batch_size=FLAGS.batch_size, angle_deg=FLAGS.angle)
  print(f'Wrote {len(written)} translations ({FLAGS.direction}) to {FLAGS.out}.')


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'Training workdir of a translation run.')
  flags.DEFINE_string('input', None, 'An image or a folder of images.')
  flags.DEFINE_string('out', None, 'Output folder.')
  flags.DEFINE_string('direction', 'anime->real', "'anime->real' or 'real->anime'.")
  flags.DEFINE_integer('batch_size', 16, 'Images per jitted call (the last batch is padded).')
  flags.DEFINE_float('angle', 0.0, 'cyclegan_angle only: in-plane angle in degrees.')
  flags.mark_flags_as_required(['workdir', 'input', 'out'])
  app.run(main)

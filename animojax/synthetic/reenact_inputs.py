r"""Inputs for trying `python -m animojax.reenact` with nothing downloaded but the capture weights.

  python -m animojax.synthetic.reenact_inputs --source_out=/tmp/character.png \
      [--driving_out=/tmp/synthetic_driving.mp4] [--identity=0] [--config=anime_64]

`--source_out`: a test-split character of the synthetic demo data (never seen in training),
neutral and frontal, rendered at 256² with its transparency (RGBA PNG), as a source image.
`--driving_out`: a synthetic *human* video (25 fps, 256², 4 s) rendered by the synthetic data's
human renderer: a test-split person turns the head left and right, nods, opens the mouth, closes
the eyes and raises the brows. It is a stand-in for a real video only where a real one cannot be
shipped (the README's picture); the capture treats it like any video (face detection, 3DDFA_V2,
fit), it does not read its hidden coefficients.
"""

import dataclasses

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from animojax.face3d import semantics
from animojax.synthetic import dataset

FPS = 25
SECONDS = 4
SIZE = 256


def source_character(config: str = 'anime_64', identity: int = 0) -> np.ndarray:
  """RGBA uint8 [256, 256, 4] of test character `identity` (0-based within the test split)."""
  cfg = dataclasses.replace(dataset.get_config(config), image_size=SIZE)
  character = cfg.identities('test')[identity]
  out = dataset.render_uint8(cfg, character, np.zeros((1, semantics.NUM_SEMANTICS), np.float32))
  return np.concatenate([out['image'][0], out['alpha'][0]], axis=-1)


def driving_semantics(frames: int = FPS * SECONDS) -> np.ndarray:
  """Semantic vectors [frames, 20]: smooth head turns, a nod and a few expressions."""
  t = np.linspace(0.0, 1.0, frames, dtype=np.float32)
  out = np.zeros((frames, semantics.NUM_SEMANTICS), np.float32)
  out[:, semantics.ANGLE_SLICE.start + 1] = 18.0 * np.sin(2 * np.pi * t)  # Yaw.
  out[:, semantics.ANGLE_SLICE.start] = 8.0 * np.sin(4 * np.pi * t)  # Pitch.
  bump = lambda centre, width: np.exp(-0.5 * ((t - centre) / width) ** 2)
  out[:, semantics.morph_index('mouth_a')] = bump(0.3, 0.08)
  out[:, semantics.morph_index('mouth_o')] = bump(0.75, 0.06)
  for side in ('left', 'right'):
    out[:, semantics.morph_index(f'eye_closed_{side}')] = bump(0.5, 0.03)
    out[:, semantics.morph_index(f'brow_raised_{side}')] = bump(0.9, 0.05)
  return out


def driving_frames(config: str = 'human_64', identity: int = 0) -> np.ndarray:
  cfg = dataclasses.replace(dataset.get_config(config), image_size=SIZE)
  return dataset.render_uint8(cfg, cfg.identities('test')[identity], driving_semantics())['image']


def write_video(path: str, frames: np.ndarray, fps: int = FPS) -> None:
  from animojax import reenact  # pylint: disable=g-import-not-at-top  # (imports jax)
  writer = reenact.Writer(path, None, fps)
  for frame in frames:
    writer.add(frame)
  writer.close()


def main(argv):
  del argv
  if not FLAGS.source_out and not FLAGS.driving_out:
    raise app.UsageError('give --source_out and/or --driving_out.')
  if FLAGS.source_out:
    Image.fromarray(source_character(FLAGS.config, FLAGS.identity)).save(FLAGS.source_out)
    print(f'Wrote {FLAGS.source_out}')
  if FLAGS.driving_out:
    human = FLAGS.config.replace('anime', 'human')
    write_video(FLAGS.driving_out, driving_frames(human, FLAGS.identity))
    print(f'Wrote {FLAGS.driving_out}')


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_string('source_out', None, 'Write the character (RGBA PNG) here.')
  flags.DEFINE_string('driving_out', None, 'Write the synthetic human video (mp4) here.')
  flags.DEFINE_integer('identity', 0, 'Test-split identity (0-based).')
  flags.DEFINE_string('config', 'anime_64', 'Synthetic config of the trained model (its seed).')
  app.run(main)

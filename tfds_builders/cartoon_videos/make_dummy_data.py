"""Writes `dummy_data/`: three tiny cartoon "videos" rendered by `animojax.synthetic`.

Nothing comes from a real cartoon: the synthetic anime renderer draws two characters turning
their heads. One clip is an .mp4, one a .mov (both 40 x 24, not square, to exercise cropping), and
one a folder of PNG frames; `test_list.txt` / `train_list.txt` assign them.

  python -m tfds_builders.cartoon_videos.make_dummy_data [--out DIR]
"""

import argparse
import os

import numpy as np
import PIL.Image

from animojax.synthetic import anime
from animojax.synthetic import identities
from animojax.synthetic import semantics

FRAMES = 4
VIDEOS = {'show_a/ep1.mp4': 0, 'show_a/ep2.mov': 1, 'show_b/clip3': 2}
TEST = ('show_b/clip3',)


def frames(identity, width=40, height=24):
  """uint8 [F, height, width, 3]: a character turning its head, letterboxed on white."""
  semantic = np.zeros((FRAMES, semantics.NUM_SEMANTICS), np.float32)
  semantic[:, semantics.ANGLE_SLICE.start + 1] = np.linspace(-15, 15, FRAMES)  # yaw
  rgb, _ = anime.render_anime(identities.anime_character(7, identity), semantic, height)
  out = np.full((FRAMES, height, width, 3), 255, np.uint8)
  left = (width - height) // 2
  out[:, :, left:left + height] = rgb
  return out


def main(argv=None):
  # pylint: disable-next=g-import-not-at-top
  from tfds_builders.voxceleb_3dmm import make_dummy_data as vox
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'dummy_data'))
  out = parser.parse_args(argv).out
  for name, identity in VIDEOS.items():
    clip = frames(identity)
    if name.endswith(('.mp4', '.mov')):
      vox.write_mp4(os.path.join(out, name), clip)
    else:
      os.makedirs(os.path.join(out, name), exist_ok=True)
      for i, frame in enumerate(clip):
        PIL.Image.fromarray(frame).save(os.path.join(out, name, f'{i:05d}.png'), optimize=True)
  with open(os.path.join(out, 'test_list.txt'), 'w') as f:
    f.write(''.join(f'{n}\n' for n in TEST))
  with open(os.path.join(out, 'train_list.txt'), 'w') as f:
    f.write(''.join(f'{n}\n' for n in VIDEOS if n not in TEST))


if __name__ == '__main__':
  main()

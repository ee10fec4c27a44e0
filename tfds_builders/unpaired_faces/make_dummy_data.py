"""Writes `dummy_data/`: a tiny CycleGAN-layout folder of synthetic anime (A) and human (B) faces.

Nothing comes from a real dataset: `animojax.synthetic` renders the faces. Domain A images are
RGBA and not square (24 x 32), to exercise compositing and cropping; some domain B images carry
68 made-up landmarks in each supported format (.pts, .txt, .npy), one has none.

  python -m tfds_builders.unpaired_faces.make_dummy_data [--out DIR]
"""

import argparse
import os

import numpy as np
import PIL.Image

from animojax.synthetic import anime
from animojax.synthetic import dataset
from animojax.synthetic import identities
from animojax.synthetic import semantics

FOLDERS = {'trainA': 3, 'trainB': 3, 'testA': 1, 'testB': 1}
# trainB/testB image index -> landmark file format (others have none).
LANDMARKS = {('trainB', 0): '.pts', ('trainB', 1): '.txt', ('testB', 0): '.npy'}


def landmarks(seed: int) -> np.ndarray:
  """68 made-up (x, y) points inside a 32 x 32 image."""
  return np.random.default_rng(seed).uniform(4, 28, (68, 2)).astype(np.float32)


def _write_landmarks(path, points):
  if path.endswith('.npy'):
    np.save(path, points)
  elif path.endswith('.pts'):
    body = ''.join(f'{x:.3f} {y:.3f}\n' for x, y in points)
    with open(path, 'w') as f:
      f.write(f'version: 1\nn_points: {len(points)}\n{{\n{body}}}\n')
  else:
    np.savetxt(path, points, fmt='%.3f')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'dummy_data'))
  out = parser.parse_args(argv).out
  human = dataset.SyntheticConfig('human', 32, 4, 1, 1, seed=9)
  for folder, count in FOLDERS.items():
    os.makedirs(os.path.join(out, folder), exist_ok=True)
    for i in range(count):
      stem = os.path.join(out, folder, f'{folder.lower()}_{i}')
      if folder.endswith('A'):
        rgb, alpha = anime.render_anime(identities.anime_character(11, i + 4 * (folder[1] == 'e')),
                                        np.zeros((1, semantics.NUM_SEMANTICS), np.float32), 32)
        rgba = np.concatenate([rgb[0], alpha[0]], axis=-1)[4:28]  # 24 rows x 32 columns.
        PIL.Image.fromarray(rgba, 'RGBA').save(stem + '.png', optimize=True)
      else:
        identity = i + 3 * (folder == 'testB')
        image = dataset.render_uint8(human, identity, dataset.frame_semantics(human, identity))
        PIL.Image.fromarray(image['image'][0]).save(stem + '.jpg', quality=90)
        fmt = LANDMARKS.get((folder, i))
        if fmt:
          _write_landmarks(stem + fmt, landmarks(identity))


if __name__ == '__main__':
  main()

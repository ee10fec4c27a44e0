"""Writes `dummy_data/`: a tiny AnimeCeleb-shaped download rendered by `animojax.synthetic`.

Nothing here comes from the real dataset: the characters are the synthetic anime renderer's, the
identity ids are chosen to sit in the authors' split lists (0, 1, 2 train; 9 test) plus one in
neither (17), and the lists name only these five ids. Layout as released: combined_pose.csv,
rotation/<folder:05d>/<png_name>, expression/..., basis/<folder:05d>/basis.png.

  python -m tfds_builders.animeceleb.make_dummy_data [--out DIR]
"""

import argparse
import os

import numpy as np
import PIL.Image

from animojax.synthetic import anime
from animojax.synthetic import identities
from animojax.synthetic import semantics

TRAIN_IDS, TEST_IDS, UNLISTED_IDS = (0, 1, 2), (9,), (17,)
ROWS_PER_ID = 3
SIZE = 32
SEED = 3
HEADER = (['org_id', 'folder_name', 'png_name'] + [f'morph_{i}' for i in range(17)]
          + ['angle_0', 'angle_1', 'angle_2'])


def folder_of(org_id: int) -> int:
  return 100 + org_id  # A folder (cluster) id different from org_id, as in the release.


def _save_rgba(path, rgb, alpha):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  PIL.Image.fromarray(np.concatenate([rgb, alpha], axis=-1), 'RGBA').save(path, optimize=True)


def write(out: str) -> None:
  rng = np.random.default_rng(SEED)
  rows = []
  for org_id in TRAIN_IDS + TEST_IDS + UNLISTED_IDS:
    character = identities.anime_character(SEED, org_id)
    semantic = semantics.sample_semantics(rng, ROWS_PER_ID)
    frontal = semantic.copy()
    frontal[:, semantics.ANGLE_SLICE] = 0.0
    neutral = np.zeros((1, semantics.NUM_SEMANTICS), np.float32)
    rotated = anime.render_anime(character, semantic, SIZE)
    expression = anime.render_anime(character, frontal, SIZE)
    basis = anime.render_anime(character, neutral, SIZE)
    folder = f'{folder_of(org_id):05d}'
    pose = semantics.semantic_to_anime_pose(semantic)  # Angles in CSV order.
    for k in range(ROWS_PER_ID):
      png = f'char{org_id}_{k:03d}.png'
      _save_rgba(os.path.join(out, 'rotation', folder, png), rotated[0][k], rotated[1][k])
      _save_rgba(os.path.join(out, 'expression', folder, png), expression[0][k],
                 expression[1][k])
      rows.append([str(org_id), str(folder_of(org_id)), png] + [f'{v:.6f}' for v in pose[k]])
    _save_rgba(os.path.join(out, 'basis', folder, 'basis.png'), basis[0][0], basis[1][0])
  with open(os.path.join(out, 'combined_pose.csv'), 'w') as f:
    f.write('\n'.join(','.join(r) for r in [HEADER] + rows) + '\n')
  for name, ids in (('train_list.txt', TRAIN_IDS), ('test_list.txt', TEST_IDS)):
    with open(os.path.join(out, name), 'w') as f:
      f.write(''.join(f'{i}\n' for i in ids))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'dummy_data'))
  write(parser.parse_args(argv).out)


if __name__ == '__main__':
  main()

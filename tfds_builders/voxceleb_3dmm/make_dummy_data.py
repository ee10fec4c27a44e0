"""Writes `dummy_data/`: tiny VoxCeleb-shaped downloads rendered by `animojax.synthetic`.

Nothing comes from VoxCeleb. Frames are the synthetic human renderer's (32 x 32), and their
Deep3DFaceRecon coefficients are the ones they were rendered from; DECA files hold made-up
values of the right shapes. Layouts written:

  deep3d/  folders layout, every Deep3DFaceRecon file flavour: images/{train,test}/<video>/
           frames + 3dmm/.../<frame>.mat (PyTorch split keys, or TF `coeff` + transform_params),
           and an .mp4 video with PIRender's per-video 3dmm/train/<video>.mat (N x 257).
  deca/    folders layout with DECA .mat files (shape, exp, pose, cam).
  `write_lmdb(out)` writes PIRender's LMDB layout (tests call it; it is not committed).

  python -m tfds_builders.voxceleb_3dmm.make_dummy_data [--out DIR]
"""

import argparse
import io
import os

import numpy as np
import PIL.Image
import scipy.io

from animojax.synthetic import dataset

SIZE = 32
FRAMES = 3
# (split, video name, synthetic identity, Deep3D file flavour)
DEEP3D_VIDEOS = (
    ('train', 'id00001#vidA#000001#000004.mp4', 0, 'split_keys'),
    ('train', 'id00001#vidB#000002#000005.mp4', 0, 'coeff'),
    ('train', 'id00002#vidC#000003#000006.mp4', 1, 'per_video_mp4'),
    ('test', 'id00003#vidD#000004#000007.mp4', 2, 'split_keys'),
)
DECA_VIDEOS = (('train', 'id00001#vidA#000001#000004.mp4', 0),
               ('train', 'id00002#vidC#000003#000006.mp4', 1),
               ('test', 'id00003#vidD#000004#000007.mp4', 2))
LMDB_VIDEOS = (('train', 'id00001#vidA#1#4', 0), ('train', 'id00002#vidC#3#6', 1),
               ('test', 'id00003#vidD#4#7', 2))
_CONFIG = dataset.SyntheticConfig('human', SIZE, 3, 1, FRAMES, seed=5)


def render(identity):
  """(uint8 frames [F, S, S, 3], Deep3D coeff float32 [F, 257], transform_params [F, 5])."""
  out = dataset.render_uint8(_CONFIG, identity, dataset.frame_semantics(_CONFIG, identity),
                             dataset.frame_trans(_CONFIG, identity))
  params = np.tile(np.array([[256, 256, 1.02, 128.5, 127.0]], np.float32), (FRAMES, 1))
  params[:, 2] += 0.01 * np.arange(FRAMES)
  return out['image'], out['coeff'], params


def deca_values(identity):
  """Plausible DECA entries (shape, exp, pose, cam) per frame, float32."""
  rng = np.random.default_rng(identity)
  shape = np.tile(rng.normal(0, 0.5, (1, 100)), (FRAMES, 1))
  exp = rng.normal(0, 0.6, (FRAMES, 50))
  pose = np.concatenate([rng.normal(0, 0.15, (FRAMES, 3)), np.abs(rng.normal(0, 0.05,
                                                                            (FRAMES, 3)))], 1)
  cam = np.concatenate([rng.uniform(8, 10, (FRAMES, 1)), rng.normal(0, 0.02, (FRAMES, 2))], 1)
  return {k: v.astype(np.float32) for k, v in
          dict(shape=shape, exp=exp, pose=pose, cam=cam).items()}


def _save_png(path, image):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  PIL.Image.fromarray(image).save(path, optimize=True)


def _save_mat(path, entries):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  scipy.io.savemat(path, entries)


def write_mp4(path, frames, fps=25):
  import av  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with av.open(path, 'w') as container:
    stream = container.add_stream('mpeg4', rate=fps)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = 'yuv420p'
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def _split_keys(coeff):
  names = (('id', 80), ('exp', 64), ('tex', 80), ('angle', 3), ('gamma', 27), ('trans', 3))
  out, start = {}, 0
  for name, n in names:
    out[name] = coeff[None, start:start + n]
    start += n
  return out


def write_deep3d(out):
  for split, name, identity, flavour in DEEP3D_VIDEOS:
    frames, coeff, params = render(identity)
    if flavour == 'per_video_mp4':
      write_mp4(os.path.join(out, 'images', split, name), frames)
      _save_mat(os.path.join(out, '3dmm', split, name[:-4] + '.mat'),
                {'coeff': coeff, 'transform_params': params})
      continue
    for f in range(FRAMES):
      _save_png(os.path.join(out, 'images', split, name, f'{f:07d}.png'), frames[f])
      entries = (_split_keys(coeff[f]) if flavour == 'split_keys' else
                 {'coeff': coeff[f][None], 'transform_params': params[f][None]})
      _save_mat(os.path.join(out, '3dmm', split, name, f'{f:07d}.mat'), entries)


def write_deca(out):
  for split, name, identity in DECA_VIDEOS:
    frames, _, _ = render(identity)
    values = deca_values(identity)
    for f in range(FRAMES):
      _save_png(os.path.join(out, 'images', split, name, f'{f:07d}.png'), frames[f])
      _save_mat(os.path.join(out, '3dmm', split, name, f'{f:07d}.mat'),
                {k: v[f][None] for k, v in values.items()})


def write_lmdb(out, size=SIZE):
  """PIRender's prepare_vox_lmdb.py layout: <out>/<size>/data.mdb and <out>/{train,test}_list.txt.

  Returns {video: (coeff_3dmm float32 [F, 260], frames uint8 [F, S, S, 3])} as stored.
  """
  import lmdb  # pylint: disable=g-import-not-at-top

  def key(*parts):
    return '-'.join(f'{p:07d}' if isinstance(p, int) else p for p in parts).encode('utf-8')

  stored = {}
  os.makedirs(os.path.join(out, str(size)), exist_ok=True)
  with lmdb.open(os.path.join(out, str(size)), map_size=1 << 24) as env:
    with env.begin(write=True) as txn:
      txn.put(key('length'), key(len(LMDB_VIDEOS)))
      for _, name, identity in LMDB_VIDEOS:
        frames, coeff, params = render(identity)
        table = np.concatenate([coeff, params[:, 2:5]], axis=1).astype(np.float32)
        txn.put(key(name, 'length'), key(FRAMES))
        for f in range(FRAMES):
          buf = io.BytesIO()
          PIL.Image.fromarray(frames[f]).save(buf, format='jpeg')
          txn.put(key(name, f), buf.getvalue())
        txn.put(key(name, 'coeff_3dmm'), table.tobytes())
        stored[name] = (table, frames)
  for split in ('train', 'test'):
    with open(os.path.join(out, f'{split}_list.txt'), 'w') as f:
      f.write(''.join(f'{n}\n' for s, n, _ in LMDB_VIDEOS if s == split))
  return stored


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'dummy_data'))
  out = parser.parse_args(argv).out
  write_deep3d(os.path.join(out, 'deep3d'))
  write_deca(os.path.join(out, 'deca'))


if __name__ == '__main__':
  main()

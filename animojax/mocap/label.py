r"""Labels raw face videos with 3DMM coefficients by this package's capture, for `voxceleb_3dmm`.

  python -m animojax.mocap.label --images=vox/images --out=vox/3dmm \
      [--bfm=BFM/BFM_model_front.mat] [--tddfa_weights=~/.cache/animojax/tddfa_v2.npz]

Every video below `--images` (video files or frame folders, found as the `voxceleb_3dmm` builder
finds them) gets `<out>/<its path without extension>.mat` holding `coeff` (N x 257, float32,
Deep3DFaceRecon's layout; one row per frame) -- the per-video file of the builder's folders layout
(`tfds_builders/voxceleb_3dmm/README.md`, layout (b)), so `voxceleb_3dmm/deep3d_256` then builds
from raw videos with no external tool. Only the motion blocks are filled: `exp` (the least-squares
fit of `animojax.mocap.motion` into Deep3DFaceRecon's BFM given `--bfm`, else into the embedded
model of the synthetic data), `angle` and `trans` (relative to the video's first face); `id`,
`tex` and `gamma` are zeros (AniMo reads only exp | angle | trans). A `no_face` entry lists the
frames without a face (they repeat the last face's motion). Videos without any face get no file,
and are reported; the builder then stops on them, or skips them with `skip_bad_examples`.

Deviation from the paper's data: AniMo trains on Deep3DFaceRecon's own regression, not on a fit
of 3DDFA_V2's landmarks; models trained on either read the same 70-D layout. With `--bfm`, Φ is
AniMo's released `pose_coeffs.npy`; without it, the embedded model's `config.data.phi='synthetic'`.
"""

import os

from absl import app
from absl import flags
import numpy as np
import scipy.io
import tqdm

from animojax.data import building
from animojax.data import video as video_lib
from animojax.face3d import layouts
from animojax.mocap import capture as capture_lib
from animojax.mocap import motion as motion_lib
from animojax.utils import cli


def labelling_tools(tddfa_weights: str | None = None, bfm: str | None = None):
  """(capturer, fitter): 3DDFA_V2's capture (`tddfa_weights`, default: the cache) and the fit of
  its expression into Deep3DFaceRecon's BFM (`bfm`: BFM_model_front.mat) or the embedded model."""
  capturer = capture_lib.Capturer(tddfa_weights or None)
  return capturer, motion_lib.make_fitter(f'bfm:{bfm}' if bfm else 'embedded', capturer.weights)


def label_video(path: str, capturer, fitter, batch: int = 32) -> dict[str, np.ndarray]:
  """{'coeff' [N, 257], 'no_face' [M]} of one video; raises ValueError when no frame has a face."""
  frames = []
  try:
    for item in video_lib.iter_frames(path):
      if isinstance(item, building.BadExampleError):  # Rows must stay aligned with frames.
        raise item
      frames.append(np.asarray(item[2]))
  except building.BadExampleError as e:
    raise ValueError(str(e)) from None
  if not frames:
    raise ValueError(f'{path}: no readable frames.')
  parts = []
  for start in range(0, len(frames), batch):
    chunk = frames[start:start + batch]
    n = len(chunk)
    chunk = chunk + [chunk[-1]] * (batch - n)  # One compiled batch size.
    parts.append({k: v[:n] for k, v in capturer(np.stack(chunk)).items()})
  captured = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  try:
    fitted = fitter(captured)
  except ValueError as e:
    raise ValueError(f'{path}: {e}') from None
  k = fitter.model.num_exp
  motion = fitted['motion']
  coeff = np.zeros((len(motion), layouts.DEEP3D.dim), np.float32)
  s = layouts.DEEP3D.slices
  coeff[:, s['exp']] = motion[:, :k]
  coeff[:, s['angle']] = motion[:, k:k + 3]
  coeff[:, s['trans']] = motion[:, k + 3:k + 6]
  return {'coeff': coeff, 'no_face': np.nonzero(~fitted['found'])[0].astype(np.int32)}


def label_tree(images: str, out: str, capturer, fitter, batch: int = 32) -> dict[str, list]:
  """Labels every video below `images`; returns {'written': [...], 'no_face': [...]}."""
  videos = video_lib.find_videos(images)
  if not videos:
    raise ValueError(f'--images {images!r}: no videos (video files or frame folders) found.')
  if fitter.model.num_exp != 64:
    raise ValueError('Deep3DFaceRecon coefficients need a 64-mode expression basis (the BFM or '
                     f'the embedded model), got {fitter.model.num_exp}.')
  report = {'written': [], 'no_face': []}  # 'no_face': videos without any face (or unreadable).
  for name in tqdm.tqdm(videos, desc='label', unit='video'):
    try:
      label = label_video(os.path.join(images, name), capturer, fitter, batch)
    except ValueError as e:
      report['no_face'].append(str(e))
      continue
    target = os.path.join(out, video_stem(name) + '.mat')
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + '.tmp.mat'
    scipy.io.savemat(tmp, label)
    os.replace(tmp, target)
    report['written'].append(target)
  return report


def video_stem(name: str) -> str:
  """A video's path without its video extension (frame folders keep their name)."""
  root, ext = os.path.splitext(name)
  return root if ext.lower() in video_lib.VIDEO_EXTENSIONS else name


def main(argv):
  del argv
  with cli.user_errors('label'):  # One line naming the input (exit 1); bugs keep tracebacks.
    capturer, fitter = labelling_tools(FLAGS.tddfa_weights, FLAGS.bfm)
    report = label_tree(FLAGS.images, FLAGS.out, capturer, fitter, FLAGS.batch)
  spec = f'bfm:{FLAGS.bfm}' if FLAGS.bfm else 'embedded'
  print(f'Wrote {len(report["written"])} coefficient files to {FLAGS.out} ({spec} expression).')
  for problem in report['no_face']:
    print(f'  skipped: {problem}')


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_string('images', None, 'Folder of videos / frame folders (e.g. vox/images).')
  flags.DEFINE_string('out', None, 'Coefficient folder to write (e.g. vox/3dmm).')
  flags.DEFINE_string('bfm', None, "Deep3DFaceRecon's BFM_model_front.mat (default: embedded).")
  flags.DEFINE_string('tddfa_weights', None, 'Converted 3DDFA_V2 bundle (default: the cache).')
  flags.DEFINE_integer('batch', 32, 'Frames per capture call.')
  flags.mark_flags_as_required(['images', 'out'])
  app.run(main)

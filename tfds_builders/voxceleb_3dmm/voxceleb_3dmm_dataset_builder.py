"""TFDS builder of `voxceleb_3dmm`: face-cropped VoxCeleb videos with per-frame 3DMM coefficients.

Two source layouts (see README.md):

* **lmdb**: PIRender's `prepare_vox_lmdb.py` output (`<out>/<size>/data.mdb` with keys `length`,
  `<video>-length`, `<video>-<frame:07d>` (JPEG), `<video>-coeff_3dmm` (float32 N x 260 =
  Deep3DFaceRecon 257 + 3 crop parameters); `<out>/train_list.txt`, `test_list.txt`).
* **folders** (AniMo's / FOMM's): `images/<split>/<video>/<frame>.png|jpg` or
  `images/<split>/<video>.mp4`, with `3dmm/<split>/<video>/<frame>.mat` per frame
  (Deep3DFaceRecon `coeff` or `id/exp/tex/angle/gamma/trans` (+ `transform_params`), or DECA
  `shape/exp/pose` (+ `cam`)) or, for Deep3DFaceRecon, `3dmm/<split>/<video stem>.mat` per video
  (PIRender's `face_recon_videos.py`: `coeff` N x 257, `transform_params` N x 5).

One example per frame: the image (S x S), the 3DMM vector in a documented layout
(`animojax.data.coeffs`), person id, video and frame. Examples are sorted by person, video,
frame (`disable_shuffling`), so that same-video pairs are cheap to read.
"""

import dataclasses
import functools
import os
import re
from typing import Any

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from animojax.data import building
from animojax.data import coeffs
from animojax.data import video as video_lib

LAYOUTS = ('auto', 'lmdb', 'folders')
COEFFS_HINT = ('Extract them with Deep3DFaceRecon (PIRender\'s face_recon_videos.py writes '
               '3dmm/<split>/<video>.mat) or DECA (one .mat per frame): see "Download and '
               'prepare" in tfds_builders/voxceleb_3dmm/README.md.')
SPLITS = ('train', 'test')


@dataclasses.dataclass(kw_only=True)
class VoxCelebConfig(tfds.core.BuilderConfig):
  """How to read the download (all fields can be set through a JSON `--config`).

  Attributes:
    coeff_format: 'deep3d' (Deep3DFaceRecon, 257-D) or 'deca' (DECA/FLAME, 156-D).
    image_size: output size S (frames are centre-cropped to a square and resized if needed).
    layout: 'auto', 'lmdb' or 'folders'.
    images_dir, coeffs_dir: the two trees of the folders layout, below the manual dir.
    frame_stride: keep every n-th frame of each video.
    max_frames_per_video: keep at most this many frames per video (0: all).
    skip_bad_examples: skip and count bad frames / videos instead of failing.
    capture: label the raw videos while building, with this package's motion capture
      (FaceBoxes + 3DDFA_V2, then a least-squares fit: `animojax.mocap.label`), instead of
      reading coefficient files (folders layout, `images/` only; Deep3DFaceRecon layout with
      exp | angle | trans filled, zeros elsewhere, crop NaN).
    capture_bfm: with `capture`, Deep3DFaceRecon's `BFM_model_front.mat` to fit the expression
      into (train with AniMo's `pose_coeffs.npy`); '' fits the embedded model of the synthetic
      data (train with `config.data.phi='synthetic'`).
    tddfa_weights: with `capture`, the converted 3DDFA_V2 bundle ('' = the cache, see
      `python -m animojax.convert.fetch tddfa_v2`).
  """
  coeff_format: str = 'deep3d'
  image_size: int = 256
  layout: str = 'auto'
  images_dir: str = 'images'
  coeffs_dir: str = '3dmm'
  frame_stride: int = 1
  max_frames_per_video: int = 0
  skip_bad_examples: bool = False
  capture: bool = False
  capture_bfm: str = ''
  tddfa_weights: str = ''

  def __post_init__(self):
    if self.coeff_format not in coeffs.FORMATS:
      raise ValueError(f'coeff_format must be one of {coeffs.FORMATS}, got {self.coeff_format!r}.')
    if self.layout not in LAYOUTS:
      raise ValueError(f'layout must be one of {LAYOUTS}, got {self.layout!r}.')
    if self.frame_stride < 1 or self.max_frames_per_video < 0:
      raise ValueError('frame_stride must be >= 1 and max_frames_per_video >= 0.')
    if self.capture and (self.coeff_format != 'deep3d' or self.layout == 'lmdb'):
      raise ValueError("capture writes Deep3DFaceRecon coefficients from raw videos: it needs "
                       "coeff_format='deep3d' and the folders layout.")


def _config(fmt, size):
  what = {'deep3d': 'Deep3DFaceRecon 257-D (PIRender LMDB or folders)',
          'deca': 'DECA shape|exp|pose 156-D (folders)'}[fmt]
  return VoxCelebConfig(name=f'{fmt}_{size}', coeff_format=fmt, image_size=size,
                        description=f'VoxCeleb frames at {size}x{size} with {what}.')


def _capture_config(size):
  return VoxCelebConfig(
      name=f'capture_{size}', coeff_format='deep3d', image_size=size, capture=True,
      description=f'VoxCeleb frames at {size}x{size} from raw videos, labelled while building '
      'by this package\'s motion capture (Deep3DFaceRecon layout: exp | angle | trans, the '
      'expression fitted into the embedded model unless capture_bfm is set).')


def person_of(video: str) -> str:
  """The person id of a video name: before the first '#' (FOMM / PIRender names such as
  'id10001#7w0IBEWc9Qw#000993#001143.mp4'), else its first path component (VoxCeleb's own
  'id10001/7w0IBEWc9Qw/00001.mp4'), else the name itself."""
  base = video.split('/')[-1]
  if '#' in base:
    return base.split('#')[0]
  return video.split('/')[0] if '/' in video else re.sub(r'\.[A-Za-z0-9]+$', '', base)


def _stem(path: str) -> str:
  return re.sub(r'\.(mp4|mov|mkv|avi|webm|m4v)$', '', path, flags=re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class _Video:
  split: str
  name: str  # Relative to the split folder (folders) or the LMDB video name.
  person: str
  rank: int  # Global position in (person, name) order: the `video_index` feature.
  identity: int
  source: str  # The split's image folder (folders) or the LMDB folder.


@dataclasses.dataclass(frozen=True)
class _Context:
  layout: str
  coeff_format: str
  image_size: int
  frame_stride: int
  max_frames: int | None
  num_videos: int
  coeff_root: Any = None  # The coefficient tree of the split folders (folders layout).
  capture: tuple[str, str] | None = None  # (tddfa_weights, capture_bfm) when labelling.


@functools.lru_cache(maxsize=4)
def _lmdb_env(path: str):
  import lmdb  # pylint: disable=g-import-not-at-top  # Only the LMDB layout needs it.
  try:
    return lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False,
                     max_readers=64)
  except lmdb.Error as e:  # A zero-byte, truncated or foreign data.mdb.
    raise building.BadExampleError(
        os.path.join(path, 'data.mdb'), f'cannot open the LMDB ({e}); copy it again from '
        'the output of PIRender\'s prepare_vox_lmdb.py') from e


def _lmdb_key(*parts) -> bytes:
  """PIRender's `format_for_lmdb`: parts joined by '-', integers zero-padded to 7 digits."""
  return '-'.join(f'{p:07d}' if isinstance(p, int) else p for p in parts).encode('utf-8')


def _example(ctx, vid: _Video, frame: int, image, coeff, extra, file_name):
  example = {'image': building.to_square(image, ctx.image_size), 'coeff': coeff,
             'identity': vid.identity, 'person': vid.person, 'video': vid.name,
             'video_index': vid.rank, 'frame': frame, 'file_name': file_name}
  example['crop' if ctx.coeff_format == 'deep3d' else 'cam'] = extra
  key = building.ordered_key(vid.rank, ctx.num_videos, frame)
  return key, example


def _lmdb_frames(vid: _Video, ctx: _Context):
  env = _lmdb_env(vid.source)
  where = f'{vid.source}:{vid.name}'
  with env.begin(write=False) as txn:
    length = txn.get(_lmdb_key(vid.name, 'length'))
    raw = txn.get(_lmdb_key(vid.name, 'coeff_3dmm'))
    if length is None:
      raise building.BadExampleError(where, f'no key {_lmdb_key(vid.name, "length")!r}')
    length = int(length.decode('utf-8'))
    if raw is None:
      raise building.BadExampleError(where, 'no `-coeff_3dmm` entry (the LMDB was prepared '
                                     'without --coeff_3dmm_path)')
    values = np.frombuffer(raw, np.float32)
    if length == 0 or values.size % length or values.size // length not in (257, 260):
      raise building.BadExampleError(
          where, f'coeff_3dmm holds {values.size} floats for {length} frames, expected '
          f'{length} x 260 (or x 257)')
    table = values.reshape(length, -1)
    frames = range(0, length, ctx.frame_stride)
    for frame in frames[:ctx.max_frames] if ctx.max_frames else frames:
      name = f'{where}-{frame:07d}'
      data = txn.get(_lmdb_key(vid.name, frame))
      try:
        if data is None:
          raise building.BadExampleError(name, 'frame missing from the LMDB')
        if not np.all(np.isfinite(table[frame])):
          raise building.BadExampleError(f'{where}-coeff_3dmm', f'row {frame} has NaN or Inf')
        crop = table[frame, 257:260] if table.shape[1] == 260 else np.full(3, np.nan, np.float32)
        image = building.open_image(name, data).convert('RGB')
        yield _example(ctx, vid, frame, image, table[frame, :257].copy(), crop.copy(),
                       f'{vid.name}-{frame:07d}')
      except building.BadExampleError as e:
        yield e


@functools.lru_cache(maxsize=2)
def _labelling_tools(tddfa_weights: str, bfm: str):
  """`mocap.label.labelling_tools`, made once per build process (their programs compile once)."""
  from animojax.mocap import label  # pylint: disable=g-import-not-at-top  # Capture configs only.
  return label.labelling_tools(tddfa_weights, bfm)


def _captured_reader(vid: _Video, ctx: _Context):
  """frame name -> (coeff, NaN crop) for a raw video, labelled by the motion capture (every
  frame of the video, whatever the stride: motion is relative to the video's first face)."""
  from animojax.mocap import label  # pylint: disable=g-import-not-at-top
  path = os.fspath(epath.Path(vid.source) / vid.name)
  try:
    table = label.label_video(path, *_labelling_tools(*ctx.capture))['coeff']
  except ValueError as e:  # No readable frame, or no face in any frame.
    raise building.BadExampleError(path, str(e).removeprefix(f'{path}: ')) from None
  no_crop = np.full(3, np.nan, np.float32)

  def per_video(name, index):
    del name
    return table[index], no_crop

  return per_video


def _coeff_reader(vid: _Video, ctx: _Context):
  """frame name -> (coeff, extra) for a video of the folders layout."""
  if ctx.capture:
    return _captured_reader(vid, ctx)
  base = epath.Path(ctx.coeff_root)
  folder = next((base / n for n in (vid.name, _stem(vid.name)) if (base / n).is_dir()), None)
  if folder is not None:
    read = coeffs.read_deca if ctx.coeff_format == 'deca' else coeffs.read_deep3d

    def per_frame(name, index):
      del index
      coeff, extra = read(folder / f'{name}.mat')
      return coeff.reshape(-1), extra.reshape(-1)

    return per_frame
  file = base / f'{_stem(vid.name)}.mat'
  if ctx.coeff_format == 'deep3d' and file.is_file():
    table, crops = coeffs.read_deep3d(file, rows=None)

    def per_video(name, index):
      del name
      if index >= len(table):
        raise building.BadExampleError(file, f'has {len(table)} rows, but the video has a '
                                       f'frame {index}')
      return table[index], crops[index]

    return per_video
  wanted = [os.fspath(base / vid.name) + '/<frame>.mat']
  if ctx.coeff_format == 'deep3d':
    wanted.append(os.fspath(file))
  raise building.BadExampleError(
      os.fspath(epath.Path(vid.source) / vid.name),
      f'no 3DMM coefficients for this video: expected {" or ".join(wanted)}. {COEFFS_HINT}')


def _folder_frames(vid: _Video, ctx: _Context):
  read_coeff = _coeff_reader(vid, ctx)
  path = epath.Path(vid.source) / vid.name
  for out in video_lib.iter_frames(path, stride=ctx.frame_stride, max_frames=ctx.max_frames):
    if isinstance(out, building.BadExampleError):
      yield out
      continue
    index, name, image = out
    try:
      coeff, extra = read_coeff(name, index)
      file_name = f'{vid.name}/{name}' if path.is_dir() else f'{vid.name}#{index}'
      yield _example(ctx, vid, index, image, coeff, extra, file_name)
    except building.BadExampleError as e:
      yield e


def _process(vid: _Video, ctx: _Context):
  if ctx.layout == 'lmdb':
    yield from _lmdb_frames(vid, ctx)
  else:
    yield from _folder_frames(vid, ctx)


def find_lmdb(manual_dir, image_size: int) -> epath.Path | None:
  """The LMDB folder (holding data.mdb): manual_dir itself or manual_dir/<size>/."""
  manual_dir = epath.Path(manual_dir)
  if (manual_dir / 'data.mdb').exists():
    return manual_dir
  sizes = sorted(int(p.name) for p in manual_dir.iterdir()
                 if p.name.isdigit() and (p / 'data.mdb').exists())
  if not sizes:
    return None
  return manual_dir / str(image_size if image_size in sizes else sizes[-1])


def lmdb_videos(lmdb_dir) -> list[str]:
  """The video names of a PIRender LMDB (its '<video>-length' keys)."""
  env = _lmdb_env(os.fspath(lmdb_dir))
  names = []
  with env.begin(write=False) as txn:
    for key in txn.cursor().iternext(keys=True, values=False):
      key = key.decode('utf-8')
      if key.endswith('-length'):
        names.append(key[:-len('-length')])
  return sorted(names)


def _list_keys(name):
  """What a split list may name a video by: its path, stem, base name or person id."""
  base = name.split('/')[-1]
  return {name, _stem(name), base, _stem(base), person_of(name)}


class Builder(building.BuilderMixin, tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for voxceleb_3dmm (manual download)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [_config('deep3d', 256), _config('deca', 256), _config('deep3d', 64),
                     _config('deca', 64), _capture_config(256), _capture_config(64)]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Prepare face-cropped VoxCeleb videos (FOMM video-preprocessing), extract 3DMM '
      'coefficients (Deep3DFaceRecon or DECA), and pass either PIRender\'s LMDB output folder '
      'or a folder with images/ and 3dmm/ trees as --manual_dir. See '
      'tfds_builders/voxceleb_3dmm/README.md.')
  disable_shuffling = True  # Sorted by person, video, frame.

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    size, fmt = config.image_size, config.coeff_format
    features = {
        'image': tfds.features.Image(shape=(size, size, 3)),
        'coeff': tfds.features.Tensor(shape=(coeffs.COEFF_DIMS[fmt],), dtype=np.float32),
        'identity': tfds.features.Scalar(dtype=np.int64),
        'person': tfds.features.Text(),
        'video': tfds.features.Text(),
        'video_index': tfds.features.Scalar(dtype=np.int64),
        'frame': tfds.features.Scalar(dtype=np.int64),
        'file_name': tfds.features.Text(),
    }
    features['crop' if fmt == 'deep3d' else 'cam'] = tfds.features.Tensor(shape=(3,),
                                                                         dtype=np.float32)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(features),
        supervised_keys=None,
        homepage='https://www.robots.ox.ac.uk/~vgg/data/voxceleb/',
        disable_shuffling=self.disable_shuffling,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    manual_dir = epath.Path(dl_manager.manual_dir)
    lmdb_dir = (find_lmdb(manual_dir, config.image_size)
                if config.layout != 'folders' and not config.capture else None)
    if config.layout == 'lmdb' and lmdb_dir is None:
      raise FileNotFoundError(f'No LMDB (data.mdb) in {os.fspath(manual_dir)} or its <size>/ '
                              'sub-folders (PIRender\'s prepare_vox_lmdb.py --out folder).')
    if lmdb_dir is not None:
      if config.coeff_format != 'deep3d':
        raise ValueError('PIRender\'s LMDB holds Deep3DFaceRecon coefficients: use a deep3d_* '
                         'config.')
      by_split, split_from = self._lmdb_splits(lmdb_dir, manual_dir)
      layout, sources = 'lmdb', {s: os.fspath(lmdb_dir) for s in by_split}
    else:
      by_split, split_from, sources = self._folder_splits(manual_dir)
      layout = 'folders'
    everything = sorted((person_of(v), v, s) for s, videos in by_split.items() for v in videos)
    if not everything:  # Else TFDS would "prepare" a dataset without splits.
      where = sorted({os.fspath(f) for f in sources.values()}) or [os.fspath(manual_dir)]
      raise FileNotFoundError(
          f'No videos found in {", ".join(where)}: expected video files '
          f'({", ".join(video_lib.VIDEO_EXTENSIONS)}) or folders of frames (one folder per '
          'video, holding its images) there.')
    persons = sorted({p for p, _, _ in everything})
    person_rank = {p: i for i, p in enumerate(persons)}
    videos = {s: [] for s in by_split}
    for rank, (person, name, split) in enumerate(everything):
      videos[split].append(_Video(split, name, person, rank, person_rank[person], sources[split]))
    self._record_metadata(
        coeff_layout=coeffs.layout(config.coeff_format), source_layout=layout,
        coeff_source=(('capture: ' + (f'BFM {config.capture_bfm}' if config.capture_bfm
                                      else 'embedded model')) if config.capture else 'files'),
        split_from=split_from, videos={s: len(v) for s, v in videos.items()},
        persons=len(persons))
    generators = {}
    for split, vids in videos.items():
      if not vids:
        continue  # TFDS cannot write empty splits.
      coeff_root = None
      if layout == 'folders' and not config.capture:
        coeff_root = os.fspath(manual_dir / config.coeffs_dir /
                               os.path.relpath(sources[split], manual_dir / config.images_dir))
      ctx = _Context(layout=layout, coeff_format=config.coeff_format,
                     image_size=config.image_size, frame_stride=config.frame_stride,
                     max_frames=config.max_frames_per_video or None,
                     num_videos=len(everything), coeff_root=coeff_root,
                     capture=((config.tddfa_weights, config.capture_bfm) if config.capture
                              else None))
      generators[split] = self._stream(split, vids, _process, ctx, unit='videos')
    return generators

  def _lmdb_splits(self, lmdb_dir, manual_dir):
    names = lmdb_videos(lmdb_dir)
    if not names:
      raise FileNotFoundError(f'{os.fspath(lmdb_dir)}: the LMDB lists no videos '
                              '(no "<video>-length" keys).')
    lists = building.read_split_lists(lmdb_dir.parent, manual_dir)
    if not lists:
      raise FileNotFoundError(
          f'train_list.txt / test_list.txt not found next to {os.fspath(lmdb_dir)}: '
          'prepare_vox_lmdb.py writes them into its --out folder; copy them there.')
    return building.split_by_lists(names, lists, _list_keys), 'lists'

  def _folder_splits(self, manual_dir):
    config = self.builder_config
    images = manual_dir / config.images_dir
    if not images.is_dir():
      raise FileNotFoundError(
          f'{os.fspath(images)} not found: the manual dir must hold PIRender\'s LMDB '
          f'(data.mdb) or the folders layout {config.images_dir}/ + {config.coeffs_dir}/ '
          '(see tfds_builders/voxceleb_3dmm/README.md).')
    if not config.capture and not (manual_dir / config.coeffs_dir).is_dir():
      raise FileNotFoundError(
          f'{os.fspath(manual_dir / config.coeffs_dir)} not found: the folders layout needs '
          f'the 3DMM coefficients of every video there. {COEFFS_HINT}')
    split_dirs = [s for s in SPLITS if (images / s).is_dir()]
    if split_dirs:
      others = sorted(p.name for p in images.iterdir() if p.name not in split_dirs)
      if others:
        raise ValueError(f'{os.fspath(images)} has split folders {split_dirs} and also '
                         f'{others[:5]}: put every video under train/ or test/.')
      return ({s: video_lib.find_videos(images / s) for s in split_dirs}, 'folders',
              {s: os.fspath(images / s) for s in split_dirs})
    names = video_lib.find_videos(images)
    lists = building.read_split_lists(manual_dir)
    if lists:
      return building.split_by_lists(names, lists, _list_keys), 'lists', {s: os.fspath(images)
                                                   for s in list(lists) + ['unlisted']}
    return {'train': names}, 'none (everything in train)', {'train': os.fspath(images)}

  def _generate_examples(self, **kwargs):  # Unused: _split_generators returns the streams.
    raise NotImplementedError

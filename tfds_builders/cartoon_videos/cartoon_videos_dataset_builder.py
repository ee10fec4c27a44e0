"""TFDS builder of `cartoon_videos`: a folder of the user's own cartoon videos, as square frames.

ToonTalker's Disney-style training set is not public, so users bring their clips: any tree of
video files (.mp4, .mov, .mkv, .avi, .webm, .m4v) and/or folders of frames (PNG/JPEG). Each
video becomes one identity; its frames are centre-cropped (or padded) to a square and resized.
Splits come from `train_list.txt` / `test_list.txt` (video paths) or a deterministic hash of the
video path. Examples are sorted by video, then frame (`disable_shuffling`). See README.md.
"""

import dataclasses
import os
import re
from typing import Any

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from animojax.data import building
from animojax.data import video as video_lib


@dataclasses.dataclass(kw_only=True)
class CartoonVideosConfig(tfds.core.BuilderConfig):
  """How to cut the videos into frames (all fields can be set through a JSON `--config`).

  Attributes:
    image_size: output size S.
    fit: 'crop' (centre square) or 'pad' (letterbox on white) before resizing.
    frame_stride: keep every n-th frame.
    max_frames_per_video: keep at most this many frames per video (0: all).
    test_percent: share of videos in 'test' when the manual dir has no split lists.
    skip_bad_examples: skip and count unreadable videos / frames instead of failing.
  """
  image_size: int = 256
  fit: str = 'crop'
  frame_stride: int = 1
  max_frames_per_video: int = 0
  test_percent: float = 10.0
  skip_bad_examples: bool = False

  def __post_init__(self):
    if self.fit not in building.FITS:
      raise ValueError(f'fit must be one of {building.FITS}, got {self.fit!r}.')
    if self.frame_stride < 1 or self.max_frames_per_video < 0:
      raise ValueError('frame_stride must be >= 1 and max_frames_per_video >= 0.')


@dataclasses.dataclass(frozen=True)
class _Context:
  root: Any
  image_size: int
  fit: str
  frame_stride: int
  max_frames: int | None
  num_videos: int


def _list_keys(name):
  return {name, re.sub(r'\.[A-Za-z0-9]+$', '', name)}


def _process(item, ctx: _Context):
  rank, name = item
  frames = video_lib.iter_frames(epath.Path(ctx.root) / name, stride=ctx.frame_stride,
                                 max_frames=ctx.max_frames)
  for out in frames:
    if isinstance(out, building.BadExampleError):
      yield out
      continue
    index, _, image = out
    yield building.ordered_key(rank, ctx.num_videos, index), {
        'image': building.to_square(image, ctx.image_size, ctx.fit),
        'identity': rank, 'video': name, 'frame': index}


class Builder(building.BuilderMixin, tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for cartoon_videos (manual: the user's own clips)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      CartoonVideosConfig(name=f'frames_{size}', image_size=size,
                          description=f'Every frame, centre-cropped to {size}x{size}.')
      for size in (256, 64)
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Put your cartoon videos (.mp4/.mov/... or folders of frames) in a folder, optionally '
      'with train_list.txt / test_list.txt naming videos by relative path, and pass it as '
      '--manual_dir. See tfds_builders/cartoon_videos/README.md.')
  disable_shuffling = True  # Sorted by video, then frame.

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(size, size, 3)),
            'identity': tfds.features.Scalar(dtype=np.int64),
            'video': tfds.features.Text(),
            'frame': tfds.features.Scalar(dtype=np.int64),
        }),
        supervised_keys=None,
        homepage='https://github.com/OpenTalker/ToonTalker',
        disable_shuffling=self.disable_shuffling,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    root = epath.Path(dl_manager.manual_dir)
    names = video_lib.find_videos(root)
    if not names:
      raise FileNotFoundError(
          f'No videos in {os.fspath(root)}: expected video files '
          f'({", ".join(video_lib.VIDEO_EXTENSIONS)}) or folders of frames below it.')
    lists = building.read_split_lists(root)
    if lists:
      by_split, split_from = building.split_by_lists(names, lists, _list_keys), 'lists'
    else:
      by_split = building.split_by_hash(names, config.test_percent)
      split_from = f'hash ({config.test_percent}% test)'
    rank = {name: i for i, name in enumerate(names)}
    counts = {s: len(v) for s, v in by_split.items()}
    self._record_metadata(split_from=split_from, videos=counts)
    building.report_split(self.name, counts, split_from,
                          test_percent=None if lists else config.test_percent)
    ctx = _Context(root=root, image_size=config.image_size, fit=config.fit,
                   frame_stride=config.frame_stride,
                   max_frames=config.max_frames_per_video or None, num_videos=len(names))
    return {split: self._stream(split, [(rank[n], n) for n in videos], _process, ctx,
                                unit='videos')
            for split, videos in by_split.items() if videos}

  def _generate_examples(self, **kwargs):  # Unused: _split_generators returns the streams.
    raise NotImplementedError

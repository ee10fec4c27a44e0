"""Finding videos (video files or folders of frames) and decoding their frames, for the builders.

Video files are decoded with PyAV (`av`), whose wheels ship their own FFmpeg, so nothing has to
be installed on the system. Frames come out as RGB PIL images with their index in the video.
"""

from typing import Iterator

from etils import epath
import PIL.Image

from animojax.data import building

VIDEO_EXTENSIONS = ('.mp4', '.mov', '.mkv', '.avi', '.webm', '.m4v')


def find_videos(root) -> list[str]:
  """Videos below `root`, sorted: video files, and folders that directly hold image files.

  Returns '/'-joined paths relative to `root` (a frame folder's path is the folder's). Symbolic
  links are followed.
  """
  def has_frames(children):
    return any(c.suffix.lower() in building.IMAGE_EXTENSIONS and not c.is_dir() for c in children)

  found = []
  for prefix, children in building.walk(root, stop=has_frames):
    if has_frames(children):  # A frame folder is one video: its sub-folders are not searched.
      found.append(prefix.rstrip('/'))
    else:
      found.extend(prefix + c.name for c in children
                   if c.suffix.lower() in VIDEO_EXTENSIONS and not c.is_dir())
  return sorted(found)


def frame_files(folder) -> list[epath.Path]:
  """The image files of a frame folder, sorted by name (i.e. by zero-padded frame number)."""
  return sorted((p for p in epath.Path(folder).iterdir()
                 if p.suffix.lower() in building.IMAGE_EXTENSIONS and not p.is_dir()),
                key=lambda p: p.name)


def iter_frames(path, *, stride: int = 1, max_frames: int | None = None
                ) -> Iterator[tuple[int, str, PIL.Image.Image] | building.BadExampleError]:
  """Yields (frame index, frame name, RGB image) of every `stride`-th frame, at most max_frames.

  `path` is a video file or a frame folder. A frame file that cannot be read is yielded as a
  `BadExampleError` (its neighbours still come); a video file that cannot be opened or decoded
  raises one. Frame names are the file stems of a frame folder and the zero-padded index
  ('0000042') of a video file, as the per-frame 3DMM files of either are usually named.
  """
  path = epath.Path(path)
  if stride < 1:
    raise ValueError(f'frame stride must be >= 1, got {stride}.')
  count = 0
  if path.is_dir():
    for index, file in enumerate(frame_files(path)):
      if index % stride:
        continue
      if max_frames is not None and count >= max_frames:
        return
      count += 1
      try:
        yield index, file.stem, building.open_image(file).convert('RGB')
      except building.BadExampleError as e:
        yield e
    return
  yield from _decode_video(path, stride, max_frames)


def _decode_video(path, stride, max_frames):
  import av  # pylint: disable=g-import-not-at-top  # Only builders that read videos need PyAV.
  if not path.exists():
    raise building.BadExampleError(path, 'file not found')
  try:
    f = path.open('rb')
  except OSError as e:
    raise building.BadExampleError(path, f'cannot read the file ({e})') from e
  count = 0
  with f:
    if not f.read(1):  # PyAV fails on an empty file with a seek error naming no file.
      raise building.BadExampleError(path, 'the file is empty (0 bytes)')
    f.seek(0)
    try:
      with av.open(f) as container:
        if not container.streams.video:
          raise building.BadExampleError(path, 'the file has no video stream')
        stream = container.streams.video[0]
        stream.thread_type = 'AUTO'
        for index, frame in enumerate(container.decode(stream)):
          if index % stride:
            continue
          if max_frames is not None and count >= max_frames:
            return
          count += 1
          yield index, f'{index:07d}', frame.to_image().convert('RGB')
    except (av.FFmpegError, OSError) as e:  # OSError: PyAV's reads of a damaged Python file.
      raise building.BadExampleError(path, f'cannot decode the video ({e})') from e
  if count == 0:
    raise building.BadExampleError(path, 'the video has no frames')

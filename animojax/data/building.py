"""What the TFDS builders of real datasets (`tfds_builders/*`) share.

* Ordered keys: the builders set `disable_shuffling`, so TFDS writes examples in key order.
* Image loading (a bad file becomes a `BadExampleError` naming it), squaring, RGBA on white.
* `BuilderMixin`: streams work items through a per-item function with a progress bar, counts
  and reports skipped bad items (`skip_bad_examples`), and runs the same function on Apache Beam
  when the build is given Beam options (`--beam_pipeline_options=...`).

Work items are small picklable values (a video, a chunk of CSV rows, an image path); the
per-item function is module-level so that Beam can ship it to workers. It yields
`(key, example)` pairs, or a `BadExampleError` for one bad example, and raises one when the
whole item is unusable.
"""

import dataclasses
import hashlib
import io
import os
from typing import Any, Callable, Iterable, Iterator, Sequence

from absl import logging
from etils import epath
import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
import tqdm

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
KEY_SPACE = 2**128  # TFDS's shuffler keys are 128-bit unsigned integers.
MAX_REPORTED = 100  # Skip messages kept per split in the dataset's metadata.
SKIP_HINT = ('Fix or remove it, or build with skip_bad_examples=True to skip and count such '
             'items (a JSON --config with the config\'s fields plus "skip_bad_examples": true, '
             'or animojax.data.building.prepare(..., skip_bad_examples=True) in Python).')


class BadExampleError(ValueError):
  """An input file, frame or CSV row that cannot become an example; the message names it."""

  def __init__(self, path, problem):
    self.path = os.fspath(path)
    self.problem = problem
    super().__init__(f'{self.path}: {problem}')


def ordered_key(major: int, num_major: int, minor: int = 0) -> int:
  """An integer key that sorts by (major, minor), with the majors spread over the key space.

  With `disable_shuffling` TFDS writes examples sorted by key. Its shuffler spills to 1,000
  on-disk buckets chosen by the key's position in [0, 2**128) and sorts one bucket at a time in
  memory: small consecutive keys would all land in bucket 0 (the whole dataset sorted in memory),
  spread majors keep each bucket near 1/1000 of the data.
  """
  stride = KEY_SPACE // max(int(num_major), 1)
  if not (0 <= major < max(num_major, 1) and 0 <= minor < stride):
    raise ValueError(f'ordered_key({major}, {num_major}, {minor}) is out of range.')
  return int(major) * stride + int(minor)


def read_bytes(path) -> bytes:
  path = epath.Path(path)
  try:
    return path.read_bytes()
  except FileNotFoundError as e:
    raise BadExampleError(path, 'file not found') from e
  except OSError as e:
    raise BadExampleError(path, f'cannot read the file ({e})') from e


def open_image(path, data: bytes | None = None) -> PIL.Image.Image:
  """Decodes an image file (or its bytes, named by `path`) fully, so truncation shows here."""
  data = read_bytes(path) if data is None else data
  try:
    image = PIL.Image.open(io.BytesIO(data))
    image.load()
  except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for corrupt/truncated files.
    raise BadExampleError(path, f'cannot decode the image ({e})') from e
  return image


def split_alpha(image: PIL.Image.Image) -> tuple[PIL.Image.Image, PIL.Image.Image | None]:
  """(RGB composited on white, alpha 'L' image or None): AnimeCeleb's `rgb*a + 255*(1-a)`."""
  if image.mode in ('RGBA', 'LA', 'PA') or (image.mode == 'P' and 'transparency' in image.info):
    rgba = np.asarray(image.convert('RGBA'), np.float32)
    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return (PIL.Image.fromarray(np.round(rgb).astype(np.uint8)),
            PIL.Image.fromarray(rgba[..., 3].astype(np.uint8)))
  return image.convert('RGB'), None


def square_box(width: int, height: int) -> tuple[int, int, int, int]:
  """The centred square crop (left, top, right, bottom) of a width x height image."""
  side = min(width, height)
  left, top = (width - side) // 2, (height - side) // 2
  return left, top, left + side, top + side


FITS = ('crop', 'pad')


def to_square(image: PIL.Image.Image, size: int, fit: str = 'crop',
              fill=(255, 255, 255)) -> PIL.Image.Image:
  """A size x size image: centre-cropped ('crop') or padded with `fill` ('pad') to a square,
  then resized (bicubic, antialiased; as PIRender)."""
  if image.size == (size, size):
    return image
  if fit == 'pad' and image.size[0] != image.size[1]:
    side = max(image.size)
    square = PIL.Image.new(image.mode, (side, side), fill if image.mode == 'RGB' else 0)
    square.paste(image, ((side - image.size[0]) // 2, (side - image.size[1]) // 2))
    image = square
  box = square_box(*image.size)
  return image.resize((size, size), PIL.Image.Resampling.BICUBIC, box=box)


def walk(root, stop: Callable[[list[epath.Path]], bool] = lambda children: False):
  """Yields (prefix, sorted children) of `root` and every folder below it, following links.

  `prefix` is the folder's '/'-joined path relative to root plus '/' ('' for root itself). A
  folder whose children satisfy `stop` is yielded but not descended into.
  """
  pending = [(epath.Path(root), '')]
  while pending:
    folder, prefix = pending.pop()
    children = sorted(folder.iterdir(), key=lambda p: p.name)
    yield prefix, children
    if not stop(children):
      pending.extend((c, f'{prefix}{c.name}/') for c in reversed(children) if c.is_dir())


def list_files(root, extensions: Sequence[str]) -> list[str]:
  """Sorted '/'-joined paths relative to `root` of the files below it with these extensions."""
  return sorted(prefix + c.name for prefix, children in walk(root) for c in children
                if c.suffix.lower() in extensions and not c.is_dir())


def read_list(path) -> list[str]:
  """Non-empty, stripped lines of a split list file."""
  return [line.strip() for line in epath.Path(path).read_text().splitlines() if line.strip()]


def read_split_lists(*folders) -> dict[str, set[str]]:
  """{split: entries} from the first `<split>_list.txt` found in `folders`, for train and test."""
  lists = {}
  for split in ('train', 'test'):
    path = next((epath.Path(f) / f'{split}_list.txt' for f in folders
                 if (epath.Path(f) / f'{split}_list.txt').exists()), None)
    if path is not None:
      lists[split] = set(read_list(path))
  return lists


def split_by_lists(names: Sequence[str], lists: dict[str, set[str]],
                   keys_of: Callable[[str], set[str]]) -> dict[str, list[str]]:
  """Assigns each name to the split whose list holds one of its keys; others to 'unlisted'."""
  out = {split: [] for split in lists}
  out['unlisted'] = []
  for name in names:
    hits = [split for split, entries in lists.items() if keys_of(name) & entries]
    if len(hits) > 1:
      raise ValueError(f'{name!r} is listed in both {hits[0]}_list.txt and {hits[1]}_list.txt.')
    out[hits[0] if hits else 'unlisted'].append(name)
  return out


def stable_fraction(name: str) -> float:
  """A deterministic number in [0, 1) from a name (for hash splits), stable across machines."""
  digest = hashlib.sha256(name.encode('utf-8')).digest()
  return int.from_bytes(digest[:8], 'big') / 2**64


def split_by_hash(names: Sequence[str], test_percent: float,
                  key_of: Callable[[str], str] = lambda name: name) -> dict[str, list[str]]:
  """'test' gets the names whose key hashes below test_percent %, 'train' the rest."""
  out = {'train': [], 'test': []}
  for name in names:
    out['test' if stable_fraction(key_of(name)) * 100 < test_percent else 'train'].append(name)
  return out


def report_split(dataset: str, counts: dict[str, int], split_from: str, *,
                 test_percent: float | None = None, unit: str = 'videos') -> None:
  """Logs how many items each split got; warns when a hash split's 'test' share is surprising.

  With few items a hash split is coarse (3 videos at 10 % test can put 2 of them in 'test');
  the warning names the counts and how to choose the split instead.
  """
  total = sum(counts.values())
  logging.info('%s: %s per split (from %s).', dataset,
               ', '.join(f'{s} {n} {unit}' for s, n in counts.items()), split_from)
  if test_percent is None or not total:
    return
  test = counts.get('test', 0)
  expected = total * test_percent / 100
  if (test == 0 and test_percent > 0) or abs(test - expected) > max(1.0, 0.5 * expected):
    logging.warning(
        '%s: the hash split put %d of %d %s in test (%.0f%%; test_percent is %g). With few %s '
        'the share is coarse: list them in train_list.txt / test_list.txt in the manual dir, '
        'or change test_percent (a JSON --config).', dataset, test, total, unit,
        100 * test / total, test_percent, unit)


def find_manual_root(manual_dir, marker: str, candidates: Sequence[str] = ()) -> epath.Path:
  """The folder holding `marker`: one of `manual_dir/<candidate>`, else manual_dir itself."""
  manual_dir = epath.Path(manual_dir)
  for candidate in candidates:
    if (manual_dir / candidate / marker).exists():
      return manual_dir / candidate
  if (manual_dir / marker).exists():
    return manual_dir
  tried = [os.fspath(manual_dir / c / marker) for c in (*candidates, '')]
  raise FileNotFoundError(
      f'Could not find {marker!r} in the manual directory; looked for: {tried}. Point '
      '--manual_dir at the folder described in the builder README.')


@dataclasses.dataclass
class SkipLog:
  """Skipped items of one split: a count and the first messages."""
  count: int = 0
  messages: list[str] = dataclasses.field(default_factory=list)

  def add(self, error: BadExampleError, split: str) -> None:
    self.count += 1
    if len(self.messages) < MAX_REPORTED:
      self.messages.append(str(error))
    if self.count <= 20:
      logging.warning('Skipping bad input in split %s: %s', split, error)


def _run_item(item, process, context, skip: bool, log: SkipLog | None, split: str):
  """Yields the (key, example) pairs of one work item, handling bad inputs per the policy."""
  try:
    for out in process(item, context):
      if isinstance(out, BadExampleError):
        if not skip:
          raise BadExampleError(out.path, f'{out.problem}. {SKIP_HINT}') from out
        _count_skip(out, log, split)
      else:
        yield out
  except BadExampleError as e:
    if not skip:
      if SKIP_HINT in e.problem:
        raise
      raise BadExampleError(e.path, f'{e.problem}. {SKIP_HINT}') from e
    _count_skip(e, log, split)


def _count_skip(error, log, split):
  if log is not None:
    log.add(error, split)
  else:  # On a Beam worker: a counter the pipeline result shows, and the worker's log.
    beam = tfds.core.lazy_imports.apache_beam
    beam.metrics.Metrics.counter('animojax', f'skipped_{split}').inc()
    logging.warning('Skipping bad input in split %s: %s', split, error)


def _beam_process(item, *, process, context, skip, split):
  yield from _run_item(item, process, context, skip, None, split)


class BuilderMixin:
  """Streaming, skip reporting and the Beam switch for `tfds.core.GeneratorBasedBuilder`s.

  Subclasses give `_stream(...)` a split's work items and per-item function from
  `_split_generators`; their config has a `skip_bad_examples` field, and `_info` passes
  `metadata=tfds.core.MetadataDict()` (skips are recorded there, under 'skipped').
  """

  def _download_and_prepare(self, dl_manager, download_config=None):
    # TFDS decides "Beam or not" from the returned generators, so remember whether the user
    # asked for Beam (`tfds build --beam_pipeline_options=...` sets beam_options).
    self._use_beam = bool(download_config is not None and (
        download_config.beam_runner is not None or download_config.beam_options is not None))
    return super()._download_and_prepare(dl_manager, download_config)

  def _record_metadata(self, **values) -> None:
    self.info.metadata.update(values)

  def _stream(self, split: str, items: Sequence[Any],
              process: Callable[[Any, Any], Iterable[Any]], context: Any, *,
              sizes: Sequence[int] | None = None, unit: str = 'items'):
    """The split's examples: a generator (progress bar, skip report) or a Beam PTransform.

    `sizes` (per item, default 1) are what the progress bar counts, in `unit`s.
    """
    skip = bool(self.builder_config.skip_bad_examples)
    if getattr(self, '_use_beam', False):
      beam = tfds.core.lazy_imports.apache_beam
      return (f'Items_{split}' >> beam.Create(list(items))
              | f'Examples_{split}' >> beam.FlatMap(_beam_process, process=process,
                                                    context=context, skip=skip, split=split))
    return self._iterate(split, items, process, context, skip, sizes, unit)

  def _iterate(self, split, items, process, context, skip, sizes, unit
               ) -> Iterator[tuple[int, dict[str, Any]]]:
    log = SkipLog()
    written = 0
    with tqdm.tqdm(total=sum(sizes) if sizes is not None else len(items), unit=f' {unit}', desc=f'{self.name} {split}',
                   mininterval=2.0) as bar:
      for i, item in enumerate(items):
        for out in _run_item(item, process, context, skip, log, split):
          written += 1
          yield out
        bar.update(sizes[i] if sizes is not None else 1)
    if not written:  # TFDS cannot write an empty split; say why it is empty.
      raise ValueError(f'{self.name}: nothing to build in split {split!r}: all {log.count} '
                       f'of its input(s) were bad and skipped (first: {log.messages[:3]}).')
    skipped = dict(self.info.metadata.get('skipped', {}))
    skipped[split] = {'count': log.count, 'first': log.messages}
    self._record_metadata(skipped=skipped)
    if log.count:
      logging.warning('%s: skipped %d bad input(s) in split %s; the first %d are listed in '
                      "the dataset's metadata.json under 'skipped'.", self.name, log.count,
                      split, len(log.messages))


def prepare(builder_cls, config, *, manual_dir, data_dir, **changes):
  """Builds `config` (a config name or BuilderConfig) as array_record into data_dir.

  `changes` replace fields of the config (name it with `name=...`, default 'custom'), e.g.
  `prepare(Builder, 'deca_256', manual_dir=..., data_dir=..., frame_stride=2)`: the Python
  equivalent of `tfds build --config='{...}'`. Returns the prepared builder.
  """
  if changes:
    if isinstance(config, str):
      config = next(c for c in builder_cls.BUILDER_CONFIGS if c.name == config)
    config = dataclasses.replace(config, name=changes.pop('name', 'custom'), **changes)
  builder = builder_cls(config=config, data_dir=os.fspath(data_dir), file_format='array_record')
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
  return builder


def read_split(builder, split: str) -> list[dict[str, Any]]:
  """Every decoded example of a split, in order (for tests and small datasets)."""
  source = builder.as_data_source(split=split)
  return [source[i] for i in range(len(source))]

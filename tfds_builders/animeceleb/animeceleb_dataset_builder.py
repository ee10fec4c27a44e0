"""TFDS builder of `animeceleb`: AnimeCeleb (Kim et al., ECCV 2022) from its released download.

Reads the manual download (`combined_pose.csv`, RGBA PNG trees `rotation/` and `expression/`,
optional `basis/`, the identity lists `train_list.txt` / `test_list.txt`) and writes one example
per image: RGB composited on white, the alpha mask, the 20-D pose in CSV order, the identity
(`org_id`), style, group and file name. Splits are by identity; examples are sorted by identity
(`disable_shuffling`) so that same-identity pairs are cheap to read. See README.md.

No TensorFlow is needed: build with `python -m animojax.data.tfds_build tfds_builders/animeceleb
--config=default --manual_dir=...` and read with `builder.as_data_source(split)`.
"""

import csv
import dataclasses
import os
from typing import Any

from etils import epath
import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from animojax.posemap import mapping
from animojax.data import building

CSV_NAME = 'combined_pose.csv'
NUM_COLUMNS = 3 + mapping.NUM_POSE  # org_id, folder (cluster) id, png_name, 20-D pose.
TREES = ('expression', 'rotation')
GROUPS = TREES + ('basis',)
CHUNK_ROWS = 5000  # CSV rows per work item (the unit a Beam worker processes).
LIST_URL = 'https://github.com/kangyeolk/AnimeCeleb/raw/HEAD/Animo/data/{}'


def _padded(folder, png):
  return f'{int(folder):05d}/{png}' if folder.isdigit() else None


# Where a CSV row's image lies below <root>/<tree>/, per known layout of the download.
LAYOUTS = {
    'padded': _padded,  # <folder id, 5 digits>/<png_name> (the released data)
    'folder': lambda folder, png: f'{folder}/{png}',  # <folder id as written>/<png_name>
    'animo': lambda folder, png: f'{folder}/{png.split("_")[0]}/{png}',  # AniMo's own tree
    'flat': lambda folder, png: png,  # png_name already holds the sub-path
}


@dataclasses.dataclass(kw_only=True)
class AnimeCelebConfig(tfds.core.BuilderConfig):
  """How to read one shader style of the download (all fields can be set through JSON).

  Attributes:
    style: stored in the `style` feature.
    style_dirs: sub-folders of the manual dir tried for this style's root (the folder holding
      combined_pose.csv); the manual dir itself is used when none has it.
    image_size: output size S (images are centre-cropped to a square and resized if needed).
    trees: which image trees to read ('rotation': AniMo's training set; 'expression').
    angle_permutation: index i of (pitch, yaw, roll) takes CSV angle column
      angle_permutation[i]. AniMo's (0, 2, 1) by default; EDTN's training uses (1, 2, 0). The
      stored `pose` keeps the CSV order; this is recorded in the dataset's metadata and the
      training pipeline checks it against config.data.anime_angle_permutation.
    expression_angles: 'zero' (expression-tree images are the frontal renders of the row's
      morphs, so their stored angles are 0) or 'csv' (keep the row's angles).
    path_layout: 'auto' or a LAYOUTS key.
    include_basis: add each character's basis/<folder>/basis.png (group 'basis', pose 0).
    skip_bad_examples: skip and count unreadable images / malformed rows instead of failing.
  """
  style: str = 'default'
  style_dirs: tuple[str, ...] = ()
  image_size: int = 256
  trees: tuple[str, ...] = ('rotation',)
  angle_permutation: tuple[int, ...] = mapping.ANIMO_ANGLE_PERMUTATION
  expression_angles: str = 'zero'
  path_layout: str = 'auto'
  include_basis: bool = False
  skip_bad_examples: bool = False

  def __post_init__(self):
    # JSON configs (`--config='{...}'`) give lists.
    self.style_dirs, self.trees = tuple(self.style_dirs), tuple(self.trees)
    self.angle_permutation = tuple(int(i) for i in self.angle_permutation)
    if sorted(self.angle_permutation) != [0, 1, 2]:
      raise ValueError(f'angle_permutation must be a permutation of (0, 1, 2), got '
                       f'{self.angle_permutation}.')
    if not self.trees or set(self.trees) - set(TREES):
      raise ValueError(f'trees must be a non-empty subset of {TREES}, got {self.trees}.')
    if self.path_layout != 'auto' and self.path_layout not in LAYOUTS:
      raise ValueError(f'path_layout must be "auto" or one of {sorted(LAYOUTS)}.')
    if self.expression_angles not in ('zero', 'csv'):
      raise ValueError('expression_angles must be "zero" or "csv".')


def _style_config(name, style, style_dirs, size):
  return AnimeCelebConfig(
      name=name, style=style, style_dirs=style_dirs, image_size=size,
      description=f'AnimeCeleb "{style}" style, rotation tree (as AniMo trains), {size}x{size}.')


@dataclasses.dataclass(frozen=True)
class _Row:
  line: int  # 1-based line number in the CSV (what error messages name).
  org_id: int
  folder: str
  png_name: str
  pose: np.ndarray


def _parse_row(fields: list[str], where: str) -> _Row:
  line = int(where.rsplit(':', 1)[1])
  if len(fields) != NUM_COLUMNS:
    raise building.BadExampleError(
        where, f'malformed CSV row: {len(fields)} columns, expected {NUM_COLUMNS} (org_id, '
        'folder id, png_name, 17 morphs, 3 angles)')
  try:
    org_id = int(fields[0])
  except ValueError:
    raise building.BadExampleError(
        where, f'malformed CSV row: org_id {fields[0]!r} is not an integer') from None
  try:
    pose = np.array([float(v) for v in fields[3:]], np.float32)
  except ValueError:
    raise building.BadExampleError(
        where, f'malformed CSV row: a pose value is not a number: {fields[3:]}') from None
  if not np.all(np.isfinite(pose)):
    raise building.BadExampleError(where, 'malformed CSV row: the pose has NaN or Inf')
  if not fields[2].strip():
    raise building.BadExampleError(where, 'malformed CSV row: empty png_name')
  return _Row(line, org_id, fields[1].strip(), fields[2].strip(), pose)


def _iter_csv(path, start: int = 0, end: int | None = None, first_line: int = 1):
  """Yields (line number, byte offset, fields) of the CSV's lines in [start, end) bytes."""
  with epath.Path(path).open('rb') as f:
    f.seek(start)
    offset, line = start, first_line
    for raw in f:
      if end is not None and offset >= end:
        return
      if raw.strip():
        yield line, offset, next(csv.reader([raw.decode('utf-8-sig')]))
      offset += len(raw)
      line += 1


def _is_header(fields):
  try:
    int(fields[0])
  except (ValueError, IndexError):
    return True
  return False


@dataclasses.dataclass
class _Index:
  """What one pass over the CSV learns (no images read): ids, chunks, bad rows."""
  chunks: list[tuple[int, int, int, int]] = dataclasses.field(default_factory=list)
  rows_per_id: dict[int, int] = dataclasses.field(default_factory=dict)
  first_row: dict[int, _Row] = dataclasses.field(default_factory=dict)
  bad_rows: building.SkipLog = dataclasses.field(default_factory=building.SkipLog)


def index_csv(path, skip_bad: bool) -> _Index:
  """Validates every row and cuts the CSV into chunks of CHUNK_ROWS rows (byte ranges)."""
  index = _Index()
  chunk_start = chunk_line = None
  rows_in_chunk = 0
  last_offset = 0
  for line, offset, fields in _iter_csv(path):
    last_offset = offset
    if line == 1 and _is_header(fields):
      continue
    if chunk_start is None:
      chunk_start, chunk_line = offset, line
    try:
      row = _parse_row(fields, f'{os.fspath(path)}:{line}')
    except building.BadExampleError as e:
      if not skip_bad:
        raise building.BadExampleError(e.path, f'{e.problem}. {building.SKIP_HINT}') from e
      index.bad_rows.add(e, 'csv')
      continue
    index.rows_per_id[row.org_id] = index.rows_per_id.get(row.org_id, 0) + 1
    index.first_row.setdefault(row.org_id, row)
    rows_in_chunk += 1
    if rows_in_chunk == CHUNK_ROWS:
      index.chunks.append((chunk_start, offset + 1, chunk_line, rows_in_chunk))
      chunk_start, rows_in_chunk = None, 0
  if chunk_start is not None:
    index.chunks.append((chunk_start, last_offset + 1, chunk_line, rows_in_chunk))
  if not index.rows_per_id:
    raise FileNotFoundError(f'{os.fspath(path)}: no valid rows.')
  return index


@dataclasses.dataclass(frozen=True)
class _Context:
  """Everything a worker needs to turn a work item into examples (picklable)."""
  csv_path: Any
  root: Any
  layout: str
  trees: tuple[str, ...]
  image_size: int
  style: str
  expression_angles: str
  split_ids: frozenset
  id_rank: dict
  basis_files: dict  # org_id -> (relative path of basis.png, folder id); include_basis only.


def _load_example(ctx: _Context, rel_path: str, pose, org_id, folder, group):
  path = epath.Path(ctx.root) / rel_path
  image = building.open_image(path)
  rgb, alpha = building.split_alpha(image)
  if alpha is None:  # An RGB file: fully opaque.
    alpha = PIL.Image.new('L', rgb.size, 255)
  return {
      'image': building.to_square(rgb, ctx.image_size),
      'alpha': building.to_square(alpha, ctx.image_size),
      'pose': pose, 'identity': org_id, 'cluster': folder, 'style': ctx.style,
      'group': group, 'file_name': rel_path,
  }


def _process(item, ctx: _Context):
  """Examples of one work item: ('rows', start, end, first line) or ('basis', org_id)."""
  num_ids = len(ctx.id_rank)
  if item[0] == 'basis':
    org_id = item[1]
    key = building.ordered_key(ctx.id_rank[org_id], num_ids, 0)
    rel_path, folder = ctx.basis_files[org_id]
    try:
      yield key, _load_example(ctx, rel_path, np.zeros(mapping.NUM_POSE, np.float32), org_id,
                               folder, 'basis')
    except building.BadExampleError as e:
      yield e
    return
  _, start, end, first_line = item
  for line, _, fields in _iter_csv(ctx.csv_path, start, end, first_line):
    try:
      row = _parse_row(fields, f'{os.fspath(ctx.csv_path)}:{line}')
    except building.BadExampleError:
      continue  # Reported (or fatal) when the CSV was indexed.
    if row.org_id not in ctx.split_ids:
      continue
    for t, tree in enumerate(ctx.trees):
      pose = row.pose
      if tree == 'expression' and ctx.expression_angles == 'zero':
        pose = np.concatenate([pose[:mapping.NUM_MORPHS], np.zeros(3, np.float32)])
      rel_path = f'{tree}/{LAYOUTS[ctx.layout](row.folder, row.png_name)}'
      key = building.ordered_key(ctx.id_rank[row.org_id], num_ids,
                                 1 + row.line * len(ctx.trees) + t)
      try:
        yield key, _load_example(ctx, rel_path, pose, row.org_id, row.folder, tree)
      except building.BadExampleError as e:
        yield e


def detect_layout(root, rows, tree, wanted='auto') -> str:
  """The LAYOUTS key under which the first rows' images exist below root/tree."""
  tree_dir = epath.Path(root) / tree
  if not tree_dir.is_dir():
    raise FileNotFoundError(f'{os.fspath(tree_dir)}: no {tree!r} image folder next to '
                            f'{CSV_NAME}. The download holds one folder per image tree.')
  names = [wanted] if wanted != 'auto' else list(LAYOUTS)
  tried = []
  for row in rows:
    for name in names:
      rel = LAYOUTS[name](row.folder, row.png_name)
      if rel is None:
        continue
      tried.append(os.fspath(tree_dir / rel))
      if (tree_dir / rel).is_file():
        return name
  raise FileNotFoundError(
      f'None of the first rows of {CSV_NAME} has its image where expected; tried: '
      f'{tried[:8]}. Check that --manual_dir is the folder of the download (see README).')


def _find_basis(root, row: _Row) -> str | None:
  for folder in dict.fromkeys([_padded(row.folder, ''), row.folder + '/',
                               row.png_name.split('_')[0] + '/']):
    if folder and (epath.Path(root) / 'basis' / folder / 'basis.png').is_file():
      return f'basis/{folder}basis.png'
  return None


class Builder(building.BuilderMixin, tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for animeceleb (manual download)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      _style_config('default', 'default', ('default', 'combined_default'), 256),
      _style_config('cartoon', 'cartoon', ('cartoon', 'combined_toon2', 'toon'), 256),
      _style_config('default_64', 'default', ('default', 'combined_default'), 64),
      _style_config('cartoon_64', 'cartoon', ('cartoon', 'combined_toon2', 'toon'), 64),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Request AnimeCeleb through the authors\' form (github.com/kangyeolk/AnimeCeleb), unpack '
      f'one style so that a folder holds {CSV_NAME}, rotation/ (and expression/, basis/), put '
      'train_list.txt and test_list.txt from the AnimeCeleb repository (Animo/data/) next to '
      'the CSV, and pass that folder (or its parent holding default/, cartoon/, ...) as '
      '--manual_dir. See tfds_builders/animeceleb/README.md.')
  disable_shuffling = True  # Sorted by identity: pair samplers read contiguous frames.

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(size, size, 3)),
            'alpha': tfds.features.Image(shape=(size, size, 1)),
            'pose': tfds.features.Tensor(shape=(mapping.NUM_POSE,), dtype=np.float32),
            'identity': tfds.features.Scalar(dtype=np.int64),
            'cluster': tfds.features.Text(),
            'style': tfds.features.Text(),
            'group': tfds.features.ClassLabel(names=GROUPS),
            'file_name': tfds.features.Text(),
        }),
        supervised_keys=None,
        homepage='https://github.com/kangyeolk/AnimeCeleb',
        disable_shuffling=self.disable_shuffling,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    root = building.find_manual_root(dl_manager.manual_dir, CSV_NAME, config.style_dirs)
    csv_path = root / CSV_NAME
    index = index_csv(csv_path, config.skip_bad_examples)
    lists = {}
    for split in ('train', 'test'):
      name = f'{split}_list.txt'
      path = next((p for p in (root / name, epath.Path(dl_manager.manual_dir) / name)
                   if p.exists()), None)
      if path is None:
        raise FileNotFoundError(
            f'{name} not found in {os.fspath(root)} or the manual dir. Download it from '
            f'{LIST_URL.format(name)} (the authors\' identity split) and put it next to '
            f'{CSV_NAME}.')
      try:
        lists[split] = {int(v) for v in building.read_list(path)}
      except ValueError as e:
        raise ValueError(f'{os.fspath(path)}: expected one integer org_id per line ({e}).')
    both = lists['train'] & lists['test']
    if both:
      raise ValueError(f'train_list.txt and test_list.txt share identities {sorted(both)[:10]}.')
    all_ids = sorted(index.rows_per_id)
    split_ids = {'train': [i for i in all_ids if i in lists['train']],
                 'test': [i for i in all_ids if i in lists['test']],
                 'unlisted': [i for i in all_ids if i not in lists['train'] | lists['test']]}
    first_rows = [index.first_row[i] for i in all_ids[:20]]
    layout = detect_layout(root, first_rows, config.trees[0], config.path_layout)
    for tree in config.trees[1:]:  # Every tree must exist (and use the same layout).
      detect_layout(root, first_rows, tree, layout)
    basis_files = {}
    if config.include_basis:
      for org_id in all_ids:
        row = index.first_row[org_id]
        basis_files[org_id] = (_find_basis(root, row) or f'basis/{row.folder}/basis.png',
                               row.folder)
    unlisted_rows = sum(index.rows_per_id[i] for i in split_ids['unlisted'])
    self._record_metadata(
        angle_permutation=list(config.angle_permutation), path_layout=layout,
        style=config.style, trees=list(config.trees),
        unlisted={'identities': len(split_ids['unlisted']), 'rows': unlisted_rows},
        skipped={'csv': {'count': index.bad_rows.count, 'first': index.bad_rows.messages}})
    id_rank = {org_id: rank for rank, org_id in enumerate(all_ids)}
    generators = {}
    for split, ids in split_ids.items():
      if not ids:
        continue  # No empty splits: TFDS cannot write them. 'unlisted' exists only if needed.
      items = [('basis', i) for i in ids] if config.include_basis else []
      items += [('rows', start, end, line) for start, end, line, _ in index.chunks]
      sizes = [1] * (len(items) - len(index.chunks)) + [n for *_, n in index.chunks]
      ctx = _Context(csv_path=csv_path, root=root, layout=layout, trees=config.trees,
                     image_size=config.image_size, style=config.style,
                     expression_angles=config.expression_angles, split_ids=frozenset(ids),
                     id_rank=id_rank, basis_files=basis_files)
      generators[split] = self._stream(split, items, _process, ctx, sizes=sizes,
                                       unit='CSV rows')
    return generators

  def _generate_examples(self, **kwargs):  # Unused: _split_generators returns the streams.
    raise NotImplementedError

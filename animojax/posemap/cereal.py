"""A small reader for the eos / Surrey Face Model cereal binary files (no C++ needed).

eos (patrikhuber/eos) stores its models with the cereal library's portable binary archive:
little-endian, no field names, containers prefixed by a uint64 element count, and Eigen matrices as
int32 rows, int32 cols then the raw column-major float32 data. Two files matter for pose mapping:

* `sfm_shape_*.bin`: a `MorphableModel` -- uint32 class version, then (version 1) the shape
  `PcaModel`, the colour `PcaModel` and the texture coordinates. A `PcaModel` is mean [3N, 1],
  orthonormal basis [3N, M], eigenvalues [M, 1] (variances) and triangles (uint64 count, then
  3 int32 per triangle).
* `expression_blendshapes_*.bin`: a `std::vector<Blendshape>` -- uint64 count, then per blendshape
  a string (uint64 length + bytes) and a deformation vector [3N, 1].

Vectors over vertices are interleaved x, y, z. Only MorphableModel version 1 (the published SFM
files) is read; later versions embed the expression model in a `std::variant` and are refused
with a clear error rather than misread.
"""

import dataclasses
import os
import struct

import numpy as np


@dataclasses.dataclass(frozen=True)
class PcaModel:
  """An eos `PcaModel` as numpy arrays (float32 unless noted)."""
  mean: np.ndarray  # [3N], interleaved x, y, z.
  orthonormal_basis: np.ndarray  # [3N, M], orthonormal columns.
  eigenvalues: np.ndarray  # [M], the variance along each column.
  triangles: np.ndarray  # int32 [T, 3], 0-based vertex ids.

  @property
  def rescaled_basis(self) -> np.ndarray:
    """Basis scaled by each component's standard deviation (eos's `rescaled_pca_basis`)."""
    return self.orthonormal_basis * np.sqrt(self.eigenvalues)[None, :]


class _Reader:
  """Sequential little-endian reads from a bytes buffer, with errors naming file and field."""

  def __init__(self, data: bytes, path: str):
    self.data = data
    self.path = path
    self.offset = 0

  def _take(self, size: int, what: str) -> memoryview:
    if size < 0 or self.offset + size > len(self.data):
      raise ValueError(
          f'{self.path}: file ends at byte {len(self.data)} while reading {what} ({size} bytes '
          f'from byte {self.offset}). Is it an eos cereal binary model file (e.g. '
          'sfm_shape_3448.bin)?')
    view = memoryview(self.data)[self.offset:self.offset + size]
    self.offset += size
    return view

  def scalar(self, fmt: str, what: str):
    return struct.unpack('<' + fmt, self._take(struct.calcsize(fmt), what))[0]

  def matrix(self, what: str) -> np.ndarray:
    rows, cols = self.scalar('i', what + ' rows'), self.scalar('i', what + ' cols')
    if rows < 0 or cols < 0:
      raise ValueError(f'{self.path}: {what} has a negative size {rows} x {cols}.')
    raw = self._take(4 * rows * cols, what)
    return np.frombuffer(raw, '<f4').reshape(cols, rows).T.astype(np.float32)  # Column-major.

  def array_list(self, dtype: str, width: int, what: str) -> np.ndarray:
    count = self.scalar('Q', what + ' count')
    size = np.dtype(dtype).itemsize * width
    if count * size > len(self.data):  # A wrong layout shows up as an absurd count.
      raise ValueError(f'{self.path}: {what} claims {count} entries, more than the file holds.')
    return np.frombuffer(self._take(count * size, what), dtype).reshape(count, width)

  def string(self, what: str) -> str:
    length = self.scalar('Q', what + ' length')
    return bytes(self._take(length, what)).decode('utf-8', errors='replace')

  def pca_model(self, what: str) -> PcaModel:
    mean = self.matrix(what + '.mean')
    basis = self.matrix(what + '.orthonormal_pca_basis')
    eigenvalues = self.matrix(what + '.eigenvalues')
    triangles = self.array_list('<i4', 3, what + '.triangle_list').astype(np.int32)
    if mean.shape[1:] != (1,) and mean.size:
      raise ValueError(f'{self.path}: {what}.mean must be a column vector, got {mean.shape}.')
    if basis.size and (basis.shape[0] != mean.shape[0] or eigenvalues.shape[0] != basis.shape[1]):
      raise ValueError(f'{self.path}: {what} sizes disagree: mean {mean.shape}, basis '
                       f'{basis.shape}, eigenvalues {eigenvalues.shape}.')
    return PcaModel(mean[:, 0] if mean.size else mean.reshape(0), basis,
                    eigenvalues[:, 0] if eigenvalues.size else eigenvalues.reshape(0), triangles)


def _read_bytes(path) -> tuple[bytes, str]:
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'eos model file {path!r} not found (the Surrey Face Model ships in '
                            'patrikhuber/eos, share/).')
  with open(path, 'rb') as f:
    return f.read(), path


def read_shape_model(path) -> PcaModel:
  """Reads the shape `PcaModel` of an eos `MorphableModel` file (version 1)."""
  data, path = _read_bytes(path)
  reader = _Reader(data, path)
  version = reader.scalar('I', 'MorphableModel version')
  if version != 1:
    raise ValueError(f'{path}: MorphableModel version {version}; only version 1 (the published '
                     'Surrey Face Model files, expression blendshapes in a separate file) is '
                     'supported.')
  shape = reader.pca_model('shape_model')
  reader.pca_model('color_model')
  reader.array_list('<f8', 2, 'texture_coordinates')
  if reader.offset != len(data):
    raise ValueError(f'{path}: {len(data) - reader.offset} unexpected bytes after the model.')
  if shape.mean.size == 0 or shape.mean.size % 3:
    raise ValueError(f'{path}: shape_model.mean has {shape.mean.size} entries, expected 3N > 0.')
  return shape


def read_blendshapes(path) -> tuple[tuple[str, ...], np.ndarray]:
  """Reads an eos blendshapes file: (names, deformations float32 [B, 3N])."""
  data, path = _read_bytes(path)
  reader = _Reader(data, path)
  count = reader.scalar('Q', 'blendshape count')
  if count > 1000:
    raise ValueError(f'{path}: claims {count} blendshapes; not an eos blendshapes file?')
  names, deformations = [], []
  for i in range(count):
    names.append(reader.string(f'blendshape {i} name'))
    deformation = reader.matrix(f'blendshape {i} ({names[-1]!r}) deformation')
    if deformation.shape[1:] != (1,) or (deformations and
                                         deformation.shape != deformations[0].shape):
      raise ValueError(f'{path}: blendshape {names[-1]!r} has shape {deformation.shape}, '
                       'expected one [3N, 1] column like the others.')
    deformations.append(deformation)
  if reader.offset != len(data):
    raise ValueError(f'{path}: {len(data) - reader.offset} unexpected bytes after the blendshapes.')
  if not deformations:
    raise ValueError(f'{path}: holds no blendshapes.')
  return tuple(names), np.stack([d[:, 0] for d in deformations])

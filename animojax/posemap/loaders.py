"""Loaders for real morphable models into the landmark-level `MorphableModel`.

* Deep3DFaceRecon `BFM_model_front.mat` (sicxu/Deep3DFaceRecon_pytorch `util/load_mats.py`): `meanshape` (1, 3N),
  `idBase` (3N, 80), `exBase` (3N, 64), `tri` (T, 3) and `keypoints` (68), both 1-based. Already
  in decimetres; the mean shape is re-centred on its vertex mean as Deep3DFaceRecon does on load.
* 3DDFA's 68-landmark BFM bases (cleardusk/3DDFA, c++/weights): `u_base.txt` (204),
  `w_shp_base.txt` (204, 40), `w_exp_base.txt` (204, 10), `param_std.txt` (62); x, y, z
  interleaved per landmark, in micrometres. The prior std of the expression coefficients is
  `param_std[52:62]` (3DDFA's 62 parameters: 12 pose, 40 shape, 10 expression).
* The Surrey Face Model (patrikhuber/eos, share/): `sfm_shape_3448.bin` (63 shape PCs),
  `expression_blendshapes_3448.bin` (6 blendshapes), `ibug_to_sfm.txt` (iBUG -> vertex map) and
  `sfm_model_contours.json` (jaw contour vertices). In millimetres; re-centred on the vertex mean
  like the BFM. iBUG jaw points 1-8 / 10-17 have no fixed vertex (eos picks contour vertices per
  fit); here they are spaced evenly along the frontal contour from the eye line to the chin. The
  inner mouth corners (iBUG 61, 65) are undefined and get zero weight in the fit.
"""

import json
import os
import re

import numpy as np

from animojax.posemap import cereal
from animojax.posemap import morphable

NUM_LANDMARKS = morphable.NUM_LANDMARKS
MODEL_KINDS = ('embedded', 'bfm', '3ddfa', 'sfm')
_BFM_DM_PER_UM = 1e-5  # BFM micrometres -> Deep3DFaceRecon decimetres.
_SFM_DM_PER_MM = 1e-2
_3DDFA_FILES = ('u_base.txt', 'w_shp_base.txt', 'w_exp_base.txt', 'param_std.txt')
_SFM_FILES = ('sfm_shape_3448.bin', 'expression_blendshapes_3448.bin', 'ibug_to_sfm.txt',
              'sfm_model_contours.json')
# 0-based iBUG indices of the jaw contour, top to chin, per side; and the chin.
_RIGHT_JAW, _LEFT_JAW, _CHIN = tuple(range(0, 8)), tuple(range(16, 8, -1)), 8
_SFM_INNER_MOUTH_CORNERS = {60: 48, 64: 54}  # Undefined in SFM -> the outer corner (for drawing).


def _require(path: str, what: str) -> str:
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{what}: file {path!r} not found.')
  return path


def _check_shape(array: np.ndarray, shape: tuple[int | None, ...], path: str, field: str):
  if array.ndim != len(shape) or any(s is not None and a != s for a, s in zip(array.shape, shape)):
    pretty = tuple('any' if s is None else s for s in shape)
    raise ValueError(f'{path}: field {field!r} has shape {array.shape}, expected {pretty}.')
  if not np.all(np.isfinite(array)):
    raise ValueError(f'{path}: field {field!r} contains NaN or Inf.')


def _vertex_keypoints(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Keypoints/weights for landmarks that are plain vertices."""
  indices = np.asarray(indices, np.int32)
  return (np.stack([indices, indices], -1),
          np.tile(np.array([1.0, 0.0], np.float32), (len(indices), 1)))


def load_bfm_front(path, recenter: bool = True) -> morphable.MorphableModel:
  """Loads Deep3DFaceRecon's `BFM_model_front.mat` (or any .mat file with its fields)."""
  from scipy import io as sio  # pylint: disable=g-import-not-at-top
  path = _require(os.fspath(path), 'Deep3DFaceRecon BFM model (BFM/BFM_model_front.mat, built by '
                  'Deep3DFaceRecon_pytorch from the licence-gated BFM09)')
  try:
    mat = sio.loadmat(path)
  except Exception as e:  # scipy raises several types for non-.mat input.
    raise ValueError(f'Could not read {path!r} as a MATLAB .mat file: {e}') from e
  missing = [f for f in ('meanshape', 'idBase', 'exBase', 'tri', 'keypoints') if f not in mat]
  if missing:
    raise ValueError(f'{path}: missing field(s) {missing}; expected Deep3DFaceRecon\'s '
                     'BFM_model_front.mat layout (meanshape, idBase, exBase, tri, keypoints).')
  mean = np.asarray(mat['meanshape'], np.float64).reshape(-1)
  if mean.size % 3 or mean.size == 0:
    raise ValueError(f'{path}: field \'meanshape\' has {mean.size} entries, expected 3N.')
  n = mean.size // 3
  id_base, ex_base = (np.asarray(mat[f], np.float32) for f in ('idBase', 'exBase'))
  _check_shape(id_base, (3 * n, None), path, 'idBase')
  _check_shape(ex_base, (3 * n, None), path, 'exBase')
  keypoints = np.asarray(mat['keypoints']).reshape(-1).astype(np.int64) - 1
  tri = np.asarray(mat['tri']).astype(np.int64) - 1
  if keypoints.shape != (NUM_LANDMARKS,) or keypoints.min() < 0 or keypoints.max() >= n:
    got = (f'range [{keypoints.min() + 1}, {keypoints.max() + 1}]' if keypoints.size
           else 'no entries')
    raise ValueError(f'{path}: field \'keypoints\' must hold 68 1-based vertex ids in 1..{n}, '
                     f'got {keypoints.size} with {got}.')
  if tri.ndim != 2 or tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= n:
    raise ValueError(f'{path}: field \'tri\' must be (T, 3) 1-based vertex ids in 1..{n}.')
  vertices = mean.reshape(n, 3)
  if recenter:  # Deep3DFaceRecon's ParametricFaceModel(recenter=True).
    vertices = vertices - vertices.mean(0)
  kp, kw = _vertex_keypoints(keypoints)
  return morphable.MorphableModel(
      name='bfm', mean=vertices[keypoints].astype(np.float32),
      id_basis=id_base.reshape(n, 3, -1)[keypoints], exp_basis=ex_base.reshape(n, 3, -1)[keypoints],
      exp_std=np.ones(ex_base.shape[1], np.float32),
      landmark_valid=np.ones(NUM_LANDMARKS, bool), vertices=vertices.astype(np.float32),
      triangles=tri.astype(np.int32), keypoints=kp, keypoint_weights=kw, source=path)


def _load_txt(path: str, shape: tuple[int, ...]) -> np.ndarray:
  try:
    array = np.loadtxt(path, dtype=np.float64)
  except ValueError as e:
    raise ValueError(f'{path}: not a whitespace-separated table of numbers: {e}') from e
  _check_shape(array, shape, path, os.path.basename(path))
  return array


def load_3ddfa(directory) -> morphable.MorphableModel:
  """Loads the 3DDFA 68-landmark BFM bases from a directory holding its four .txt files."""
  directory = os.fspath(directory)
  paths = [_require(os.path.join(directory, f), '3DDFA landmark bases (cleardusk/3DDFA, '
                    'c++/weights/)') for f in _3DDFA_FILES]
  mean = _load_txt(paths[0], (3 * NUM_LANDMARKS,))
  shp = _load_txt(paths[1], (3 * NUM_LANDMARKS, None))
  exp = _load_txt(paths[2], (3 * NUM_LANDMARKS, None))
  std = _load_txt(paths[3], (12 + shp.shape[1] + exp.shape[1],))
  exp_std = std[12 + shp.shape[1]:]
  if not np.all(exp_std > 0):
    raise ValueError(f'{paths[3]}: the expression stds (entries {12 + shp.shape[1]}:) must be > 0.')
  s = _BFM_DM_PER_UM
  return morphable.MorphableModel(
      name='3ddfa', mean=(mean.reshape(NUM_LANDMARKS, 3) * s).astype(np.float32),
      id_basis=(shp.reshape(NUM_LANDMARKS, 3, -1) * s).astype(np.float32),
      exp_basis=(exp.reshape(NUM_LANDMARKS, 3, -1) * s).astype(np.float32),
      exp_std=exp_std.astype(np.float32), landmark_valid=np.ones(NUM_LANDMARKS, bool),
      source=directory)


def _read_ibug_mapping(path: str) -> dict[int, int]:
  """Parses the `[landmark_mappings]` table of eos's ibug_to_sfm.txt: {ibug 1-based: vertex}."""
  mapping, section = {}, None
  with open(path, encoding='utf-8') as f:
    for line in f:
      line = line.split('#', 1)[0].strip()
      if line.startswith('['):
        section = line.strip('[]')
      elif section == 'landmark_mappings' and line:
        match = re.fullmatch(r'(\d+)\s*=\s*(\d+)', line)
        if not match:
          raise ValueError(f'{path}: cannot parse landmark mapping line {line!r}.')
        mapping[int(match.group(1))] = int(match.group(2))
  if not mapping:
    raise ValueError(f'{path}: no [landmark_mappings] entries found.')
  return mapping


def _contour_keypoints(vertices: np.ndarray, contour: list[int], chin: int, eye_y: float,
                       count: int) -> tuple[np.ndarray, np.ndarray]:
  """`count` points spaced evenly (frontal arc length) from the eye line down to the chin.

  The contour polyline runs top to bottom; it is cut where it crosses the eye line and where it
  passes below the chin vertex (the contour wraps under the jaw), and ends at the chin.
  """
  path = [v for v in contour if vertices[v, 1] > vertices[chin, 1]] + [chin]
  y = vertices[path, 1]
  first = max(int(np.searchsorted(-y, -eye_y)) - 1, 0)  # Last vertex above the eye line.
  path = path[first:]
  xy = vertices[path, :2]
  # Start where the first segment crosses the eye line.
  a, b = xy[0], xy[1]
  t0 = np.clip((a[1] - eye_y) / max(a[1] - b[1], 1e-9), 0.0, 1.0)
  seg = np.linalg.norm(np.diff(xy, axis=0), axis=1)
  cumulative = np.concatenate([[0.0], np.cumsum(seg)])
  start, end = t0 * seg[0], cumulative[-1]
  ids, weights = [], []
  for s in start + (end - start) * np.arange(count) / count:
    i = min(int(np.searchsorted(cumulative, s, side='right')) - 1, len(seg) - 1)
    t = (s - cumulative[i]) / seg[i]
    ids.append((path[i], path[i + 1]))
    weights.append((1.0 - t, t))
  return np.asarray(ids, np.int32), np.asarray(weights, np.float32)


def load_sfm(directory) -> morphable.MorphableModel:
  """Loads the Surrey Face Model (shape PCA + expression blendshapes) from eos's share/ files."""
  directory = os.fspath(directory)
  paths = [_require(os.path.join(directory, f), 'Surrey Face Model (patrikhuber/eos, share/)')
           for f in _SFM_FILES]
  shape = cereal.read_shape_model(paths[0])
  names, blendshapes = cereal.read_blendshapes(paths[1])
  n = shape.mean.size // 3
  if blendshapes.shape[1] != 3 * n:
    raise ValueError(f'{paths[1]}: blendshapes have {blendshapes.shape[1] // 3} vertices, the '
                     f'shape model {paths[0]} has {n}.')
  mapping = _read_ibug_mapping(paths[2])
  bad = {k: v for k, v in mapping.items() if not 1 <= k <= NUM_LANDMARKS or not 0 <= v < n}
  if bad:
    raise ValueError(f'{paths[2]}: mappings out of range (iBUG 1..68, vertex 0..{n - 1}): {bad}.')
  try:
    with open(paths[3], encoding='utf-8') as f:
      contours = json.load(f)['model_contour']
    right, left = contours['right_contour'], contours['left_contour']
  except (ValueError, KeyError) as e:
    raise ValueError(f'{paths[3]}: expected JSON {{"model_contour": {{"right_contour": [...], '
                     f'"left_contour": [...]}}}}: {e!r}') from e
  s = _SFM_DM_PER_MM
  vertices = shape.mean.reshape(n, 3).astype(np.float64)
  vertices = (vertices - vertices.mean(0)) * s

  ids = np.zeros(NUM_LANDMARKS, np.int32)
  valid = np.zeros(NUM_LANDMARKS, bool)
  for ibug, vertex in mapping.items():
    ids[ibug - 1], valid[ibug - 1] = vertex, True
  for inner, outer in _SFM_INNER_MOUTH_CORNERS.items():
    if not valid[inner]:
      ids[inner] = ids[outer]
  keypoints, weights = _vertex_keypoints(ids)
  eye_y = 0.5 * (vertices[ids[36], 1] + vertices[ids[45], 1])
  for side, contour in ((_RIGHT_JAW, right), (_LEFT_JAW, left)):
    kp, kw = _contour_keypoints(vertices, contour, ids[_CHIN], eye_y, len(side))
    keypoints[list(side)], weights[list(side)] = kp, kw
    valid[list(side)] = True
  missing = [i + 1 for i in range(NUM_LANDMARKS) if not valid[i]]
  if [m for m in missing if m - 1 not in _SFM_INNER_MOUTH_CORNERS]:
    raise ValueError(f'{paths[2]}: no vertex for iBUG landmark(s) {missing}.')

  def at_landmarks(per_vertex):  # [3N, C] -> [68, 3, C]
    return morphable.landmarks_from_vertices(per_vertex.reshape(n, 3, -1), keypoints, weights)

  return morphable.MorphableModel(
      name='sfm', mean=morphable.landmarks_from_vertices(vertices, keypoints, weights),
      id_basis=at_landmarks(shape.rescaled_basis * s),
      exp_basis=at_landmarks(blendshapes.T * s),
      exp_std=np.ones(len(names), np.float32), landmark_valid=valid, exp_names=names,
      vertices=vertices.astype(np.float32), triangles=shape.triangles, keypoints=keypoints,
      keypoint_weights=weights, source=directory)


def load_model(spec: str) -> morphable.MorphableModel:
  """A model from a spec 'embedded', 'bfm:PATH.mat', '3ddfa:DIR' or 'sfm:DIR'."""
  kind, _, path = spec.partition(':')
  if kind == 'embedded' and not path:
    return morphable.embedded_model()
  loaders = {'bfm': load_bfm_front, '3ddfa': load_3ddfa, 'sfm': load_sfm}
  if kind not in loaders or not path:
    raise ValueError(f'Model spec {spec!r}: expected "embedded", "bfm:PATH/BFM_model_front.mat", '
                     '"3ddfa:DIR" (u_base.txt, w_shp_base.txt, w_exp_base.txt, param_std.txt) or '
                     '"sfm:DIR" (eos share/ files).')
  return loaders[kind](os.path.expanduser(path))

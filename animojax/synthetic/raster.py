"""Vectorised anti-aliased 2D rasterisation primitives (numpy) for the synthetic renderers.

Shapes are described by signed distance fields (SDF, in pixels, negative inside) evaluated on the
pixel centres of a window; coverage = clip(0.5 - sdf, 0, 1) gives one pixel of anti-aliasing.
Every primitive works on a batch of N frames at once: shape parameters carry a leading N axis
and grids are [1, h, w], so results are [N, h, w]. Windows restrict the work to the pixels a
shape can touch (the union over the batch), which keeps 256x256 renders cheap.
"""

import dataclasses

import numpy as np

_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class Window:
  """Half-open pixel rectangle rows [r0, r1) x columns [c0, c1)."""
  r0: int
  r1: int
  c0: int
  c1: int

  @property
  def empty(self) -> bool:
    return self.r1 <= self.r0 or self.c1 <= self.c0

  def grid(self) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x [1, 1, w], y [1, h, 1]) of the window."""
    x = np.arange(self.c0, self.c1, dtype=np.float32) + 0.5
    y = np.arange(self.r0, self.r1, dtype=np.float32) + 0.5
    return x[None, None, :], y[None, :, None]

  def intersect(self, other: 'Window') -> 'Window':
    return Window(max(self.r0, other.r0), min(self.r1, other.r1), max(self.c0, other.c0),
                  min(self.c1, other.c1))

  def union(self, other: 'Window') -> 'Window':
    return Window(min(self.r0, other.r0), max(self.r1, other.r1), min(self.c0, other.c0),
                  max(self.c1, other.c1))


def full_window(size: int) -> Window:
  return Window(0, size, 0, size)


def window_of(points: np.ndarray, pad: float, size: int) -> Window:
  """Smallest window holding all `points` [..., 2] (x, y) of all frames, grown by `pad` pixels."""
  points = np.asarray(points, np.float32).reshape(-1, 2)
  lo = np.floor(points.min(0) - pad).astype(int)
  hi = np.ceil(points.max(0) + pad).astype(int)
  return Window(int(np.clip(lo[1], 0, size)), int(np.clip(hi[1], 0, size)),
                int(np.clip(lo[0], 0, size)), int(np.clip(hi[0], 0, size)))


def fill(sdf: np.ndarray) -> np.ndarray:
  """Anti-aliased coverage of the region sdf < 0 (sdf in pixels)."""
  return np.clip(0.5 - sdf, 0.0, 1.0)


def stroke(sdf: np.ndarray, width) -> np.ndarray:
  """Coverage of a line of `width` pixels centred on the zero level set of `sdf`."""
  return fill(np.abs(sdf) - 0.5 * np.asarray(width, np.float32))


def soft_fill(sdf: np.ndarray, softness) -> np.ndarray:
  """Coverage with a smooth edge `softness` pixels wide (blurred shapes, blush, shadows)."""
  t = np.clip(0.5 - sdf / np.maximum(np.asarray(softness, np.float32), _EPS), 0.0, 1.0)
  return t * t * (3.0 - 2.0 * t)


def _col(values: np.ndarray) -> np.ndarray:
  """[N] -> [N, 1, 1] so per-frame parameters broadcast over a [1, h, w] grid."""
  return np.asarray(values, np.float32).reshape(-1, 1, 1)


def ellipse_q(axis_a: np.ndarray, axis_b: np.ndarray) -> np.ndarray:
  """Quadratic form Q [N, 2, 2] of the ellipse {c + a cos t + b sin t} from semi-axis vectors.

  The ellipse is {d : d^T Q d = 1} with Q = (M M^T)^-1, M = [a b]; this also covers projections
  of 3D discs (a, b = projected 3D semi-axes), which need not be orthogonal.
  """
  m = np.stack([np.asarray(axis_a, np.float32), np.asarray(axis_b, np.float32)], -1)
  mmt = m @ np.swapaxes(m, -1, -2)
  # A disc seen edge-on has a singular M M^T; a tiny isotropic floor keeps it a thin ellipse.
  mmt = mmt + np.eye(2, dtype=np.float32) * 1e-4
  return np.linalg.inv(mmt)


def ellipse_sdf(x: np.ndarray, y: np.ndarray, center: np.ndarray, q: np.ndarray) -> np.ndarray:
  """Approximate SDF [N, h, w] of ellipses {d^T Q d <= 1}, center [N, 2], Q [N, 2, 2] (pixels).

  Uses g / |grad g| with g = sqrt(d^T Q d) - 1, exact on the boundary to first order, which is
  all the 1-pixel anti-aliasing and thin outlines need.
  """
  center = np.asarray(center, np.float32)
  q = np.asarray(q, np.float32)
  dx = x - _col(center[:, 0])
  dy = y - _col(center[:, 1])
  qx = _col(q[:, 0, 0]) * dx + _col(q[:, 0, 1]) * dy
  qy = _col(q[:, 1, 0]) * dx + _col(q[:, 1, 1]) * dy
  r2 = dx * qx + dy * qy
  r = np.sqrt(np.maximum(r2, _EPS))
  grad = np.sqrt(qx * qx + qy * qy) / r
  return (r - 1.0) / np.maximum(grad, _EPS)


def circle_sdf(x, y, center: np.ndarray, radius) -> np.ndarray:
  center = np.asarray(center, np.float32)
  return np.hypot(x - _col(center[:, 0]), y - _col(center[:, 1])) - _col(
      np.broadcast_to(np.asarray(radius, np.float32), center.shape[:1]))


def _grid_origin(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int, int]:
  """Origin and size of a unit-spaced pixel-centre grid from `Window.grid()`."""
  return float(x.reshape(-1)[0]), float(y.reshape(-1)[0]), x.size, y.size


def _segment_bands(ax, ay, bx, by, pad, x0, y0, w, h) -> np.ndarray:
  """Grid rows/cols [K, 4] (r0, r1, c0, c1) within `pad` of segments [N, K] (union over N)."""
  pad = np.broadcast_to(np.asarray(pad, np.float32), ax.shape[1:])
  c0 = np.floor(np.minimum(ax, bx).min(0) - pad - x0)
  c1 = np.ceil(np.maximum(ax, bx).max(0) + pad - x0) + 1
  r0 = np.floor(np.minimum(ay, by).min(0) - pad - y0)
  r1 = np.ceil(np.maximum(ay, by).max(0) + pad - y0) + 1
  bands = np.stack([np.clip(r0, 0, h), np.clip(r1, 0, h), np.clip(c0, 0, w), np.clip(c1, 0, w)],
                   -1)
  return bands.astype(np.int64)


# Cost model for choosing between evaluating all edges in one vectorised [N, K, h, w] pass and
# edge by edge within each edge's band: one Python-level edge iteration costs about as much as
# this many array elements of work.
_EDGE_OVERHEAD = 20_000


def _use_bands(bands: np.ndarray, n: int, h: int, w: int) -> bool:
  areas = np.maximum(bands[:, 1] - bands[:, 0], 0) * np.maximum(bands[:, 3] - bands[:, 2], 0)
  banded = n * float(areas.sum()) + _EDGE_OVERHEAD * len(bands)
  return banded < n * len(bands) * h * w


def _segment_distance(x, y, ax, ay, bx, by):
  """Distance from pixel centres to segments a-b and the closest point's position t in [0, 1].

  Segment coordinates [N] or [N, K] broadcast against grids [1, h, w] or [1, 1, h, w].
  """
  shape = np.shape(ax) + (1, 1)
  ax, ay, bx, by = (np.asarray(v, np.float32).reshape(shape) for v in (ax, ay, bx, by))
  ex, ey = bx - ax, by - ay
  wx, wy = x - ax, y - ay
  t = np.clip((wx * ex + wy * ey) / np.maximum(ex * ex + ey * ey, _EPS), 0.0, 1.0)
  return np.hypot(wx - ex * t, wy - ey * t), t


def polygon_sdf(x: np.ndarray, y: np.ndarray, vertices: np.ndarray,
                max_dist: float = 6.0) -> np.ndarray:
  """SDF [N, h, w] of closed polygons vertices [N, K, 2] (even-odd rule, any winding).

  x, y must come from `Window.grid()` (unit-spaced pixel centres). Distances are exact up to
  `max_dist` pixels and clamped beyond it: anti-aliasing and outlines only need the ~2 pixels
  around the boundary, and computing each edge's distances only in its own band is what makes
  large polygons cheap. Pass a larger `max_dist` for wide soft edges.
  """
  vertices = np.asarray(vertices, np.float32)
  n, count = vertices.shape[:2]
  x0, y0, w, h = _grid_origin(x, y)
  ax, ay = vertices[..., 0], vertices[..., 1]
  bx, by = np.roll(ax, -1, axis=1), np.roll(ay, -1, axis=1)
  # Inside test by scanline parity: each edge toggles the pixels right of where it crosses a
  # pixel-centre row; a cumulative sum along the row turns toggles into inside/outside.
  rows = y.reshape(-1)[None, None, :]
  crosses = (ay[..., None] <= rows) != (by[..., None] <= rows)  # [N, K, h]
  slope = (bx - ax) / np.where(by == ay, _EPS, by - ay)
  x_cross = ax[..., None] + (rows - ay[..., None]) * slope[..., None]
  first = np.clip(np.floor(x_cross - x0) + 1, 0, w).astype(np.int64)
  frame = np.arange(n)[:, None, None]
  row = np.arange(h)[None, None, :]
  flat = ((frame * h + row) * (w + 1) + first)[crosses]
  toggles = np.bincount(flat, minlength=n * h * (w + 1)).reshape(n, h, w + 1)
  inside = (np.cumsum(toggles[..., :w], axis=-1) & 1).astype(bool)
  bands = _segment_bands(ax, ay, bx, by, max_dist, x0, y0, w, h)
  if not _use_bands(bands, n, h, w):
    d, _ = _segment_distance(x[..., None, :, :], y[..., None, :, :], ax, ay, bx, by)
    dist = np.minimum(d.min(1), max_dist)
  else:
    dist = np.full((n, h, w), max_dist, np.float32)
    for k, (r0, r1, c0, c1) in enumerate(bands):
      if r1 <= r0 or c1 <= c0:
        continue
      d, _ = _segment_distance(x[..., c0:c1], y[:, r0:r1], ax[:, k], ay[:, k], bx[:, k], by[:, k])
      np.minimum(dist[:, r0:r1, c0:c1], d, out=dist[:, r0:r1, c0:c1])
  return np.where(inside, -dist, dist)


def polyline_sdf(x: np.ndarray, y: np.ndarray, points: np.ndarray, widths,
                 max_dist: float = 6.0) -> np.ndarray:
  """SDF [N, h, w] of an open thick curve through points [N, K, 2] with per-point widths.

  widths: scalar, [K] or [N, K] full widths in pixels, linearly interpolated along segments, so
  tapered brush strokes (lash lines, brows) come out naturally. Ends are round. x, y come from
  `Window.grid()`; values are clamped to `max_dist` pixels outside the stroke.
  """
  points = np.asarray(points, np.float32)
  n, count = points.shape[:2]
  x0, y0, w, h = _grid_origin(x, y)
  widths = np.broadcast_to(np.asarray(widths, np.float32), (n, count))
  ax, ay, bx, by = points[:, :-1, 0], points[:, :-1, 1], points[:, 1:, 0], points[:, 1:, 1]
  w0, w1 = widths[:, :-1], widths[:, 1:]
  pads = max_dist + 0.5 * np.maximum(w0, w1).max(0)
  bands = _segment_bands(ax, ay, bx, by, pads, x0, y0, w, h)
  if not _use_bands(bands, n, h, w):
    d, t = _segment_distance(x[..., None, :, :], y[..., None, :, :], ax, ay, bx, by)
    half = 0.5 * (w0[..., None, None] + t * (w1 - w0)[..., None, None])
    return np.minimum((d - half).min(1), max_dist)
  sdf = np.full((n, h, w), max_dist, np.float32)
  for k, (r0, r1, c0, c1) in enumerate(bands):
    if r1 <= r0 or c1 <= c0:
      continue
    d, t = _segment_distance(x[..., c0:c1], y[:, r0:r1], ax[:, k], ay[:, k], bx[:, k], by[:, k])
    half = 0.5 * (_col(w0[:, k]) + t * _col(w1[:, k] - w0[:, k]))
    np.minimum(sdf[:, r0:r1, c0:c1], d - half, out=sdf[:, r0:r1, c0:c1])
  return sdf


def shift(field: np.ndarray, dx: float, dy: float, fill_value: float) -> np.ndarray:
  """field [N, h, w] translated by (dx, dy) pixels with bilinear interpolation.

  Cheap stand-in for re-rasterising a translated shape (cast shadows); pixels shifted in from
  outside the window get `fill_value`.
  """
  n, h, w = field.shape
  pad = int(np.ceil(max(abs(dx), abs(dy)))) + 1
  padded = np.pad(field, ((0, 0), (pad, pad), (pad, pad)), constant_values=fill_value)
  ix, iy = int(np.floor(dx)), int(np.floor(dy))
  fx, fy = np.float32(dx - ix), np.float32(dy - iy)

  def view(oy, ox):  # Output pixel (r, c) reads field at (r - dy, c - dx).
    r0, c0 = pad - iy - oy, pad - ix - ox
    return padded[:, r0:r0 + h, c0:c0 + w]

  return ((1 - fy) * ((1 - fx) * view(0, 0) + fx * view(0, 1))
          + fy * ((1 - fx) * view(1, 0) + fx * view(1, 1)))


def level_fill(field: np.ndarray, level) -> np.ndarray:
  """Anti-aliased coverage of {field > level} for a smooth scalar field [N, h, w].

  The field's screen-space gradient (finite differences, like a shader's fwidth) turns it into
  an approximate pixel SDF, so e.g. cel-shading terminators get the same 1-pixel AA as shapes.
  """
  field = np.asarray(field, np.float32)
  grads = [np.gradient(field, axis=axis) if field.shape[axis] > 1 else 0.0 for axis in (1, 2)]
  grad = np.sqrt(grads[0] ** 2 + grads[1] ** 2)
  return fill((np.asarray(level, np.float32) - field) / np.maximum(grad, _EPS))


def convex_hull(points: np.ndarray) -> np.ndarray:
  """Per-frame convex hull of points [N, K, 2], padded to K vertices by repeating the last one.

  Used for silhouettes of convex outlines (a face seen at an angle) whose projected contour can
  fold over itself; zero-length padding edges change neither distances nor the inside test.
  """
  points = np.asarray(points, np.float32)
  out = np.empty_like(points)
  for i, frame in enumerate(points):
    order = np.lexsort((frame[:, 1], frame[:, 0]))
    hull = []
    for sweep in (order, order[::-1]):  # Andrew's monotone chain: lower then upper hull.
      chain = []
      for k in sweep:
        while len(chain) >= 2:
          (ax, ay), (bx, by) = frame[chain[-2]], frame[chain[-1]]
          cx, cy = frame[k]
          if (bx - ax) * (cy - ay) - (by - ay) * (cx - ax) > 0:
            break
          chain.pop()
        chain.append(k)
      hull.extend(chain[:-1])
    out[i, :len(hull)] = frame[hull]
    out[i, len(hull):] = frame[hull[-1]]
  return out


def catmull_rom(points: np.ndarray, samples_per_segment: int, closed: bool = False) -> np.ndarray:
  """Samples a uniform Catmull-Rom spline through points [..., K, D] (passes through them)."""
  points = np.asarray(points, np.float32)
  if closed:
    ext = np.concatenate([points[..., -1:, :], points, points[..., :2, :]], -2)
  else:
    ext = np.concatenate([2 * points[..., :1, :] - points[..., 1:2, :], points,
                          2 * points[..., -1:, :] - points[..., -2:-1, :]], -2)
  segments = ext.shape[-2] - 3
  t = np.arange(samples_per_segment, dtype=np.float32) / samples_per_segment
  t2, t3 = t * t, t * t * t
  weights = 0.5 * np.stack([-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2],
                           -1)  # [T, 4]
  out = []
  for s in range(segments):
    ctrl = ext[..., s:s + 4, :]  # [..., 4, D]
    out.append(np.einsum('tj,...jd->...td', weights, ctrl))
  if not closed:
    out.append(points[..., -1:, :])
  return np.concatenate(out, -2)


class Canvas:
  """A batch of N RGB images with coverage alpha, painted back-to-front with 'over'.

  Colour starts at `background` (white by default) and alpha at 0, so after painting `rgb` is
  the picture composited on the background and `alpha` the union coverage of what was painted.
  """

  def __init__(self, n: int, size: int, background=(1.0, 1.0, 1.0)):
    self.n = n
    self.size = size
    self.rgb = np.empty((n, size, size, 3), np.float32)
    self.rgb[...] = np.asarray(background, np.float32).reshape(-1, 1, 1, 3)
    self.alpha = np.zeros((n, size, size), np.float32)

  def paint(self, window: Window, coverage: np.ndarray, color, opacity=1.0,
            affects_alpha: bool = True) -> None:
    """Paints `color` ([3], [N, 3] or [N, h, w, 3]) with coverage [N, h, w] into `window`."""
    if window.empty:
      return
    cov = np.asarray(coverage, np.float32)
    if not np.isscalar(opacity):
      opacity = np.asarray(opacity, np.float32)
      opacity = opacity.reshape(opacity.shape + (1,) * (3 - opacity.ndim))
    cov = np.broadcast_to(cov * opacity, (self.n, window.r1 - window.r0, window.c1 - window.c0))
    color = np.asarray(color, np.float32)
    if color.ndim == 2:  # [N, 3]
      color = color[:, None, None, :]
    # Only touch the rows/columns some frame covers: outlines, shadows and highlights cover a
    # small part of their (batch-union) window, and blending is the costliest step.
    covered = cov > 0
    rows = np.flatnonzero(covered.any(axis=(0, 2)))
    if rows.size == 0:
      return
    cols = np.flatnonzero(covered.any(axis=(0, 1)))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    cov = cov[:, r0:r1, c0:c1]
    if color.ndim == 4:  # A per-pixel colour field (possibly broadcast along rows or columns).
      color = color[:, r0:r1] if color.shape[1] > 1 else color
      color = color[:, :, c0:c1] if color.shape[2] > 1 else color
    window = Window(window.r0 + r0, window.r0 + r1, window.c0 + c0, window.c0 + c1)
    rgb = self.rgb[:, window.r0:window.r1, window.c0:window.c1]
    rgb += cov[..., None] * (color - rgb)
    if affects_alpha:
      alpha = self.alpha[:, window.r0:window.r1, window.c0:window.c1]
      alpha += cov * (1.0 - alpha)

  def crop(self, window: Window, array: str = 'alpha') -> np.ndarray:
    return getattr(self, array)[:, window.r0:window.r1, window.c0:window.c1]

  def to_uint8(self) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.clip(np.rint(self.rgb * 255.0), 0, 255).astype(np.uint8)
    alpha = np.clip(np.rint(self.alpha * 255.0), 0, 255).astype(np.uint8)[..., None]
    return rgb, alpha


def hex_rgb(code: str) -> np.ndarray:
  """'#rrggbb' -> float32[3] in [0, 1]."""
  code = code.lstrip('#')
  return np.array([int(code[i:i + 2], 16) for i in (0, 2, 4)], np.float32) / 255.0

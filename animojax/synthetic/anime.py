"""Anime-style head renderer for the synthetic dataset (vectorised numpy, anti-aliased).

Facial features are curves in a frontal "head frame" (x = the character's left, y up, units of
the head half-width), lifted onto a face ellipsoid, rotated by R(pitch, yaw, roll) about the
neck and projected orthographically, so head rotation foreshortens and shifts them like a 3D
model would; the neck and shoulders do not rotate. Every morph of `semantics.MORPH_NAMES` moves
lids, brows or the mouth. `*_left` features are the character's own left, i.e. on the RIGHT half
of the image when facing the camera.

Rendering is batched over the N frames of one character; output is composited on white with a
separate coverage alpha, like AnimeCeleb's RGBA renders.
"""

import numpy as np

from animojax.face3d import rotations
from animojax.face3d import semantics
from animojax.synthetic import face_model
from animojax.synthetic import identities
from animojax.synthetic import raster

STYLE_NAMES = ('flat', 'cel', 'soft', 'sketch')
FLAT, CEL, SOFT, SKETCH = range(4)

_SCALE = 0.29  # Pixels per head unit, as a fraction of the image size.
_CENTER_Y = -0.3  # Head-frame y at the image centre (the head sits slightly above centre).
_PIVOT = np.array([0.0, -0.6, -0.15], np.float32)  # Top of the neck.
_LIGHT = np.array([-0.35, 0.45, 0.82], np.float32) / np.linalg.norm([-0.35, 0.45, 0.82])
_LINE = 0.016  # Outline width in head units.


def _lerp(a, b, t):
  return a + (b - a) * t


def _mix(color, other, t) -> np.ndarray:
  return _lerp(np.asarray(color, np.float32), np.asarray(other, np.float32), np.float32(t))


class _View:
  """Head pose of a batch: head frame -> posed 3D -> pixels."""

  def __init__(self, semantic: np.ndarray, size: int):
    angles = np.radians(semantic[:, semantics.ANGLE_SLICE])
    self.n = semantic.shape[0]
    self.size = size
    self.ppu = _SCALE * size
    self.rot = rotations.rotation_matrix(angles[:, 0], angles[:, 1], angles[:, 2])
    # Pixel offsets -> head-frame-sized world offsets (y flips: rows grow downward).
    self._flip = np.diag([1.0 / self.ppu, -1.0 / self.ppu]).astype(np.float32)

  def pose(self, points) -> np.ndarray:
    points = np.broadcast_to(np.asarray(points, np.float32), (self.n,) + np.shape(points)[-2:])
    return np.einsum('nij,nkj->nki', self.rot, points - _PIVOT) + _PIVOT

  def to_pixels(self, posed: np.ndarray) -> np.ndarray:
    return face_model.project(posed, self.size, _SCALE, _CENTER_Y, camera_distance=None)

  def screen(self, points) -> np.ndarray:
    """Head-frame points [K, 3] or [N, K, 3] -> pixels [N, K, 2]."""
    return self.to_pixels(self.pose(points))

  def screen_static(self, points) -> np.ndarray:
    """Points attached to the body (not rotated) -> pixels [N, K, 2]."""
    points = np.broadcast_to(np.asarray(points, np.float32), (self.n,) + np.shape(points)[-2:])
    return self.to_pixels(points)

  def facing(self, normals) -> np.ndarray:
    """Posed z of head-frame unit normals [N, 3]: <= 0 means the surface faces away."""
    return np.einsum('nj,nj->n', self.rot[:, 2], np.broadcast_to(normals, (self.n, 3)))

  def disc(self, center, axis_a, axis_b):
    """3D ellipse (centre + semi-axis vectors, head frame, [N, 3]) -> pixel centre and Q."""
    center_px = self.screen(np.asarray(center, np.float32)[..., None, :])[:, 0]
    a = np.einsum('nij,nj->ni', self.rot, np.broadcast_to(axis_a, (self.n, 3)))[:, :2]
    b = np.einsum('nij,nj->ni', self.rot, np.broadcast_to(axis_b, (self.n, 3)))[:, :2]
    scale = np.array([self.ppu, -self.ppu], np.float32)
    return center_px, raster.ellipse_q(a * scale, b * scale)

  def ellipsoid(self, center, radii):
    """Posed ellipsoid: pixel centre [N, 2], silhouette Q [N, 2, 2] (pixels), posed A [N, 3, 3]."""
    a_head = np.diag(1.0 / np.square(np.asarray(radii, np.float32)))
    a_world = self.rot @ a_head @ np.swapaxes(self.rot, 1, 2)
    # Orthographic silhouette: eliminate z from the quadric (Schur complement).
    q_world = a_world[:, :2, :2] - (a_world[:, :2, 2:] @ a_world[:, 2:, :2]) / a_world[:, 2:, 2:]
    q_px = self._flip @ q_world @ self._flip
    center_px = self.screen(np.asarray(center, np.float32)[None])[:, 0]
    return center_px, q_px, a_world

  def ellipsoid_light(self, window: raster.Window, center, radii) -> np.ndarray:
    """Lambert term [N, h, w] of the (posed) front surface of an ellipsoid lit by `_LIGHT`.

    Pixels beyond the ellipsoid's silhouette get its silhouette normal, which shades the chin
    and jaw (which extend past the face ellipsoid) like a turned-away surface.
    """
    center_px, _, a = self.ellipsoid(center, radii)
    x, y = window.grid()
    col = lambda v: v[:, None, None]
    dx = (x - col(center_px[:, 0])) / self.ppu
    dy = -(y - col(center_px[:, 1])) / self.ppu
    b = col(a[:, 0, 2]) * dx + col(a[:, 1, 2]) * dy
    c = col(a[:, 0, 0]) * dx * dx + 2 * col(a[:, 0, 1]) * dx * dy + col(a[:, 1, 1]) * dy * dy - 1
    dz = (-b + np.sqrt(np.maximum(b * b - col(a[:, 2, 2]) * c, 0.0))) / col(a[:, 2, 2])
    # The quadric's gradient A p is the (unnormalised) normal.
    nx, ny, nz = (col(a[:, i, 0]) * dx + col(a[:, i, 1]) * dy + col(a[:, i, 2]) * dz
                  for i in range(3))
    norm = np.sqrt(nx * nx + ny * ny + nz * nz) + 1e-6
    return np.clip((nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2]) / norm, 0.0, 1.0)


class _AnimeRenderer:
  """Draws one character in N poses/expressions. Methods paint back to front."""

  def __init__(self, character: identities.AnimeCharacter, semantic: np.ndarray, size: int):
    self.c = character
    self.sem = semantic
    self.n = semantic.shape[0]
    self.size = size
    self.view = _View(semantic, size)
    self.ppu = self.view.ppu
    self.style = int(character.style)
    if self.style not in range(len(STYLE_NAMES)):
      raise ValueError(f'AnimeCharacter.style must be in 0..{len(STYLE_NAMES) - 1}, got '
                       f'{character.style}.')
    self.canvas = raster.Canvas(self.n, size)
    self.line_px = max(_LINE * self.ppu * (2.2 if self.style == SKETCH else 1.0), 0.6)
    fw = character.face_width
    self.face_center = np.array([0.0, -0.12, 0.0], np.float32)
    self.face_radii = np.array([fw + 0.04, 1.22, 0.95], np.float32)
    self.shell_center = np.array([0.0, 0.12, -0.04], np.float32)
    self.shell_radii = np.array([fw + 0.14, 1.08, 1.04], np.float32)
    # Full-canvas face coverage used to clip the facial features, filled by prepare_face().
    self.face_mask = np.zeros((self.n, size, size), np.float32)
    skin = np.asarray(character.skin, np.float32)
    hair = np.asarray(character.hair, np.float32)
    if self.style == SKETCH:  # Pencil-on-paper look: pale fills carry the heavy lines.
      skin, hair = _mix(skin, (1.0, 0.98, 0.95), 0.45), _mix(hair, (1.0, 1.0, 1.0), 0.35)
    self.skin = skin
    self.skin_shadow = skin * np.array([0.9, 0.78, 0.8], np.float32)
    self.skin_line = _mix(skin * np.array([0.55, 0.33, 0.3], np.float32), (0.2, 0.1, 0.1), 0.3)
    self.hair = hair
    self.hair_shadow = hair * np.array([0.7, 0.68, 0.78], np.float32)
    self.hair_light = _mix(hair, (1.0, 1.0, 1.0), 0.4)
    self.hair_line = _mix(hair * 0.35, (0.1, 0.05, 0.1), 0.4)
    self.ink = np.array([0.16, 0.1, 0.12], np.float32)

  # ---- Geometry helpers -------------------------------------------------------------------

  def face_z(self, u, v):
    """Front surface z of the face ellipsoid at head-frame (u, v)."""
    r = self.face_radii
    t = 1.0 - (u / r[0]) ** 2 - ((v - self.face_center[1]) / r[1]) ** 2
    return r[2] * np.sqrt(np.clip(t, 0.0, None))

  def lift(self, uv, dz=0.0, min_z=0.0):
    """Head-frame 2D points [..., 2] -> 3D points on the face surface (+ dz)."""
    uv = np.asarray(uv, np.float32)
    z = np.maximum(self.face_z(uv[..., 0], uv[..., 1]), min_z) + dz
    return np.concatenate([uv, z[..., None]], -1).astype(np.float32)

  def surface_tangents(self, uv):
    """Unit tangents (along x, along y) of the face surface at [N, 2] points."""
    eps = 1e-3
    p = self.lift(uv)
    du = self.lift(uv + np.array([eps, 0], np.float32)) - p
    dv = self.lift(uv + np.array([0, eps], np.float32)) - p
    return (du / np.linalg.norm(du, axis=-1, keepdims=True),
            dv / np.linalg.norm(dv, axis=-1, keepdims=True))

  def window(self, points_px, pad=3.0) -> raster.Window:
    return raster.window_of(points_px, pad + 2 * self.line_px, self.size)

  def fill_polygon(self, points_px, color, outline=None, clip=None, opacity=1.0, line=None,
                   affects_alpha=True):
    """Fills (and optionally outlines) polygons [N, K, 2]; returns (window, sdf)."""
    win = self.window(points_px)
    if win.empty:
      return win, None
    x, y = win.grid()
    sdf = raster.polygon_sdf(x, y, points_px)
    self.paint_sdf(win, sdf, color, outline, clip, opacity, line, affects_alpha)
    return win, sdf

  def paint_sdf(self, win, sdf, color, outline=None, clip=None, opacity=1.0, line=None,
                affects_alpha=True):
    """Fills the region sdf < 0 with `color` and/or strokes its boundary with `outline`."""
    cov = raster.fill(sdf)
    if clip is not None:
      cov = cov * clip
    if color is not None:
      self.canvas.paint(win, cov, color, opacity, affects_alpha)
    if outline is not None:
      line_cov = raster.stroke(sdf, self.line_px if line is None else line)
      if clip is not None:
        line_cov = line_cov * clip
      self.canvas.paint(win, line_cov, outline, opacity, affects_alpha)

  def face_clip(self, win):
    return self.face_mask[:, win.r0:win.r1, win.c0:win.c1]

  def shade(self, win, base, shadow, light, threshold=0.42):
    """Per-style colour field [N, h, w, 3] of a surface with lambert term `light` [N, h, w]."""
    base = np.asarray(base, np.float32)
    shadow = np.asarray(shadow, np.float32)
    if self.style == FLAT:
      return np.broadcast_to(base, light.shape + (3,))
    if self.style == CEL:
      lit = raster.level_fill(light, threshold)
      return _lerp(shadow, base, lit[..., None])
    if self.style == SOFT:
      t = np.clip((light - 0.05) / 0.6, 0.0, 1.0)[..., None]
      return _lerp(shadow * 0.95, _mix(base, (1.0, 1.0, 1.0), 0.12), t)
    # Sketch: flat pale fill with diagonal pencil hatching where the light is low.
    x, y = win.grid()
    period = max(self.ppu * 0.06, 2.5)
    to_line = np.abs(((x + y) / period) % 1.0 - 0.5) * period  # Distance to the hatch line.
    hatch = raster.stroke(to_line, 0.3 * period) * (1.0 - raster.level_fill(light, threshold))
    return _lerp(np.broadcast_to(base, light.shape + (3,)), shadow * 0.8, 0.6 * hatch[..., None])

  # ---- Body --------------------------------------------------------------------------------

  def back_hair(self):
    c = self.c
    fw = c.face_width
    length = (-0.75, -1.4, -2.4)[c.hair_length]
    spread = (0.02, 0.2, 0.32)[c.hair_length]
    # Right half of the silhouette (x < 0), from the crown down to the hem; mirrored.
    half = np.array([[-(fw + 0.16), 0.2], [-(fw + 0.14 + 0.5 * spread), 0.5 * length],
                     [-(fw + 0.1 + spread), length + 0.1], [-(fw + 0.02 + spread), length],
                     [-0.6, length + 0.12], [-0.25, length + 0.02]], np.float32)
    ctrl = np.concatenate([half, half[::-1] * np.array([-1, 1], np.float32)])
    outline = np.concatenate([raster.catmull_rom(ctrl, 3), [[0.0, 0.8]]])
    points = np.concatenate([outline, np.full((len(outline), 1), -0.45, np.float32)], -1)
    # Hanging hair follows gravity: the lower a point, the less it follows the head's rotation.
    hang = np.clip((0.1 - outline[:, 1]) / 1.6, 0.0, 0.75)[None, :, None]
    poly = _lerp(self.view.screen(points), self.view.screen_static(points), hang)
    center, q, _ = self.view.ellipsoid(self.shell_center, self.shell_radii)
    win = self.window(np.concatenate([poly, center[:, None] + 1.15 * self.ppu *
                                      np.array([[[-1, -1], [1, 1]]], np.float32)], 1))
    x, y = win.grid()
    sdf = np.minimum(raster.polygon_sdf(x, y, poly), raster.ellipse_sdf(x, y, center, q))
    color = self.hair_shadow if self.style != FLAT else self.hair * 0.85
    self.paint_sdf(win, sdf, color, self.hair_line)

  def neck_and_body(self):
    c = self.c
    neck = np.array([[-0.25, -0.35], [-0.24, -1.0], [-0.3, -1.5], [0.3, -1.5],
                     [0.24, -1.0], [0.25, -0.35]], np.float32)
    neck3 = np.concatenate([neck, np.full((6, 1), -0.2, np.float32)], -1)
    neck_px = self.view.screen_static(neck3)
    win, neck_sdf = self.fill_polygon(neck_px, self.skin_shadow if self.style != FLAT
                                      else self.skin, self.skin_line)
    if self.style != FLAT:  # The chin's shadow on the neck: the face shape moved down.
      fwin = self.face_win
      shadow = raster.shift(self.face_sdf, 0.04 * self.ppu, 0.16 * self.ppu, 1e3)
      sub = win.intersect(fwin)
      if not sub.empty:
        cov = (raster.fill(self.crop(shadow, fwin, sub))
               * raster.fill(self.crop(neck_sdf, win, sub)))
        self.canvas.paint(sub, cov, self.skin_shadow * 0.85)
    # Shoulders and clothes.
    sx = np.array([0.0, 0.3, 0.75, 1.2, 1.45, 1.6, 1.65], np.float32)
    sy = np.array([-1.36, -1.36, -1.5, -1.66, -1.85, -2.1, -2.5], np.float32)
    body = np.concatenate([np.stack([-sx[::-1], sy[::-1]], -1), np.stack([sx, sy], -1)[1:]])
    body = raster.catmull_rom(body, 3)
    body3 = np.concatenate([body, np.zeros((len(body), 1), np.float32)], -1)
    body_px = self.view.screen_static(body3)
    clothes = np.asarray(c.clothes, np.float32)
    if self.style == SKETCH:
      clothes = _mix(clothes, (1, 1, 1), 0.45)
    win_b, body_sdf = self.fill_polygon(body_px, clothes, self.ink)
    if self.style in (CEL, SOFT):  # Shade the side away from the light.
      x, _ = win_b.grid()
      side = (x - self.size / 2) / (1.6 * self.ppu)
      t = raster.level_fill(side, 0.45) if self.style == CEL else np.clip(side * 0.8, 0, 1)
      self.canvas.paint(win_b, raster.fill(body_sdf) * t, clothes * 0.78)
    # Collar: round band, sailor collar or hoodie strings, in a contrasting colour.
    collar_color = _mix((1.0, 1.0, 1.0), clothes, 0.15) if c.collar != 2 else clothes * 0.8
    if c.collar == 1:
      collar = np.array([[-0.36, -1.32], [-0.95, -1.55], [-0.5, -1.95], [0.0, -1.68],
                         [0.5, -1.95], [0.95, -1.55], [0.36, -1.32], [0.0, -1.6]], np.float32)
    else:
      collar = np.array([[-0.36, -1.32], [-0.5, -1.45], [0.0, -1.68], [0.5, -1.45],
                         [0.36, -1.32], [0.0, -1.55]], np.float32)
    collar3 = np.concatenate([collar, np.zeros((len(collar), 1), np.float32)], -1)
    self.fill_polygon(self.view.screen_static(collar3), collar_color, self.ink)
    if c.collar == 2:  # Hoodie strings.
      for side in (-1, 1):
        pts = np.array([[0.12 * side, -1.6, 0], [0.14 * side, -1.85, 0],
                        [0.12 * side, -2.1, 0]], np.float32)
        pts_px = self.view.screen_static(pts)
        w = self.window(pts_px)
        x, y = w.grid()
        self.paint_sdf(w, raster.polyline_sdf(x, y, pts_px, 0.05 * self.ppu),
                       (0.96, 0.96, 0.96), self.ink)

  def ears(self):
    fw = self.c.face_width
    for sign in (-1.0, 1.0):
      center = np.array([sign * (fw + 0.02), -0.3, -0.12], np.float32)
      center_px, q = self.view.disc(np.broadcast_to(center, (self.n, 3)),
                                    np.array([0, 0.17, 0], np.float32),
                                    np.array([sign * 0.08, 0, -0.08], np.float32))
      win = self.window(center_px[:, None] + np.array([[[-1, -1], [1, 1]]]) * 0.25 * self.ppu)
      x, y = win.grid()
      sdf = raster.ellipse_sdf(x, y, center_px, q)
      self.paint_sdf(win, sdf, self.skin_shadow if self.style != FLAT else self.skin,
                     self.skin_line)

  # ---- Face --------------------------------------------------------------------------------

  def jaw_points(self):
    c = self.c
    fw = c.face_width
    half = np.array([[-0.99 * fw, 0.1], [-0.96 * fw, -0.32], [-0.86 * fw, -0.6],
                     [-0.62 * fw, -0.86], [-0.28 * fw, c.chin_y + 0.08]], np.float32)
    ctrl = np.concatenate([half, [[0.0, c.chin_y]], half[::-1] * np.array([-1, 1], np.float32)])
    curve = raster.catmull_rom(ctrl, 3)
    closing = np.array([[0.6, 0.5], [-0.6, 0.5]], np.float32)
    return np.concatenate([curve, closing])

  def prepare_face(self):
    """Face silhouette SDF (cranium ellipse U jaw polygon) on a window that also covers the
    neck (for the chin's shadow), and the face coverage mask used to clip features."""
    jaw = self.lift(self.jaw_points(), min_z=0.12)
    # The outline is convex; the hull keeps it clean if the projected contour folds when turned.
    jaw_px = raster.convex_hull(self.view.screen(jaw))
    center, q, _ = self.view.ellipsoid([0.0, 0.0, -0.02],
                                       [self.c.face_width + 0.02, 1.0, 0.95])
    box = center[:, None] + np.array([[[-1, -1], [1, 1.6]]], np.float32) * 1.05 * self.ppu
    win = self.window(np.concatenate([jaw_px, box], 1))
    x, y = win.grid()
    self.face_win = win
    self.face_sdf = np.minimum(raster.polygon_sdf(x, y, jaw_px, max_dist=0.2 * self.ppu),
                               raster.ellipse_sdf(x, y, center, q))
    self.face_mask[:, win.r0:win.r1, win.c0:win.c1] = raster.fill(self.face_sdf)

  def face(self):
    win, sdf = self.face_win, self.face_sdf
    light = self.view.ellipsoid_light(win, self.face_center, self.face_radii)
    color = self.shade(win, self.skin, self.skin_shadow, light, threshold=0.2)
    self.canvas.paint(win, raster.fill(sdf), color)
    self.canvas.paint(win, raster.stroke(sdf, self.line_px), self.skin_line)

  def blush(self):
    if not self.c.blush:
      return
    for sign in (-1.0, 1.0):
      uv = np.array([sign * (self.c.eye_spacing + 0.1), self.c.eye_y - 0.26], np.float32)
      center3 = np.broadcast_to(self.lift(uv, 0.01), (self.n, 3))
      tu, tv = self.surface_tangents(np.broadcast_to(uv, (self.n, 2)))
      center_px, q = self.view.disc(center3, tu * 0.16, tv * 0.07)
      win = self.window(center_px[:, None] + np.array([[[-1, -1], [1, 1]]]) * 0.25 * self.ppu)
      x, y = win.grid()
      sdf = raster.ellipse_sdf(x, y, center_px, q)
      pink = np.array([1.0, 0.45, 0.5], np.float32)
      if self.style == SKETCH:  # Manga-style blush: short diagonal strokes.
        period = max(0.045 * self.ppu, 2.0)
        phase = np.abs(((x - 1.8 * y) / period) % 1.0 - 0.5) * period
        cov = raster.fill(phase - 0.25 * period * 0.6) * raster.fill(sdf)
        self.canvas.paint(win, cov * self.face_clip(win), pink * 0.8, 0.8)
      else:
        cov = raster.soft_fill(sdf, 0.06 * self.ppu)
        self.canvas.paint(win, cov * self.face_clip(win), pink, 0.35)

  def eye_shape(self, sign):
    """Upper/lower lid curves [N, K, 2], iris centre [N, 2] and iris scale [N] for one side."""
    c = self.c
    side = 'left' if sign > 0 else 'right'
    idx = {s: semantics.morph_index(f'eye_{s}_{side}') for s in semantics.EYE_STATES}
    closed, flat, wide = (self.sem[:, idx[s], None] for s in semantics.EYE_STATES)
    s = np.linspace(0.0, 1.0, 13, dtype=np.float32)[None]  # Inner (0) to outer (1) corner.
    h, w = c.eye_height, c.eye_width
    hump = np.clip(np.sin(np.pi * s), 0.0, 1.0)
    base_up = h * hump ** 0.55 * (0.85 + 0.3 * s) + c.eye_tilt * s
    base_lo = -0.8 * h * hump ** 0.85 + c.eye_tilt * s * 0.6
    closed_line = base_lo * 0.75 + 0.15 * h * hump
    flat_lid = np.minimum(base_up, 0.32 * h + c.eye_tilt * s * 0.5)
    upper = (base_up + closed * (closed_line - base_up) + flat * (flat_lid - base_up)
             + wide * 0.32 * base_up)
    lower = (base_lo + closed * (closed_line - base_lo) + wide * 0.25 * base_lo
             + flat * 0.1 * h * hump)
    upper = np.maximum(upper, lower)
    u = sign * (c.eye_spacing - w + 2 * w * s)
    upper_uv = np.stack([np.broadcast_to(u, upper.shape), c.eye_y + upper], -1)
    lower_uv = np.stack([np.broadcast_to(u, lower.shape), c.eye_y + lower], -1)
    iris_center = np.stack([np.full(self.n, sign * c.eye_spacing),
                            np.full(self.n, c.eye_y - 0.05 * h)], -1).astype(np.float32)
    iris_scale = 1.0 - 0.38 * wide[:, 0]
    return upper_uv, lower_uv, iris_center, iris_scale

  def facing(self, uv) -> np.ndarray:
    """Opacity [N, 1, 1] of a feature at head-frame uv [2]: fades out as its surface turns
    away from the camera (never within +-20 degrees, but keeps larger angles sensible)."""
    p = self.lift(np.asarray(uv, np.float32))
    r = self.face_radii
    normal = (p - self.face_center) / np.square(r)
    normal = normal / np.linalg.norm(normal)
    return np.clip(self.view.facing(normal) / 0.25, 0.0, 1.0)[:, None, None]

  def eyes(self):
    c = self.c
    for sign in (1.0, -1.0):
      upper_uv, lower_uv, iris_uv, iris_scale = self.eye_shape(sign)
      white_uv = np.concatenate([upper_uv, lower_uv[:, ::-1]], 1)
      white_px = self.view.screen(self.lift(white_uv, 0.01))
      upper_px = self.view.screen(self.lift(upper_uv, 0.015))
      lower_px = self.view.screen(self.lift(lower_uv, 0.015))
      pad = 0.14 * self.ppu
      win = self.window(np.concatenate([white_px, upper_px], 1), pad=pad)
      if win.empty:
        continue
      x, y = win.grid()
      clip = self.face_clip(win) * self.facing([sign * c.eye_spacing, c.eye_y])
      white_sdf = raster.polygon_sdf(x, y, white_px)
      white_cov = raster.fill(white_sdf) * clip
      white = np.array([1.0, 1.0, 1.0], np.float32)
      self.canvas.paint(win, white_cov, white)
      if self.style in (CEL, SOFT, SKETCH):  # Shadow the upper lid casts on the eye white.
        lid_px = np.concatenate([upper_px, upper_px[:, ::-1] + np.array(
            [0, 0.07 * self.ppu], np.float32)], 1)
        lid = raster.fill(raster.polygon_sdf(x, y, lid_px))
        if self.style == SOFT:
          lid = raster.soft_fill(raster.polygon_sdf(x, y, lid_px), 0.04 * self.ppu)
        self.canvas.paint(win, lid * white_cov, (0.78, 0.8, 0.9))
      # Iris: a disc on the eye surface, clipped by the lids.
      iris_uv3 = self.lift(iris_uv, 0.005)
      tu, tv = self.surface_tangents(iris_uv)
      rx = (c.iris_size * c.eye_width * iris_scale)[:, None]
      iris_c, iris_q = self.view.disc(iris_uv3, tu * rx, tv * rx * 1.3)
      iris_sdf = raster.ellipse_sdf(x, y, iris_c, iris_q)
      iris_cov = raster.fill(iris_sdf) * white_cov
      eye = np.asarray(c.eye, np.float32)
      if self.style == SKETCH:
        eye = _mix(eye, (0.3, 0.3, 0.35), 0.3)
      # Vertical gradient: dark under the lid, light at the bottom (the anime "glass" look).
      rel = (y - iris_c[:, 1, None, None]) / (1.3 * rx[:, :, None] * self.ppu)
      t = np.clip(0.5 + 0.5 * rel, 0.0, 1.0)[..., None]
      if self.style == FLAT:
        t = (t > 0.5).astype(np.float32) * 0.5 + 0.25
      iris_color = _lerp(eye * 0.45, _mix(eye, (1.0, 1.0, 1.0), 0.35), t)
      self.canvas.paint(win, iris_cov, iris_color)
      self.canvas.paint(win, raster.stroke(iris_sdf, self.line_px * 0.9) * white_cov, eye * 0.3)
      pupil_c, pupil_q = self.view.disc(iris_uv3, tu * rx * 0.45, tv * rx * 0.6)
      pupil = raster.fill(raster.ellipse_sdf(x, y, pupil_c, pupil_q)) * white_cov
      self.canvas.paint(win, pupil, eye * 0.2)
      # Highlights toward the light (upper left) plus a small counter-highlight.
      for offset, size in (((-0.35, 0.42), 0.36), ((0.38, -0.5), 0.16)):
        hl_uv = iris_uv + np.array(offset, np.float32) * np.concatenate([rx, rx * 1.3], -1)
        hl_c, hl_q = self.view.disc(self.lift(hl_uv, 0.01), tu * rx * size,
                                    tv * rx * size * 1.15)
        hl = raster.fill(raster.ellipse_sdf(x, y, hl_c, hl_q)) * white_cov
        self.canvas.paint(win, hl, white)
      # Lash line on the upper lid: thick and flicked at the outer corner, thin inside.
      s = np.linspace(0.0, 1.0, upper_px.shape[1], dtype=np.float32)
      flick = upper_px[:, -1:] + (upper_px[:, -1:] - upper_px[:, -3:-2]) * np.array(
          [0.9, 0.5], np.float32)
      lash_px = np.concatenate([upper_px, flick], 1)
      widths = np.concatenate([0.018 + 0.04 * s ** 0.7, [0.012]]) * self.ppu
      if self.style == SKETCH:
        widths = widths * 1.4
      lash = raster.fill(raster.polyline_sdf(x, y, lash_px, np.maximum(widths, 0.7))) * clip
      self.canvas.paint(win, lash, self.ink)
      lower_sel = lower_px[:, 6:]
      lower_w = np.maximum(np.linspace(0.006, 0.016, lower_sel.shape[1]) * self.ppu, 0.5)
      lower_line = raster.fill(raster.polyline_sdf(x, y, lower_sel, lower_w)) * clip
      self.canvas.paint(win, lower_line, self.ink, 0.85)
      # Double-eyelid crease above the lid.
      crease_uv = upper_uv[:, 3:11] + np.array([0.0, 0.075], np.float32)
      crease_px = self.view.screen(self.lift(crease_uv, 0.015))
      crease = raster.fill(raster.polyline_sdf(x, y, crease_px,
                                               max(0.009 * self.ppu, 0.5))) * clip
      self.canvas.paint(win, crease, self.skin_line, 0.6)

  def nose(self):
    uv = np.array([[0.012, -0.52], [0.03, -0.575], [0.0, -0.6]], np.float32)
    pts = self.view.screen(self.lift(uv, 0.05))
    win = self.window(pts, pad=3.0)
    x, y = win.grid()
    sdf = raster.polyline_sdf(x, y, pts, max(0.014 * self.ppu, 0.6))
    self.canvas.paint(win, raster.fill(sdf) * self.face_clip(win), self.skin_line, 0.8)

  def mouth_shape(self):
    """Mouth opening boundary (upper [N, K, 2], lower [N, K, 2]) in head-frame uv, teeth
    amount [N], and tongue size [N]; each vowel has its own shape, weights blend linearly."""
    c = self.c
    # width, top, bottom, corner lift, upper roundness, lower roundness, teeth, tongue.
    neutral = np.array([0.085, 0.0, 0.0, 0.015, 1.0, 1.0, 0.0, 0.0], np.float32)
    vowels = np.array([
        [0.13, 0.035, 0.19, 0.02, 0.35, 0.8, 0.5, 1.0],  # a: big open D-shape.
        [0.155, 0.02, 0.05, 0.012, 0.3, 0.45, 1.0, 0.0],  # i: wide slit, teeth.
        [0.045, 0.035, 0.045, -0.005, 0.9, 0.9, 0.0, 0.0],  # u: small pursed circle.
        [0.12, 0.015, 0.1, -0.012, 0.3, 0.35, 0.8, 0.6],  # e: wide trapezoid.
        [0.075, 0.06, 0.13, -0.01, 0.85, 0.85, 0.2, 0.6],  # o: tall oval.
    ], np.float32)
    weights = self.sem[:, semantics.MOUTH_SLICE]
    params = neutral + weights @ (vowels - neutral)
    total = weights.sum(-1, keepdims=True)
    params = np.where(total > 1.0, neutral + (params - neutral) / np.maximum(total, 1e-6),
                      params)
    width, top, bottom, lift, q_up, q_lo, teeth, tongue = (params[:, i, None] for i in range(8))
    width = width * c.mouth_width
    t = np.linspace(-1.0, 1.0, 17, dtype=np.float32)[None]
    base = 1.0 - t * t
    upper = lift * t * t + top * base ** np.maximum(q_up, 0.05)
    lower = lift * t * t - bottom * base ** np.maximum(q_lo, 0.05)
    mouth_y = self.c.chin_y * 0.4 - 0.3
    upper_uv = np.stack([width * t, mouth_y + upper], -1)
    lower_uv = np.stack([width * t, mouth_y + lower], -1)
    return upper_uv, lower_uv, teeth[:, 0], tongue[:, 0]

  def mouth(self):
    upper_uv, lower_uv, teeth, tongue = self.mouth_shape()
    upper_px = self.view.screen(self.lift(upper_uv, 0.01))
    lower_px = self.view.screen(self.lift(lower_uv, 0.01))
    hole_px = np.concatenate([upper_px, lower_px[:, ::-1]], 1)
    win = self.window(hole_px, pad=4.0)
    x, y = win.grid()
    clip = self.face_clip(win)
    hole_sdf = raster.polygon_sdf(x, y, hole_px)
    hole = raster.fill(hole_sdf) * clip
    inside = np.array([0.45, 0.12, 0.16], np.float32)
    if self.style == SKETCH:
      inside = _mix(inside, (1, 1, 1), 0.3)
    self.canvas.paint(win, hole, inside)
    # Tongue: a disc at the bottom of the opening.
    bottom_uv = lower_uv[:, 8]
    tongue_uv = bottom_uv + np.array([0.0, 0.02], np.float32)
    tu, tv = self.surface_tangents(tongue_uv)
    radius = (0.07 * tongue + 1e-3)[:, None] * self.c.mouth_width
    t_c, t_q = self.view.disc(self.lift(tongue_uv, 0.005), tu * radius, tv * radius * 0.55)
    tongue_cov = raster.fill(raster.ellipse_sdf(x, y, t_c, t_q)) * hole
    self.canvas.paint(win, tongue_cov, (0.93, 0.45, 0.5))
    # Upper teeth: a band hanging from the upper boundary.
    depth = (0.03 * teeth)[:, None, None]
    teeth_uv = np.concatenate([upper_uv, upper_uv[:, ::-1] - np.concatenate(
        [np.zeros_like(depth), np.broadcast_to(depth, depth.shape)], -1)], 1)
    teeth_px = self.view.screen(self.lift(teeth_uv, 0.012))
    teeth_cov = raster.fill(raster.polygon_sdf(x, y, teeth_px)) * hole
    self.canvas.paint(win, teeth_cov, (1.0, 1.0, 1.0))
    # Lines: the lip line along the upper boundary (alone, it is the closed mouth) and a thin
    # outline of the opening.
    lip_w = np.maximum(np.concatenate([[0.5], np.full(15, 1.0), [0.5]]) * 0.018 * self.ppu, 0.6)
    lip = raster.fill(raster.polyline_sdf(x, y, upper_px, lip_w)) * clip
    line_color = _mix(self.skin_line, (0.35, 0.05, 0.1), 0.4)
    self.canvas.paint(win, lip, line_color)
    self.canvas.paint(win, raster.stroke(hole_sdf, self.line_px * 0.8) * clip, line_color)

  # ---- Hair and brows ----------------------------------------------------------------------

  def shell_lift(self, uv, dz=0.03):
    uv = np.asarray(uv, np.float32)
    r = self.shell_radii
    t = 1.0 - (uv[..., 0] / r[0]) ** 2 - ((uv[..., 1] - self.shell_center[1]) / r[1]) ** 2
    z = self.shell_center[2] + r[2] * np.sqrt(np.clip(t, 0.0, None)) + dz
    return np.concatenate([uv, z[..., None]], -1).astype(np.float32)

  def fringe_points(self):
    """Front-hair outline in head-frame uv (a zigzag of pointed locks across the forehead)
    and the notch points between locks [L - 1, 2]."""
    c = self.c
    fw = c.face_width
    count = c.fringe_spikes
    rng = np.random.default_rng([c.identity, 7])
    edges = np.linspace(-fw - 0.12, fw + 0.12, count + 1)
    edges[1:-1] += (c.fringe_phase + rng.uniform(-0.25, 0.25, count - 1)) * (edges[1] - edges[0])
    gaps = c.fringe_y + 0.22 + rng.uniform(0.0, 0.1, count + 1)
    gaps[0] = gaps[-1] = c.fringe_y + 0.1
    pts = [[-1.6, 1.8], [-(fw + 0.3), -0.1]]
    t = np.linspace(0.0, 1.0, 5)[1:]
    for i in range(count):
      a, b = edges[i], edges[i + 1]
      centre = 0.5 * (a + b)
      tip_x = centre + rng.uniform(-0.3, 0.3) * (b - a) + 0.15 * (b - a) * np.sign(centre)
      tip_y = c.fringe_y - rng.uniform(0.0, c.fringe_jitter) - 0.05 * (1.0 - abs(centre))
      # Lock edges drop steeply from the notches and meet at a sharp tip.
      for tt in t:
        pts.append([a + (tip_x - a) * tt, gaps[i] + (tip_y - gaps[i]) * tt ** 0.55])
      for tt in t[::-1][1:]:
        pts.append([b + (tip_x - b) * tt, gaps[i + 1] + (tip_y - gaps[i + 1]) * tt ** 0.55])
      pts.append([b, gaps[i + 1]])
    pts += [[fw + 0.3, -0.1], [1.6, 1.8]]
    notches = np.stack([edges[1:-1], gaps[1:-1]], -1)
    return np.array(pts, np.float32), notches.astype(np.float32)

  def sidelock_points(self, sign):
    """A tapered lock hanging in front of the cheek on side `sign`, head-frame uv."""
    c = self.c
    fw = c.face_width
    bottom = -0.25 - c.sidelock_length
    ctrl = np.array([[fw - 0.3, 0.35], [fw - 0.2, -0.05], [fw - 0.12, 0.45 * bottom],
                     [fw - 0.02, bottom],  # Tip.
                     [fw + 0.1, 0.6 * bottom], [fw + 0.17, -0.05], [fw + 0.16, 0.45]],
                    np.float32)
    return raster.catmull_rom(ctrl, 3) * np.array([sign, 1.0], np.float32)

  def front_hair(self):
    c = self.c
    center, q, _ = self.view.ellipsoid(self.shell_center, self.shell_radii)
    fringe_uv, notches = self.fringe_points()
    fringe_px = self.view.screen(self.shell_lift(fringe_uv))
    box = center[:, None] + np.array([[[-1, -1], [1, 1.25]]], np.float32) * 1.2 * self.ppu
    win = self.window(box)
    x, y = win.grid()
    soft = 0.06 * self.ppu
    sdf = np.maximum(raster.ellipse_sdf(x, y, center, q),
                     raster.polygon_sdf(x, y, fringe_px, max_dist=soft + 2))
    for sign in (-1.0, 1.0):  # Side locks hang in front of the cheeks.
      lock_px = self.view.screen(self.shell_lift(self.sidelock_points(sign), 0.05))
      sdf = np.minimum(sdf, raster.polygon_sdf(x, y, lock_px, max_dist=soft + 2))
    if c.ahoge:  # One upright curved strand.
      strand = self.shell_lift(np.array([[0.05, 1.12], [0.1, 1.35], [0.28, 1.45], [0.4, 1.36]],
                                        np.float32), 0.0)
      strand[:, 2] = 0.1
      widths = np.array([0.08, 0.06, 0.04, 0.01]) * self.ppu
      sdf = np.minimum(sdf, raster.polyline_sdf(x, y, self.view.screen(strand), widths))
    if self.style != FLAT:  # The hair's shadow on the forehead: its shape moved down-right.
      shadow_sdf = raster.shift(sdf, 0.03 * self.ppu, 0.07 * self.ppu, soft + 2)
      shadow = (raster.soft_fill(shadow_sdf, soft) if self.style == SOFT
                else raster.fill(shadow_sdf))
      self.canvas.paint(win, shadow * self.face_clip(win), self.skin_shadow * 0.92)
    cov = raster.fill(sdf)
    light = self.view.ellipsoid_light(win, self.shell_center, self.shell_radii)
    self.canvas.paint(win, cov, self.shade(win, self.hair, self.hair_shadow, light, 0.3))
    if self.style != FLAT:  # "Angel ring" highlight: a jagged band around the crown.
      us = np.linspace(-0.85, 0.85, 15, dtype=np.float32)
      vs = 0.62 + 0.1 * (1 - us ** 2) + 0.05 * (np.arange(15) % 2)
      ring_px = self.view.screen(self.shell_lift(np.stack([us * (c.face_width + 0.1), vs], -1)))
      ring_win = self.window(ring_px, pad=0.12 * self.ppu).intersect(win)
      rx, ry = ring_win.grid()
      widths = (0.05 + 0.05 * np.sin(np.linspace(0, np.pi, 15))) * self.ppu
      ring_sdf = raster.polyline_sdf(rx, ry, ring_px, widths)
      ring = (raster.soft_fill(ring_sdf, 0.05 * self.ppu) if self.style == SOFT
              else raster.fill(ring_sdf))
      self.canvas.paint(ring_win, ring * self.crop(cov, win, ring_win), self.hair_light, 0.8)
    strands = [np.stack([notch + [0.0, 0.02], notch + [0.03 * np.sign(notch[0]), 0.2]])
               for notch in notches]  # Separation lines rising from the notches between locks.
    if self.style == SKETCH:  # Pencil strands over the crown.
      strands += [np.array([[u0 * 0.3, 1.05], [u0 * 0.8, 0.8], [u0, 0.5]], np.float32)
                  for u0 in (-0.5, -0.15, 0.2, 0.55)]
    for strand in strands:
      line_px = self.view.screen(self.shell_lift(strand))
      line_win = self.window(line_px).intersect(win)
      if line_win.empty:
        continue
      lx, ly = line_win.grid()
      widths = np.linspace(self.line_px, 0.2, len(strand))
      line = raster.fill(raster.polyline_sdf(lx, ly, line_px, widths))
      self.canvas.paint(line_win, line * self.crop(cov, win, line_win), self.hair_line, 0.8)
    self.canvas.paint(win, raster.stroke(sdf, self.line_px), self.hair_line)

  def crop(self, array, win, sub):
    """The part of `array` (laid out on window `win`) that lies in window `sub` (inside win)."""
    return array[:, sub.r0 - win.r0:sub.r1 - win.r0, sub.c0 - win.c0:sub.c1 - win.c0]

  def brows(self):
    c = self.c
    for sign in (1.0, -1.0):
      side = 'left' if sign > 0 else 'right'
      angry, raised, lowered = (self.sem[:, semantics.morph_index(f'brow_{s}_{side}'), None]
                                for s in semantics.BROW_STATES)
      s = np.linspace(0.0, 1.0, 7, dtype=np.float32)[None]  # Inner (0) to outer (1).
      arch = np.sin(np.pi * (0.25 + 0.75 * s))
      dy = (angry * (-0.11 * (1 - s) + 0.05 * s) + raised * (0.1 + 0.05 * arch)
            + lowered * (-0.075 - 0.02 * arch))
      dx = angry * 0.03 * (1 - s) + lowered * 0.015
      u = sign * (c.eye_spacing - 0.95 * c.eye_width + 2.1 * c.eye_width * s - dx)
      v = c.eye_y + c.eye_height + c.brow_y * 0.5 + 0.04 * arch * (1 - 0.6 * lowered) - 0.02 * s
      uv = np.stack([np.broadcast_to(u, dy.shape), v + dy], -1)
      pts = self.view.screen(self.lift(uv, 0.03))
      win = self.window(pts, pad=0.05 * self.ppu)
      x, y = win.grid()
      widths = np.maximum((0.055 - 0.035 * s[0]) * c.brow_thickness * self.ppu, 1.0)
      sdf = raster.polyline_sdf(x, y, pts, widths)
      color = _mix(self.hair_line, self.ink, 0.5)
      self.canvas.paint(win, raster.fill(sdf), color, 0.92)

  def render(self):
    self.prepare_face()
    self.back_hair()
    self.neck_and_body()
    self.ears()
    self.face()
    self.blush()
    self.eyes()
    self.nose()
    self.mouth()
    self.front_hair()
    self.brows()
    return self.canvas.to_uint8()


def render_anime(character: identities.AnimeCharacter, semantic: np.ndarray,
                 size: int) -> tuple[np.ndarray, np.ndarray]:
  """Renders `character` at each semantic vector.

  Args:
    character: the character's look (see identities.anime_character).
    semantic: float32[N, 20] semantic vectors (morph weights, then pitch/yaw/roll in degrees).
    size: output image size S.

  Returns:
    (rgb uint8[N, S, S, 3] composited on white, alpha uint8[N, S, S, 1]).
  """
  semantic = np.asarray(semantic, np.float32)
  if semantic.ndim != 2 or semantic.shape[1] != semantics.NUM_SEMANTICS:
    raise ValueError(f'semantic must be [N, {semantics.NUM_SEMANTICS}], got {semantic.shape}.')
  return _AnimeRenderer(character, semantic, int(size)).render()

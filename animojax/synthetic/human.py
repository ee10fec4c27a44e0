"""Realistic-proportion human head renderer driven by 257-D Deep3DFaceRecon coefficients.

Geometry is the embedded face model's 68 landmarks (mean + id_basis @ id + exp_basis @ exp),
rotated by R(pitch, yaw, roll), translated and projected with a perspective camera, plus a
cranium ellipsoid sized from the jaw. Shading uses Deep3DFaceRecon's 9-band spherical-harmonics
lighting (`gamma`) on per-pixel normals: the normals of a face ellipsoid bent by smooth bumps
(nose, brow ridge, cheekbones, lips, chin) and dents (eye sockets) placed at the projected
landmarks. Skin colour comes from the texture coefficients (see identities.HumanPerson).
Features follow the landmarks, so the expression coefficients (and through them the semantics)
move lids, brows and lips.

Coefficients (float32[257]) are in Deep3DFaceRecon's layout, `animojax.face3d.layouts.DEEP3D`:
id 80 | exp 64 | tex 80 | angle 3 (radians: pitch, yaw, roll) | gamma 27 | trans 3.
"""

import numpy as np

from animojax.face3d import embedded
from animojax.face3d import ibug68
from animojax.face3d import layouts
from animojax.face3d import rotations
from animojax.synthetic import face_model
from animojax.synthetic import identities
from animojax.synthetic import raster

COEFF_DIM = layouts.DEEP3D.dim

_SCALE = 0.235  # Pixels per model unit at z = 0, as a fraction of the image size.
_CENTER_Y = 0.45  # Model-space y at the image centre.
# Deep3DFaceRecon adds this to each colour's DC lighting coefficient.
_INIT_LIGHT = 0.8
# Gain applied to the SH irradiance (0.71 at gamma = 0, ~0.9 for a front-facing surface under
# the persons' lights), so `tex` albedos come out at about their nominal brightness.
_EXPOSURE = 1.1


def split_coeff(coeff: np.ndarray) -> dict[str, np.ndarray]:
  """Splits [..., 257] coefficients into their named blocks."""
  coeff = np.asarray(coeff, np.float32)
  if coeff.shape[-1] != COEFF_DIM:
    raise ValueError(f'coeff must have a trailing dimension of {COEFF_DIM} (Deep3DFaceRecon '
                     f'layout), got shape {coeff.shape}.')
  return layouts.DEEP3D.split(coeff)


def sh_irradiance(nx, ny, nz, gamma: np.ndarray) -> np.ndarray:
  """Deep3DFaceRecon's SH lighting: irradiance [N, h, w, 3] for unit normals and gamma [N, 27].

  nx, ny, nz: [N, h, w] posed normal components. Same basis, constants and gamma layout
  ([3 colours, 9 bands], `_INIT_LIGHT` added to each DC term) as Deep3DFaceRecon.
  """
  a0, a1, a2 = np.pi, 2 * np.pi / np.sqrt(3.0), 2 * np.pi / np.sqrt(8.0)
  c0, c1 = 1 / np.sqrt(4 * np.pi), np.sqrt(3.0) / np.sqrt(4 * np.pi)
  c2 = 3 * np.sqrt(5.0) / np.sqrt(12 * np.pi)
  basis = [-a1 * c1 * ny, a1 * c1 * nz, -a1 * c1 * nx, a2 * c2 * nx * ny, -a2 * c2 * ny * nz,
           0.5 * a2 * c2 / np.sqrt(3.0) * (3 * nz * nz - 1), -a2 * c2 * nx * nz,
           0.5 * a2 * c2 * (nx * nx - ny * ny)]
  gamma = np.asarray(gamma, np.float32).reshape(-1, 3, 9).copy()
  gamma[:, :, 0] += _INIT_LIGHT
  shape = np.broadcast_shapes(nx.shape, ny.shape, nz.shape)
  col = lambda v: v.astype(np.float32)[:, None, None]
  out = np.empty(shape + (3,), np.float32)
  for c in range(3):  # Per-channel accumulation: the cheapest pass order for [N, h, w] fields.
    acc = np.zeros(shape, np.float32) + col(gamma[:, c, 0] * np.float32(a0 * c0))
    for k, y in enumerate(basis, start=1):
      acc += y * col(gamma[:, c, k])
    out[..., c] = acc
  return out


def skin_albedo(tex: np.ndarray) -> dict[str, np.ndarray]:
  """Colours [N, 3] of skin, lips and cheek flush from texture coefficients [N, 80]."""
  tex = np.asarray(tex, np.float32)
  light = np.clip(0.62 + 0.2 * tex[:, 0], 0.05, 1.0)[:, None]
  dark = np.array([0.36, 0.22, 0.15], np.float32)
  fair = np.array([0.95, 0.78, 0.68], np.float32)
  skin = dark + (fair - dark) * light
  skin = skin + tex[:, 1:2] * np.array([0.025, -0.005, -0.01], np.float32)
  skin = skin + tex[:, 2:3] * np.array([0.01, 0.012, -0.02], np.float32)
  skin = np.clip(skin, 0.05, 1.0)
  lips = skin * np.array([0.86, 0.58, 0.58], np.float32) + np.clip(tex[:, 3:4], -2, 2) * np.array(
      [0.03, -0.015, -0.005], np.float32)
  flush = np.array([0.85, 0.35, 0.35], np.float32) * np.ones_like(skin)
  return {'skin': skin, 'lips': np.clip(lips, 0.0, 1.0), 'flush': flush,
          'flush_amount': np.clip(0.12 + 0.05 * tex[:, 4], 0.0, 0.3)}


def _mix(color, other, t) -> np.ndarray:
  color = np.asarray(color, np.float32)
  return color + (np.asarray(other, np.float32) - color) * np.float32(t)


class _HumanRenderer:
  """Draws one person in N frames; methods paint back to front."""

  def __init__(self, person: identities.HumanPerson, coeff: np.ndarray, size: int):
    self.p = person
    parts = split_coeff(coeff)
    self.n = coeff.shape[0]
    self.size = size
    self.ppu = _SCALE * size
    self.model = embedded.load_face_model()
    self.angles = parts['angle']
    self.trans = parts['trans']
    self.gamma = parts['gamma']
    self.rot = rotations.rotation_matrix(self.angles[:, 0], self.angles[:, 1], self.angles[:, 2])
    self.lm3 = embedded.landmarks(self.model, parts['id'], parts['exp'])  # Model space.
    self.lm = self.screen(self.lm3)  # [N, 68, 2] pixels.
    self.colors = skin_albedo(parts['tex'])
    self.canvas = raster.Canvas(self.n, size, background=person.background)
    self.line_px = max(0.012 * self.ppu, 0.5)
    # Per-frame geometry of the expressionless face, so nothing depends on which other frames
    # share the batch (rendering one frame or many gives identical pixels).
    self.neutral3 = embedded.landmarks(self.model, parts['id'], np.zeros_like(parts['exp']))
    # Cranium ellipsoid sized from the jaw width, so wide faces get wide heads.
    width = np.abs(self.neutral3[:, 16, 0] - self.neutral3[:, 0, 0]) / 1.97
    self.cranium_center = np.array([0.0, 0.9, -0.1], np.float32)
    self.cranium_radii = np.stack([1.08 * width, np.full_like(width, 1.3),
                                   np.full_like(width, 1.25)], -1)  # [N, 3]
    self.face_mask = np.zeros((self.n, size, size), np.float32)

  # ---- Geometry -----------------------------------------------------------------------------

  def pose(self, points) -> np.ndarray:
    points = np.broadcast_to(np.asarray(points, np.float32), (self.n,) + np.shape(points)[-2:])
    return np.einsum('nij,nkj->nki', self.rot, points) + self.trans[:, None, :]

  def to_pixels(self, posed) -> np.ndarray:
    return face_model.project(posed, self.size, _SCALE, _CENTER_Y)

  def screen(self, points) -> np.ndarray:
    return self.to_pixels(self.pose(points))

  def perspective(self, posed_z) -> np.ndarray:
    return face_model.CAMERA_DISTANCE / (face_model.CAMERA_DISTANCE - posed_z)

  def ellipsoid(self, center, radii):
    """Silhouette (pixel centre [N, 2], Q [N, 2, 2]) and posed quadric A [N, 3, 3] of a head
    ellipsoid; perspective is approximated by the magnification at its centre."""
    radii = np.broadcast_to(np.asarray(radii, np.float32), (self.n, 3))
    a_head = np.zeros((self.n, 3, 3), np.float32)
    a_head[:, [0, 1, 2], [0, 1, 2]] = 1.0 / np.square(radii)
    a = self.rot @ a_head @ np.swapaxes(self.rot, 1, 2)
    q = a[:, :2, :2] - (a[:, :2, 2:] @ a[:, 2:, :2]) / a[:, 2:, 2:]
    posed_center = self.pose(np.asarray(center, np.float32)[None])
    scale = self.ppu * self.perspective(posed_center[:, 0, 2])
    flip = np.zeros((self.n, 2, 2), np.float32)
    flip[:, 0, 0] = 1.0 / scale
    flip[:, 1, 1] = -1.0 / scale
    return self.to_pixels(posed_center)[:, 0], flip @ q @ flip, a, scale

  def ellipsoid_normals(self, win: raster.Window, center, radii):
    """Posed unit normals (nx, ny, nz) [N, h, w] of an ellipsoid's front surface."""
    center_px, _, a, scale = self.ellipsoid(center, radii)
    x, y = win.grid()
    col = lambda v: np.asarray(v)[:, None, None]
    dx = (x - col(center_px[:, 0])) / col(scale)
    dy = -(y - col(center_px[:, 1])) / col(scale)
    b = col(a[:, 0, 2]) * dx + col(a[:, 1, 2]) * dy
    c = col(a[:, 0, 0]) * dx * dx + 2 * col(a[:, 0, 1]) * dx * dy + col(a[:, 1, 1]) * dy * dy - 1
    dz = (-b + np.sqrt(np.maximum(b * b - col(a[:, 2, 2]) * c, 0.0))) / col(a[:, 2, 2])
    n = [col(a[:, i, 0]) * dx + col(a[:, i, 1]) * dy + col(a[:, i, 2]) * dz for i in range(3)]
    norm = np.sqrt(n[0] ** 2 + n[1] ** 2 + n[2] ** 2) + 1e-6
    return [v / norm for v in n]

  def window(self, points_px, pad=3.0) -> raster.Window:
    return raster.window_of(points_px, pad, self.size)

  def crop(self, array, win, sub):
    return array[:, sub.r0 - win.r0:sub.r1 - win.r0, sub.c0 - win.c0:sub.c1 - win.c0]

  def face_clip(self, win):
    return self.face_mask[:, win.r0:win.r1, win.c0:win.c1]

  def curve(self, indices, samples=3, closed=False, extra=None):
    """Catmull-Rom curve [N, K, 2] in pixels through the landmarks `indices`."""
    pts = self.lm[:, indices]
    if extra is not None:
      pts = np.concatenate([pts, extra], 1)
    return raster.catmull_rom(pts, samples, closed)

  # ---- Layers -------------------------------------------------------------------------------

  def background(self):
    win = raster.full_window(self.size)
    _, y = win.grid()
    shade = (1.05 - 0.2 * y / self.size)[..., None]
    bg = np.asarray(self.p.background, np.float32)
    self.canvas.rgb[...] = np.clip(bg * shade, 0, 1)

  def back_hair(self):
    if self.p.hair_style not in (1, 2):
      return
    length = -0.45 if self.p.hair_style == 1 else -1.6
    w = self.cranium_radii[:, 0, None]
    offset = np.array([-0.08, -0.12, -0.05, 0.25, -0.25, 0.05, 0.12, 0.08, 0.0], np.float32)
    side = np.array([-1, -1, -1, -1, 1, 1, 1, 1, 0], np.float32)
    ys = np.array([1.0, 0.2, length + 0.15, length, length, length + 0.15, 0.2, 1.0, 2.0],
                  np.float32)
    xs = side * w + offset
    pts3 = np.stack([xs, np.broadcast_to(ys, xs.shape), np.full(xs.shape, -0.6, np.float32)], -1)
    hang = np.clip((0.8 - ys) / 2.0, 0.0, 0.7)[None, :, None]
    static = self.to_pixels(pts3 + self.trans[:, None])
    poly = self.screen(pts3) * (1 - hang) + static * hang
    poly = raster.catmull_rom(poly, 3, closed=True)
    win = self.window(poly)
    x, y = win.grid()
    sdf = raster.polygon_sdf(x, y, poly)
    hair = np.asarray(self.p.hair, np.float32)
    self.canvas.paint(win, raster.fill(sdf), hair * 0.75)

  def neck_and_body(self):
    neck = np.array([[-0.58, 0.0], [-0.6, -1.2], [-0.72, -1.9], [0.72, -1.9], [0.6, -1.2],
                     [0.58, 0.0]], np.float32)
    neck3 = np.concatenate([neck, np.full((6, 1), -0.5, np.float32)], -1)
    neck_px = self.to_pixels(np.broadcast_to(neck3, (self.n, 6, 3)) + self.trans[:, None])
    win = self.window(neck_px)
    x, y = win.grid()
    sdf = raster.polygon_sdf(x, y, neck_px)
    skin = self.colors['skin'] * 0.9 * self.gamma_brightness()
    # Darker toward the top: the head shadows the neck.
    t = np.clip((y - neck_px[:, :1, 1, None]) / (0.9 * self.ppu), 0, 1)[..., None]
    color = skin[:, None, None] * (0.65 + 0.3 * t)
    self.canvas.paint(win, raster.fill(sdf), color)
    sx = np.array([0.0, 0.6, 1.3, 1.9, 2.2, 2.35, 2.4], np.float32)
    sy = np.array([-1.55, -1.55, -1.7, -1.9, -2.2, -2.6, -3.2], np.float32)
    body = np.concatenate([np.stack([-sx[::-1], sy[::-1]], -1), np.stack([sx, sy], -1)[1:]])
    body = raster.catmull_rom(body, 3)
    body3 = np.concatenate([body, np.full((len(body), 1), -0.5, np.float32)], -1)
    body_px = self.to_pixels(np.broadcast_to(body3, (self.n,) + body3.shape)
                             + self.trans[:, None])
    win = self.window(body_px)
    x, y = win.grid()
    sdf = raster.polygon_sdf(x, y, body_px)
    clothes = np.asarray(self.p.clothes, np.float32)
    side = np.clip(0.5 + (x - self.size / 2) / (2.4 * self.ppu), 0, 1)[..., None]
    self.canvas.paint(win, raster.fill(sdf), clothes * (1.05 - 0.3 * side))
    # Neckline.
    collar = np.array([[-0.6, -1.5], [0.0, -2.1], [0.6, -1.5]], np.float32)
    collar3 = np.concatenate([collar, np.full((3, 1), -0.5, np.float32)], -1)
    collar_px = self.to_pixels(np.broadcast_to(collar3, (self.n, 3, 3)) + self.trans[:, None])
    collar_px = raster.catmull_rom(collar_px, 4)
    cwin = self.window(collar_px).intersect(win)
    cx, cy = cwin.grid()
    neck_part = raster.fill(raster.polygon_sdf(cx, cy, collar_px))
    self.canvas.paint(cwin, neck_part * self.crop(raster.fill(sdf), win, cwin),
                      skin[:, None, None] * 0.8)

  def gamma_brightness(self):
    """Average irradiance of a front-facing surface, for the unshaded layers."""
    one = np.ones((self.n, 1, 1), np.float32)
    return sh_irradiance(0 * one, 0 * one, one, self.gamma)[:, 0, 0] * _EXPOSURE

  def ears(self):
    skin = self.colors['skin'] * self.gamma_brightness() * 0.88
    for sign, top, bottom in ((-1.0, 0, 2), (1.0, 16, 14)):
      # Between the top jaw landmarks, set back toward the skull, turned half sideways.
      center = 0.5 * (self.lm3[:, top] + self.lm3[:, bottom]) + np.array(
          [sign * 0.06, 0.1, -0.3], np.float32)
      axis_a = np.broadcast_to(np.array([0.0, 0.27, 0.02], np.float32), (self.n, 3))
      axis_b = np.broadcast_to(np.array([sign * 0.16, 0.0, 0.08], np.float32), (self.n, 3))
      c_px = self.screen(center[:, None])[:, 0]
      flip = np.array([1, -1], np.float32) * self.ppu
      q = raster.ellipse_q(np.einsum('nij,nj->ni', self.rot, axis_a)[:, :2] * flip,
                           np.einsum('nij,nj->ni', self.rot, axis_b)[:, :2] * flip)
      win = self.window(c_px[:, None] + np.array([[[-1, -1], [1, 1]]]) * 0.35 * self.ppu)
      x, y = win.grid()
      sdf = raster.ellipse_sdf(x, y, c_px, q)
      self.canvas.paint(win, raster.fill(sdf), skin)
      # The concha: a darker hollow inside the rim.
      hollow = raster.soft_fill(sdf + 0.06 * self.ppu, 0.05 * self.ppu)
      self.canvas.paint(win, hollow, skin * 0.7, 0.8)

  def cranium_point(self, xy) -> np.ndarray:
    """Model-space points [K, 3] on the front of the cranium ellipsoid at (x, y) [K, 2]."""
    xy = np.asarray(xy, np.float32)
    c, r = self.cranium_center, self.cranium_radii[:, None, :]
    t = 1.0 - ((xy[..., 0] - c[0]) / r[..., 0]) ** 2 - ((xy[..., 1] - c[1]) / r[..., 1]) ** 2
    z = c[2] + r[..., 2] * np.sqrt(np.clip(t, 0.0, None))
    return np.concatenate([xy, z[..., None]], -1)

  def forehead_arc(self) -> np.ndarray:
    """Model-space arc [K, 3] closing the jaw contour over the forehead, on the cranium (the
    hair covers its upper part)."""
    theta = np.linspace(0.1, np.pi - 0.1, 9, dtype=np.float32)
    half_width = 0.97 * self.cranium_radii[:, 0, None]
    xy = np.stack(np.broadcast_arrays(half_width * np.cos(theta), 0.55 + 1.4 * np.sin(theta)),
                  -1)
    return self.cranium_point(xy)

  def hair_shell(self):
    """Hair covering the whole skull (behind the face): the sides and back of the head."""
    style = self.p.hair_style
    volume = 0.03 if style == 3 else 0.14
    center, q, _, _ = self.ellipsoid(self.cranium_center + np.array([0.0, 0.04, -0.02]),
                                     self.cranium_radii + volume)
    win = self.window(center[:, None] + np.array([[[-1, -1], [1, 1]]]) * 1.6 * self.ppu)
    x, y = win.grid()
    sdf = raster.ellipse_sdf(x, y, center, q)
    hair = np.asarray(self.p.hair, np.float32) * self.gamma_brightness()
    color = hair * 0.7 if style != 3 else _mix(self.colors['skin'], hair, 0.5)
    self.canvas.paint(win, raster.soft_fill(sdf, 0.5 + 0.01 * self.ppu), np.clip(color, 0, 1))

  def face(self):
    """Skin of the face with SH shading on bumped normals; fills face_mask."""
    jaw = self.curve(np.arange(17), 3)
    # The face outline is convex; its hull stays a clean silhouette when the projected jaw
    # contour folds over itself at large yaw.
    outline = raster.convex_hull(np.concatenate([jaw, self.screen(self.forehead_arc())], 1))
    win = self.window(outline)
    x, y = win.grid()
    sdf = raster.polygon_sdf(x, y, outline)
    cov = raster.fill(sdf)
    self.face_mask[:, win.r0:win.r1, win.c0:win.c1] = cov
    nx, ny, nz = self.ellipsoid_normals(win, [0.0, 0.25, -0.25], [1.08, 1.6, 1.45])
    gx, gy = self.bump_gradient(win)
    # Bend normals by the height field's screen gradient (y flips: rows grow downward).
    nx, ny = nx - gx, ny + gy
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    nx, ny, nz = nx / norm, ny / norm, nz / norm
    albedo = self.colors['skin'][:, None, None, :] * np.ones_like(nx)[..., None]
    albedo = self.paint_albedo(win, albedo)
    color = albedo * sh_irradiance(nx, ny, nz, self.gamma) * _EXPOSURE
    self.canvas.paint(win, cov, np.clip(color, 0, 1))

  def bump_gradient(self, win):
    """Screen-space gradient (d/dx, d/dy in pixels, scaled to normal units) of a height field
    of Gaussian bumps at facial landmarks."""
    x, y = win.grid()
    lm = self.lm
    u = self.ppu
    mid = lambda i, j: 0.5 * (lm[:, i] + lm[:, j])
    bumps = [  # (centre [N, 2], sigma_x, sigma_y, height) in model units.
        (lm[:, 30], 0.15, 0.15, 0.2),  # Nose tip.
        (lm[:, 29], 0.1, 0.2, 0.12),  # Nose ridge.
        (lm[:, 28], 0.08, 0.2, 0.08),
        (lm[:, 33], 0.25, 0.08, 0.03),  # Nose base.
        (mid(37, 40), 0.3, 0.22, -0.04),  # Eye sockets.
        (mid(43, 46), 0.3, 0.22, -0.04),
        (mid(2, 40), 0.35, 0.3, 0.05),  # Cheekbones.
        (mid(14, 47), 0.35, 0.3, 0.05),
        (lm[:, 51], 0.3, 0.1, 0.04),  # Upper lip.
        (lm[:, 57], 0.25, 0.1, 0.05),  # Lower lip.
        (0.5 * (lm[:, 8] + lm[:, 57]), 0.3, 0.16, 0.06),  # Chin.
    ]
    gx = np.zeros((self.n,) + (win.r1 - win.r0, win.c1 - win.c0), np.float32)
    gy = np.zeros_like(gx)
    for center, sx, sy, height in bumps:
      dx = (x - center[:, 0, None, None]) / (sx * u)
      dy = (y - center[:, 1, None, None]) / (sy * u)
      g = height * np.exp(-0.5 * (dx * dx + dy * dy))
      gx -= g * dx / sx
      gy -= g * dy / sy
    return gx, gy

  def paint_albedo(self, win, albedo):
    """Adds albedo variation: cheek flush and a slightly redder nose."""
    x, y = win.grid()
    lm = self.lm
    u = self.ppu

    def blob(center, sx, sy):
      dx = (x - center[:, 0, None, None]) / (sx * u)
      dy = (y - center[:, 1, None, None]) / (sy * u)
      return np.exp(-0.5 * (dx * dx + dy * dy))[..., None]

    flush = self.colors['flush'][:, None, None]
    amount = self.colors['flush_amount'][:, None, None, None]
    cheeks = blob(0.5 * (lm[:, 3] + lm[:, 41]), 0.25, 0.2) + blob(0.5 * (lm[:, 13] + lm[:, 46]),
                                                                  0.25, 0.2)
    albedo = albedo + (flush * albedo - albedo) * amount * cheeks + (
        flush * albedo - albedo) * 0.6 * amount * blob(lm[:, 30], 0.12, 0.1)
    return albedo

  def eyes(self):
    eye_rgb = np.asarray(self.p.eye, np.float32)
    brightness = self.gamma_brightness()[:, None, None]
    for idx in (ibug68.EYE_RIGHT, ibug68.EYE_LEFT):
      outline = self.curve(idx, 4, closed=True)
      pad = 0.15 * self.ppu
      win = self.window(outline, pad)
      x, y = win.grid()
      clip = self.face_clip(win)
      sdf = raster.polygon_sdf(x, y, outline)
      white_cov = raster.fill(sdf) * clip
      # Eye whites are never pure white: greyer toward the corners and under the lid.
      center = outline.mean(1)
      width = np.linalg.norm(self.lm[:, idx[3]] - self.lm[:, idx[0]], axis=-1)
      rel = np.abs(x - center[:, 0, None, None]) / (0.5 * width[:, None, None] + 1e-3)
      white = (np.array([0.93, 0.9, 0.88], np.float32) * (1 - 0.2 * rel[..., None] ** 2)
               * brightness)
      self.canvas.paint(win, white_cov, np.clip(white, 0, 1))
      # Iris: a disc on the eyeball, fixed to the head (not to the lids).
      corners = 0.5 * (self.lm3[:, idx[0]] + self.lm3[:, idx[3]])
      eye_center = corners + np.array([0.0, 0.01, 0.06], np.float32)
      radius = 0.083
      c_px = self.screen(eye_center[:, None])[:, 0]
      a = self.rot[:, :2, 0] * np.array([1, -1]) * radius * self.ppu
      b = self.rot[:, :2, 1] * np.array([1, -1]) * radius * self.ppu
      iris_sdf = raster.ellipse_sdf(x, y, c_px, raster.ellipse_q(a, b))
      iris_cov = raster.fill(iris_sdf) * white_cov
      r = np.hypot(x - c_px[:, 0, None, None], y - c_px[:, 1, None, None]) / (radius * self.ppu)
      iris = eye_rgb * (0.55 + 0.5 * np.clip(r, 0, 1)[..., None]) * brightness
      self.canvas.paint(win, iris_cov, np.clip(iris, 0, 1))
      self.canvas.paint(win, raster.stroke(iris_sdf, max(0.006 * self.ppu, 0.4)) * white_cov,
                        eye_rgb * 0.3)
      pupil = raster.fill(raster.ellipse_sdf(x, y, c_px, raster.ellipse_q(a * 0.4, b * 0.4)))
      self.canvas.paint(win, pupil * white_cov, (0.04, 0.03, 0.03))
      hl_c = c_px + np.array([-0.3, -0.35], np.float32) * radius * self.ppu
      hl = raster.fill(raster.circle_sdf(x, y, hl_c, max(0.18 * radius * self.ppu, 0.5)))
      self.canvas.paint(win, hl * white_cov, (1.0, 1.0, 1.0), 0.85)
      # Shadow of the upper lid on the eyeball.
      upper = self.curve(idx[[0, 1, 2, 3]], 4)
      lid_px = np.concatenate([upper, upper[:, ::-1] + np.array([0, 0.05 * self.ppu])], 1)
      lid = raster.soft_fill(raster.polygon_sdf(x, y, lid_px), 0.03 * self.ppu)
      self.canvas.paint(win, lid * white_cov, (0.3, 0.22, 0.2), 0.35)
      # Lash line along the upper lid, heavier at the outer corner.
      s = np.linspace(0, 1, upper.shape[1], dtype=np.float32)
      outer_first = idx[0] == 36
      weights = (1 - s) if outer_first else s
      widths = np.maximum((0.012 + 0.022 * weights) * self.ppu, 0.5)
      lash = raster.fill(raster.polyline_sdf(x, y, upper, widths)) * clip
      self.canvas.paint(win, lash, (0.08, 0.05, 0.05), 0.9)
      lower = self.curve(idx[[3, 4, 5, 0]], 4)
      low = raster.fill(raster.polyline_sdf(x, y, lower, max(0.008 * self.ppu, 0.4))) * clip
      self.canvas.paint(win, low, self.colors['skin'] * 0.55, 0.6)
      # Lid crease above the upper lid.
      crease = upper + (upper - c_px[:, None]) * np.array([0.15, 0.55], np.float32) + np.array(
          [0, -0.05 * self.ppu], np.float32)
      crease_cov = raster.soft_fill(raster.polyline_sdf(x, y, crease[:, 2:-2],
                                                        0.015 * self.ppu), 0.02 * self.ppu)
      self.canvas.paint(win, crease_cov * clip, self.colors['skin'] * 0.55, 0.5)

  def brows(self):
    hair = np.asarray(self.p.hair, np.float32)
    color = np.clip(hair * 0.55 + 0.02, 0, 1)
    for idx in (ibug68.BROW_RIGHT, ibug68.BROW_LEFT):
      pts = self.curve(idx, 3)
      win = self.window(pts, 0.1 * self.ppu)
      x, y = win.grid()
      s = np.linspace(0, 1, pts.shape[1], dtype=np.float32)
      inner_first = idx[0] == 22
      t = (1 - s) if inner_first else s  # 1 at the inner end.
      widths = np.maximum((0.03 + 0.045 * np.sin(np.pi * (0.2 + 0.6 * t)) * t ** 0.3)
                          * self.ppu, 0.8)
      sdf = raster.polyline_sdf(x, y, pts, widths)
      self.canvas.paint(win, raster.soft_fill(sdf, 0.012 * self.ppu + 0.7) * self.face_clip(win),
                        color, 0.85)

  def nose(self):
    lm = self.lm
    pts = np.concatenate([lm[:, 27:36], lm[:, 30:31] + np.array([0, 0.1 * self.ppu])], 1)
    win = self.window(pts, 0.15 * self.ppu)
    x, y = win.grid()
    clip = self.face_clip(win)
    skin = self.colors['skin'] * self.gamma_brightness()
    for i, j in ((31, 32), (35, 34)):  # Nostrils between the alar base and the columella.
      c = 0.5 * (lm[:, i] + lm[:, j]) + np.array([0, -0.025 * self.ppu], np.float32)
      axis_a = (lm[:, j] - lm[:, i]) * 0.45
      axis_b = np.stack([-axis_a[:, 1], axis_a[:, 0]], -1) * 0.45
      sdf = raster.ellipse_sdf(x, y, c, raster.ellipse_q(axis_a, axis_b))
      self.canvas.paint(win, raster.soft_fill(sdf, 0.02 * self.ppu + 0.5) * clip,
                        skin * 0.45, 0.6)
    # Alar creases: soft arcs around the nose wings.
    for ids in ((31, 32), (35, 34)):
      i, j = ids
      wing = np.stack([lm[:, i] + (lm[:, i] - lm[:, j]) * 0.2 + np.array(
          [0, -0.09 * self.ppu]), lm[:, i] + (lm[:, i] - lm[:, j]) * 0.35, lm[:, i] + (
              lm[:, i] - lm[:, j]) * 0.1 + np.array([0, 0.03 * self.ppu])], 1)
      wing = raster.catmull_rom(wing, 4)
      cov = raster.soft_fill(raster.polyline_sdf(x, y, wing, 0.02 * self.ppu), 0.03 * self.ppu)
      self.canvas.paint(win, cov * clip, skin * 0.55, 0.5)

  def mouth(self):
    lm = self.lm
    outer = self.curve(ibug68.LIPS_OUTER, 3, closed=True)
    inner = self.curve(ibug68.LIPS_INNER, 3, closed=True)
    win = self.window(outer, 0.15 * self.ppu)
    x, y = win.grid()
    clip = self.face_clip(win)
    brightness = self.gamma_brightness()[:, None, None]
    lips = self.colors['lips'][:, None, None] * brightness
    outer_sdf = raster.polygon_sdf(x, y, outer)
    # Upper lip darker than the lower one (it faces down, away from the light).
    upper_weight = np.clip((y - lm[:, 51, 1, None, None]) / (
        lm[:, 57, 1, None, None] - lm[:, 51, 1, None, None] + 1e-3), 0, 1)[..., None]
    color = lips * (0.8 + 0.25 * upper_weight)
    self.canvas.paint(win, raster.soft_fill(outer_sdf, 0.6 + 0.01 * self.ppu) * clip,
                      np.clip(color, 0, 1))
    inner_sdf = raster.polygon_sdf(x, y, inner)
    hole = raster.fill(inner_sdf) * clip
    self.canvas.paint(win, hole, (0.22, 0.06, 0.07))
    # Teeth hang from the upper inner lip; the tongue sits at the bottom.
    upper_inner = self.curve(ibug68.LIPS_INNER[[0, 1, 2, 3, 4]], 3)
    gap = np.linalg.norm(lm[:, 66] - lm[:, 62], axis=-1)
    depth = np.minimum(0.07 * self.ppu, 0.6 * gap)[:, None, None]
    teeth_px = np.concatenate([upper_inner, upper_inner[:, ::-1] + np.concatenate(
        [np.zeros_like(depth), depth], -1)], 1)
    teeth = raster.fill(raster.polygon_sdf(x, y, teeth_px)) * hole
    self.canvas.paint(win, teeth, np.clip(np.array([0.92, 0.9, 0.84]) * brightness, 0, 1))
    tongue_c = lm[:, 66] + np.array([0, -0.05 * self.ppu], np.float32)
    width = np.linalg.norm(lm[:, 64] - lm[:, 60], axis=-1)
    axis_a = np.stack([width * 0.32, np.zeros_like(width)], -1)
    axis_b = np.stack([np.zeros_like(width), np.maximum(0.35 * gap, 1e-2)], -1)
    tongue = raster.fill(raster.ellipse_sdf(x, y, tongue_c, raster.ellipse_q(axis_a, axis_b)))
    self.canvas.paint(win, tongue * hole, np.clip(np.array([0.75, 0.35, 0.38]) * brightness,
                                                  0, 1))
    # Lip line: the darkest line where the lips meet (also visible when closed).
    line = raster.stroke(inner_sdf, max(0.012 * self.ppu, 0.6))
    self.canvas.paint(win, line * clip, lips * 0.4, 0.8)

  def front_hair(self):
    style = self.p.hair_style
    hair = np.asarray(self.p.hair, np.float32)
    volume = 0.03 if style == 3 else 0.14
    shell_center = self.cranium_center + np.array([0.0, 0.04, -0.02], np.float32)
    shell_radii = self.cranium_radii + np.array([volume, volume, volume], np.float32)
    center, q, _, _ = self.ellipsoid(shell_center, shell_radii)
    # Hairline: across the forehead (a third of the face above the brows), receding at the
    # temples, then down to the sideburns or, for longer styles, over the ears.
    hair_y = self.neutral3[:, 19:25, 1].mean(-1, keepdims=True) + 0.78  # [N, 1]
    side_bottom = {0: 0.45, 1: -0.35, 2: -0.55, 3: 0.5}[style]
    w = shell_radii[:, 0, None]  # [N, 1]
    ones = np.ones_like(w)
    xs = np.concatenate([-2.2 * ones, -w - 0.5, -w + 0.1, -w + 0.2, -0.6 * ones, 0 * ones,
                         0.6 * ones, w - 0.2, w - 0.1, w + 0.5, 2.2 * ones], -1)
    ys = np.concatenate([3.2 * ones, side_bottom * ones, side_bottom * ones, hair_y - 0.25,
                         hair_y + 0.02, hair_y - 0.04, hair_y + 0.02, hair_y - 0.25,
                         side_bottom * ones, side_bottom * ones, 3.2 * ones], -1)
    zs = np.full(xs.shape, 1.0, np.float32)
    zs[:, [1, 2, 8, 9]] = 0.2
    pts = self.screen(np.stack([xs, ys, zs], -1))
    pts = np.concatenate([pts[:, :2], raster.catmull_rom(pts[:, 2:9], 4), pts[:, 9:]], 1)
    box = center[:, None] + np.array([[[-1, -1], [1, 1]]], np.float32) * 1.8 * self.ppu
    win = self.window(box)
    x, y = win.grid()
    soft = 0.5 + 0.01 * self.ppu
    sdf = np.maximum(raster.ellipse_sdf(x, y, center, q),
                     raster.polygon_sdf(x, y, pts, max_dist=soft + 2))
    nx, ny, nz = self.ellipsoid_normals(win, shell_center, shell_radii)
    light = sh_irradiance(nx, ny, nz, self.gamma) * _EXPOSURE
    # Strands: fine streaks running from the parting down the sides, and a sheen band.
    # Streak phase follows the posed surface (normal x), so the strands turn with the head.
    streak = np.sin(nx * 40.0 + 2.0 * np.sin(ny * 9.0))
    sheen = np.exp(-0.5 * ((ny - 0.55) / 0.12) ** 2) * np.clip(nz + 0.3, 0, 1)
    color = hair * light * (0.95 + 0.05 * streak[..., None]) + 0.15 * sheen[..., None] * (
        0.3 + hair)
    self.canvas.paint(win, raster.soft_fill(sdf, soft), np.clip(color, 0, 1),
                      0.7 if style == 3 else 1.0)

  def render(self):
    self.background()
    self.back_hair()
    self.hair_shell()
    self.neck_and_body()
    self.ears()
    self.face()
    self.eyes()
    self.brows()
    self.nose()
    self.mouth()
    self.front_hair()
    rgb, _ = self.canvas.to_uint8()
    return rgb


def render_human(person: identities.HumanPerson, coeff: np.ndarray, size: int) -> np.ndarray:
  """Renders `person` for each coefficient vector.

  Args:
    person: the person's look beyond the coefficients (hair, eyes, background, clothes).
    coeff: float32[N, 257] Deep3DFaceRecon coefficients (see module docstring).
    size: output image size S.

  Returns:
    uint8[N, S, S, 3].
  """
  coeff = np.asarray(coeff, np.float32)
  if coeff.ndim != 2:
    raise ValueError(f'coeff must be [N, {COEFF_DIM}], got shape {coeff.shape}.')
  split_coeff(coeff)  # Validates the layout.
  return _HumanRenderer(person, coeff, int(size)).render()

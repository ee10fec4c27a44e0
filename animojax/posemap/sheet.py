"""PNG contact sheets of iBUG-68 landmarks: what each semantic edit asks, and what Φ achieves.

One panel per semantic, cropped to the part of the face the semantic edits (eyes and brows, or
mouth and jaw), with the landmarks drawn as iBUG polylines: neutral face in grey, T.1 target in
green, fitted expression in red. Drawn with Pillow only (no plotting library is a dependency).
"""

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from animojax.posemap import camera as camera_lib
from animojax.posemap import semantic_edits

NEUTRAL = (165, 165, 165)
TARGET = (0, 150, 60)
FITTED = (215, 25, 60)
# iBUG-68 polylines: (first, last, closed).
_POLYLINES = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False),
              (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))
_TITLE_HEIGHT = 26


def _draw_landmarks(draw, xy, colour, width):
  for first, last, closed in _POLYLINES:
    line = [tuple(p) for p in xy[first:last + 1]]
    if closed:
      line.append(line[0])
    draw.line(line, fill=colour, width=width)
  r = width + 0.5
  for x, y in xy:
    draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _panel(layers, focus, title, subtitle, size, font):
  """layers: [(xy [68, 2] image coords (y down), colour, line width)] -> one panel image."""
  image = Image.new('RGB', (size, size + _TITLE_HEIGHT), 'white')
  draw = ImageDraw.Draw(image)
  points = np.concatenate([layer[0][focus] for layer in layers])
  lo, hi = points.min(0), points.max(0)
  span = float(max(hi[0] - lo[0], hi[1] - lo[1])) * 1.2 + 1e-6
  center = (lo + hi) / 2
  for xy, colour, width in layers:
    mapped = (xy - center) / span * size + size / 2
    mapped[:, 1] += _TITLE_HEIGHT
    _draw_landmarks(draw, mapped, colour, width)
  draw.rectangle((0, 0, size - 1, _TITLE_HEIGHT - 1), fill='white')
  draw.text((4, 2), title, fill='black', font=font)
  draw.text((4, 13), subtitle, fill=(90, 90, 90), font=font)
  draw.rectangle((0, 0, size - 1, size + _TITLE_HEIGHT - 1), outline=(210, 210, 210))
  return image


def _grid(panels, columns):
  rows = -(-len(panels) // columns)
  w, h = panels[0].size
  sheet = Image.new('RGB', (w * columns, h * rows), 'white')
  for i, panel in enumerate(panels):
    sheet.paste(panel, ((i % columns) * w, (i // columns) * h))
  return sheet


def _legend(entries, size, font, title):
  image = Image.new('RGB', (size, size + _TITLE_HEIGHT), 'white')
  draw = ImageDraw.Draw(image)
  draw.text((6, 6), title, fill='black', font=font)
  for i, (label, colour) in enumerate(entries):
    y = _TITLE_HEIGHT + 12 + 18 * i
    draw.line((8, y + 5, 30, y + 5), fill=colour, width=3)
    draw.text((36, y), label, fill='black', font=font)
  return image


def _image_xy(projected, camera):
  """First-view projection [..., 68, D] -> image (x, y-down) for drawing."""
  uv = projected[..., :2]
  if camera == 'landmarks3d':  # Model-space coordinates at pixel scale: just flip y.
    return np.stack([uv[..., 0], -uv[..., 1]], -1)
  return camera_lib.to_image_xy(uv)


def semantic_sheet(neutral: np.ndarray, targets: np.ndarray, path: str, *, title: str,
                   columns: int = 6, size: int = 150) -> None:
  """Writes the T.1 picture: neutral vs target landmarks (frontal, orthographic) per semantic."""
  font = ImageFont.load_default()
  flip = np.array([1.0, -1.0])
  neutral_xy = neutral[:, :2] * flip
  panels = [_legend([('neutral', NEUTRAL), ('edit target', TARGET)], size, font, title)]
  for s, name in enumerate(semantic_edits.SEMANTIC_NAMES):
    panels.append(_panel([(neutral_xy, NEUTRAL, 1), (targets[s, :, :2] * flip, TARGET, 1)],
                         semantic_edits.SEMANTIC_FOCUS[s], name, '', size, font))
  _grid(panels, columns).save(path, optimize=True)


def fit_sheet(result, path: str, *, title: str, columns: int = 6, size: int = 150) -> None:
  """Writes target vs fitted landmarks (first view) per semantic, with RMS errors (% iod)."""
  font = ImageFont.load_default()
  camera = result.config.camera
  neutral_xy = _image_xy(result.neutral_proj[0], camera)
  panels = [_legend([('neutral', NEUTRAL), ('target (T.1)', TARGET), ('fitted (phi)', FITTED)],
                    size, font, title)]
  for s, name in enumerate(semantic_edits.SEMANTIC_NAMES[:len(result.phi)]):
    subtitle = (f'rms {100 * result.rms_fit[s]:.2f}% vs '
                f'{100 * result.rms_neutral[s]:.2f}% iod')
    # The target is drawn wide and under the fit, so it stays visible where the two coincide.
    panels.append(_panel([(neutral_xy, NEUTRAL, 1),
                          (_image_xy(result.target_proj[s, 0], camera), TARGET, 3),
                          (_image_xy(result.fitted_proj[s, 0], camera), FITTED, 1)],
                         semantic_edits.SEMANTIC_FOCUS[s], name, subtitle, size, font))
  _grid(panels, columns).save(path, optimize=True)

"""PyTorch `grid_sample` coordinate arithmetic, shared by every sampling implementation.

The reference path (plain gathers + autodiff), the XLA custom-VJP path and the Pallas kernels all
turn a normalised grid into pixel coordinates here, so the unnormalise / clamp / reflect rules and
their tie-breaking gradients are written exactly once. The kernels then only see pixel coordinates
`(x, y)` and apply the bilinear rule, and `grid_gradient` turns the per-tap dot products they return
into PyTorch's grid gradient.
"""

import jax
import jax.numpy as jnp

PADDING_MODES = ('zeros', 'border', 'reflection')


def check_padding_mode(padding_mode: str, owner: str = 'grid_sample') -> None:
  """Raises a ValueError naming `owner` unless `padding_mode` is one of `PADDING_MODES`."""
  if padding_mode not in PADDING_MODES:
    raise ValueError(
        f'{owner}: padding_mode={padding_mode!r} is not supported; expected one of '
        f'{PADDING_MODES}.')


def _reflect(coord: jax.Array, twice_low: int, twice_high: int) -> jax.Array:
  """PyTorch's `reflect_coordinates`: reflect `coord` into [twice_low/2, twice_high/2].

  The bounds are passed doubled (as PyTorch does) so that half-pixel bounds stay integers.
  """
  if twice_low == twice_high:
    return jnp.zeros_like(coord)
  low = twice_low / 2
  span = (twice_high - twice_low) / 2
  coord = coord - low
  # Not jnp.abs: PyTorch's backward uses slope +1 at exactly `low`, abs would give 0.
  coord = jnp.where(coord < 0, -coord, coord)
  # `extra` is where we are inside the current span, `flips` how many times we bounced.
  extra = jnp.fmod(coord, span)
  flips = jnp.floor(coord / span)
  even = jnp.fmod(flips, 2) == 0
  return jnp.where(even, extra + low, span - extra + low)


def _clip(coord: jax.Array, size: int) -> jax.Array:
  """Clamps to [0, size - 1] with PyTorch's gradient: 0 on and beyond the borders.

  (jnp.clip would pass half the gradient at an exact tie with a bound.)
  """
  return jnp.where(coord <= 0, 0.0, jnp.where(coord >= size - 1, float(size - 1), coord))


def source_index(coord: jax.Array, size: int, align_corners: bool,
                 padding_mode: str) -> jax.Array:
  """Maps normalised coordinates in [-1, 1] to (possibly out-of-range) pixel coordinates."""
  if align_corners:
    coord = (coord + 1) / 2 * (size - 1)
  else:
    coord = ((coord + 1) * size - 1) / 2
  if padding_mode == 'border':
    coord = _clip(coord, size)
  elif padding_mode == 'reflection':
    if align_corners:
      coord = _reflect(coord, 0, 2 * (size - 1))
    else:
      coord = _reflect(coord, -1, 2 * size - 1)
    coord = _clip(coord, size)
  return coord


def pixel_coords(grid: jax.Array, height: int, width: int, align_corners: bool,
                 padding_mode: str) -> tuple[jax.Array, jax.Array]:
  """`[..., 2]` (x, y) normalised grid -> float32 pixel coordinates `x`, `y` of shape `[...]`."""
  grid = grid.astype(jnp.float32)
  x = source_index(grid[..., 0], width, align_corners, padding_mode)
  y = source_index(grid[..., 1], height, align_corners, padding_mode)
  return x, y


def pixel_coords_and_slopes(grid: jax.Array, height: int, width: int, align_corners: bool,
                            padding_mode: str) -> tuple[jax.Array, ...]:
  """`pixel_coords` plus d x / d grid_x and d y / d grid_y (PyTorch's `gix_mult`, `giy_mult`).

  The slopes come from forward-mode autodiff of `source_index`, so they carry exactly the
  tie-breaking rules of the where-based clamps that the reference path's tests pin to PyTorch.
  """
  grid = grid.astype(jnp.float32)
  ones = jnp.ones_like(grid[..., 0])
  x, slope_x = jax.jvp(lambda g: source_index(g, width, align_corners, padding_mode),
                       (grid[..., 0],), (ones,))
  y, slope_y = jax.jvp(lambda g: source_index(g, height, align_corners, padding_mode),
                       (grid[..., 1],), (ones,))
  return x, y, slope_x, slope_y


def corner_validity(x: jax.Array, y: jax.Array, height: int, width: int) -> jax.Array:
  """`[..., 4]` bool: which bilinear taps (nw, ne, sw, se) fall inside the image.

  PyTorch drops out-of-range taps, which is the 'zeros' padding rule and also what happens to the
  second tap after border/reflection clamping lands exactly on the last pixel.
  """
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  x_ok = ((x0 >= 0) & (x0 <= width - 1), (x0 >= -1) & (x0 <= width - 2))
  y_ok = ((y0 >= 0) & (y0 <= height - 1), (y0 >= -1) & (y0 <= height - 2))
  return jnp.stack([y_ok[0] & x_ok[0], y_ok[0] & x_ok[1], y_ok[1] & x_ok[0], y_ok[1] & x_ok[1]],
                   axis=-1)


def bilinear_weights(x: jax.Array, y: jax.Array) -> tuple[jax.Array, ...]:
  """PyTorch's (nw, ne, sw, se) weights: distance to the opposite corner, same rounding."""
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  x1 = x0 + 1
  y1 = y0 + 1
  return (x1 - x) * (y1 - y), (x - x0) * (y1 - y), (x1 - x) * (y - y0), (x - x0) * (y - y0)


def grid_gradient(dots: jax.Array, x: jax.Array, y: jax.Array, slope_x: jax.Array,
                  slope_y: jax.Array, height: int, width: int) -> jax.Array:
  """PyTorch's grid gradient from per-tap dot products.

  Args:
    dots: `[..., 4]` float32, `sum_c cotangent[c] * image[tap, c]` for the taps (nw, ne, sw, se).
      Entries of out-of-range taps may hold anything (kernels leave them unwritten); they are
      masked here.
    x, y, slope_x, slope_y: from `pixel_coords_and_slopes`.
    height, width: the sampled image's size.

  Returns:
    `[..., 2]` float32 gradient w.r.t. the normalised (x, y) grid.
  """
  dots = jnp.where(corner_validity(x, y, height, width), dots, 0.0)
  d_nw, d_ne, d_sw, d_se = (dots[..., i] for i in range(4))
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  # The bilinear partial derivatives, grouped as in PyTorch's backward (gix / giy).
  gix = (d_ne - d_nw) * (y0 + 1 - y) + (d_se - d_sw) * (y - y0)
  giy = (d_sw - d_nw) * (x0 + 1 - x) + (d_se - d_ne) * (x - x0)
  return jnp.stack([slope_x * gix, slope_y * giy], axis=-1)

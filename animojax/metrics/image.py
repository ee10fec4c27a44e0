"""Per-image reconstruction metrics (L1, PSNR, SSIM) on batches of NHWC images in [-1, 1].

All metrics first map images to [0, 1] ((x + 1) / 2) and return one value per image, shape [B].
Nothing is clipped unless `clip=True` (then images are clipped to [0, 1] first, as saving them
to uint8 files would); out-of-range generator outputs otherwise count as they are.

* `l1`: mean |x - y| over H, W, C on the [0, 1] scale (FOMM reports L1 on this scale).
* `psnr`: 10 log10(1 / MSE), data range 1 (scikit-image `peak_signal_noise_ratio` with
  data_range=1); +inf for identical images.
* `ssim`: scikit-image `structural_similarity` with its defaults, i.e.
  `structural_similarity(x01, y01, data_range=1, channel_axis=-1)`: 7x7 uniform window,
  K1 = 0.01, K2 = 0.03, sample covariance (N / (N - 1) with N = 49), Gaussian weights off,
  computed per channel, averaged over the valid region (the border of 3 pixels that skimage
  crops) and then over channels. PIRender's vendored utility calls the same function on uint8
  images with data_range 255, which equals this up to the uint8 quantisation of the inputs.
"""

import functools

import jax
import jax.numpy as jnp

SSIM_WIN_SIZE = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _to_unit(x: jax.Array, clip: bool) -> jax.Array:
  x = (x.astype(jnp.float32) + 1.0) / 2.0
  return jnp.clip(x, 0.0, 1.0) if clip else x


def _check(x: jax.Array, y: jax.Array) -> None:
  if x.shape != y.shape or x.ndim != 4:
    raise ValueError(f'metrics expect two NHWC batches of equal shape, got {x.shape}, {y.shape}.')


@functools.partial(jax.jit, static_argnames=('clip',))
def l1(x: jax.Array, y: jax.Array, *, clip: bool = False) -> jax.Array:
  """Mean absolute error per image on the [0, 1] scale, shape [B]."""
  _check(x, y)
  return jnp.mean(jnp.abs(_to_unit(x, clip) - _to_unit(y, clip)), axis=(1, 2, 3))


@functools.partial(jax.jit, static_argnames=('clip',))
def psnr(x: jax.Array, y: jax.Array, *, clip: bool = False) -> jax.Array:
  """PSNR in dB per image, data range 1 on the [0, 1] scale, shape [B]."""
  _check(x, y)
  mse = jnp.mean(jnp.square(_to_unit(x, clip) - _to_unit(y, clip)), axis=(1, 2, 3))
  return 10.0 * jnp.log10(1.0 / mse)


def _box_mean_valid(x: jax.Array, size: int) -> jax.Array:
  """Mean over every size x size window fully inside the image: [B, H-s+1, W-s+1, C].

  This is scipy's `uniform_filter` restricted to the region skimage keeps after cropping, so the
  filter's border mode never matters.
  """
  window_sum = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, size, size, 1), (1, 1, 1, 1),
                                     'VALID')
  return window_sum / (size * size)


@functools.partial(jax.jit, static_argnames=('clip', 'win_size'))
def ssim(x: jax.Array, y: jax.Array, *, clip: bool = False,
         win_size: int = SSIM_WIN_SIZE) -> jax.Array:
  """Mean SSIM per image (scikit-image defaults, see module docstring), shape [B]."""
  _check(x, y)
  if min(x.shape[1:3]) < win_size or win_size % 2 == 0:
    raise ValueError(f'ssim needs an odd win_size <= H, W; got {win_size} for {x.shape[1:3]}.')
  x, y = _to_unit(x, clip), _to_unit(y, clip)
  n = win_size * win_size
  cov_norm = n / (n - 1.0)  # skimage's use_sample_covariance=True.
  ux, uy = _box_mean_valid(x, win_size), _box_mean_valid(y, win_size)
  # Centre the products on the image means: the filter is linear, so the result is unchanged, but
  # E[x²] - E[x]² in float32 loses fewer digits.
  cx = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  cy = jnp.mean(y, axis=(1, 2, 3), keepdims=True)
  ux_c, uy_c = ux - cx, uy - cy
  vx = cov_norm * (_box_mean_valid(jnp.square(x - cx), win_size) - jnp.square(ux_c))
  vy = cov_norm * (_box_mean_valid(jnp.square(y - cy), win_size) - jnp.square(uy_c))
  vxy = cov_norm * (_box_mean_valid((x - cx) * (y - cy), win_size) - ux_c * uy_c)
  c1 = (SSIM_K1 * 1.0) ** 2
  c2 = (SSIM_K2 * 1.0) ** 2
  numerator = (2.0 * ux * uy + c1) * (2.0 * vxy + c2)
  denominator = (jnp.square(ux) + jnp.square(uy) + c1) * (vx + vy + c2)
  return jnp.mean(numerator / denominator, axis=(1, 2, 3))

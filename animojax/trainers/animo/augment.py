"""On-device colour jitter, drawn from the per-step RNG.

AniMo jitters brightness, contrast, saturation and hue by 0.1 (albumentations ColorJitter); no
flips. One draw is shared by a pair's source and driving frames, so the target the model must
produce stays consistent with its input. Hue is rotated in YIQ space, a close, cheap stand-in
for ColorJitter's HSV hue shift (a documented deviation).
"""

import jax
import jax.numpy as jnp

_RGB_TO_YIQ = jnp.array([[0.299, 0.587, 0.114],
                         [0.596, -0.274, -0.322],
                         [0.211, -0.523, 0.312]], jnp.float32)
_YIQ_TO_RGB = jnp.linalg.inv(_RGB_TO_YIQ)


def _jitter(images, factors):
  """images [B, ..., H, W, 3] in [-1, 1]; factors [B, 4] = (brightness, contrast, sat., hue)."""
  shape = (-1,) + (1,) * (images.ndim - 1)
  b, c, s, h = (factors[:, i].reshape(shape) for i in range(4))
  x = (images + 1.0) * 0.5
  x = jnp.clip(x * b, 0.0, 1.0)
  gray = x @ jnp.array([0.299, 0.587, 0.114])
  mean = jnp.mean(gray, axis=(-1, -2), keepdims=True)[..., None]
  x = jnp.clip((x - mean) * c + mean, 0.0, 1.0)
  x = jnp.clip((x - gray[..., None]) * s + gray[..., None], 0.0, 1.0)
  yiq = x @ _RGB_TO_YIQ.T
  angle = h[..., 0] * 2.0 * jnp.pi
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  i, q = yiq[..., 1], yiq[..., 2]
  yiq = jnp.stack([yiq[..., 0], cos * i - sin * q, sin * i + cos * q], axis=-1)
  x = jnp.clip(yiq @ _YIQ_TO_RGB.T, 0.0, 1.0)
  return x * 2.0 - 1.0


def color_jitter_pairs(rng, source, driving, strength):
  """Applies one random jitter per pair to both frames; strength 0 returns the inputs."""
  if strength <= 0:
    return source, driving
  batch = source.shape[0]
  lo = jnp.array([1 - strength, 1 - strength, 1 - strength, -strength])
  hi = jnp.array([1 + strength, 1 + strength, 1 + strength, strength])
  factors = jax.random.uniform(rng, (batch, 4), minval=lo, maxval=hi)
  both = _jitter(jnp.stack([source, driving], axis=1), factors)
  return both[:, 0], both[:, 1]

"""Sample grids: rows of examples, columns of named image stages, saved as PNG."""

import os

import jax.numpy as jnp
import numpy as np
from PIL import Image


def to_uint8(images):
  """[-1, 1] float images -> uint8."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_uint8_jax(images):
  """`to_uint8` in jax.numpy, for jitted programs (the same values)."""
  return jnp.clip(jnp.round((images.astype(jnp.float32) + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def grid(columns, *, max_rows=8, pad=2):
  """Tiles equally-sized [N, H, W, 3] arrays (in [-1, 1]) as columns, one example per row."""
  columns = [to_uint8(c[:max_rows]) for c in columns]
  n, h, w, _ = columns[0].shape
  out = np.full((n * (h + pad) + pad, len(columns) * (w + pad) + pad, 3), 255, np.uint8)
  for j, col in enumerate(columns):
    for i in range(n):
      y, x = pad + i * (h + pad), pad + j * (w + pad)
      out[y:y + h, x:x + w] = col[i]
  return out


def save_png(path, image_uint8):
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  Image.fromarray(image_uint8).save(path)

"""On-device training augmentation of CycleGAN and U-GAT-IT: resize, random crop, random flip.

Upstream (CycleGAN `data/base_dataset.py::get_transform` with `preprocess='resize_and_crop'`;
U-GAT-IT `main`/`UGATIT.py` transforms) resizes each image to `load_size` (bicubic), crops a
random `image_size` square and flips it horizontally with probability 1/2. Here the batch is
resized once with `jax.image.resize` ('bicubic': Keys cubic, a = -0.5, as PIL's bicubic; PIL
antialiases when shrinking, but the resize here only enlarges), then each image gets its own crop
offset and flip from the step's key.
"""

import jax
import jax.numpy as jnp


def random_resized_crop_flip(rng, images, *, load_size, flip):
  """images [B, S, S, C] -> ([B, S, S, C], flipped [B] bool): resize to load_size, random S-crop,
  random horizontal flip (a flip mirrors the in-plane angle: callers negate it)."""
  b, s, _, c = images.shape
  crop_key, flip_key = jax.random.split(rng)
  if load_size and load_size > s:
    big = jax.image.resize(images, (b, load_size, load_size, c), 'bicubic')
    big = jnp.clip(big, -1.0, 1.0)
    offsets = jax.random.randint(crop_key, (b, 2), 0, load_size - s + 1)
    images = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (s, s, c)))(
        big, offsets)
  flips = jax.random.bernoulli(flip_key, 0.5, (b,)) if flip else jnp.zeros((b,), bool)
  images = jnp.where(flips[:, None, None, None], images[:, :, ::-1], images)
  return images, flips

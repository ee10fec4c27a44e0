"""CycleGAN's image pool (history buffer of generated images) as a pure function of jit state.

Upstream (junyanz/pytorch-CycleGAN-and-pix2pix `util/image_pool.py::ImagePool.query`) walks the
batch image by image: while fewer than `size` images are stored, the image is stored and returned;
afterwards, with probability 1/2 a uniformly chosen stored image is returned and replaced by the
new one, otherwise the new image is returned. `query` below does exactly that with `lax.scan`
over the batch, in order, so a later image of a batch can meet an earlier one swapped in (as
upstream). Upstream draws from Python's `random`; here the draws come from the step's key
(`u > 0.5` with `u ~ U[0, 1)`, index uniform in [0, size)), so runs are reproducible and resume
exactly (the pool is part of the checkpointed train state). The pool is replicated: the batch's
fakes are gathered once per step (CycleGAN trains at batch 1), and every device makes the same
draws.
"""

import jax
import jax.numpy as jnp


def init(size, image_shape, dtype=jnp.float32):
  """An empty pool: {'images': [size, H, W, C], 'count': number stored}."""
  return {'images': jnp.zeros((max(size, 1),) + tuple(image_shape), dtype),
          'count': jnp.zeros((), jnp.int32)}


def query(pool, images, rng, size):
  """(new pool, images for the discriminator) for a batch of generated `images` [B, H, W, C]."""
  if size == 0:  # Upstream: no buffer, the current images are returned.
    return pool, images
  images = jax.lax.stop_gradient(images).astype(pool['images'].dtype)
  keys = jax.random.split(rng, images.shape[0])

  def one(carry, inputs):
    stored, count = carry
    image, key = inputs
    swap_key, index_key = jax.random.split(key)
    filling = count < size
    swap = jnp.logical_and(~filling, jax.random.uniform(swap_key) > 0.5)
    index = jnp.where(filling, count, jax.random.randint(index_key, (), 0, size))
    previous = stored[index]
    write = jnp.logical_or(filling, swap)
    stored = stored.at[index].set(jnp.where(write, image, previous))
    out = jnp.where(swap, previous, image)
    return (stored, count + filling.astype(count.dtype)), out

  (stored, count), out = jax.lax.scan(one, (pool['images'], pool['count']), (images, keys))
  return {'images': stored, 'count': count}, out

"""Pieces shared by the translation methods: domains, directions, nets in and out of the state.

The two domains are `anime` and `real` (`config.data.anime`, `config.data.real`); a direction is
`'anime->real'` or `'real->anime'`. Every method keeps its networks as plain pure dicts under
`state['params'][net]` and rebuilds them with `nnx.merge` inside the jitted steps.
"""

from flax import nnx
import jax
import jax.numpy as jnp

from animojax.face3d import semantics

DOMAINS = ('anime', 'real')
DIRECTIONS = ('anime->real', 'real->anime')
ROLL_INDEX = semantics.ANGLE_SLICE.start + semantics.ANGLE_NAMES.index('roll')
# The synthetic data's angles lie in ±20° (animojax.synthetic.semantics.MAX_ANGLE_DEG): the
# angle channel and the angle targets are roll / 20°, so about [-1, 1] like the images.
ANGLE_SCALE_DEG = 20.0


# Interface functions (`program.py`) for methods that need nothing beyond their networks and
# plain images: no other state, only the 'image' field, no host-side transform.
def no_extra_state(config):
  del config
  return {}


def images_only(config):
  del config
  return ('image',)


def no_host_transform(config, split):
  del config, split


def other(domain):
  return DOMAINS[1 - DOMAINS.index(domain)]


def split_direction(direction):
  if direction not in DIRECTIONS:
    raise ValueError(f'direction must be one of {DIRECTIONS}, got {direction!r}.')
  source, target = direction.split('->')
  return source, target


def merge(graphdefs, params, name, buffers=None):
  """Net `name` from its graphdef (split as (Param, rest)), parameters and other state."""
  rest = (buffers or {}).get(name, {})
  return nnx.merge(graphdefs[name], params[name], rest)


def apply(graphdefs, params, name, *args, **kwargs):
  return merge(graphdefs, params, name)(*args, **kwargs)


def normalized_roll(semantic):
  """The in-plane angle (roll) of synthetic frames [B, 20], as roll / 20° (about [-1, 1])."""
  return semantic[:, ROLL_INDEX] / ANGLE_SCALE_DEG


def with_angle_plane(images, angle):
  """images [B, H, W, 3] ‖ a constant plane of `angle` [B]: the paper's 4-channel input."""
  plane = jnp.broadcast_to(angle.astype(images.dtype)[:, None, None, None],
                           images.shape[:3] + (1,))
  return jnp.concatenate([images, plane], axis=-1)


def lsgan(prediction, target_is_real):
  """CycleGAN's `GANLoss('lsgan')`: MSE of every patch to 1 (real) or 0 (fake), float32 mean."""
  target = 1.0 if target_is_real else 0.0
  return jnp.mean(jnp.square(prediction.astype(jnp.float32) - target))


def l1(a, b):
  return jnp.mean(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)))


def fold_keys(rng, count):
  return [jax.random.fold_in(rng, i) for i in range(count)]

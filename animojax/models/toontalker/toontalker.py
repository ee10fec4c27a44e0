"""ToonTalker (Gong et al., ICCV 2023): cross-domain face reenactment in a canonical motion space.

A `Generator` is one domain's released network (OpenTalker/ToonTalker `networks/generator.py`,
`Generator_trans_w`: `enc` appearance encoder, `enc2` motion encoder, `dec` decoder with the
motion base, transformers and synthesis); `ToonTalker` holds one per domain, `real` and
`cartoon`, as the released cross-domain checkpoint does (`gen_real`, `gen`).

Motion codes live in the canonical space as K tokens, [B, K, d] (paper §3.1):
  w_{s→r} = T_{s→r}(E_m(x_s), p)   (`dec.transformerlayer_0`)
  w_{r→d} = T_{r→d}(E_m(x_d), p)   (`dec.transformerlayer_1`)
  absolute transfer (eq. 3):        w_{s→d} = w_{s→r} + w_{r→d}
  relative transfer (eq. 5):        w_{s→d} = (w_{s→r} + w_{r→s}) + (w_{r→d} - w_{r→1})
with E_m and p of the image's own domain. The backward transformer and synthesis of the
source's domain render the result from the source's appearance features.

The paper shares the two query transformers between the domains (§3.1) while the released
checkpoint stores them in both generators; with `shared_query=True` (the default) the real
generator's T_{s→r}, T_{r→d} serve both domains and the cartoon copies are unused (kept so that
both checkpoints load). In-domain, the released `Generator_trans_w.forward` is `Generator`'s
`__call__`.
"""

from typing import Any

import jax
from flax import nnx

from animojax.models.toontalker import encoder
from animojax.models.toontalker import synthesis

DOMAINS = ('real', 'cartoon')

VARIANTS: dict[str, dict[str, Any]] = {
    # The released networks (size 256, style_dim 512, 20 motion tokens, 8 heads, FFN 512).
    'paper': dict(size=256, width=1.0, channel_multiplier=1, motion_dim=20, num_heads=8,
                  ffn_dim=512, shared_query=True, flow_init_scale=1.0),
    # CPU demo: 64² images, every width / 8 (style_dim 64). Deviation: the flow heads start at
    # the identity warp (flow_init_scale 0; LIA's N(0, 1) init is 1.0). From LIA's init, a few
    # hundred CPU steps left the warp unused and the output a blur (README, ToonTalker demo).
    'demo': dict(size=64, width=0.125, channel_multiplier=1, motion_dim=20, num_heads=8,
                 ffn_dim=64, shared_query=True, flow_init_scale=0.0),
}


def resolve_config(variant: str = 'paper', **overrides) -> dict[str, Any]:
  if variant not in VARIANTS:
    raise ValueError(f'ToonTalker: unknown variant {variant!r}; expected one of '
                     f'{tuple(VARIANTS)}.')
  config = dict(VARIANTS[variant])
  unknown = set(overrides) - set(config)
  if unknown:
    raise ValueError(f'ToonTalker: unknown override(s) {sorted(unknown)}; valid keys are '
                     f'{sorted(config)}.')
  config.update(overrides)
  size = config['size']
  if size < 64 or size & (size - 1):
    raise ValueError(f'ToonTalker: size must be a power of two >= 64 (the backward transformer '
                     f'reads the 64² map), got {size}.')
  return config


class Generator(nnx.Module):
  """One domain's released generator (`enc`, `enc2`, `dec`)."""

  def __init__(self, *, size: int, width: float, channel_multiplier: int, motion_dim: int,
               num_heads: int, ffn_dim: int, flow_init_scale: float = 1.0, rngs: nnx.Rngs):
    channels = encoder.channel_table(width, channel_multiplier)
    self.style_dim = channels(4)  # = d_model: the 4² and 16² maps are attention memories.
    self.size = size
    self.enc = encoder.AppearanceEncoder(size, channels, rngs=rngs)
    self.enc2 = encoder.MotionEncoder(size, channels, self.style_dim, rngs=rngs)
    self.dec = synthesis.Decoder(size, channels, self.style_dim, motion_dim, num_heads, ffn_dim,
                                 flow_init_scale=flow_init_scale, rngs=rngs)

  def check(self, image, what='source'):
    if image.ndim != 4 or image.shape[1:] != (self.size, self.size, 3):
      raise ValueError(f'ToonTalker: {what} must be [B, {self.size}, {self.size}, 3] NHWC in '
                       f'[-1, 1], got shape {image.shape}.')

  def motion_code(self, image):
    """E_m: [B, H, W, 3] → [B, d]."""
    return self.enc2(image)

  def render(self, source, motion):
    """Backward transformer + synthesis from the source image and a canonical motion."""
    return self.decode(self.enc(source), motion)

  def decode(self, appearance, motion):
    """`render` from the appearance encoder's output (memories, features)."""
    memories, features = appearance
    latent = self.dec.latents(motion, memories)
    out = self.dec.synthesize(latent, features)
    out['latent'] = latent
    return out

  def __call__(self, source, driving):
    """Within-domain reenactment (eq. 3, the released `forward`)."""
    self.check(source)
    self.check(driving, 'driving')
    w_sr = self.dec.query(self.motion_code(source), source=True)
    w_rd = self.dec.query(self.motion_code(driving), source=False)
    out = self.render(source, w_sr + w_rd)
    out.update(w_sr=w_sr, w_rd=w_rd)
    return out


class ToonTalker(nnx.Module):
  """The two domains' generators and the cross-domain motion transfer."""

  def __init__(self, *, variant: str = 'paper', rngs: nnx.Rngs, **overrides):
    config = resolve_config(variant, **overrides)
    self._config_items = tuple(sorted(config.items()))
    self.shared_query = config['shared_query']
    net = {k: v for k, v in config.items() if k != 'shared_query'}
    self.real = Generator(**net, rngs=rngs)
    self.cartoon = Generator(**net, rngs=rngs)
    self.size = config['size']

  @property
  def config(self) -> dict[str, Any]:
    return dict(self._config_items)

  def generator(self, domain: str) -> Generator:
    if domain not in DOMAINS:
      raise ValueError(f'ToonTalker: domain={domain!r}, expected one of {DOMAINS}.')
    return getattr(self, domain)

  def query(self, image, domain: str, *, source: bool):
    """T(E_m^domain(image), p^domain) → [B, K, d], T shared per `shared_query`."""
    return self.query_code(self.generator(domain).motion_code(image), domain, source=source)

  def query_code(self, code, domain: str, *, source: bool):
    """`query` from the motion code E_m^domain(image) [B, d]."""
    gen = self.generator(domain)
    owner = self.real if self.shared_query else gen
    layer = owner.dec.transformerlayer_0 if source else owner.dec.transformerlayer_1
    return layer(gen.dec.bases(code.shape[0], code.dtype), code[:, None, :])

  def transfer(self, source, driving, *, source_domain: str, driving_domain: str, start=None):
    """Reenacts `source` (of `source_domain`) with `driving` (of `driving_domain`).

    Without `start`: w = w_{s→r} + w_{r→d} (eq. 3). With `start` (the first driving frame):
    relative transfer, w = (w_{s→r} + w_{r→s}) + (w_{r→d} - w_{r→1}) (eq. 5).

    Returns the source generator's outputs ('fake_image', 'latent', 'grids', 'masks') and the
    motion codes 'w_sr', 'w_rd' (and 'w_rs', 'w_r1' in relative mode) and 'motion'.
    """
    gen = self.generator(source_domain)
    gen.check(source)
    gen.check(driving, 'driving')
    codes = {'w_sr': self.query(source, source_domain, source=True),
             'w_rd': self.query(driving, driving_domain, source=False)}
    if start is None:
      motion = codes['w_sr'] + codes['w_rd']
    else:
      gen.check(start, 'start')
      codes['w_rs'] = self.query(source, source_domain, source=False)
      codes['w_r1'] = self.query(start, driving_domain, source=False)
      motion = (codes['w_sr'] + codes['w_rs']) + (codes['w_rd'] - codes['w_r1'])
    out = gen.render(source, motion)
    out.update(codes, motion=motion)
    return out

  def __call__(self, source, driving, *, source_domain: str, driving_domain: str | None = None,
               start=None):
    return self.transfer(source, driving, source_domain=source_domain,
                         driving_domain=driving_domain or source_domain, start=start)


def copy_real_into_cartoon(params: dict) -> dict:
  """Stage 2's initialisation (paper §3.3): the cartoon components start as the real ones."""
  params = dict(params)
  params['cartoon'] = jax.tree.map(lambda x: x, params['real'])
  return params

"""CycleGAN (and CycleGAN + angle) train step: G update, then D update on pooled fakes.

As junyanz/pytorch-CycleGAN-and-pix2pix `models/cycle_gan_model.py::optimize_parameters`: one
forward of both generators (fake, reconstruction); the generators' loss with the discriminators
held fixed,
  L_G = LSGAN(D_real(G_ar(a)), 1) + LSGAN(D_anime(G_ra(r)), 1)
        + λ (|G_ra(G_ar(a)) - a|₁ + |G_ar(G_ra(r)) - r|₁)
        + λ · λ_idt (|G_ar(r) - r|₁ + |G_ra(a) - a|₁),
one Adam step on both generators; then the discriminators on real images and on the fakes of
that same forward (computed before the generator update, as upstream), passed through the image
pools: L_D = ½ (LSGAN(D(real), 1) + LSGAN(D(pool(fake)), 0)) per domain, one Adam step.

CycleGAN + angle (the paper's "CycleGAN + α", which its authors could not get to train): the
generators see image ‖ a constant plane holding the in-plane angle (roll / 20°); a translation
keeps the angle, so the reconstruction and identity passes get the same plane. To make the angle
matter, each discriminator has a second output map that regresses the angle of the image (its
patch mean): trained on real images of its domain, and the generator is asked to produce fakes
whose regressed angle is the input's (an auxiliary-regressor GAN, weight `loss.angle`). This is
our design; the paper names no loss.
"""

import jax
import jax.numpy as jnp

from animojax.models.translate import cyclegan as nets_lib
from animojax.trainers.common import precision
from animojax.trainers.translate import augment
from animojax.trainers.translate import common
from animojax.trainers.translate import pool as pool_lib

GEN = {'anime->real': 'gen_to_real', 'real->anime': 'gen_to_anime'}
DISC = {'real': 'disc_real', 'anime': 'disc_anime'}  # D of a domain judges images of it.
GROUPS = {'gen': ('gen_to_anime', 'gen_to_real'), 'disc': ('disc_anime', 'disc_real')}
LOSS_TERMS = ('gen_gan', 'cycle', 'identity', 'disc')


def uses_angle(config):
  return config.method == 'cyclegan_angle'


def build_nets(config, rngs):
  m = config.model
  angle = uses_angle(config)
  gens = {name: nets_lib.ResnetGenerator(4 if angle else 3, 3, m.ngf, m.num_blocks, rngs=rngs)
          for name in GEN.values()}
  discs = {name: nets_lib.PatchDiscriminator(3, m.ndf, m.disc_layers, 2 if angle else 1,
                                             rngs=rngs)
           for name in DISC.values()}
  return {**gens, **discs}


def init_extra(config):
  s = config.data.image_size
  return {'pool': {d: pool_lib.init(config.pool_size, (s, s, 3)) for d in common.DOMAINS}}


def loss_terms(config):
  return LOSS_TERMS + (('angle_gen', 'angle_disc') if uses_angle(config) else ())


def make_translate(graphdefs, config):
  """translate(params, images, direction, angle=None) -> {'image', 'bottleneck'}."""
  angle_input = uses_angle(config)

  def translate(params, images, direction, angle=None):
    if angle_input:
      if angle is None:
        raise ValueError('cyclegan_angle translates image ‖ angle: pass the in-plane angle.')
      images = common.with_angle_plane(images, angle)
    return common.apply(graphdefs, params, GEN[direction], images)

  return translate


def _disc(graphdefs, params, domain, images):
  logits = common.apply(graphdefs, params, DISC[domain], images)['logits']
  return logits[..., 0], jnp.mean(logits[..., 1:].astype(jnp.float32), axis=(1, 2, 3))


def make_train_step(graphdefs, tx, config, *, optim, metrics_collection):
  dtype = precision.compute_dtype(config.compute_dtype)
  translate = make_translate(graphdefs, config)
  angle = uses_angle(config)
  lam, lam_idt = config.loss.cycle, config.loss.cycle * config.loss.identity

  def train_step(state, batch, base_rng):
    step = state['step']
    rng = jax.random.fold_in(base_rng, step)
    aug_keys = common.fold_keys(jax.random.fold_in(rng, 0), 2)
    real, angles = {}, {}
    for domain, key in zip(common.DOMAINS, aug_keys):
      real[domain], flipped = augment.random_resized_crop_flip(
          key, batch[domain]['image'], load_size=config.augment.load_size,
          flip=config.augment.flip)
      if angle:
        roll = common.normalized_roll(batch[domain]['semantic'])
        angles[domain] = jnp.where(flipped, -roll, roll)  # A mirror image tilts the other way.
    params = state['params']

    def gen_loss(gen_params):
      p = precision.cast_floating({**params, **gen_params}, dtype)
      x = {d: real[d].astype(dtype) for d in common.DOMAINS}
      a = {d: angles.get(d) for d in common.DOMAINS}
      fake, terms = {}, {'gen_gan': 0.0, 'cycle': 0.0, 'identity': 0.0, 'angle_gen': 0.0}
      for source in common.DOMAINS:
        target = common.other(source)
        forward, backward = f'{source}->{target}', f'{target}->{source}'
        fake[target] = translate(p, x[source], forward, a[source])['image']
        rec = translate(p, fake[target], backward, a[source])['image']
        score, angle_pred = _disc(graphdefs, p, target, fake[target])
        terms['gen_gan'] += common.lsgan(score, True)
        terms['cycle'] += lam * common.l1(rec, x[source])
        if lam_idt:
          same = translate(p, x[target], forward, a[target])['image']
          terms['identity'] += lam_idt * common.l1(same, x[target])
        if angle:
          terms['angle_gen'] += config.loss.angle * jnp.mean(jnp.square(angle_pred - a[source]))
      total = sum(terms.values())
      return total, (terms, fake)

    gen_params = {n: params[n] for n in GROUPS['gen']}
    (_, (terms, fake)), gen_grads = jax.value_and_grad(gen_loss, has_aux=True)(gen_params)
    lr = optim.learning_rate(config.optim, step)
    params, opt = optim.apply_updates(tx, params, gen_grads, state['opt'], lr,
                                      {'gen': GROUPS['gen']})

    pools, pooled = {}, {}
    for i, domain in enumerate(common.DOMAINS):
      pools[domain], pooled[domain] = pool_lib.query(
          state['extra']['pool'][domain], fake[domain], jax.random.fold_in(rng, 10 + i),
          config.pool_size)

    def disc_loss(disc_params):
      p = precision.cast_floating({**params, **disc_params}, dtype)
      out = {'disc': 0.0, 'angle_disc': 0.0}
      for domain in common.DOMAINS:
        score_real, angle_real = _disc(graphdefs, p, domain, real[domain].astype(dtype))
        score_fake, _ = _disc(graphdefs, p, domain, pooled[domain].astype(dtype))
        out['disc'] += 0.5 * (common.lsgan(score_real, True) + common.lsgan(score_fake, False))
        if angle:
          out['angle_disc'] += config.loss.angle * jnp.mean(
              jnp.square(angle_real - angles[domain]))
      return sum(out.values()), out

    disc_params = {n: params[n] for n in GROUPS['disc']}
    (_, disc_terms), disc_grads = jax.value_and_grad(disc_loss, has_aux=True)(disc_params)
    params, opt = optim.apply_updates(tx, params, disc_grads, opt, lr, {'disc': GROUPS['disc']})
    terms.update(disc_terms)
    if not angle:
      terms.pop('angle_gen'), terms.pop('angle_disc')
    loss = terms['gen_gan'] + terms['cycle'] + terms['identity'] + terms['disc']
    new_state = {'step': step + 1, 'params': params, 'opt': opt, 'extra': {'pool': pools}}
    return new_state, metrics_collection.single_from_model_output(loss=loss, step=step, **terms)

  return train_step


def batch_fields(config):
  return ('image', 'semantic') if uses_angle(config) else ('image',)


def data_fields(config):
  return batch_fields(config)


def host_transform(config, split):
  """No host-side work: CycleGAN reads unpaired images as sampled."""
  del config, split

"""U-GAT-IT train step: discriminators first, then generators, then the ρ clip.

As znxlwm/UGATIT-pytorch `UGATIT.py::train` (A = anime, B = real):

* D: for each domain, a global (`disc_global_*`) and a local (`disc_local_*`) discriminator judge
  real images and the other generator's current translations (no pool): per discriminator
  LSGAN(D(real), 1) + LSGAN(D(fake), 0) on the patch map and the same on its CAM logits; summed,
  ×`loss.adv`. One Adam step (with PyTorch's coupled weight decay 1e-4).
* G: LSGAN(·, 1) of both discriminators of the target domain on the translations (maps and CAM
  logits) ×adv; cycle L1 ×`loss.cycle`; identity L1 (G_ab(b) vs b) ×`loss.identity`; the
  generators' CAM loss, BCE-with-logits of a translation's CAM logits to 1 and of an
  identity pass's to 0, ×`loss.cam`. One Adam step, then every ρ of both generators is clipped to
  [0, 1] (upstream's `RhoClipper`).

Spectral normalisation's power-iteration vectors are state (`state['extra']['buffers']`): every
discriminator forward in training does one iteration, as each torch forward in train mode does,
in upstream's order (the D step's real then fake passes, then the G step's pass).
"""

from flax import nnx
import jax
import jax.numpy as jnp
import optax

from animojax.models.translate import ugatit as nets_lib
from animojax.trainers.common import precision
from animojax.trainers.translate import augment
from animojax.trainers.translate import common

GEN = {'anime->real': 'gen_to_real', 'real->anime': 'gen_to_anime'}
SCALES = ('global', 'local')
GROUPS = {'gen': ('gen_to_anime', 'gen_to_real'),
          'disc': tuple(f'disc_{s}_{d}' for s in SCALES for d in common.DOMAINS)}
LOSS_TERMS = ('gen_adv', 'cycle', 'identity', 'gen_cam', 'disc')


def build_nets(config, rngs):
  m = config.model
  nets = {name: nets_lib.Generator(m.ch, m.num_blocks, config.data.image_size, m.light,
                                   m.get('statistics', 'port'), rngs=rngs)
          for name in GEN.values()}
  layers = {'global': m.disc_global_layers, 'local': m.disc_local_layers}
  for scale in SCALES:
    for domain in common.DOMAINS:
      nets[f'disc_{scale}_{domain}'] = nets_lib.Discriminator(m.ch, layers[scale], rngs=rngs)
  return nets


init_extra = common.no_extra_state
batch_fields = data_fields = common.images_only


def loss_terms(config):
  del config
  return LOSS_TERMS


host_transform = common.no_host_transform


def make_translate(graphdefs, config):
  del config

  def translate(params, images, direction, angle=None):
    del angle
    return common.apply(graphdefs, params, GEN[direction], images)

  return translate


def _bce_with_logits(logits, target):
  return jnp.mean(optax.sigmoid_binary_cross_entropy(
      logits.astype(jnp.float32), jnp.full(logits.shape, target, jnp.float32)))


def clip_rho(params):
  """Upstream's RhoClipper(0, 1) on every `rho` of the generators."""
  def clip(path, leaf):
    return jnp.clip(leaf, 0.0, 1.0) if str(getattr(path[-1], 'key', '')) == 'rho' else leaf
  return {name: (jax.tree_util.tree_map_with_path(clip, p) if name in GROUPS['gen'] else p)
          for name, p in params.items()}


def make_train_step(graphdefs, tx, config, *, optim, metrics_collection):
  dtype = precision.compute_dtype(config.compute_dtype)
  translate = make_translate(graphdefs, config)
  w = config.loss

  def disc(params, buffers, name, images):
    """(outputs, buffers with this net's power iteration done)."""
    net = common.merge(graphdefs, params, name, buffers)
    out = net(images)
    updated = dict(buffers)
    updated[name] = nnx.to_pure_dict(nnx.state(net, nets_lib.SpectralVector))
    return out, updated

  def judge(params, buffers, domain, images, is_real):
    """Adversarial loss of both discriminators of `domain` (maps and CAM logits)."""
    loss = 0.0
    for scale in SCALES:
      out, buffers = disc(params, buffers, f'disc_{scale}_{domain}', images)
      loss += common.lsgan(out['logits'], is_real) + common.lsgan(out['cam_logit'], is_real)
    return loss, buffers

  def train_step(state, batch, base_rng):
    step = state['step']
    rng = jax.random.fold_in(base_rng, step)
    real = {}
    for i, domain in enumerate(common.DOMAINS):
      real[domain], _ = augment.random_resized_crop_flip(
          jax.random.fold_in(rng, i), batch[domain]['image'], load_size=config.augment.load_size,
          flip=config.augment.flip)
    params, buffers = state['params'], state['extra']['buffers']
    lr = optim.learning_rate(config.optim, step)

    # Discriminators, on translations by the current generators (no gradient to them).
    p = precision.cast_floating(params, dtype)
    x = {d: real[d].astype(dtype) for d in common.DOMAINS}
    fake = {common.other(d): jax.lax.stop_gradient(
        translate(p, x[d], f'{d}->{common.other(d)}')['image']) for d in common.DOMAINS}

    def disc_loss(disc_params, buffers):
      q = precision.cast_floating({**params, **disc_params}, dtype)
      total = 0.0
      for domain in common.DOMAINS:
        loss_real, buffers = judge(q, buffers, domain, x[domain], True)
        loss_fake, buffers = judge(q, buffers, domain, fake[domain], False)
        total += w.adv * (loss_real + loss_fake)
      return total, buffers

    disc_params = {n: params[n] for n in GROUPS['disc']}
    (d_loss, buffers), d_grads = jax.value_and_grad(disc_loss, has_aux=True)(disc_params, buffers)
    params, opt = optim.apply_updates(tx, params, d_grads, state['opt'], lr,
                                      {'disc': GROUPS['disc']})

    def gen_loss(gen_params, buffers):
      q = precision.cast_floating({**params, **gen_params}, dtype)
      terms = {'gen_adv': 0.0, 'cycle': 0.0, 'identity': 0.0, 'gen_cam': 0.0}
      for source in common.DOMAINS:
        target = common.other(source)
        forward, backward = f'{source}->{target}', f'{target}->{source}'
        out = translate(q, x[source], forward)
        rec = translate(q, out['image'], backward)['image']
        same = translate(q, x[target], forward)
        adv, buffers = judge(q, buffers, target, out['image'], True)
        terms['gen_adv'] += w.adv * adv
        terms['cycle'] += w.cycle * common.l1(rec, x[source])
        terms['identity'] += w.identity * common.l1(same['image'], x[target])
        terms['gen_cam'] += w.cam * (_bce_with_logits(out['cam_logit'], 1.0)
                                     + _bce_with_logits(same['cam_logit'], 0.0))
      return sum(terms.values()), (terms, buffers)

    gen_params = {n: params[n] for n in GROUPS['gen']}
    (_, (terms, buffers)), g_grads = jax.value_and_grad(gen_loss, has_aux=True)(gen_params,
                                                                                 buffers)
    params, opt = optim.apply_updates(tx, params, g_grads, opt, lr, {'gen': GROUPS['gen']})
    params = clip_rho(params)
    terms['disc'] = d_loss
    loss = sum(terms.values())
    new_state = {'step': step + 1, 'params': params, 'opt': opt,
                 'extra': {**state['extra'], 'buffers': buffers}}
    return new_state, metrics_collection.single_from_model_output(loss=loss, step=step, **terms)

  return train_step


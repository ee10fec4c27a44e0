"""ToonTalker's pure train steps and the inference function (NNX merged inside `jax.jit`).

Losses (paper §3.2-3.3; the released code has none, so the terms follow the paper and LIA's
trainer, wyhsirius/LIA `trainer.py` @3f1d865^):

* reconstruction per domain (eq. 11): L1(x_{s→d}, x_d) + λper·Perceptual(x_{s→d}, x_d) +
  non-saturating adversarial softplus(-D(x_{s→d}));
* analogy constraint (eqs. 6-9), both directions (R→C: cartoon source x_s, real frames x_a, x_b
  of one video): x_g = G(T_B(w_{s→r} + w_{r→s} + w_{r→b} - w_{r→a})), then
  L_motion = mean |(w_{r→g} - w_{r→s}) - (w_{r→b} - w_{r→a})| (all codes [B, K, d]), weighted by
  λm, plus the adversarial loss of x_g under its domain's discriminator (eq. 10);
* discriminators: softplus(-D(real)) + softplus(D(fake)) on the driving frames and on this step's
  (detached) generated images of their domain. No R1 or path-length term: LIA's trainer applies
  neither.

Stage 'stage1' trains on real pairs only (reconstruction, real discriminator); 'stage2' trains
everything on both domains (eq. 12); with `loss.analogy=False` (the 'w/o analogy' ablation)
stage 2 keeps only the per-domain reconstruction terms. The generator is updated first, then the
discriminators on the generator's pre-update images (as LIA's `gen_update` / `dis_update`).

Deviations: gradients flow through both sides of the motion term (the paper does not say
otherwise); a domain's reconstructions and analogy images go through its discriminator as one
batch (its minibatch-stddev groups span both).
"""

from clu import metrics as clu_metrics
from flax import nnx
import jax
import jax.numpy as jnp
import optax

from animojax.ops import kernels
from animojax.trainers.common import multihost
from animojax.trainers.common import nonfinite
from animojax.trainers.common import precision
from animojax.trainers.toontalker import state as tt_state

STAGES = ('stage1', 'stage2')
DOMAINS = tt_state.DOMAINS
ANALOGY = (('cartoon', 'real'), ('real', 'cartoon'))  # (source domain, driving domain)
_OTHER = {'real': 'cartoon', 'cartoon': 'real'}


def _domains(stage):
  return ('real',) if stage == 'stage1' else DOMAINS


def metric_names(stage, analogy):
  names = ['loss']
  for d in _domains(stage):
    names += [f'{d}_l1', f'{d}_perceptual', f'{d}_adv', f'{d}_disc']
  if stage == 'stage2' and analogy:
    names += [f'motion_{s}_from_{t}' for s, t in ANALOGY] + [f'{s}_adv_analogy' for s, _ in ANALOGY]
  return names


def metrics_collection(stage, analogy):
  fields = {n: clu_metrics.Average.from_output(n) for n in metric_names(stage, analogy)}
  fields['first_nonfinite_step'] = nonfinite.FirstNonFinite
  return clu_metrics.Collection.create(**fields)


def discriminator_loss(disc, real, fake):
  return jnp.mean(jax.nn.softplus(-disc(real))) + jnp.mean(jax.nn.softplus(disc(fake)))


def generator_losses(model, discs, image_loss, loss_params, batch, *, stage, loss_config):
  """Total generator loss, its named terms and the generated images per domain.

  Batched per domain (the maths of the terms above, fewer and larger network calls, which
  compile faster and run faster): one motion-encoder pass over a domain's sources and driving
  frames, one appearance-encoder pass over its sources, one decoder pass rendering both its
  reconstructions and its analogy images, one discriminator pass over all of them.
  """
  domains = _domains(stage)
  analogy = stage == 'stage2' and loss_config.analogy
  b = batch['real']['source'].shape[0]
  w = {}
  for d in domains:
    gen = model.generator(d)
    codes = gen.motion_code(jnp.concatenate([batch[d]['source'], batch[d]['driving']]))
    w_r = model.query_code(codes, d, source=False)  # T_{r→d} of sources and driving frames.
    w[d] = {'sr': model.query_code(codes[:b], d, source=True), 'rs': w_r[:b], 'rd': w_r[b:]}
  terms, fakes, total = {}, {}, 0.0
  for d in domains:
    gen, target = model.generator(d), batch[d]['driving']
    appearance = gen.enc(batch[d]['source'])
    motion = w[d]['sr'] + w[d]['rd']  # Eq. 3, within the domain.
    if analogy:  # Eq. 6: this domain's source driven by the other domain's pair (a, b).
      o = _OTHER[d]
      w_sg = (w[d]['sr'] + w[d]['rs']) + (w[o]['rd'] - w[o]['rs'])
      motion = jnp.concatenate([motion, w_sg])
      appearance = jax.tree.map(lambda x: jnp.concatenate([x, x]), appearance)
    fake = gen.decode(appearance, motion)['fake_image']
    adv = jax.nn.softplus(-discs[d](fake)).astype(jnp.float32)
    rec = fake[:b]
    terms[f'{d}_l1'] = jnp.mean(jnp.abs(rec - target).astype(jnp.float32))
    terms[f'{d}_perceptual'] = image_loss(loss_params, rec, target,
                                          num_scales=loss_config.num_scales)[0]
    terms[f'{d}_adv'] = jnp.mean(adv[:b])
    total += (terms[f'{d}_l1'] + loss_config.perceptual_weight * terms[f'{d}_perceptual']
              + loss_config.adv_weight * terms[f'{d}_adv'])
    if analogy:  # Eqs. 8-9: the generated image's motion against the driving pair's.
      w_rg = model.query_code(gen.motion_code(fake[b:]), d, source=False)
      diff = (w_rg - w[d]['rs']) - (w[o]['rd'] - w[o]['rs'])
      terms[f'motion_{d}_from_{o}'] = jnp.mean(jnp.abs(diff).astype(jnp.float32))
      terms[f'{d}_adv_analogy'] = jnp.mean(adv[b:])
      total += (loss_config.motion_weight * terms[f'motion_{d}_from_{o}']
                + loss_config.adv_weight * terms[f'{d}_adv_analogy'])
    fakes[d] = fake
  return total, (terms, fakes)


def _apply(tx, params, grads, opt_state, lr):
  opt_state.hyperparams['learning_rate'] = jnp.asarray(lr, jnp.float32)
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def make_train_step(graphdefs, image_loss, txs, config, stage):
  """Returns train_step(state, batch, loss_params, base_rng) -> (state, metrics).

  `image_loss` must be made with the policy's compute dtype; float32 parameters are cast to it
  for the forward pass, updates are applied in float32.
  """
  if stage not in STAGES:
    raise ValueError(f'stage must be one of {STAGES}, got {stage!r}')
  gen_def, disc_def = graphdefs
  dtype = precision.compute_dtype(config.compute_dtype)
  collection = metrics_collection(stage, config.loss.analogy)
  lrs = config.optim[stage]
  domains = _domains(stage)

  def train_step(state, batch, loss_params, base_rng):
    del base_rng  # No stochastic layer or augmentation (LIA trains VoxCeleb without any).
    step, params = state['step'], state['params']
    batch = {d: {k: batch[d][k].astype(dtype) for k in ('source', 'driving')} for d in domains}
    disc_compute = precision.cast_floating(params['disc'], dtype)
    discs = {d: nnx.merge(disc_def, disc_compute[d]) for d in domains}

    def g_loss(gen_params):
      model = nnx.merge(gen_def, precision.cast_floating(gen_params, dtype))
      return generator_losses(model, discs, image_loss, loss_params, batch, stage=stage,
                              loss_config=config.loss)

    (loss, (terms, fakes)), g_grads = jax.value_and_grad(g_loss, has_aux=True)(params['gen'])
    new_gen, gen_opt = _apply(txs['gen'], params['gen'], g_grads, state['opt']['gen'],
                              lrs.g_lr)

    def d_loss(disc_params):
      total, d_terms = 0.0, {}
      for d in domains:
        disc = nnx.merge(disc_def, precision.cast_floating(disc_params[d], dtype))
        fake = jax.lax.stop_gradient(fakes[d])
        d_terms[f'{d}_disc'] = discriminator_loss(disc, batch[d]['driving'], fake).astype(
            jnp.float32)
        total += d_terms[f'{d}_disc']
      return total, d_terms

    d_params = {d: params['disc'][d] for d in domains}
    (_, d_terms), d_grads = jax.value_and_grad(d_loss, has_aux=True)(d_params)
    # Domains not trained in this stage get zero gradients (Adam then leaves them unchanged).
    d_grads = {d: d_grads.get(d, jax.tree.map(jnp.zeros_like, params['disc'][d]))
               for d in DOMAINS}
    new_disc, disc_opt = _apply(txs['disc'], params['disc'], d_grads, state['opt']['disc'],
                                lrs.d_lr)
    new_state = {'step': step + 1, 'params': {'gen': new_gen, 'disc': new_disc},
                 'opt': {'gen': gen_opt, 'disc': disc_opt}}
    metrics = collection.single_from_model_output(loss=loss, step=step, **terms, **d_terms)
    return new_state, metrics

  return train_step


def make_generate(gen_def, sharding=None, kernels_choice='auto'):
  """Returns generate(params, source, driving, source_domain, driving_domain) -> the model's
  named outputs (absolute transfer, eq. 3), traced with `kernels_choice`.

  With a replicated `sharding`, host inputs are placed there and outputs come back replicated
  (every process of a multi-process run must make the call, with the same inputs).
  """
  mesh = None if sharding is None else sharding.mesh

  def generator(params, source, driving, source_domain, driving_domain):
    out = nnx.merge(gen_def, params)(source, driving, source_domain=source_domain,
                                     driving_domain=driving_domain)
    return {'fake_image': out['fake_image']}

  generator = kernels.traced_with(kernels_choice, generator, mesh)
  generate = jax.jit(generator, static_argnames=('source_domain', 'driving_domain'),
                     out_shardings=sharding)
  if sharding is None:
    return generate

  def generate_on_mesh(params, source, driving, source_domain, driving_domain):
    source, driving = multihost.replicate((source, driving), sharding)
    return generate(params, source, driving, source_domain=source_domain,
                    driving_domain=driving_domain)

  return generate_on_mesh

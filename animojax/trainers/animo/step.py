"""AniMo's pure train and inference steps (split/merge NNX model inside `jax.jit`).

Loss per domain, PIRender's swap trick: the batch runs source→driving and driving→source at once
(inputs source|driving, poses driving_pose|source_pose, targets driving|source, interleaved pair
by pair so that a batch-sharded step moves no activations between devices); loss =
2.5·Perc(warp, gt) [+ 4·(Perc(fake, gt) + 250·Style(fake, gt)) in the full stage]; the total
sums the anime and human domains (kangyeolk/AnimeCeleb `Animo/runners/animo.py`; RenYurui/PIRender
`loss/perceptual.py`, `trainers/face_trainer.py`; docs/references.md). The targets' loss features
are computed once and shared by the warp and final terms; the (shared) loss network runs once
per scale on both domains' targets and once on all their generated images.

Speed knobs that leave the maths unchanged: `config.compute_dtype` (see `precision`) and
`config.remat` ('none' | 'generator' | 'loss' | 'all': recompute those activations in the
backward pass to save memory).
"""

import dataclasses

from clu import metrics as clu_metrics
from flax import nnx
import jax
import jax.numpy as jnp

from animojax.losses import perceptual
from animojax.models.animo import animo as animo_model
from animojax.ops import kernels
from animojax.trainers.animo import augment
from animojax.trainers.animo import optim
from animojax.trainers.common import multihost
from animojax.trainers.common import nonfinite
from animojax.trainers.common import precision

DOMAINS = animo_model.DOMAINS
STAGES = ('warp', 'gen')


def metrics_collection(stage):
  names = ['loss'] + [f'{d}_{t}' for d in DOMAINS
                      for t in (('warp',) if stage == 'warp' else ('warp', 'final', 'style'))]
  fields = {n: clu_metrics.Average.from_output(n) for n in names}
  fields['first_nonfinite_step'] = nonfinite.FirstNonFinite
  return clu_metrics.Collection.create(**fields)


def swap_pairs(pair):
  """(source→driving, driving→source) in one batch, interleaved pair by pair.

  PIRender concatenates [a; b]; on a batch-sharded mesh that moves half of every array to another
  device (and back in the backward pass). The losses are batch means, so the order is free.
  """
  interleave = perceptual.interleave
  inputs = interleave([pair['source'], pair['driving']])
  poses = interleave([pair['driving_pose'], pair['source_pose']])
  targets = interleave([pair['driving'], pair['source']])
  return inputs, poses, targets


def merge_model(graphdef, params):
  return nnx.merge(graphdef, *(params[g] for g in optim.GROUPS))


def make_generator(graphdef, *, stage, remat=False):
  """Returns generator(params, inputs, poses, domain) -> AniMo's named outputs.

  With `remat` the generator's activations are recomputed in the backward pass instead of being
  kept (`jax.checkpoint`): about a third more generator FLOPs for a fraction of the memory.
  """

  def generator(params, inputs, poses, domain):
    return merge_model(graphdef, params)(inputs, poses, domain=domain, stage=stage)

  if remat:
    generator = jax.checkpoint(generator, static_argnums=(3,))
  return generator


def reenactment_loss(generator, params, image_loss, loss_params, batch, *, stage, loss_config,
                     dtype=jnp.float32):
  """Total loss and its named terms over both domains.

  `params` are the model's parameter groups, already in the compute `dtype`; images and poses are
  cast to it here. The loss network is shared by the domains, so their images go through it
  together: one pass per scale for both domains' targets, and one for all their generated images
  (warped, and final in the full stage); every term is still computed per domain.
  """
  outs, targets = {}, []
  for domain in DOMAINS:
    inputs, poses, domain_targets = swap_pairs(batch[domain])
    outs[domain] = generator(params, inputs.astype(dtype), poses.astype(dtype), domain)
    targets.append(domain_targets.astype(dtype))
  pyramids = dict(zip(DOMAINS, image_loss.target_pyramids(loss_params, targets,
                                                         num_scales=loss_config.num_scales)))
  kinds = ('warp',) if stage == 'warp' else ('warp', 'final')
  images = {'warp': 'warp_image', 'final': 'fake_image'}
  style_weight = {'warp': 0.0, 'final': loss_config.style_weight}
  weight = {'warp': loss_config.warp_weight, 'final': loss_config.final_weight}
  keys = [(domain, kind) for domain in DOMAINS for kind in kinds]
  results = image_loss.many_from_target(
      loss_params, [outs[d][images[k]] for d, k in keys],
      [pyramids[d] for d, _ in keys],
      style_weights=[style_weight[k] for _, k in keys])
  total, terms = 0.0, {}
  for (domain, kind), (loss, aux) in zip(keys, results):
    if kind == 'warp':
      terms[f'{domain}_warp'] = loss
    else:
      terms[f'{domain}_final'] = aux['perceptual']
      terms[f'{domain}_style'] = aux['style']
    total += weight[kind] * loss
  return total, terms


REMAT_CHOICES = ('none', 'generator', 'loss', 'all')


def _remat_parts(name):
  if name not in REMAT_CHOICES:
    raise ValueError(f'config.remat={name!r}: choose one of {REMAT_CHOICES}.')
  return name in ('generator', 'all'), name in ('loss', 'all')


def make_train_step(graphdef, image_loss, tx, config, stage):
  """Returns train_step(state, batch, loss_params, base_rng) -> (state, metrics).

  `image_loss` must have been made with the policy's compute dtype (`precision`); the step casts
  the float32 parameters to it for the forward pass and applies float32 updates.
  """
  if stage not in STAGES:
    raise ValueError(f'stage must be one of {STAGES}, got {stage!r}')
  trained_groups = ('warp',) if stage == 'warp' else optim.GROUPS
  collection = metrics_collection(stage)
  dtype = precision.compute_dtype(config.compute_dtype)
  remat_generator, remat_loss = _remat_parts(config.remat)
  generator = make_generator(graphdef, stage=stage, remat=remat_generator)
  if remat_loss:
    image_loss = dataclasses.replace(image_loss, features=jax.checkpoint(image_loss.features))

  def train_step(state, batch, loss_params, base_rng):
    step = state['step']
    rng = jax.random.fold_in(base_rng, step)
    batch = dict(batch)
    for i, domain in enumerate(DOMAINS):
      pair = dict(batch[domain])
      pair['source'], pair['driving'] = augment.color_jitter_pairs(
          jax.random.fold_in(rng, i), pair['source'], pair['driving'],
          config.augment.color_jitter)
      batch[domain] = pair
    params = state['params']
    frozen = {g: params[g] for g in optim.GROUPS if g not in trained_groups}

    def loss_fn(trained):
      compute_params = precision.cast_floating({**frozen, **trained}, dtype)
      return reenactment_loss(generator, compute_params, image_loss, loss_params, batch,
                              stage=stage, loss_config=config.loss, dtype=dtype)

    trained = {g: params[g] for g in trained_groups}
    (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(trained)
    lr = optim.learning_rate(config.optim, step)
    new_params, new_opt = optim.apply_updates(tx, params, grads, state['opt'], lr)
    new_state = {
        'step': step + 1,
        'params': new_params,
        'opt': new_opt,
        'ema': optim.ema_update(state['ema'], new_params, config.optim.ema_decay),
    }
    metrics = collection.single_from_model_output(loss=loss, step=step, **terms)
    return new_state, metrics

  return train_step


def make_generate(graphdef, sharding=None, kernels_choice='auto'):
  """Returns generate(params, source, pose, domain) -> named intermediates (full stage), traced
  with `kernels_choice` (`config.kernels`, see animojax/ops/kernels.py).

  With a replicated `sharding` on the parameters' mesh, the host inputs are placed there and the
  outputs come back replicated: every process of a multi-process run can then read them (and all
  processes must make the call, with the same inputs).
  """
  mesh = None if sharding is None else sharding.mesh
  generator = kernels.traced_with(kernels_choice, make_generator(graphdef, stage='gen'), mesh)
  generate = jax.jit(generator, static_argnames=('domain',), out_shardings=sharding)
  if sharding is None:
    return generate

  def generate_on_mesh(params, source, pose, domain):
    source, pose = multihost.replicate((source, pose), sharding)
    return generate(params, source, pose, domain=domain)

  return generate_on_mesh

"""ToonTalker's train state: {'step', 'params', 'opt'} as plain nested dicts.

`params['gen']` is the ToonTalker model's own parameter tree ({'real': ..., 'cartoon': ...}, the
keys of the exported .npz and of the converted released checkpoints); `params['disc']` holds one
StyleGAN2 discriminator per domain. `opt` has one Adam state per group ('gen', 'disc'). No EMA:
LIA and ToonTalker evaluate the generator's own weights.
"""

from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections

from animojax.models.blocks import initializers
from animojax.models.blocks import stylegan2
from animojax.models.toontalker import encoder
from animojax.models.toontalker import toontalker as tt_model

GROUPS = ('gen', 'disc')
DOMAINS = tt_model.DOMAINS


def model_config(config) -> dict:
  """`config.model` as the keyword arguments of `ToonTalker`."""
  model = config.model
  return model.to_dict() if isinstance(model, ml_collections.ConfigDict) else dict(model)


def build_generator(model_config, rngs):
  return tt_model.ToonTalker(rngs=rngs, **model_config)


def build_discriminator(model_config, rngs):
  """LIA's StyleGAN2 discriminator at the model's size and width."""
  net = tt_model.resolve_config(**model_config)
  channels = encoder.channel_table(net['width'], net['channel_multiplier'])
  return stylegan2.Discriminator(net['size'], channels, rngs=rngs)


def graphdefs(model_config):
  """(generator graphdef, discriminator graphdef), without allocating weights."""
  gen = nnx.eval_shape(lambda: build_generator(model_config, initializers.KeyStream(0)))
  disc = nnx.eval_shape(lambda: build_discriminator(model_config, initializers.KeyStream(0)))
  return nnx.split(gen)[0], nnx.split(disc)[0]


def init_params(model_config, rng):
  """Random real-domain generator and discriminator; the cartoon ones start as their copies.

  The cartoon components are overwritten by stage 2's copy of the real ones anyway (§3.3) and
  unused in stage 1; drawing them once halves the init program (its random-number graph is
  what makes it slow to compile on CPUs).
  """
  gen_rng, disc_rng = jax.random.split(rng)
  net = {k: v for k, v in tt_model.resolve_config(**model_config).items() if k != 'shared_query'}
  gen = tt_model.Generator(**net, rngs=initializers.KeyStream(gen_rng))
  disc = build_discriminator(model_config, initializers.KeyStream(disc_rng))
  gen, disc = (nnx.to_pure_dict(nnx.split(m)[1]) for m in (gen, disc))
  return {'gen': tt_model.copy_real_into_cartoon({'real': gen}),
          'disc': tt_model.copy_real_into_cartoon({'real': disc})}


def make_init(model_config, txs):
  """Returns init(rng) -> train state (jit it with out_shardings to create it sharded)."""

  def init(rng):
    params = init_params(model_config, rng)
    return {'step': jnp.zeros((), jnp.int32), 'params': params,
            'opt': {g: txs[g].init(params[g]) for g in GROUPS}}

  return init


def copy_real_into_cartoon(state, txs):
  """Stage 2 starts (paper §3.3): the cartoon generator and discriminator become copies of the
  real ones, and both optimisers restart (the stage has its own learning rate)."""
  params = dict(state['params'])
  params['gen'] = tt_model.copy_real_into_cartoon(params['gen'])
  params['disc'] = tt_model.copy_real_into_cartoon(params['disc'])
  return {'step': state['step'], 'params': params,
          'opt': {g: txs[g].init(params[g]) for g in GROUPS}}

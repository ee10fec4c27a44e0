"""The paper's method 1: the difference vector, a running mean-image difference of the domains.

"anime to real" (Method 1): each iteration draws 100 images of each domain, averages each set,
and moves the difference vector by the learning rate towards the difference of the two mean
images; translation adds it (anime -> real) or subtracts it (real -> anime). We read "multiply
the difference vector by the learning rate to update" as the running mean
d ← d + rate · ((mean real − mean anime) − d), which converges to E[real] − E[anime] (the paper
gives no rate; `config.loss.rate`). It is one image for all inputs, so it cannot move a face's
parts: a baseline the paper found poor, and so does our benchmark. Outputs are clipped to
[-1, 1]. No randomness, no optimiser.
"""

import jax.numpy as jnp

from animojax.models.translate import diffvec as nets_lib
from animojax.trainers.translate import common

GROUPS = {}  # Nothing is trained by gradients.


def build_nets(config, rngs):
  del rngs
  return {'diffvec': nets_lib.DifferenceVector(config.data.image_size)}


init_extra = common.no_extra_state
batch_fields = data_fields = common.images_only


def loss_terms(config):
  del config
  return ('batch_difference_gap',)


host_transform = common.no_host_transform


def make_translate(graphdefs, config):
  del config

  def translate(params, images, direction, angle=None):
    del angle
    sign = 1.0 if common.split_direction(direction)[0] == 'anime' else -1.0
    return common.apply(graphdefs, params, 'diffvec', images, sign)

  return translate


def make_train_step(graphdefs, tx, config, *, optim, metrics_collection):
  del graphdefs, tx, optim
  rate = config.loss.rate

  def train_step(state, batch, base_rng):
    del base_rng
    step = state['step']
    difference = state['params']['diffvec']['difference']
    batch_difference = (jnp.mean(batch['real']['image'], axis=0)
                        - jnp.mean(batch['anime']['image'], axis=0))
    gap = jnp.mean(jnp.abs(batch_difference - difference))
    difference = difference + rate * (batch_difference - difference)
    new_state = {'step': step + 1, 'params': {'diffvec': {'difference': difference}},
                 'opt': state['opt'], 'extra': state['extra']}
    return new_state, metrics_collection.single_from_model_output(
        loss=gap, step=step, batch_difference_gap=gap)

  return train_step

"""Optimiser, learning-rate schedule and EMA for the two-stage AniMo/PIRender schedule.

Parameters are kept in named groups ('warp': motion + warping nets, 'edit': editing nets), each
with its own Adam state. In the warp-only stage the editing nets receive no gradient, exactly as
in AniMo's PyTorch code where they have no `.grad`, so their Adam moments and bias-correction
count start when the full stage starts (a single Adam over all parameters would instead start
the editing nets with a stale step count).
"""

import jax
import jax.numpy as jnp
import optax

GROUPS = ('warp', 'edit')


def make_optimizer(optim_config):
  """Adam with the learning rate as state, so the schedule can be applied from the global step."""
  return optax.inject_hyperparams(optax.adam)(
      learning_rate=optim_config.lr, b1=optim_config.b1, b2=optim_config.b2,
      eps=optim_config.eps)


def learning_rate(optim_config, step):
  """StepLR: lr · factor^⌊step / decay_every⌋ (AniMo: ×0.2 after 150 of 200 epochs)."""
  decays = jnp.floor_divide(step, optim_config.lr_decay_every)
  return optim_config.lr * optim_config.lr_decay_factor ** decays


def apply_updates(tx, params, grads, opt_state, lr):
  """Updates the parameters of every group present in `grads`; others are left untouched."""
  params, opt_state = dict(params), dict(opt_state)
  for group, group_grads in grads.items():
    group_opt = opt_state[group]
    group_opt.hyperparams['learning_rate'] = jnp.asarray(lr, jnp.float32)
    updates, opt_state[group] = tx.update(group_grads, group_opt, params[group])
    params[group] = optax.apply_updates(params[group], updates)
  return params, opt_state


def ema_update(ema, params, decay):
  """Exponential moving average of the weights (PIRender: decay 0.5^(32/10000) per step)."""
  return jax.tree.map(lambda e, p: e * decay + p.astype(e.dtype) * (1.0 - decay), ema, params)

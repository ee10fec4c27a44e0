"""Adam per parameter group and the upstream learning-rate schedules of the translation methods.

CycleGAN (`models/networks.py::get_scheduler`, `lr_policy='linear'`): the rate is constant for
`epochs_constant` epochs, then falls linearly; during 0-based epoch e it is
lr · (1 - max(0, e + 1 - epochs_constant) / (epochs_decay + 1)) (upstream's LambdaLR with
`epoch_count` 1), so the last epoch still trains at lr / (epochs_decay + 1). U-GAT-IT
(`UGATIT.py::train`) lowers the rate linearly by lr / (iterations / 2) per iteration over the
second half of its iterations: the same formula with one "epoch" per iteration and
epochs_decay + 1 = iterations / 2, which `config.optim` spells as steps_per_epoch 1.

`weight_decay` is PyTorch Adam's (coupled) L2 term, the gradient plus wd · w before the moments
(U-GAT-IT uses 1e-4, CycleGAN none).
"""

import jax.numpy as jnp
import optax


def make_optimizer(optim_config):
  """Adam (optionally with coupled L2) whose learning rate is state, set from the global step."""

  def adam(learning_rate, b1, b2, eps, weight_decay):
    parts = [optax.add_decayed_weights(weight_decay)] if optim_config.weight_decay else []
    return optax.chain(*parts, optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
                       optax.scale_by_learning_rate(learning_rate))

  return optax.inject_hyperparams(adam)(
      learning_rate=optim_config.lr, b1=optim_config.b1, b2=optim_config.b2,
      eps=optim_config.eps, weight_decay=optim_config.weight_decay)


def total_steps(optim_config):
  return (optim_config.epochs_constant + optim_config.epochs_decay) * optim_config.steps_per_epoch


def learning_rate(optim_config, step):
  """The rate of (0-based) `step`: constant, then linear decay per epoch (module docstring)."""
  epoch = jnp.floor_divide(step, optim_config.steps_per_epoch)
  decayed = jnp.maximum(0, epoch + 1 - optim_config.epochs_constant)
  return optim_config.lr * (1.0 - decayed / (optim_config.epochs_decay + 1.0))


def apply_updates(tx, params, grads, opt_state, lr, groups):
  """Updates the nets of each group `{group: (net names)}` present in `grads` with its own Adam."""
  params, opt_state = dict(params), dict(opt_state)
  for group, nets in groups.items():
    if not all(net in grads for net in nets):
      continue
    group_params = {net: params[net] for net in nets}
    group_opt = opt_state[group]
    group_opt.hyperparams['learning_rate'] = jnp.asarray(lr, jnp.float32)
    updates, opt_state[group] = tx.update({net: grads[net] for net in nets}, group_opt,
                                          group_params)
    params.update(optax.apply_updates(group_params, updates))
  return params, opt_state

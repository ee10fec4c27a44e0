"""Learning-rate schedule, grouped Adam updates, EMA and colour jitter."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from animojax.trainers.animo import augment
from animojax.trainers.animo import optim


def _config():
  return ml_collections.ConfigDict(dict(lr=1e-3, b1=0.5, b2=0.999, eps=1e-8, lr_decay_every=10,
                                        lr_decay_factor=0.2, ema_decay=0.9))


def test_step_decay():
  c = _config()
  np.testing.assert_allclose([optim.learning_rate(c, s) for s in (0, 9, 10, 25)],
                             [1e-3, 1e-3, 2e-4, 4e-5], rtol=1e-6)


def test_grouped_adam_matches_optax_adam_and_leaves_untrained_group():
  c = _config()
  tx = optim.make_optimizer(c)
  params = {'warp': {'w': jnp.ones(3)}, 'edit': {'w': jnp.full(3, 2.0)}}
  opt = {g: tx.init(params[g]) for g in optim.GROUPS}
  grads = {'warp': {'w': jnp.array([1.0, -2.0, 3.0])}}
  new, new_opt = optim.apply_updates(tx, params, grads, opt, 5e-4)
  ref_tx = optax.adam(5e-4, b1=0.5, b2=0.999, eps=1e-8)
  ref_updates, _ = ref_tx.update(grads['warp'], ref_tx.init(params['warp']), params['warp'])
  np.testing.assert_allclose(new['warp']['w'], params['warp']['w'] + ref_updates['w'],
                             rtol=1e-6)
  np.testing.assert_array_equal(new['edit']['w'], params['edit']['w'])
  assert int(new_opt['edit'].count) == 0 and int(new_opt['warp'].count) == 1


def test_ema():
  ema = optim.ema_update({'a': jnp.zeros(2)}, {'a': jnp.ones(2)}, 0.9)
  np.testing.assert_allclose(ema['a'], 0.1, rtol=1e-6)


def test_color_jitter_shared_by_pair_and_in_range():
  rng = jax.random.key(0)
  x = jax.random.uniform(jax.random.key(1), (4, 8, 8, 3), minval=-1, maxval=1)
  a, b = augment.color_jitter_pairs(rng, x, x, 0.1)
  np.testing.assert_allclose(a, b, atol=1e-6)  # Same draw for source and driving.
  assert float(jnp.abs(a - x).max()) > 1e-3 and float(jnp.abs(a).max()) <= 1.0
  same, _ = augment.color_jitter_pairs(rng, x, x, 0.0)
  assert same is x

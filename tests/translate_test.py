"""Unit tests of the translation family's pieces: image pool, schedules, KID, configs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from animojax.configs import translate as translate_config
from animojax.metrics import kid as kid_lib
from animojax.trainers.translate import augment
from animojax.trainers.translate import optim
from animojax.trainers.translate import pool as pool_lib


def test_pool_fills_first_then_swaps_half_of_the_time_like_upstream():
  size = 4
  pool = pool_lib.init(size, (1, 1, 1))
  query = jax.jit(pool_lib.query, static_argnums=3)
  # Filling: the first `size` images are stored in order and returned unchanged.
  first = jnp.arange(1, 4, dtype=jnp.float32).reshape(3, 1, 1, 1)
  pool, out = query(pool, first, jax.random.key(0), size)
  np.testing.assert_array_equal(out, first)
  assert int(pool['count']) == 3
  # The 4th image of this batch still fills; the 5th meets a full pool (upstream walks the batch).
  pool, out = query(pool, jnp.array([4.0, 5.0]).reshape(2, 1, 1, 1), jax.random.key(1), size)
  assert out[0, 0, 0, 0] == 4.0 and int(pool['count']) == size
  swaps = 0
  for i in range(150):
    new = jnp.array([100.0 + i]).reshape(1, 1, 1, 1)
    before = set(np.asarray(pool['images']).ravel().tolist())
    pool, out = query(pool, new, jax.random.key(10 + i), size)
    after = set(np.asarray(pool['images']).ravel().tolist())
    value = float(out[0, 0, 0, 0])
    if value != 100.0 + i:  # Swapped: an old image came out and the new one took its place.
      swaps += 1
      assert value in before and value not in after and 100.0 + i in after
    else:
      assert after == before
  assert 0.35 < swaps / 150 < 0.65  # Upstream: probability 1/2 (binomial sd 0.04).
  assert int(pool['count']) == size


def test_pool_of_size_zero_returns_the_images():
  images = jnp.ones((2, 3, 3, 3))
  pool = pool_lib.init(0, (3, 3, 3))
  assert pool_lib.query(pool, images, jax.random.key(0), 0)[1] is images


def test_cyclegan_linear_schedule_matches_upstream_lambda_lr():
  c = translate_config.get_config('cyclegan').optim
  c.steps_per_epoch = 10
  lr = lambda epoch: float(optim.learning_rate(c, epoch * 10 + 3))
  # Upstream: lr · (1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)), epoch from 0.
  assert lr(0) == pytest.approx(2e-4) and lr(98) == pytest.approx(2e-4)
  assert lr(99) == pytest.approx(2e-4 * (1 - 0 / 101))
  assert lr(100) == pytest.approx(2e-4 * (1 - 1 / 101))
  assert lr(199) == pytest.approx(2e-4 / 101)
  assert optim.total_steps(c) == 2000


def test_ugatit_schedule_lowers_the_rate_over_the_second_half():
  c = translate_config.get_config('ugatit')
  lr = lambda t: float(optim.learning_rate(c.optim, t))
  assert c.total_steps == 1_000_000
  assert lr(499_998) == pytest.approx(1e-4)
  # Upstream (1-based iteration s > 500k): lr = 1e-4 · (1 - (s - 500k) / 500k), s = t + 1.
  assert lr(749_999) == pytest.approx(1e-4 * 0.5)
  assert lr(999_999) == pytest.approx(0.0, abs=1e-12)


def test_adam_weight_decay_is_coupled_l2_like_torch():
  c = translate_config.get_config('ugatit').optim
  tx = optim.make_optimizer(c)
  params = {'w': jnp.array([2.0])}
  state = tx.init(params)
  updates, _ = tx.update({'w': jnp.array([0.0])}, state, params)
  # Zero gradient: torch Adam(weight_decay=wd) steps on g + wd·w, the first step is -lr·sign.
  assert float(updates['w'][0]) == pytest.approx(-1e-4, rel=1e-3)


def test_kid_unbiased_estimator_against_explicit_sums():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(7, 5)), rng.normal(1.0, 1.0, size=(6, 5))
  k = lambda a, b: (a @ b / 5 + 1) ** 3
  xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
  yy = sum(k(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / 30
  xy = sum(k(x[i], y[j]) for i in range(7) for j in range(6)) / 42
  assert kid_lib.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy)
  same = rng.normal(size=(400, 8))
  mean, _ = kid_lib.kid(same[:200], same[200:], num_subsets=10, subset_size=100)
  far, _ = kid_lib.kid(same[:200], same[200:] + 1.0, num_subsets=10, subset_size=100)
  assert abs(mean) < 0.05 < far
  with pytest.raises(ValueError, match='KID needs'):
    kid_lib.kid(x[:1], y)


def test_crop_flip_keeps_size_and_reports_flips():
  x = jnp.linspace(-1, 1, 2 * 8 * 8 * 3).reshape(2, 8, 8, 3)
  out, flips = augment.random_resized_crop_flip(jax.random.key(0), x, load_size=10, flip=True)
  assert out.shape == x.shape and flips.shape == (2,)
  same, none = augment.random_resized_crop_flip(jax.random.key(0), x, load_size=0, flip=False)
  np.testing.assert_array_equal(same, x)
  assert not none.any()


@pytest.mark.parametrize('method', translate_config.METHODS)
def test_every_method_has_paper_and_demo_configs(method):
  paper = translate_config.get_config(method)
  demo = translate_config.get_config(f'{method},demo')
  assert paper.method == demo.method == method and paper.trainer == 'translate'
  assert demo.data.anime.name == 'synthetic_heads/anime_64'
  assert demo.data.real.name == 'synthetic_heads/human_64'
  steps = demo.total_steps if demo.total_steps > 0 else optim.total_steps(demo.optim)
  assert steps <= 600  # Minutes on a CPU.


def test_cyclegan_paper_settings_and_bad_method():
  c = translate_config.get_config('cyclegan')
  assert (c.batch_size, c.pool_size, c.augment.load_size) == (1, 50, 286)
  assert (c.loss.cycle, c.loss.identity, c.optim.lr, c.optim.b1) == (10.0, 0.5, 2e-4, 0.5)
  assert (c.model.num_blocks, c.model.disc_layers, c.model.ngf) == (9, 3, 64)
  with pytest.raises(ValueError, match='Unknown translation method'):
    translate_config.get_config('cyclegann,demo')


def test_encdec_true_pairs_are_the_other_domain_rendered_at_the_same_state():
  from animojax.synthetic import dataset as synthetic  # pylint: disable=g-import-not-at-top
  from animojax.trainers.translate import encdec  # pylint: disable=g-import-not-at-top
  semantic = synthetic.frame_semantics('anime_16', 1)[:2]
  batch = {d: {'image': np.zeros((2, 16, 16, 3), np.float32), 'identity': np.array([1, 0]),
               'semantic': semantic} for d in ('anime', 'real')}
  out = encdec._render_pairs({'anime': 'anime_16', 'real': 'human_16'}, batch)
  for domain, other, i in (('anime', 'human_16', 0), ('real', 'anime_16', 1)):
    expected = synthetic.render_target(other, int(batch[domain]['identity'][i]), semantic[i:i + 1])
    np.testing.assert_array_equal(out[domain]['paired'][i], expected[0])

"""The train step's speed knobs leave the maths alone: bf16 policy, remat, one compilation,
FLOP counting, and the shared program the trainer, benchmarks and compile check build."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from animojax.trainers.animo import program as animo_program
from animojax.trainers.animo import step as animo_step
from animojax.trainers.common import precision
from animojax.utils import flops
from tests.conftest import RUN_FAST_COMPILER_OPTIONS
from tests.conftest import collective_bytes
from tests.helpers import program_config
from tests.helpers import run_steps


def test_bfloat16_policy_tracks_float32_and_keeps_float32_state():
  # One device, the warp stage: the float32 run is test_one_compilation_per_stage's program (the
  # compilation cache shares it); the policy is the same code in both stages.
  one_device = [('data', 1)]
  fp32, _, _ = run_steps(program_config(mesh=one_device), 'warp', 3)
  bf16, state, _ = run_steps(program_config(mesh=one_device, compute_dtype='bfloat16'), 'warp', 3)
  # bf16 rounds activations to 8 bits of mantissa: the losses agree to ~1%, not to fp32 digits.
  np.testing.assert_allclose(bf16, fp32, rtol=0.03)
  assert bf16[-1] < bf16[0]
  dtypes = {x.dtype for x in jax.tree.leaves((state['params'], state['opt'], state['ema']))
            if jnp.issubdtype(x.dtype, jnp.floating)}
  assert dtypes == {jnp.dtype(jnp.float32)}


# Slow (two more compiles of the step); kept out of the default run for CI's 20 minutes.
@pytest.mark.slow
def test_remat_changes_memory_not_results():
  reference, _, _ = run_steps(program_config(), 'warp', 2)
  rematted, _, _ = run_steps(program_config(remat='all'), 'warp', 2)
  np.testing.assert_allclose(rematted, reference, rtol=1e-5)


def test_one_compilation_per_stage():
  # The one-device program of test_eight_devices_with_fsdp_rules_give_the_same_loss_as_one (the
  # compilation cache shares it).
  _, _, step_fn = run_steps(program_config(mesh=[('data', 1)]), 'warp', 3)
  assert step_fn._cache_size() == 1  # pylint: disable=protected-access


def test_unknown_knobs_are_named():
  with pytest.raises(ValueError, match='compute_dtype'):
    animo_program.build(program_config(compute_dtype='float16x'))
  with pytest.raises(ValueError, match='remat'):
    animo_program.build(program_config(remat='everything'))


def test_cast_floating_leaves_integers():
  tree = {'w': jnp.ones(2), 'n': jnp.arange(2), 'k': jax.random.key(0)}
  cast = precision.cast_floating(tree, jnp.bfloat16)
  assert cast['w'].dtype == jnp.bfloat16 and cast['n'].dtype == tree['n'].dtype
  assert cast['k'].dtype == tree['k'].dtype


def test_matmul_flops_counts_convs_and_dots_through_jit_and_grad():
  x = jnp.ones((2, 8, 8, 3))
  kernel = jnp.ones((3, 3, 3, 16))
  dense = jnp.ones((16, 4))

  def forward(kernel, dense):
    y = jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return jax.jit(lambda y: (y @ dense).sum())(y)

  conv = 2 * (2 * 8 * 8 * 16) * (3 * 3 * 3)
  dot = 2 * (2 * 8 * 8 * 4) * 16
  assert flops.matmul_flops(jax.make_jaxpr(forward)(kernel, dense)) == conv + dot
  grad = jax.make_jaxpr(jax.grad(forward, argnums=(0, 1)))(kernel, dense)
  # Backward: the kernel's gradient (x is a constant) and both of the dot's transposes.
  assert flops.matmul_flops(grad) == 2 * conv + 3 * dot


@pytest.mark.devices(2)
@pytest.mark.parametrize('compute_dtype', [
    'float32',
    # Slow: the same sharding code as float32; the bf16 step itself is compiled by
    # test_bfloat16_policy_tracks_float32_and_keeps_float32_state.
    pytest.param('bfloat16', marks=pytest.mark.slow)])
def test_data_parallel_step_moves_only_the_gradients(compute_dtype):
  """Two devices: no activation crosses devices (the swapped pairs and the loss network's two
  inputs are interleaved, the warps run per shard); the only traffic is the gradient all-reduce
  plus the loss scalars."""
  config = program_config(mesh=[('data', 2)], compute_dtype=compute_dtype)
  program = animo_program.build(config)
  hlo = program.train_steps['gen'].lower(*program.step_args['gen']).compile().as_text()
  moved = collective_bytes(hlo)
  assert set(moved) == {'all-reduce'}, moved
  assert moved['all-reduce'] <= 4 * program.num_params + 1024, (moved, program.num_params)


@pytest.mark.parametrize('stage', [
    # Slow: the full stage's check below compares the warp terms too.
    pytest.param('warp', marks=pytest.mark.slow), 'gen'])
def test_both_domains_through_one_loss_pass_give_each_domains_terms(stage):
  """reenactment_loss batches both domains through the loss network; each term must equal
  PIRender's per-domain formula computed with separate loss calls."""
  config = program_config(mesh=[('data', 1)])
  config.loss.network, config.loss.num_scales = 'vgg19_random', 1
  program = animo_program.build(config)
  loss, generator = program.image_loss, animo_step.make_generator(program.graphdef, stage=stage)

  # One program: op by op, the VGG19 passes take several times longer on CPUs.
  @functools.partial(jax.jit, compiler_options=RUN_FAST_COMPILER_OPTIONS)
  def both_ways(loss_params, state, batch):
    together = animo_step.reenactment_loss(generator, state['params'], loss, loss_params, batch,
                                           stage=stage, loss_config=config.loss)
    apart = {}
    for domain in animo_step.DOMAINS:
      inputs, poses, targets = animo_step.swap_pairs(batch[domain])
      out = generator(state['params'], inputs, poses, domain)
      apart[f'{domain}_warp'], _ = loss(loss_params, out['warp_image'], targets, num_scales=1)
      if stage == 'gen':
        apart[f'{domain}_final_loss'], aux = loss(loss_params, out['fake_image'], targets,
                                                  num_scales=1, style_weight=250.0)
        apart[f'{domain}_final'], apart[f'{domain}_style'] = aux['perceptual'], aux['style']
    return together, apart

  (total, terms), apart = both_ways(program.image_loss.params, program.init(jax.random.key(0)),
                                    animo_program.random_batch(config, jax.random.key(1)))
  expected_total = 0.0
  for domain in animo_step.DOMAINS:
    np.testing.assert_allclose(terms[f'{domain}_warp'], apart[f'{domain}_warp'], rtol=1e-5)
    expected_total += 2.5 * apart[f'{domain}_warp']
    if stage == 'gen':
      for term in ('final', 'style'):
        np.testing.assert_allclose(terms[f'{domain}_{term}'], apart[f'{domain}_{term}'],
                                   rtol=1e-5)
      expected_total += 4.0 * apart[f'{domain}_final_loss']
  np.testing.assert_allclose(total, expected_total, rtol=1e-5)

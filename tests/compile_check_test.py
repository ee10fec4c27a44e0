"""Ahead-of-time compile check (`python -m animojax.compile_check`): fake CPU devices, and the
real TPU compiler for a TPU topology (libtpu, no TPU needed)."""

import os
import re
import subprocess
import sys

import pytest

from animojax import compile_check
from animojax import trainers
from animojax.utils import sharding
from tests.conftest import collective_bytes
from tests.helpers import program_config

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tiny AniMo as a config file (the CLI compiles it several times faster than animo:demo).
_TINY = '--config=' + os.path.join(_REPO, 'tests', 'tiny_animo_config.py')


def test_parse_memory():
  assert compile_check.parse_memory('v4') == 32 * 2**30
  assert compile_check.parse_memory('H100') == 80 * 2**30
  assert compile_check.parse_memory('16GiB') == 16 * 2**30
  assert compile_check.parse_memory('80 GB') == 80 * 10**9
  assert compile_check.parse_memory('1234') == 1234
  with pytest.raises(ValueError, match='16GiB'):
    compile_check.parse_memory('lots')


@pytest.mark.devices(8)
def test_fsdp_rules_cut_per_device_state_and_report_says_fit_or_not():
  replicated = compile_check.check(program_config(), stages=('warp',))['warp']
  sharded = compile_check.check(
      program_config(sharding_rules=[('.*', 'fsdp')]), stages=('warp',))['warp']
  # The state (parameters, two Adam moments, EMA) dominates the arguments of this tiny model;
  # sharding it over 8 devices must shrink what each device holds.
  assert sharded['arguments'] < 0.5 * replicated['arguments']
  assert replicated['total'] > replicated['temporaries'] > 0
  report = {'warp': replicated}
  assert 'fits' in compile_check.format_report(report, 2 * replicated['total'])
  assert 'DOES NOT FIT' in compile_check.format_report(report, replicated['total'] // 2)


# Slow (a CPU compile in a new process): the TPU CLI test below covers the command's "does not fit"
# exit, and test_fsdp_rules_cut_per_device_state_and_report_says_fit_or_not the CPU report.
@pytest.mark.slow
def test_cli_exits_nonzero_when_the_step_does_not_fit():
  proc = _run_cli(_TINY, '--devices=2', '--device_memory=1MiB', '--stages=warp',
                  '--config.batch_size=2')
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert 'warp:' in proc.stdout and 'DOES NOT FIT' in proc.stdout


def _tpu_devices():
  """A v5e:2x2 topology's devices for the TPU compiler (libtpu: the `test` extra on Linux x86)."""
  pytest.importorskip('libtpu', reason="needs libtpu (pip install 'jax[tpu]'); Linux x86 only")
  # An ahead-of-time compile touches no TPU; let both test workers load libtpu.
  os.environ.setdefault('ALLOW_MULTIPLE_LIBTPU_LOAD', '1')
  return compile_check.tpu_devices('v5e:2x2')


def _run_cli(*args):
  return subprocess.run([sys.executable, '-m', 'animojax.compile_check', *args], cwd=_REPO,
                        capture_output=True, text=True, check=False, timeout=900)


# Slow (two TPU compiles): the TPU CLI test compiles the warp stage for v5e:2x2 by default; this one
# adds the gen stage and the collective count. Kept out of the default run for CI's 20 minutes.
@pytest.mark.slow
def test_tpu_steps_fit_and_move_only_the_gradients():
  """Both stages compile for a v5e:2x2 with the TPU compiler, fit, and the warps stay on each
  chip's rows (`ops.batch_local` uses shard_map there): the only traffic is the gradient
  all-reduce plus the loss scalars (as on CPUs, tests/train_speed_test.py)."""
  devices = _tpu_devices()
  config = program_config()
  report = compile_check.check(config, devices=devices, keep_hlo=True)
  assert set(report) == {'warp', 'gen'}, report.keys()
  num_params = trainers.get(config.trainer).build_program(
      config, sharding.make_mesh(config.mesh, devices)).num_params
  for stage, memory in report.items():
    assert 'error' not in memory, (stage, memory)
    moved = collective_bytes(memory['hlo'])
    assert set(moved) == {'all-reduce'}, (stage, moved)
    assert moved['all-reduce'] <= 4 * num_params + 1024, (stage, moved, num_params)
    assert compile_check.format_report({stage: memory}, 16 * 2**30).endswith(': fits')


# Slow (a third TPU compile, ~50 s on 2 cores): FSDP rules are covered on CPU above and the TPU
# per-chip warps by test_tpu_steps_fit_and_move_only_the_gradients.
@pytest.mark.slow
def test_tpu_fsdp_rules_compile_and_shard_the_state():
  devices = _tpu_devices()
  config = program_config(sharding_rules=[('.*', 'fsdp')])
  memory = compile_check.check(config, stages=('warp',), devices=devices)['warp']
  assert 'error' not in memory, memory
  replicated = compile_check.check(program_config(), stages=('warp',), devices=devices)['warp']
  # The state (parameters, two Adam moments, EMA) dominates the arguments; split over 4 chips
  # each holds much less of it (TPU tile padding of the small kernels keeps it above a quarter).
  assert memory['arguments'] < 0.6 * replicated['arguments'], (memory, replicated)


# Slow (a TPU compile in a fresh process, ~100 s on 2 cores): the CLI's does-not-fit report and
# exit status run in test_cli_exits_nonzero_when_the_step_does_not_fit, the TPU compiler in the
# two test_tpu_* tests above, --topology's parsing in test_bad_flags_and_configs_....
@pytest.mark.slow
def test_tpu_cli_names_the_stage_that_does_not_fit_without_a_traceback():
  _tpu_devices()
  proc = _run_cli(_TINY, '--topology=v5e:2x2', '--config.batch_size=4', '--stages=warp',
                  '--device_memory=1MiB')
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert 'TPU v5e:2x2 (4 chips, TPU compiler)' in proc.stdout, proc.stdout
  assert re.search(r'^warp: .*DOES NOT FIT', proc.stdout, re.M), proc.stdout
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]


def test_bad_flags_and_configs_end_with_a_message_not_a_traceback():
  """Usage errors exit with status 2 (1 means "does not fit") and say what is wrong."""
  for args, message in (
      (['--topology=v5e:banana'], '--topology'),
      (['--device_memory=lots'], '--device_memory'),
      (['--config.kernels=cuda'], 'config.kernels'),
      (['--config.batch_size=3'], 'divisible'),
  ):
    proc = _run_cli(_TINY, '--devices=2', *args)
    assert proc.returncode == 2, (args, proc.stdout, proc.stderr[-3000:])
    assert message in proc.stderr and 'Traceback' not in proc.stderr, (args, proc.stderr[-3000:])

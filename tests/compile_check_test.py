"""Ahead-of-time compile check on fake CPU devices (`python -m animojax.compile_check`)."""

import subprocess
import sys

import pytest

from animojax import compile_check
from tests.train_speed_test import program_config


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


def test_cli_exits_nonzero_when_the_step_does_not_fit():
  proc = subprocess.run(
      [sys.executable, '-m', 'animojax.compile_check', '--config=animo:demo', '--devices=2',
       '--device_memory=1MiB', '--stages=warp', '--config.batch_size=2'],
      capture_output=True, text=True, check=False, timeout=600)
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert 'warp:' in proc.stdout and 'DOES NOT FIT' in proc.stdout


def test_tpu_topology_uses_the_tpu_compiler_without_tpus():
  pytest.importorskip('libtpu', reason="needs libtpu (pip install 'jax[tpu]'); CPU-only here")
  proc = subprocess.run(
      [sys.executable, '-m', 'animojax.compile_check', '--config=animo:demo', '--topology=v5e:2x2',
       '--stages=warp', '--config.batch_size=4'],
      capture_output=True, text=True, check=False, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'TPU v5e:2x2 (4 chips, TPU compiler)' in proc.stdout and 'fits' in proc.stdout

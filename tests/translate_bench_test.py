"""The translation step benchmark at toy size on the CPU (ours only: no upstream checkout here),
which also runs the bf16 policy and U-GAT-IT's full train step."""

import contextlib
import io
import json
import math

import pytest

from benchmarks import translate_step


def _run(method, policy):
  args = ['--child', f'--method={method}', '--size=32', '--tiny', '--batch=2', '--steps=1',
          '--warmup=0', '--repeats=1', '--loss_steps=2', f'--policy={policy}']
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    translate_step.main(args)
  line = [l for l in out.getvalue().splitlines() if l.startswith('RESULT ')][-1]
  return json.loads(line[len('RESULT '):])


# U-GAT-IT's step (4 discriminators, 6 generator passes) takes minutes to compile on 2 cores; its
# networks are covered by the default parity tests, the step by this slow variant and its demo.
@pytest.mark.parametrize('method,policy', [
    # Slow (the benchmark's own step compile); the trainer's step is tested in translate_train_test.
    pytest.param('cyclegan', 'bfloat16', marks=pytest.mark.slow),
    pytest.param('ugatit', 'float32', marks=pytest.mark.slow)])
def test_benchmark_child_runs_the_trainers_step(method, policy):
  result = _run(method, policy)
  assert result['impl'] == 'animojax' and result['mode'] == policy
  assert result['images_per_step'] == 4 and result['recompiles'] == 0
  assert result['finite'] and all(math.isfinite(x) for x in result['losses'])
  assert result['step_ms'] > 0


def test_table_reports_failures():
  text = translate_step.table([{'error': 'exit 1', 'cmd': '--method=ugatit'}])
  assert 'failed: exit 1' in text

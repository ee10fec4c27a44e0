"""Test set-up: 8 fake CPU devices, a shared synthetic dataset folder, and shared helpers.

The suite runs on the CPU wherever it runs (as CI does): the sharding tests need the 8 fake
devices. `JAX_PLATFORMS=cuda python -m pytest` runs it on a GPU instead: the compiled Triton
kernel tests run there, float32 matmuls stay float32 (not the GPU's default TF32) so the float32
references hold, and tests marked `devices(n)` skip when fewer devices are visible.
"""

import math
import os
import re

import animojax  # Its XLA:CPU flags (see animojax/__init__.py) join the ones set below.

# The suite's programs are tiny and compile-bound: without LLVM's optimisation passes XLA:CPU
# compiles them in about half the time (the tiny AniMo's warp step 10.5 -> 5.0 s, full step
# 16.7 -> 8.9 s) and runs them a little slower, which tests do not notice. CPU only; CLIs that
# tests start inherit the flags (tests/multihost_test.py passes them on explicitly).
# (XLA:CPU's CPU_OPT_PRESET_FAST_COMPILE would take a further 15% off, but changes float32
# results: the AniMo torch-parity test fails by 20x its tolerance with it.)
FAST_COMPILE_XLA_FLAGS = ('--xla_backend_optimization_level=0 '
                          '--xla_llvm_disable_expensive_passes=true')

# For the few jits a test owns whose run time outweighs their compile time, LLVM's optimisation
# back for that program alone: `jax.jit(f, compiler_options=RUN_FAST_COMPILER_OPTIONS)`. (VGG19's
# loss on 16 images of 16², 2 CPU cores: level 0 compiles in 0.6 s and runs in 8 s, level 1 in
# 1.1 s and 1.5 s; the default level 3 in 1.4 s and 1.5 s.)
RUN_FAST_COMPILER_OPTIONS = {'xla_backend_optimization_level': 1}

# Must happen before JAX initialises its backend.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ['XLA_FLAGS'] = ' '.join(filter(None, [
    os.environ.get('XLA_FLAGS', ''), '--xla_force_host_platform_device_count=8',
    FAST_COMPILE_XLA_FLAGS if os.environ['JAX_PLATFORMS'] == 'cpu' else '']))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import jax  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

# Many tests compile the same programs (each trainer run builds fresh jitted closures); XLA's
# persistent cache turns every repeat into a disk read. Kept across runs on the same machine.
# The environment variables carry the same settings into the CLIs that tests start as
# subprocesses (JAX reads JAX_<OPTION> at import).
_CACHE = {'JAX_COMPILATION_CACHE_DIR': os.path.join(os.path.expanduser('~'), '.cache', 'animojax',
                                                    'jax_test_cache'),
          'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0',
          'JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES': '-1'}
for _name, _value in _CACHE.items():
  os.environ.setdefault(_name, _value)
jax.config.update('jax_compilation_cache_dir', os.environ['JAX_COMPILATION_CACHE_DIR'])
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
jax.config.update('jax_persistent_cache_min_entry_size_bytes', -1)
if jax.default_backend() != 'cpu':
  # float32 matmuls in float32, as on CPUs (a GPU's default is TF32), so that the float32
  # references mean the same there; bf16 work is unaffected.
  jax.config.update('jax_default_matmul_precision', 'highest')

SHARED_TESTDATA = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', 'shared',
                                               'testdata'))


def pytest_runtest_setup(item):
  for marker in item.iter_markers('devices'):
    if jax.device_count() < marker.args[0]:
      pytest.skip(f'needs {marker.args[0]} devices, {jax.device_count()} visible (the default '
                  'CPU run has 8 fake ones)')


def shared_file(*parts):
  """Path of a file in ../shared/testdata; fails (never skips) when it is missing."""
  path = os.path.join(SHARED_TESTDATA, *parts)
  if not os.path.exists(path):
    pytest.fail(f'Missing real test file {path} (see ../shared/testdata/README.md).')
  return path


def _once_per_session(tmp_path_factory, name, build):
  """Path of a folder that `build(path)` fills once per test session, shared by the test
  workers: the first worker to ask builds it under a file lock, the others wait and read it."""
  import shutil  # pylint: disable=g-import-not-at-top
  import filelock  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    root = root.parent  # Above the workers' own folders: the same for all of them.
  path, done = root / name, root / f'{name}.done'
  with filelock.FileLock(str(root / f'{name}.lock')):
    if not done.exists():
      shutil.rmtree(path, ignore_errors=True)  # A failed attempt's leftovers (a run would resume).
      build(str(path))
      done.write_text('')
  return str(path)


@pytest.fixture(scope='session')
def synthetic_data_dir(tmp_path_factory):
  """A TFDS data_dir holding the 64² synthetic datasets (read only)."""
  from animojax.data import sources  # pylint: disable=g-import-not-at-top

  def build(data_dir):
    for name in ('synthetic_heads/anime_64', 'synthetic_heads/human_64'):
      sources.get_builder(name, data_dir)

  return _once_per_session(tmp_path_factory, 'tfds', build)


@pytest.fixture(scope='session')
def tiny_run(synthetic_data_dir, tmp_path_factory):
  """Workdir of `helpers.tiny_run_config`'s run (replicated over the 8 fake devices), trained
  once per test session (read only)."""
  import sys  # pylint: disable=g-import-not-at-top
  from animojax.trainers.animo import train as trainer  # pylint: disable=g-import-not-at-top
  from tests import helpers  # pylint: disable=g-import-not-at-top

  def train(workdir):
    trainer.train_and_evaluate(helpers.tiny_run_config(synthetic_data_dir), workdir)
    # Building the data, training, logging, checkpointing and exporting never needs TensorFlow.
    assert 'tensorflow' not in sys.modules

  return _once_per_session(tmp_path_factory, 'tiny_run', train)


def assert_close(actual, expected, rtol):
  """|actual - expected| <= rtol * max(1, max|expected|): fp32 rounding relative to data scale."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  assert actual.shape == expected.shape, (actual.shape, expected.shape)
  scale = max(1.0, float(np.abs(expected).max()))
  err = float(np.abs(actual - expected).max())
  assert err <= rtol * scale, f'max abs error {err:.3g} > {rtol} * {scale:.3g}'


def collective_bytes(hlo_text):
  """{collective kind: total bytes of its results} in an optimised HLO module's text."""
  sizes = {'f64': 8, 'f32': 4, 'bf16': 2, 'f16': 2, 's32': 4, 'u32': 4, 's8': 1, 'u8': 1, 'pred': 1}
  totals = {}
  for line in hlo_text.splitlines():
    match = re.search(r'= (.*?) (all-reduce|all-gather|all-to-all|collective-permute|'
                      r'reduce-scatter)(-start)?\(', line)
    if match:
      arrays = re.findall(r'(\w+)\[([\d,]*)\]', match.group(1))
      size = sum(sizes[t] * math.prod(int(d) for d in dims.split(',') if d) for t, dims in arrays)
      totals[match.group(2)] = totals.get(match.group(2), 0) + size
  return totals

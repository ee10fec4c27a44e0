"""`animojax.evaluate`: every metric in the report of a (tiny, untrained) run, and clear notes on
the metrics skipped for lack of weights.

FID runs here through a 4-d stand-in feature extractor: the real Inception at 299² on 96 images
and 2048-d matrix square roots would take minutes on CI's 2 cores. The network is checked in
inception_test.py and the distance in fid_test.py; this file checks the plumbing around them.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from animojax import evaluate
from animojax.data import pipeline
from animojax.metrics import lpips
from animojax.metrics import suite as metric_suite
from animojax.trainers.animo import state as animo_state
from animojax.trainers.animo import optim
from animojax.trainers.common import checkpoint
from tests.helpers import tiny_config

pytestmark = pytest.mark.integration  # Trains or runs the CLIs end to end.

NUM_PAIRS = 8


@pytest.fixture(scope='module')
def workdir(synthetic_data_dir, tmp_path_factory):
  """A workdir with config.json and a step-0 checkpoint of random weights (training is not needed
  to check the evaluation)."""
  path = str(tmp_path_factory.mktemp('run'))
  config = tiny_config(synthetic_data_dir)
  with open(os.path.join(path, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=2))
  init = animo_state.make_init(config.model.to_dict(), optim.make_optimizer(config.optim))
  # Random values of the right shapes: compiling the real init costs far more on CI's 2 cores.
  rng = np.random.default_rng(0)
  state = jax.tree.map(
      lambda s: jnp.asarray(rng.standard_normal(s.shape) * 0.05, s.dtype)
      if jnp.issubdtype(s.dtype, jnp.floating) else jnp.zeros(s.shape, s.dtype),
      jax.eval_shape(init, jax.random.key(0)))
  train_iter = pipeline.make_iterator(
      pipeline.make_dataset(config.data, 'train', batch_size=config.batch_size, seed=0),
      config.data)
  ckpt = checkpoint.Checkpointer(path)
  ckpt.save(0, state, train_iter, force=True)
  ckpt.close()
  return path


def _stand_in_features(images):
  """Per-channel means and the overall std: a cheap 4-d feature with FID's interface."""
  x = np.asarray(images, np.float64)
  return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2, 3))[:, None]], axis=1)


def test_all_metrics_for_all_directions(workdir):
  fn, params = lpips.make_lpips('random')
  suite = metric_suite.MetricSuite(
      names=metric_suite.ALL, lpips=lambda x, y: fn(params, x, y),
      fid_features=_stand_in_features, fid_dim=4)
  table, _ = evaluate.run(workdir, num_pairs=NUM_PAIRS, batch_size=NUM_PAIRS, suite=suite)
  report = json.load(open(os.path.join(workdir, 'eval.json')))
  assert report['skipped'] == {} and report['num_pairs'] == NUM_PAIRS
  assert set(report['settings']) == set(metric_suite.ALL)
  assert set(report['results']) == {'anime<-anime', 'human<-human', 'anime<-human',
                                    'human<-anime'}
  for direction in report['results'].values():
    for who in ('model', 'copy_source'):
      assert set(direction[who]) == set(metric_suite.ALL)
      assert all(np.isfinite(v) for v in direction[who].values())
      assert direction[who]['fid'] >= -1e-9 and 0 <= direction[who]['cpbd'] <= 1
  assert table == report['results']
  markdown = open(os.path.join(workdir, 'eval.md')).read()
  for column in ('model FID ↓', 'copy FID', 'model LPIPS ↓', 'model CPBD ↑', 'copy SSIM'):
    assert column in markdown
  assert 'Skipped' not in markdown


def test_cli_reports_skipped_metrics_and_why(workdir, tmp_path):
  missing = str(tmp_path / 'fid_inception.npz')
  result = subprocess.run(
      [sys.executable, '-m', 'animojax.evaluate', f'--workdir={workdir}',
       f'--num_pairs={NUM_PAIRS}', f'--batch_size={NUM_PAIRS}', '--metrics=psnr,fid',
       f'--fid_weights={missing}'],
      capture_output=True, text=True, check=False, timeout=600,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Skipped FID: {missing} not found' in result.stdout
  assert 'python -m animojax.convert.fetch fid_inception' in result.stdout
  report = json.load(open(os.path.join(workdir, 'eval.json')))
  assert set(report['skipped']) == {'fid'}
  assert all(set(r['model']) == {'psnr'} for r in report['results'].values())
  markdown = open(os.path.join(workdir, 'eval.md')).read()
  assert 'Skipped metrics:' in markdown and missing in markdown and 'model PSNR ↑' in markdown

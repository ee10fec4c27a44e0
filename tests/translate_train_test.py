"""End-to-end tests of the translation trainer on the synthetic data: artefacts, export, resume."""

import json
import os

import jax
import numpy as np
import pytest

from animojax import compile_check
from animojax import evaluate as evaluate_lib
from animojax import export as export_lib
from animojax.configs import translate as translate_config
from animojax.trainers.translate import train as trainer
from animojax.utils import tree as tree_util

pytestmark = pytest.mark.integration


def tiny(data_dir, method='cyclegan', **overrides):
  c = translate_config.get_config(f'{method},demo')
  c.data.data_dir = data_dir
  c.data.num_threads = 1
  if method in ('cyclegan', 'cyclegan_angle'):
    c.model.update(ngf=2, ndf=2, num_blocks=1, disc_layers=1)
  c.batch_size = 8
  c.total_steps = 2
  c.log_every = 1
  c.checkpoint_every = 1
  c.sample_every = 0
  c.eval.num_images = 0
  c.export_at_end = False
  for k, v in overrides.items():
    c[k] = v
  return c


def test_cyclegan_run_leaves_artefacts_and_exports(synthetic_data_dir, tmp_path):
  config = tiny(synthetic_data_dir, sample_every=2, export_at_end=True)
  config.eval.update(num_images=8, batch_size=8, probe_steps=2)
  workdir = str(tmp_path / 'run')
  state = trainer.train_and_evaluate(config, workdir)
  assert int(state['step']) == 2
  rows = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert [r['step'] for r in rows] == [1, 2]
  assert all(np.isfinite(r[k]) for r in rows for k in ('gen_gan', 'cycle', 'identity', 'disc'))
  assert int(state['extra']['pool']['anime']['count']) == 16  # 2 steps × 8 fakes, pool of 50.
  assert os.path.exists(os.path.join(workdir, 'samples', 'step_00000002.png'))
  report = json.load(open(os.path.join(workdir, 'eval.json')))
  assert set(report['results']) >= {'anime->real', 'real->anime', 'probe_floor'}
  assert 'fid' in report['skipped'] or 'fid' in report['results']['anime->real']['model']
  exported = tree_util.load_npz_flat(os.path.join(workdir, 'params.npz'))
  assert 'gen_to_real/stem/kernel' in exported and 'disc_anime/head/bias' in exported
  # Inference CLI: an RGBA and an odd-sized RGB file, resized/cropped as trained, batch padded.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from animojax import translate as translate_cli  # pylint: disable=g-import-not-at-top
  inputs = tmp_path / 'in'
  inputs.mkdir()
  Image.new('RGBA', (80, 80), (255, 0, 0, 128)).save(inputs / 'a.png')
  Image.new('RGB', (90, 70), (0, 0, 255)).save(inputs / 'b.jpg')
  written = translate_cli.translate_files(workdir, translate_cli.list_inputs(str(inputs)),
                                          str(tmp_path / 'out'), batch_size=4)
  assert [os.path.basename(w) for w in written] == ['a.png', 'b.png']
  assert Image.open(written[1]).size == (64, 64)
  with pytest.raises(ValueError, match='direction'):
    translate_cli.translate_files(workdir, written, str(tmp_path / 'o'), direction='a->b')
  # The tools work on the family's workdirs and configs: evaluate (FID skipped without weights)
  # and the compile check (the same step as trained).
  table, suite = evaluate_lib.run(workdir, metrics=('fid',))
  assert 'anime->real' in table and 'fid' in suite.skipped
  report = compile_check.check(config)
  assert set(report) == {'train'} and report['train']['total'] > 0
  out = str(tmp_path / 'again.npz')
  assert export_lib.export(workdir, out) == 2
  again = tree_util.load_npz_flat(out)
  for k in exported:
    np.testing.assert_array_equal(again[k], exported[k])


def test_resume_matches_uninterrupted_run(synthetic_data_dir, tmp_path):
  straight = trainer.train_and_evaluate(tiny(synthetic_data_dir), str(tmp_path / 'straight'))
  workdir = str(tmp_path / 'resumed')
  trainer.train_and_evaluate(tiny(synthetic_data_dir, total_steps=1), workdir)
  resumed = trainer.train_and_evaluate(tiny(synthetic_data_dir), workdir)
  flat = lambda s: tree_util.flatten_with_names(jax.device_get(s))
  a, b = flat(straight), flat(resumed)
  assert set(a) == set(b)
  for k in a:  # Parameters, both Adams, the image pools and the step.
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


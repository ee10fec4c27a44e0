"""ToonTalker trainer: configs, a two-step stage-1 run with checkpoints and export, and (slow)
stage 2 resumed with export keys equal to the converter's, and both stages with the
four-direction evaluation."""

import json
import os

import numpy as np
import pytest

from animojax import reenactor
from animojax.configs import toontalker as tt_config
from animojax.trainers.toontalker import train as trainer
from animojax.utils import tree as tree_util

# Fewer channels than the demo (compile time grows with the graph, not the widths).
TINY_MODEL = dict(width=1 / 16, ffn_dim=32)


def _tiny(data_dir, **overrides):
  c = tt_config.get_config('demo')
  c.data.data_dir = data_dir
  c.data.num_threads = 1
  c.model.update(TINY_MODEL)
  c.batch_size = 8  # The tests' 8 fake devices.
  c.log_every = 1
  c.checkpoint_every = 1
  c.sample_every = 0
  c.eval.num_pairs = 0
  for k, v in overrides.items():
    c[k] = v
  return c


def _metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def test_configs():
  paper = tt_config.get_config()
  assert (paper.batch_size, paper.total_steps, paper.optim.stage2.g_lr) == (8, 10_000, 1e-4)
  assert (paper.loss.motion_weight, paper.loss.perceptual_weight) == (20.0, 10.0)
  stage1 = tt_config.get_config('stage=1')
  assert 'cartoon' not in stage1.data and stage1.batch_size == 64
  assert stage1.stage1_steps == stage1.total_steps == 450_000
  assert stage1.optim.stage1.g_lr == 5e-4
  assert tt_config.get_config('demo,no_analogy').loss.analogy is False
  with pytest.raises(ValueError, match='stage must be'):
    tt_config.get_config('stage=3')


@pytest.mark.integration
def test_stage1_steps_checkpoint_and_export(synthetic_data_dir, tmp_path):
  """The trainer's loop, checkpoints and export on stage 1 (real videos, in-domain), on one
  device: stage 2's step takes minutes to compile on 2 cores (the slow tests below). Resuming
  is the families' shared `checkpoint.restore_or_init` (tests/train_test.py)."""
  workdir = str(tmp_path / 'run')
  config = _tiny(synthetic_data_dir, stage1_steps=2, total_steps=2, mesh=[('data', 1)])
  del config.data['cartoon']  # As `toontalker:stage=1`.
  config.copy_real_to_cartoon = False
  state = trainer.train_and_evaluate(config, workdir)
  assert int(state['step']) == 2
  rows = _metrics(workdir)
  assert [r['step'] for r in rows] == [1, 2]
  assert all(np.isfinite(r['loss']) and np.isfinite(r['real_l1']) for r in rows)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['1', '2']
  exported = tree_util.load_npz_flat(os.path.join(workdir, 'params.npz'))
  assert 'real/dec/transformerlayer_f/multihead_attn/in_proj_weight' in exported
  # The workdir reenacts (tests/reenact_test.py runs the command on this model size).
  generator = reenactor.load_generator(workdir=workdir)
  frames = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
  out = np.asarray(generator.frames(frames[0], frames, frames[0], 'anime', 'anime'))
  assert out.shape == (4, 64, 64, 3) and out.dtype == np.uint8


# Slow on CI's 2 cores (the stage-2 step compiles for minutes); the stage-1 test above runs the
# same loop, checkpointing and export; these add stage 2's step and the evaluation.
@pytest.mark.slow
@pytest.mark.integration
def test_stage2_steps_resume_and_export(synthetic_data_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  trainer.train_and_evaluate(_tiny(synthetic_data_dir, stage1_steps=0, total_steps=1,
                                   export_at_end=False), workdir)
  state = trainer.train_and_evaluate(_tiny(synthetic_data_dir, stage1_steps=0, total_steps=2),
                                     workdir)
  assert int(state['step']) == 2
  rows = _metrics(workdir)
  assert [r['step'] for r in rows] == [1, 2]  # The second run resumed at step 1.
  for key in ('motion_cartoon_from_real', 'motion_real_from_cartoon', 'cartoon_disc',
              'real_adv_analogy'):
    assert all(np.isfinite(r[key]) for r in rows), key
  exported = tree_util.load_npz_flat(os.path.join(workdir, 'params.npz'))
  assert {k.split('/')[0] for k in exported} == {'real', 'cartoon'}
  assert 'real/dec/transformerlayer_f/multihead_attn/in_proj_weight' in exported
  assert 'real/enc/convs/0/conv/weight' in exported


@pytest.mark.slow
@pytest.mark.integration
def test_both_stages_then_evaluation(synthetic_data_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  c = _tiny(synthetic_data_dir, stage1_steps=2, total_steps=3)
  c.eval.num_pairs, c.eval.batch_size, c.eval.metrics = 8, 8, ('l1', 'psnr', 'ssim')
  c.loss.analogy = False  # The ablation's stage 2.
  trainer.train_and_evaluate(c, workdir)
  rows = _metrics(workdir)
  assert 'cartoon_l1' not in rows[1] and 'cartoon_l1' in rows[2]
  assert 'motion_cartoon_from_real' not in rows[2]
  report = json.load(open(os.path.join(workdir, 'eval.json')))
  assert set(report['results']) == {'real<-real', 'cartoon<-cartoon', 'cartoon<-real',
                                    'real<-cartoon'}

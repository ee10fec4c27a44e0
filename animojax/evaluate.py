r"""Evaluates a trained run (any family; AniMo: FID, LPIPS, SSIM, PSNR, L1, CPBD per direction).

  python -m animojax.evaluate --workdir=/tmp/animo [--num_pairs=2000] [--metrics=fid,lpips,ssim]

Reads the run's `config.json` and latest checkpoint (EMA weights unless `--weights=raw`), scores
the test split as the trainer's final evaluation does (the family's `evaluate`), and writes
`eval.json` and `eval.md` into the workdir. Metrics whose converted weights are missing (FID:
`~/.cache/animojax/fid_inception.npz`, LPIPS: `~/.cache/animojax/lpips_alex.npz`; get them with
`python -m animojax.convert.fetch fid_inception lpips_alex`) are skipped, and the report says
which and why.
"""

from absl import app
from absl import flags
from absl import logging

from animojax import export
from animojax import trainers
from animojax.metrics import suite as metric_suite
from animojax.utils import cli


def run(workdir, *, weights='ema', num_pairs=None, batch_size=None, metrics=None,
        fid_weights=None, lpips_weights=None, data_dir=None, suite=None):
  """Evaluates the latest checkpoint of `workdir`; returns `(table, suite)`.

  Args:
    workdir: a training workdir (config.json + checkpoints/).
    weights: 'ema' or 'raw' parameters.
    num_pairs, batch_size: override `config.eval.num_pairs` / `config.eval.batch_size`.
    metrics: names from `metric_suite.ALL` (default all).
    fid_weights, lpips_weights: converted `.npz` paths (default: the cache paths).
    data_dir: override `config.data.data_dir` (e.g. evaluating on another machine).
    suite: an already loaded `MetricSuite` (overrides `metrics` and the weight paths).
  """
  for flag, value in (('num_pairs', num_pairs), ('batch_size', batch_size)):
    if value is not None and value < 1:
      raise ValueError(f'--{flag}={value}: give a positive number (or leave it out for the '
                       f'config\'s eval.{flag}).')
  config, step, params = export.restore_latest(workdir, weights)
  if num_pairs is not None:
    config.eval.num_pairs = num_pairs
  if batch_size is not None:
    config.eval.batch_size = batch_size
  if data_dir is not None:
    config.data.data_dir = data_dir
  if suite is None:
    suite = metric_suite.load(tuple(metrics or metric_suite.ALL), fid_weights=fid_weights,
                              lpips_weights=lpips_weights)
  for name, reason in suite.skipped.items():
    logging.warning('Skipping %s: %s', metric_suite.DISPLAY[name], reason)
  table = trainers.get(config.trainer).evaluate(config, workdir, params, step, suite)
  return table, suite


def main(argv):
  del argv
  metrics = tuple(m for m in FLAGS.metrics.split(',') if m) if FLAGS.metrics else None
  with cli.user_errors('evaluate'):
    _, suite = run(FLAGS.workdir, weights=FLAGS.weights, num_pairs=FLAGS.num_pairs,
                   batch_size=FLAGS.batch_size, metrics=metrics,
                   fid_weights=FLAGS.fid_weights, lpips_weights=FLAGS.lpips_weights,
                   data_dir=FLAGS.data_dir)
  print(f'Wrote {FLAGS.workdir}/eval.json and eval.md ({", ".join(suite.names)}).')
  for name, reason in suite.skipped.items():
    print(f'Skipped {metric_suite.DISPLAY[name]}: {reason}')


FLAGS = flags.FLAGS

if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'Training workdir (holds config.json and checkpoints/).')
  flags.DEFINE_enum('weights', 'ema', ['ema', 'raw'], 'EMA (default) or raw parameters.')
  flags.DEFINE_integer('num_pairs', None, 'Test pairs per direction (default config.eval).')
  flags.DEFINE_integer('batch_size', None, 'Evaluation batch size (default config.eval).')
  flags.DEFINE_string('metrics', None, f'Comma-separated subset of {",".join(metric_suite.ALL)}.')
  flags.DEFINE_string('fid_weights', None, 'FID Inception .npz (default in ~/.cache/animojax).')
  flags.DEFINE_string('lpips_weights', None, 'LPIPS .npz (default in ~/.cache/animojax).')
  flags.DEFINE_string('data_dir', None, 'Override config.data.data_dir.')
  flags.mark_flags_as_required(['workdir'])
  app.run(main, flags_parser=cli.parse_flags)

"""Reenactment in all four directions, sample grids, and evaluation against ground truth.

Directions: self-reenactment in each domain (target = the driving frame) and both cross-domain
directions, e.g. `anime<-human`: the anime source driven by the human frame's motion vector.
Cross-domain targets exist only for data with a known semantic state: the synthetic generator
renders the source identity at the driving frame's semantics. Each direction is scored next to
the "copy the source image" baseline with the metrics of an `animojax.metrics.suite.MetricSuite`:
L1/PSNR/SSIM always, LPIPS and FID when their converted weights are present, CPBD when
scikit-image is; directions without ground truth still get the no-reference CPBD.
"""

import json
from absl import logging
import os

import jax
import numpy as np

from animojax.metrics import fid as fid_lib
from animojax.metrics import suite as metric_suite
from animojax.utils import images

DIRECTIONS = (('anime', 'anime'), ('human', 'human'), ('anime', 'human'), ('human', 'anime'))
METRICS = ('l1', 'psnr', 'ssim')  # Always available (no weights needed).
WHO = ('model', 'copy_source')


def direction_name(source_domain, driving_domain):
  return f'{source_domain}<-{driving_domain}'


def _synthetic_config_name(dataset_name):
  builder, _, config = dataset_name.partition('/')
  return config if builder == 'synthetic_heads' else None


def ground_truth(data_config, batch, source_domain, driving_domain):
  """Target images for a direction, or None when the data cannot provide them."""
  if source_domain == driving_domain:
    return np.asarray(batch[driving_domain]['driving'])
  config_name = _synthetic_config_name(data_config[source_domain].name)
  if config_name is None or 'driving_semantic' not in batch[driving_domain]:
    return None
  from animojax.synthetic import dataset as synthetic  # pylint: disable=g-import-not-at-top
  identities = np.asarray(batch[source_domain]['identity'])
  semantics = np.asarray(batch[driving_domain]['driving_semantic'])
  return np.concatenate([
      synthetic.render_target(config_name, int(i), s[None]) for i, s in zip(identities, semantics)
  ]).astype(np.float32)


def reenact(generate, params, batch, data_config):
  """Runs every direction; returns {direction: {source, driving, warp, fake, target}}."""
  results = {}
  for source_domain, driving_domain in DIRECTIONS:
    src, drv = batch[source_domain], batch[driving_domain]
    out = generate(params, src['source'], drv['driving_pose'], domain=source_domain)
    results[direction_name(source_domain, driving_domain)] = {
        'source': np.asarray(src['source']), 'driving': np.asarray(drv['driving']),
        'warp': np.asarray(jax.device_get(out['warp_image'])),
        'fake': np.asarray(jax.device_get(out['fake_image'])),
        'target': ground_truth(data_config, batch, source_domain, driving_domain),
    }
  return results


def sample_grid(results, max_rows=4):
  """One PNG: per direction, rows of source | driving | warped (when the model has one) |
  generated | ground truth."""
  blocks = []
  for r in results.values():
    cols = [r['source'], r['driving']] + ([r['warp']] if r.get('warp') is not None else [])
    cols.append(r['fake'])
    cols.append(r['target'] if r['target'] is not None else np.ones_like(r['fake']))
    blocks.append(images.grid(cols, max_rows=max_rows))
  return np.concatenate(blocks, axis=0)


def _frechet(pred_features, target_features):
  """FID of two lists of feature batches, or None (with a warning) when it cannot be computed."""
  pred, target = np.concatenate(pred_features), np.concatenate(target_features)
  if len(pred) < 2 or len(target) < 2:
    logging.warning('FID needs at least 2 images per set; got %d and %d.', len(pred), len(target))
    return None
  stats = []
  for features in (pred, target):
    s = fid_lib.FeatureStats(features.shape[1])
    s.update(features)
    stats.append(s)
  try:
    return fid_lib.fid_from_stats(*stats)
  except ValueError as e:  # sqrtm with a large imaginary part: report, do not abort the run.
    logging.warning('FID could not be computed: %s', e)
    return None


def evaluate(generate, params, batches, data_config, suite=None, reenact_fn=None):
  """Mean score per direction, for the model and the copy-source baseline.

  Args:
    generate, params: the generator and its (EMA) parameters.
    batches: iterable of test batches (`pipeline.make_dataset` items).
    data_config: `config.data` (to render synthetic ground truth).
    suite: a `MetricSuite`; default L1/PSNR/SSIM only.
    reenact_fn: `(generate, params, batch, data_config) -> {direction: {'source', 'fake',
      'target', ...}}`; default `reenact` (AniMo's pose-driven directions).

  Returns:
    `{direction: {'model' | 'copy_source': {metric: value}}}`. FID compares all outputs of a
    direction with all its ground-truth images (None if it cannot be computed).
  """
  suite = suite or metric_suite.MetricSuite(names=METRICS)
  reenact_fn = reenact_fn or reenact
  sums, counts, features = {}, {}, {}
  for batch in batches:
    for name, r in reenact_fn(generate, params, batch, data_config).items():
      target = r['target']
      for who, pred in zip(WHO, (r['fake'], r['source'])):
        scores = suite.no_reference(pred)
        if target is not None:
          scores.update(suite.paired(pred, target))
          if suite.fid_features is not None:
            features.setdefault((name, who), []).append(np.asarray(suite.fid_features(pred)))
        for m, v in scores.items():
          key = (name, who, m)
          sums[key] = sums.get(key, 0.0) + float(np.sum(v))
          counts[key] = counts.get(key, 0) + np.size(v)
      if target is not None and suite.fid_features is not None:
        features.setdefault((name, 'target'), []).append(np.asarray(suite.fid_features(target)))
  table = {}
  for (name, who, m), total in sums.items():
    table.setdefault(name, {}).setdefault(who, {})[m] = total / counts[(name, who, m)]
  for (name, who), pred_features in features.items():
    if who != 'target':
      table[name][who]['fid'] = _frechet(pred_features, features[(name, 'target')])
  return table


def _cell(value, metric):
  if value is None:
    return 'n/a'
  return f'{value:.2f}' if metric in ('psnr', 'fid') else f'{value:.4f}'


def write_report(workdir, step, table, num_pairs, skipped=None):
  """Writes eval.json and eval.md (a markdown table, then the skipped metrics and why)."""
  skipped = dict(skipped or {})
  present = [m for m in metric_suite.ALL
             if any(m in r.get(who, {}) for r in table.values() for who in WHO)]
  with open(os.path.join(workdir, 'eval.json'), 'w') as f:
    json.dump({'step': step, 'num_pairs': num_pairs, 'results': table, 'skipped': skipped,
               'settings': {m: metric_suite.SETTINGS[m] for m in present}}, f, indent=2)
  header = ['direction']
  for m in present:
    arrow = '↑' if metric_suite.HIGHER_IS_BETTER[m] else '↓'
    header += [f'model {metric_suite.DISPLAY[m]} {arrow}', f'copy {metric_suite.DISPLAY[m]}']
  lines = [f'# Evaluation at step {step} ({num_pairs} test pairs per direction)', '',
           '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for name, r in table.items():
    cells = [name]
    for m in present:
      cells += [_cell(r.get(who, {}).get(m), m) if m in r.get(who, {}) else '–' for who in WHO]
    lines.append('| ' + ' | '.join(cells) + ' |')
  if skipped:
    lines += ['', 'Skipped metrics:']
    lines += [f'- {metric_suite.DISPLAY[m]}: {reason}' for m, reason in skipped.items()]
  with open(os.path.join(workdir, 'eval.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return '\n'.join(lines)

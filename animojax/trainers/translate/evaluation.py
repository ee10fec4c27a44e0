"""Translation in both directions, sample grids, and the scores of the translation benchmark.

Per direction (e.g. `anime->real`: test images of the anime domain translated to real):

* FID and KID between the translations and the target domain's test images, on FID's Inception
  pool3 features (`metrics/fid.py`, `metrics/kid.py`); skipped, with the reason, when the
  Inception weights are absent;
* on synthetic data, the probe's scores (`probe.py`): roll (in-plane angle) error, mean head-angle
  error, expression error and target-domain rate; with the probe's floor on real target images.

Each score is given for the method and for "copy", the untranslated source images (the domain
gap the method has to close; copy keeps the pose perfectly, so its probe errors are the probe's
cross-domain error, not a floor).
"""

import json
import os

from absl import logging
import jax
import numpy as np

from animojax.data import pipeline
from animojax.metrics import fid as fid_lib
from animojax.metrics import kid as kid_lib
from animojax.metrics import suite as metric_suite
from animojax.trainers.common import multihost
from animojax.trainers.translate import common
from animojax.trainers.translate import probe as probe_lib
from animojax.trainers.translate import program as translate_program
from animojax.utils import images

METRICS = ('fid', 'kid', 'angle')
WHO = ('model', 'copy')
PROBE_SCORES = ('roll_error', 'angle_error', 'expression_error', 'target_domain_rate')
DISPLAY = {'fid': 'FID ↓', 'kid': 'KID×100 ↓', 'roll_error': 'roll err° ↓',
           'angle_error': 'angle err° ↓', 'expression_error': 'expr err ↓',
           'target_domain_rate': 'target-domain % ↑'}


def make_translate_fn(config, replicated):
  """translate(params, images, direction, angle=None) -> numpy images, on every process.

  Host inputs are replicated with `replicated` (a replicated sharding on the parameters' mesh)
  and the outputs come back replicated, so all processes can read them (and all must make the
  call, with the same inputs).
  """
  method = translate_program.method_module(config)
  raw = method.make_translate(translate_program.graphdefs_of(config), config)
  jitted = jax.jit(lambda p, x, a, direction: raw(p, x, direction, a)['image'],
                   static_argnames=('direction',), out_shardings=replicated)

  def translate(params, source, direction, angle=None):
    source = multihost.replicate(np.asarray(source, np.float32), replicated)
    if angle is not None:
      angle = multihost.replicate(np.asarray(angle, np.float32), replicated)
    return np.asarray(jax.device_get(jitted(params, source, angle, direction=direction)))

  return translate


def test_dataset(config, batch_size, seed):
  """Test batches {domain: {'image', ...}} by index, the same on every process."""
  return pipeline.make_dataset(config.data, config.eval.split, batch_size=batch_size, seed=seed,
                               process_index=0, process_count=1)


def test_batch(config, batch_size, seed):
  return test_dataset(config, batch_size, seed)[0]


def _angle(batch_domain):
  if 'semantic' not in batch_domain:
    return None
  return common.normalized_roll(np.asarray(batch_domain['semantic']))


def sample_grid(translate, params, batch, max_rows=4):
  """One PNG: per direction, rows of source | translation | translated back."""
  blocks = []
  for direction in common.DIRECTIONS:
    source, target = common.split_direction(direction)
    x = np.asarray(batch[source]['image'])
    angle = _angle(batch[source])
    fake = translate(params, x, direction, angle)
    back = translate(params, fake, f'{target}->{source}', angle)
    blocks.append(images.grid([x, fake, back], max_rows=max_rows))
  return np.concatenate(blocks, axis=0)


def _suite(config, suite):
  wanted = tuple(config.eval.get('metrics', METRICS))
  if suite is None:
    need_inception = any(m in wanted for m in ('fid', 'kid'))
    suite = metric_suite.load(('fid',) if need_inception else (),
                              fid_weights=config.eval.get('fid_weights', '') or None)
  skipped = {}
  for m in ('fid', 'kid'):
    if m in wanted and suite.fid_features is None:
      skipped[m] = suite.skipped.get('fid', 'the FID Inception weights are not loaded') + (
          ' (KID uses the same Inception features)' if m == 'kid' else '')
  return wanted, suite, skipped


def evaluate(config, translate, params, suite=None, workdir=None):
  """({direction: {'model'|'copy': {score: value}}, 'probe_floor': ...}, {metric: why skipped})."""
  wanted, suite, skipped = _suite(config, suite)
  use_inception = suite.fid_features is not None and any(m in wanted for m in ('fid', 'kid'))
  batch_size = config.eval.batch_size
  num_batches = max(1, config.eval.num_images // batch_size)
  dataset = test_dataset(config, batch_size, seed=config.seed + 2)
  synthetic = 'semantic' in dataset[0]['anime']
  read = None
  if 'angle' in wanted:
    if synthetic:
      read = probe_lib.make_reader(*probe_lib.train(config, workdir))
    else:
      skipped['angle'] = ('needs the ground-truth angles of the synthetic data (synthetic_heads); '
                          'this run trains on other data')
  features = {}
  scores = {}
  for i in range(num_batches):
    batch = dataset[i]
    for domain in common.DOMAINS:  # Target-domain reference images.
      if use_inception:
        features.setdefault(('real_images', domain), []).append(
            np.asarray(suite.fid_features(batch[domain]['image'])))
      if read is not None:
        semantic, p_real = read(batch[domain]['image'])
        floor = probe_lib.errors(semantic, np.asarray(batch[domain]['semantic']))
        floor['target_domain_rate'] = 100.0 * ((p_real > 0.5) == (domain == 'real'))
        for k, v in floor.items():
          scores.setdefault(('probe_floor', domain, k), []).append(v)
    for direction in common.DIRECTIONS:
      source, target = common.split_direction(direction)
      x = np.asarray(batch[source]['image'])
      fake = translate(params, x, direction, _angle(batch[source]))
      for who, out in zip(WHO, (fake, x)):
        if use_inception:
          features.setdefault((direction, who), []).append(np.asarray(suite.fid_features(out)))
        if read is not None:
          semantic, p_real = read(out)
          e = probe_lib.errors(semantic, np.asarray(batch[source]['semantic']))
          e['target_domain_rate'] = 100.0 * ((p_real > 0.5) == (target == 'real'))
          for k, v in e.items():
            scores.setdefault((direction, who, k), []).append(v)
  table = {}
  for key, values in scores.items():
    if key[0] == 'probe_floor':
      table.setdefault('probe_floor', {}).setdefault(key[1], {})[key[2]] = float(
          np.mean(np.concatenate(values)))
    else:
      table.setdefault(key[0], {}).setdefault(key[1], {})[key[2]] = float(
          np.mean(np.concatenate(values)))
  if use_inception:
    for direction in common.DIRECTIONS:
      target = common.split_direction(direction)[1]
      reference = np.concatenate(features[('real_images', target)])
      for who in WHO:
        pred = np.concatenate(features[(direction, who)])
        row = table.setdefault(direction, {}).setdefault(who, {})
        if 'fid' in wanted:
          row['fid'] = _fid(pred, reference)
        if 'kid' in wanted:
          row['kid'], row['kid_std'] = kid_lib.kid(pred, reference)
  return table, skipped


def _fid(pred, reference):
  stats = []
  for f in (pred, reference):
    s = fid_lib.FeatureStats(f.shape[1])
    s.update(f)
    stats.append(s)
  try:
    return fid_lib.fid_from_stats(*stats)
  except ValueError as e:
    logging.warning('FID could not be computed: %s', e)
    return None


def _cell(value, name):
  if value is None:
    return 'n/a'
  if name == 'kid':
    return f'{100 * value:.2f}'
  return f'{value:.1f}' if name in ('fid', 'target_domain_rate') else f'{value:.2f}'


def write_report(workdir, step, config, table, skipped):
  """eval.json and eval.md: one row per direction and who (model / copy), then the skips."""
  with open(os.path.join(workdir, 'eval.json'), 'w') as f:
    json.dump({'step': step, 'method': config.method, 'num_images': config.eval.num_images,
               'results': table, 'skipped': skipped}, f, indent=2)
  names = [n for n in ('fid', 'kid') + PROBE_SCORES
           if any(n in r.get(who, {}) for d, r in table.items() if d != 'probe_floor'
                  for who in WHO)]
  lines = [f'# {config.method} at step {step} ({config.eval.num_images} test images per '
           'domain)', '', '| direction | images | ' + ' | '.join(DISPLAY[n] for n in names) + ' |',
           '|' + '---|' * (len(names) + 2)]
  for direction in common.DIRECTIONS:
    for who in WHO:
      row = table.get(direction, {}).get(who, {})
      lines.append(f'| {direction} | {who} | ' +
                   ' | '.join(_cell(row.get(n), n) for n in names) + ' |')
  for domain, row in table.get('probe_floor', {}).items():
    lines.append(f'| probe floor: {domain} test images | – | ' +
                 ' | '.join(_cell(row.get(n), n) if n in row else '–' for n in names) + ' |')
  if skipped:
    lines += ['', 'Skipped metrics:'] + [f'- {m}: {why}' for m, why in skipped.items()]
  text = '\n'.join(lines)
  with open(os.path.join(workdir, 'eval.md'), 'w') as f:
    f.write(text + '\n')
  return text

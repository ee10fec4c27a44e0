"""Reenactment in all four directions, sample grids, and evaluation against ground truth.

Directions: self-reenactment in each domain (target = the driving frame) and both cross-domain
directions, e.g. `anime<-human`: the anime source driven by the human frame's motion vector.
Cross-domain targets exist only for data with a known semantic state: the synthetic generator
renders the source identity at the driving frame's semantics. Each direction is scored (L1, PSNR,
SSIM) next to the "copy the source image" baseline.
"""

import json
import os

import jax
import numpy as np

from animojax.metrics import image as image_metrics
from animojax.utils import images

DIRECTIONS = (('anime', 'anime'), ('human', 'human'), ('anime', 'human'), ('human', 'anime'))
METRICS = ('l1', 'psnr', 'ssim')


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
  """One PNG: per direction, rows of source | driving | warped | generated | ground truth."""
  blocks = []
  for r in results.values():
    cols = [r['source'], r['driving'], r['warp'], r['fake']]
    cols.append(r['target'] if r['target'] is not None else np.ones_like(r['fake']))
    blocks.append(images.grid(cols, max_rows=max_rows))
  return np.concatenate(blocks, axis=0)


def _scores(pred, target):
  return {m: np.asarray(getattr(image_metrics, m)(pred, target)) for m in METRICS}


def evaluate(generate, params, batches, data_config):
  """Mean L1/PSNR/SSIM per direction for the model and the copy-source baseline."""
  sums, counts = {}, {}
  for batch in batches:
    for name, r in reenact(generate, params, batch, data_config).items():
      if r['target'] is None:
        continue
      for who, pred in (('model', r['fake']), ('copy_source', r['source'])):
        for m, v in _scores(pred, r['target']).items():
          key = (name, who, m)
          sums[key] = sums.get(key, 0.0) + float(v.sum())
          counts[key] = counts.get(key, 0) + v.size
  table = {}
  for (name, who, m), total in sums.items():
    table.setdefault(name, {}).setdefault(who, {})[m] = total / counts[(name, who, m)]
  return table


def write_report(workdir, step, table, num_pairs):
  """Writes eval.json and eval.md (a markdown table) into the workdir."""
  with open(os.path.join(workdir, 'eval.json'), 'w') as f:
    json.dump({'step': step, 'num_pairs': num_pairs, 'results': table}, f, indent=2)
  lines = [f'# Evaluation at step {step} ({num_pairs} test pairs per direction)', '',
           '| direction | model L1 ↓ | copy L1 | model PSNR ↑ | copy PSNR | model SSIM ↑ | '
           'copy SSIM |', '|---|---|---|---|---|---|---|']
  for name, r in table.items():
    m, c = r['model'], r['copy_source']
    lines.append(f"| {name} | {m['l1']:.4f} | {c['l1']:.4f} | {m['psnr']:.2f} | "
                 f"{c['psnr']:.2f} | {m['ssim']:.4f} | {c['ssim']:.4f} |")
  with open(os.path.join(workdir, 'eval.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return '\n'.join(lines)

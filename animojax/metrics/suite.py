"""The evaluation metrics a run can compute, loaded once; the others are listed with a reason.

Per image, prediction vs ground truth: `l1`, `psnr`, `ssim` (`animojax.metrics.image`) and
`lpips` (`animojax.metrics.lpips`, needs `lpips_alex.npz`). No reference: `cpbd`
(`animojax.metrics.cpbd`, needs scikit-image). Over an image set vs a reference set: `fid`
(`animojax.metrics.fid`, needs `fid_inception.npz`). A metric whose file or package is missing is
not an error: it is skipped and `skipped[name]` says why and how to enable it.
"""

import dataclasses
import os
from typing import Any, Callable, Sequence

import numpy as np

from animojax.convert import sources
from animojax.metrics import image as image_metrics

PAIRED = ('l1', 'psnr', 'ssim', 'lpips')
NO_REFERENCE = ('cpbd',)
SETWISE = ('fid',)
ALL = PAIRED + SETWISE + NO_REFERENCE
# Direction of "better" for reports.
HIGHER_IS_BETTER = {'l1': False, 'psnr': True, 'ssim': True, 'lpips': False, 'fid': False,
                    'cpbd': True}
DISPLAY = {'l1': 'L1', 'psnr': 'PSNR', 'ssim': 'SSIM', 'lpips': 'LPIPS', 'fid': 'FID',
           'cpbd': 'CPBD'}
# The exact settings, written next to the numbers in eval.json.
SETTINGS = {
    'l1': 'mean |x - y| on [0, 1] RGB, per image',
    'psnr': '10 log10(1 / MSE) on [0, 1] RGB (data range 1), per image',
    'ssim': ('scikit-image structural_similarity defaults on [0, 1] RGB: 7x7 uniform window, '
             'K1 0.01, K2 0.03, sample covariance, per channel, valid region, data range 1'),
    'lpips': 'LPIPS v0.1, AlexNet trunk + linear heads, inputs in [-1, 1], per image',
    'fid': ('pytorch-fid: 8-bit images, bilinear 299², FID Inception pool3 (2048-d), '
            'sqrtm with the 1e-6 fallback; over all pairs of a direction vs its ground truth'),
    'cpbd': ('python-cpbd 1.0.7: 8-bit PIL "L" grayscale, Canny block selection, Marziliano '
             'widths, 64x64 blocks, beta 3.6, w_JNB 5/3, threshold 0.002, bins 0..63'),
}


@dataclasses.dataclass
class MetricSuite:
  """Loaded metrics. `lpips(x, y) -> [B]`; `fid_features(images) -> [B, D]` (stats are taken by
  the caller, so any feature extractor with that signature works)."""
  names: tuple[str, ...]
  lpips: Callable[[Any, Any], Any] | None = None
  fid_features: Callable[[Any], Any] | None = None
  fid_dim: int = 0
  skipped: dict[str, str] = dataclasses.field(default_factory=dict)

  def paired(self, pred: Any, target: Any) -> dict[str, np.ndarray]:
    """Per-image scores [B] of every available paired metric."""
    out = {m: np.asarray(getattr(image_metrics, m)(pred, target))
           for m in ('l1', 'psnr', 'ssim') if m in self.names}
    if 'lpips' in self.names:
      out['lpips'] = np.asarray(self.lpips(pred, target))
    return out

  def no_reference(self, pred: Any) -> dict[str, np.ndarray]:
    if 'cpbd' not in self.names:
      return {}
    from animojax.metrics import cpbd  # pylint: disable=g-import-not-at-top
    return {'cpbd': cpbd.cpbd_batch(np.asarray(pred))}


# Metrics computed by a pretrained network -> the `animojax.convert.sources` name of its weights.
_NETWORK_METRICS = {'lpips': 'lpips_alex', 'fid': 'fid_inception'}


def _attach(suite: MetricSuite, metric: str, path: str) -> None:
  """Builds the network of `metric` from `path` and binds its parameters into the suite."""
  # Imported here: each network module pulls in flax and its own dependencies.
  if metric == 'lpips':
    from animojax.metrics import lpips  # pylint: disable=g-import-not-at-top
    fn, params = lpips.make_lpips(path)
    suite.lpips = lambda x, y: fn(params, x, y)
  else:
    from animojax.metrics import fid  # pylint: disable=g-import-not-at-top
    fn, params = fid.make_fid_features(path)
    suite.fid_features = lambda x: fn(params, x)
    suite.fid_dim = fid.fid_inception.FEATURE_DIM


def load(metrics: Sequence[str] = ALL, *, fid_weights: str | None = None,
         lpips_weights: str | None = None, attach: bool = True) -> MetricSuite:
  """Loads the requested metrics whose weights/packages are present.

  Args:
    metrics: names from `ALL`.
    fid_weights: converted FID Inception `.npz` (default `~/.cache/animojax/fid_inception.npz`).
    lpips_weights: converted LPIPS `.npz` (default `~/.cache/animojax/lpips_alex.npz`).
    attach: load the networks (False: only list what would be skipped).
  """
  unknown = [m for m in metrics if m not in ALL]
  if unknown:
    raise ValueError(f'unknown metrics {unknown}; choose from {ALL}.')
  names, skipped = [], {}
  suite = MetricSuite(names=())
  for m in ALL:
    if m not in metrics:
      continue
    if m in _NETWORK_METRICS:
      weights_name, path = _NETWORK_METRICS[m], lpips_weights if m == 'lpips' else fid_weights
      path = os.path.expanduser(path or sources.default_npz_path(weights_name))
      if not os.path.isfile(path):
        skipped[m] = (f'{path} not found; run `python -m animojax.convert.fetch {weights_name}`'
                      ' (or pass the path of the converted .npz)')
        continue
      if attach:  # False: only find out what would be skipped.
        _attach(suite, m, path)
    elif m == 'cpbd':
      try:
        import skimage.feature  # pylint: disable=g-import-not-at-top,unused-import
      except ImportError as e:
        skipped[m] = f'scikit-image is not importable ({e}); pip install scikit-image'
        continue
    names.append(m)
  suite.names = tuple(names)
  suite.skipped = skipped
  return suite


def load_for_config(eval_config: Any) -> MetricSuite:
  """`load` from a run's `config.eval`, reading the optional fields `metrics` (default all),
  `fid_weights` and `lpips_weights` ('' = the default cache paths)."""
  get = eval_config.get
  chosen = tuple(get('metrics', None) or ALL)
  fid_weights, lpips_weights = get('fid_weights', '') or None, get('lpips_weights', '') or None
  suite = load(chosen, fid_weights=fid_weights, lpips_weights=lpips_weights)
  # The report lists every metric it lacks, those the config leaves out too (with what a run
  # that wants them also needs), so that a missing column never goes unexplained.
  every = load(ALL, fid_weights=fid_weights, lpips_weights=lpips_weights, attach=False)
  for m in ALL:
    if m not in chosen:
      reason = 'not in config.eval.metrics (add it with --config.eval.metrics=...)'
      if m in every.skipped:
        reason += f'; also {every.skipped[m]}'
      suite.skipped[m] = reason
  return suite

"""KID: the kernel Inception distance (Bińkowski et al., ICLR 2018), on FID's Inception features.

The unbiased estimate of the squared MMD between two feature sets under the cubic polynomial
kernel k(x, y) = (xᵀy / d + 1)³ (d = feature dimension), averaged over `num_subsets` random
subsets of `subset_size` features of each set, as the paper's reference code does and as
torch-fidelity (`kid_subsets` 100, `kid_subset_size` 1000) and clean-fid report it; a set smaller
than `subset_size` is used whole. Computed in float64 on the host.
"""

import numpy as np


def polynomial_kernel(x, y, degree=3, gamma=None, coef0=1.0):
  gamma = 1.0 / x.shape[1] if gamma is None else gamma
  return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(x, y):
  """Unbiased squared MMD of two feature sets [m, d], [n, d] (diagonals excluded)."""
  m, n = len(x), len(y)
  k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  sum_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
  sum_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
  return float(sum_xx + sum_yy - 2.0 * k_xy.mean())


def kid(features_a, features_b, *, num_subsets=100, subset_size=1000, seed=0):
  """(mean, std) of the unbiased MMD² over random subsets (std over subsets, as reported)."""
  a = np.asarray(features_a, np.float64)
  b = np.asarray(features_b, np.float64)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise ValueError(f'KID needs two [N, d] feature sets of one d; got {a.shape}, {b.shape}.')
  if len(a) < 2 or len(b) < 2:
    raise ValueError(f'KID needs at least 2 features per set; got {len(a)} and {len(b)}.')
  size = min(subset_size, len(a), len(b))
  rng = np.random.default_rng(seed)
  values = [mmd2_unbiased(a[rng.choice(len(a), size, replace=False)],
                          b[rng.choice(len(b), size, replace=False)])
            for _ in range(num_subsets)]
  return float(np.mean(values)), float(np.std(values))

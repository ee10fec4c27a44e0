"""animojax: cross-domain head reenactment (anime <-> human) in JAX / Flax NNX."""

import importlib.metadata
import os

# XLA:CPU's YNNPACK fusions (jaxlib 0.10-0.11) return float32 gradients with errors of up to 2%
# (relative to the largest entry) through VGG19's conv stack on an AVX2-only AMD EPYC (Zen 2),
# where XLA's own kernels and torch agree with float64 to 2e-6 (tests/vgg19_test.py,
# tests/models_test.py). Off unless the user chose a YNN setting; set before JAX starts its
# backends, which is why it lives here. The flag does not exist before jaxlib 0.10 (an unknown
# XLA flag aborts the process).
_YNN_FLAG = '--xla_cpu_experimental_ynn_fusion_type='


def _jaxlib_at_least(major: int, minor: int) -> bool:
  """Whether the installed jaxlib is at least major.minor (False when it is not installed)."""
  try:
    version = importlib.metadata.version('jaxlib')
  except importlib.metadata.PackageNotFoundError:
    return False
  parts = version.split('.')
  return tuple(int(p) for p in parts[:2] if p.isdigit()) >= (major, minor)


if 'xla_cpu_experimental_ynn_fusion_type' not in os.environ.get('XLA_FLAGS', '') and (
    _jaxlib_at_least(0, 10)):
  os.environ['XLA_FLAGS'] = f"{os.environ.get('XLA_FLAGS', '')} {_YNN_FLAG}".strip()

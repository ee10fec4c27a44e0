"""Model FLOPs counted on a traced program: the numerator of model FLOP utilisation (MFU).

XLA's GPU cost model cannot see inside cuDNN convolutions, so FLOPs are counted on the jaxpr
instead, backend-independent: 2 × multiply-accumulates of every convolution and dot product,
forward and backward as traced (sub-jaxprs of jit, remat, custom_vjp forward, ... included;
Pallas kernels by the FLOPs their `cost_estimate` states).
Elementwise work is not counted, as is usual for MFU. Transposed convolutions are counted as the
dilated convolutions they are traced as (their inserted zeros included).
"""

import numpy as np
from jax.extend import core


def _sub_jaxprs(params):
  for value in params.values():
    for sub in (value if isinstance(value, (tuple, list)) else (value,)):
      if isinstance(sub, core.ClosedJaxpr):
        yield sub.jaxpr
      elif isinstance(sub, core.Jaxpr):
        yield sub


def _count(jaxpr) -> int:
  total = 0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    out = int(np.prod(eqn.outvars[0].aval.shape)) if eqn.outvars else 0
    if name == 'conv_general_dilated':
      rhs = eqn.invars[1].aval.shape
      out_features = rhs[eqn.params['dimension_numbers'].rhs_spec[0]]
      total += 2 * out * int(np.prod(rhs)) // out_features
    elif name == 'dot_general':
      (lhs_contract, _), _ = eqn.params['dimension_numbers']
      lhs = eqn.invars[0].aval.shape
      total += 2 * out * int(np.prod([lhs[d] for d in lhs_contract]))
    elif name == 'pallas_call':
      # A kernel's body runs once per grid point, so its dots are not the op's FLOPs: our
      # kernels state theirs (`ops.conv_triton`), others count as none.
      estimate = eqn.params.get('cost_estimate')
      total += estimate.flops if estimate is not None else 0
      continue
    for sub in _sub_jaxprs(eqn.params):
      total += _count(sub)
  return total


def matmul_flops(closed_jaxpr) -> int:
  """2·MACs of the convolutions and dots in `jax.make_jaxpr(fn)(*args)`."""
  return _count(closed_jaxpr.jaxpr)

"""Compute-dtype policy: float32 parameters and optimiser state, forward/backward in the policy dtype.

`config.compute_dtype = 'bfloat16'` casts the parameters to bf16 inside the jitted step (their
gradients flow back through the cast into the float32 master copy), feeds bf16 images, and runs
the VGG19 loss network in bf16. Reductions stay in float32: normalisation statistics
(`models.blocks.pirender._normalize`), loss means and Gram matrices (`losses.perceptual`), the warp's
interpolation arithmetic and gradient accumulation (`ops.warp`). The flow is added to the
identity grid in float32 (`models.warping.WarpingNet`): a bf16 sampling position of 100 px would
be rounded to the nearest 0.5 px, while the bf16 flow offset keeps its relative precision.
"""

import jax
import jax.numpy as jnp

COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(name: str):
  """The jnp dtype of a policy name; raises a ValueError naming the choices."""
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'config.compute_dtype={name!r}: choose one of {tuple(COMPUTE_DTYPES)}.')
  return COMPUTE_DTYPES[name]


def cast_floating(tree, dtype):
  """Casts every floating leaf of `tree` to `dtype` (integers, keys and bools untouched)."""
  def cast(x):
    return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x
  return jax.tree.map(cast, tree)

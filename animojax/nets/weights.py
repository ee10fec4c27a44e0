"""Filling a frozen NNX network from a converted `.npz`, or with random weights, by name.

Metric networks are built abstractly (`nnx.eval_shape`: eager init of large convs is slow on CPU
and the values are replaced anyway) and then receive every variable -- parameters and BatchNorm
statistics alike -- from a flat `/`-keyed npz whose names are the module's own paths. A missing
file raises `FileNotFoundError` saying how to obtain it (`animojax.convert.sources`); a file that
does not match the architecture raises `ValueError` naming the file and the bad entries.
"""

import os
from typing import Any, Callable

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from animojax.convert import sources
from animojax.utils import tree as tree_utils

RANDOM = 'random'


def random_values(reference: dict[Any, Any], seed: int) -> dict[Any, Any]:
  """He-normal kernels, small random biases/shifts, unit-ish scales and variances (numpy PCG64).

  Only for compile tests and benchmarks that must not need a download; the numbers mean nothing.
  BatchNorm variances stay positive and scales near one so that activations keep their size
  through deep stacks instead of vanishing or overflowing.
  """
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = str(path[-1].key)
    shape = tuple(leaf.shape)
    if name == 'kernel':
      fan_in = int(np.prod(shape[:-1]))
      value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif name == 'var':
      value = rng.uniform(0.5, 1.5, shape)
    elif name == 'scale':
      value = rng.uniform(0.8, 1.2, shape)
    else:  # bias, mean
      value = rng.standard_normal(shape) * 0.1
    return jnp.asarray(value, jnp.float32)

  return jax.tree_util.tree_map_with_path(draw, reference)


def load_values(path: str, reference: dict[Any, Any], *, remedy: str) -> dict[Any, Any]:
  """Reads `path` (flat npz) into the structure of `reference`, checking names and shapes.

  Args:
    path: converted `.npz` (`~` expanded).
    reference: `nnx.to_pure_dict` of the abstract module's state.
    remedy: what to do when the file does not fit (appended to the error message).
  """
  expanded = os.path.expanduser(path)
  flat = tree_utils.load_npz_flat(expanded)
  try:
    values = tree_utils.restore_like(flat, reference)
  except ValueError as e:
    raise ValueError(f'{path}: {e} {remedy}') from e
  bad = sorted(name for name, a in flat.items()
               if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)))
  if bad:
    raise ValueError(f'{path}: {bad[:5]} contain NaN or Inf. {remedy}')
  return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), values)


def build(constructor: Callable[[], nnx.Module], weights: str, *, name: str,
          seed: int = 0) -> nnx.Module:
  """Builds `constructor()` abstractly and fills all its variables from `weights`.

  Args:
    constructor: returns the module (called under `nnx.eval_shape`).
    weights: a converted `.npz` path or `'random'`.
    name: the `animojax.convert.sources` name of the weights (for error messages).
    seed: seed of `random_values` (only used for `'random'`).

  Raises:
    FileNotFoundError: `weights` does not exist; the message says how to make it.
    ValueError: the file does not fit the architecture.
  """
  if weights != RANDOM and (not weights or not os.path.isfile(os.path.expanduser(weights))):
    raise FileNotFoundError(sources.missing_weights_message(name, weights or None))
  module = nnx.eval_shape(constructor)
  state = nnx.state(module)
  reference = nnx.to_pure_dict(state)
  if weights == RANDOM:
    values = random_values(reference, seed)
  else:
    values = load_values(weights, reference,
                         remedy=f'Re-create it with `python -m animojax.convert.fetch {name}`.')
  nnx.replace_by_pure_dict(state, values)
  nnx.update(module, state)
  return module


def num_values(module: nnx.Module) -> int:
  """Number of scalars in all of the module's variables."""
  return int(sum(np.prod(np.shape(v)) for v in jax.tree_util.tree_leaves(nnx.state(module))))

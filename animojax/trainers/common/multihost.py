"""Host-side values in and out of global arrays, correct with any number of processes.

Every jitted call over global arrays must be made by every process (a call made by one process
waits forever for the others); so sampling, evaluation and export run on all processes, gather
their results here, and only process 0 writes files.
"""

import jax
from jax.experimental import multihost_utils
import numpy as np


def is_main():
  return jax.process_index() == 0


def replicate(tree, sharding):
  """Host values, identical on every process, as global arrays with a replicated `sharding`."""
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def fetch(tree):
  """Global arrays as numpy on every process (a collective when shards live on other hosts)."""
  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))
  return jax.tree.map(one, tree)

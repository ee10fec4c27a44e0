"""Stopping on SIGTERM at the same step on every process, so the save after it is collective.

Preemption notices, `scancel` and `kill` arrive as SIGTERM, possibly at one process only. The save
and the stop that follow are collective (every process writes its shards of the checkpoint), so
all processes must agree on the step at which they stop, or they deadlock:

* one process: a Python SIGTERM handler sets a flag that the loop reads after each step;
* several (`jax.distributed.initialize`): JAX's preemption sync manager (started by `initialize`)
  catches SIGTERM in any process and tells the coordination service, and
  `multihost_utils.reached_preemption_sync_point(step)` becomes true at the same step everywhere
  (every process must call it once per step). A Python handler must not be installed then: it
  would replace the sync manager's signal handler.
"""

import signal

from absl import logging
import jax
from jax.experimental import multihost_utils


class Preemption:
  """`with Preemption() as p: ... if p.reached(step): save and stop`."""

  def __init__(self):
    self._requested = False
    self._previous = None
    self._synced = jax.process_count() > 1

  def __enter__(self):
    if not self._synced:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM: saving a checkpoint after this step, then exiting.')
    self._requested = True

  def reached(self, step):
    """True at the step where every process stops (call it once per step on every process)."""
    if self._synced:
      if multihost_utils.reached_preemption_sync_point(step):
        logging.warning('Preemption (SIGTERM to one of the processes): saving at step %d on '
                        'every process, then exiting.', step)
        self._requested = True
    return self._requested

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def stopped_early(step, total_steps):
  """Whether a train loop ended before `total_steps` (a preemption); if so, says how to resume."""
  if step >= total_steps:
    return False
  logging.warning('Stopped at step %d of %d; rerun the same command to resume.', step,
                  total_steps)
  return True

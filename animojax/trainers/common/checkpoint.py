"""Orbax checkpoints of the train state together with the data iterator's position.

One thin wrapper so that a later move to Orbax's v1 API touches this file only. Saves are
asynchronous (training continues while arrays are written); `close()` waits for the last one.
"""

import os

import grain
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves/restores {'state': pytree, 'data': grain iterator} under `workdir/checkpoints`."""

  def __init__(self, workdir, *, keep=3, every=1000):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self.every = every
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=True),
        item_names=('state', 'data'))

  def latest_step(self):
    return self.manager.latest_step()

  def should_save(self, step):
    return step % self.every == 0

  def save(self, step, state, data_iterator, *, force=False):
    return self.manager.save(
        step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                      data=grain.checkpoint.CheckpointSave(data_iterator)),
        force=force)

  def restore(self, step, abstract_state, data_iterator):
    """Restores onto the shardings carried by `abstract_state` (jax.ShapeDtypeStruct leaves)."""
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                      data=grain.checkpoint.CheckpointRestore(data_iterator)))
    return restored['state']

  def restore_state(self, step, abstract_state):
    """Restores the train state only (export and evaluation need no data iterator)."""
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    return restored['state']

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


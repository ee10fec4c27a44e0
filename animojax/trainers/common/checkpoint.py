"""Orbax checkpoints of the train state together with the data iterator's position.

One thin wrapper so that a later move to Orbax's v1 API touches this file only. Saves are
asynchronous (training continues while arrays are written); `close()` waits for the last one.
"""

import functools
import os

from absl import logging
import grain
import jax
import orbax.checkpoint as ocp

# Orbax splits each replicated array's save across its replicas (on CPU and TPU), slicing every
# array on every device: one small compiled program per shape and device, seconds at the first
# save (112 programs, 3.7 s for the tiny test model on 8 CPU devices) for arrays too small to
# profit. Arrays under 1 MiB per replica are written whole by one replica; larger ones (the paper
# models' convolution kernels and their Adam moments on a pod) are still split.
MIN_BYTES_FOR_REPLICA_PARALLEL_SAVE = 1 << 20


@functools.cache
def _register_array_handler():
  # Global: Orbax's standard handler reads its type handlers from the global registry only.
  ocp.type_handlers.register_type_handler(
      jax.Array, ocp.type_handlers.ArrayHandler(
          min_slice_bytes_for_replica_parallel=MIN_BYTES_FOR_REPLICA_PARALLEL_SAVE),
      override=True)


class Checkpointer:
  """Saves/restores {'state': pytree, 'data': grain iterator} under `workdir/checkpoints`."""

  def __init__(self, workdir, *, keep=3, every=1000):
    _register_array_handler()
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


def locate(path):
  """(checkpoints folder, step) named by PATH: a workdir, its `checkpoints/` folder, or one
  `checkpoints/<step>` folder; a ValueError that names PATH when it holds no checkpoint."""
  path = os.path.abspath(path)
  base = os.path.basename(path)
  if base.isdigit() and os.path.isdir(path):
    return os.path.dirname(path), int(base)
  directory = path if base == 'checkpoints' else os.path.join(path, 'checkpoints')
  steps = sorted(int(d) for d in (os.listdir(directory) if os.path.isdir(directory) else ())
                 if d.isdigit())
  if not steps:
    raise ValueError(f'config.resume={path!r} holds no checkpoint (expected a workdir, its '
                     'checkpoints/ folder, or one checkpoints/<step> folder).')
  return directory, steps[-1]


def restore_from(path, abstract_state, data_iterator):
  """`config.resume`: (train state, step) saved under another workdir, data position included.

  PATH is a workdir, its `checkpoints/` folder, or one `checkpoints/<step>` folder (the latest
  step otherwise). The run then continues from that step exactly as a resume would, but saves
  into its own workdir (e.g. to fork an experiment with a longer schedule).
  """
  directory, step = locate(path)
  with ocp.CheckpointManager(directory, item_names=('state', 'data')) as other:
    restored = other.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                      data=grain.checkpoint.CheckpointRestore(data_iterator)))
  return restored['state'], step


def restore_or_init(ckpt, config, abstract_state, data_iterator, init, warm_start=None):
  """The train state a run starts from, in this order of precedence:

  1. the latest checkpoint in this workdir (a resume: rerunning a command continues it);
  2. `config.resume`: another workdir's checkpoint (train state, step and data position);
  3. `config.model_init` through `warm_start(state)` (weights only, step 0, fresh optimiser);
  4. `init()`, a fresh state.

  `abstract_state` carries the shardings to restore onto. Every process calls this.
  """
  latest = ckpt.latest_step()
  unused = [k for k in ('resume', 'model_init') if config.get(k)]
  if latest is not None:
    logging.info('Resuming from step %d of this workdir%s.', latest,
                 f' ({" and ".join("config." + k for k in unused)} not used)' if unused else '')
    return ckpt.restore(latest, abstract_state, data_iterator)
  if config.get('resume'):
    state, step = restore_from(config.resume, abstract_state, data_iterator)
    logging.info('Continuing from step %d of %s%s.', step, config.resume,
                 ' (config.model_init not used)' if config.get('model_init') else '')
    return state
  state = init()
  if config.get('model_init') and warm_start is not None:
    state = warm_start(state)
  return state

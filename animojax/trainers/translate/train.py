"""Translation trainer (CycleGAN, U-GAT-IT and the paper's baselines): readable top to bottom.

Sections: workdir and logging, input pipeline, program (model, optimiser groups, jitted step),
resume, train loop, evaluation, export. The state is a pytree of plain dicts (`program.py`)
sharded by config rules; one jitted step per iteration (for the GANs: the generators' update,
then the discriminators', inside it), compiled once, with the state donated.

Every process runs every line (a jitted call made by one process would wait for the others
forever): sampling, evaluation and export compute on all processes and process 0 writes.
"""

import functools

from absl import logging
import jax
import numpy as np
import tqdm

from animojax.data import pipeline
from animojax.trainers.common import checkpoint
from animojax.trainers.common import multihost
from animojax.trainers.common import nonfinite
from animojax.trainers.common import preemption as preemption_lib
from animojax.trainers.common import program as common_program
from animojax.trainers.common import writers
from animojax.trainers.translate import evaluation
from animojax.trainers.translate import optim
from animojax.trainers.translate import program as translate_program
from animojax.trainers.translate import warm_start
from animojax.utils import sharding


def total_steps(config):
  return config.total_steps if config.total_steps > 0 else optim.total_steps(config.optim)


def _keep_fields(fields, batch):
  """The fields the step reads, per domain (module-level: grain workers pickle it)."""
  return {d: {f: batch[d][f] for f in fields} for d in batch}


def make_train_dataset(config, split='train', *, batch_size=None, seed=None, **kwargs):
  """The unpaired batches `{anime: {...}, real: {...}}` holding the fields the method reads;
  a clear error when the data lack one (e.g. angles on data without the synthetic state)."""
  method = translate_program.method_module(config)
  fields = method.data_fields(config)
  ds = pipeline.make_dataset(config.data, split, batch_size=batch_size or config.batch_size,
                             seed=config.seed if seed is None else seed, **kwargs)
  first = ds[0]
  for domain in first:
    missing = [f for f in fields if f not in first[domain]]
    if missing:
      raise ValueError(
          f'config.method={config.method!r} reads {missing} of every {domain} image, which '
          f'dataset {config.data[domain].name!r} does not have (only the synthetic_heads data '
          'carry the hidden semantic state); choose another method or dataset.')
  ds = ds.map(functools.partial(_keep_fields, fields))
  transform = method.host_transform(config, split)
  return ds.map(transform) if transform is not None else ds


def train_and_evaluate(config, workdir):
  """Trains `config.method` per `config`, resuming from `workdir` if it holds checkpoints."""
  # -----------------------------------------------------------------------------------------
  # Workdir (config.json), metric writer.
  workdir, writer = writers.start(config, workdir)
  is_main = multihost.is_main()
  steps_total = total_steps(config)

  # -----------------------------------------------------------------------------------------
  # Input pipeline (checks the datasets and the fields the method needs before compiling).
  train_iter = pipeline.make_iterator(make_train_dataset(config), config.data)

  # -----------------------------------------------------------------------------------------
  # Program: networks, optimiser groups, the jitted step (program.py).
  program = translate_program.build(config)
  translate = evaluation.make_translate_fn(config, program.replicated)
  logging.info('%s: %.2fM parameters, compute dtype %s.', config.method,
               program.num_params / 1e6, config.compute_dtype)
  init_rng, train_rng = common_program.seed_keys(config.seed, program.replicated)

  # -----------------------------------------------------------------------------------------
  # Resume (this workdir's latest checkpoint) > config.resume > config.model_init > scratch.
  ckpt = checkpoint.Checkpointer(workdir, keep=config.keep_checkpoints,
                                 every=config.checkpoint_every)

  def warm_start_state(state):  # Every process reads the files and places its own shards.
    return dict(state, params=warm_start.load(config, state['params'], workdir))

  state = checkpoint.restore_or_init(
      ckpt, config,
      common_program.sharded_abstract(program.abstract_state, program.state_shardings),
      train_iter, init=lambda: jax.jit(program.init, out_shardings=program.state_shardings)(
          init_rng), warm_start=warm_start_state)
  step = int(jax.device_get(state['step']))

  sample_batch = None
  if config.sample_every:  # The same batch on every process: all of them run the generators.
    sample_batch = evaluation.test_batch(config, 4, seed=config.seed + 1)

  # -----------------------------------------------------------------------------------------
  # Train loop.
  def log_metrics(accumulated, step):
    values = nonfinite.pop_and_check({k: np.asarray(v) for k, v in accumulated.compute().items()})
    values['learning_rate'] = np.asarray(optim.learning_rate(config.optim, step - 1))
    writer.write(step, values)

  progress = tqdm.tqdm(total=steps_total, initial=step, disable=not is_main, desc='train',
                       unit='step', dynamic_ncols=True)
  train_step, accumulated = program.train_steps['train'], None
  try:
    with preemption_lib.Preemption() as preemption:
      while step < steps_total:
        batch = pipeline.to_global(next(train_iter), program.data_sharding)
        state, metrics = train_step(state, batch, train_rng)
        accumulated = metrics if accumulated is None else accumulated.merge(metrics)
        step += 1
        progress.update(1)
        last = step == steps_total
        stop = preemption.reached(step)  # The same answer on every process.
        if step % config.log_every == 0 or last or stop:
          log_metrics(accumulated, step)
          accumulated = None
        if ckpt.should_save(step) or last or stop:
          ckpt.save(step, state, train_iter, force=True)
        if sample_batch is not None and (step % config.sample_every == 0 or last):
          writer.write_samples(step, evaluation.sample_grid(translate, state['params'],
                                                            sample_batch))
        if stop:
          break
  finally:  # Also on an error: pending checkpoint writes finish before the process ends.
    progress.close()
    ckpt.close()
  if preemption_lib.stopped_early(step, steps_total):
    writer.close()
    return state

  # -----------------------------------------------------------------------------------------
  # Evaluation on the test split.
  if config.eval.num_images:
    evaluate_workdir(config, workdir, state['params'], step)

  # -----------------------------------------------------------------------------------------
  # Export every network as a flat '/'-keyed .npz (gathered from every host's shards).
  if config.export_at_end:
    writers.export_params(workdir, state['params'])
  writer.close()
  return state


def evaluate_workdir(config, workdir, params, step, suite=None):
  """Scores both directions on `config.eval.num_images` test images per domain.

  Every process computes the whole table; process 0 writes eval.json and eval.md. Metrics whose
  weights are absent are skipped, and the report says why.
  """
  translate = evaluation.make_translate_fn(
      config, sharding.replicated(sharding.make_mesh(config.mesh)))
  table, skipped = evaluation.evaluate(config, translate, params, suite, workdir)
  if multihost.is_main():
    print(evaluation.write_report(workdir, step, config, table, skipped), flush=True)
  return table

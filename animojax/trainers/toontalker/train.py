"""ToonTalker trainer: readable top to bottom, in the manner of big_vision's train.py.

Sections: workdir and logging, input pipeline, program (mesh, model, losses, optimisers, steps),
resume, train loop (stage 1: real reconstruction; at `config.stage1_steps` the cartoon domain
is copied from the real one and stage 2 trains both domains jointly), evaluation, export.

Every process runs every line (a jitted call made by one process would wait for the others
forever): sampling, evaluation and export compute on all processes and process 0 writes.
"""

from absl import logging
import jax
import numpy as np
import tqdm

from animojax.convert import toontalker_torch
from animojax.data import pipeline
from animojax.trainers.animo import evaluation as animo_eval
from animojax.trainers.animo import train as animo_train
from animojax.trainers.common import checkpoint
from animojax.trainers.common import model_init
from animojax.trainers.common import multihost
from animojax.trainers.common import nonfinite
from animojax.trainers.common import preemption as preemption_lib
from animojax.trainers.common import program as common_program
from animojax.trainers.common import writers
from animojax.trainers.toontalker import evaluation as tt_eval
from animojax.trainers.toontalker import program as tt_program
from animojax.trainers.toontalker import state as tt_state
from animojax.trainers.toontalker import step as tt_step


def stage_at(config, step):
  return 'stage1' if step < config.stage1_steps else 'stage2'


def _pairs_only(batch):
  """The fields the steps read: a (source, driving) pair per domain."""
  return {d: {k: v[k] for k in ('source', 'driving')} for d, v in batch.items()}


def train_and_evaluate(config, workdir):
  """Trains ToonTalker per `config`, resuming from `workdir` if it holds checkpoints."""
  # -----------------------------------------------------------------------------------------
  # Workdir (config.json), metric writer.
  workdir, writer = writers.start(config, workdir)
  is_main = multihost.is_main()

  # -----------------------------------------------------------------------------------------
  # Input pipeline (checks that every dataset exists before anything is compiled).
  train_ds = pipeline.make_dataset(config.data, 'train', batch_size=config.batch_size,
                                   seed=config.seed)
  train_iter = pipeline.make_iterator(train_ds, config.data)
  domains = pipeline.domains(config.data)
  if config.total_steps > config.stage1_steps and set(domains) != set(tt_state.DOMAINS):
    raise ValueError(f'Stage 2 needs both domains in config.data {tt_state.DOMAINS}; it has '
                     f'{domains}.')

  # -----------------------------------------------------------------------------------------
  # Program: mesh, model, losses, optimisers and the jitted steps (compiled on first use).
  program = tt_program.build(config)
  data_sharding, repl = program.data_sharding, program.replicated
  state_shardings = program.state_shardings
  loss_params = multihost.replicate(program.image_loss.params, repl)
  generate = tt_step.make_generate(program.graphdefs[0], repl, config.kernels)
  logging.info('ToonTalker (%s): %.2fM generator parameters, compute dtype %s.',
               config.model.variant, program.num_params / 1e6, config.compute_dtype)
  init_rng, train_rng = common_program.seed_keys(config.seed, repl)
  copy_stage2 = jax.jit(lambda s: tt_state.copy_real_into_cartoon(s, program.txs),
                        out_shardings=state_shardings, donate_argnums=0)

  # -----------------------------------------------------------------------------------------
  # Resume (this workdir's latest checkpoint) > config.resume > config.model_init > scratch.
  ckpt = checkpoint.Checkpointer(workdir, keep=config.keep_checkpoints,
                                 every=config.checkpoint_every)

  def warm_start(state):  # Generator weights only (.npz export or released .pt).
    loaded, report = model_init.load(config.model_init, state['params']['gen'],
                                     torch_converter=toontalker_torch.convert)
    report.log()
    if is_main:
      report.write(workdir)
    params = dict(state['params'])
    params['gen'] = model_init.assign(state['params']['gen'], loaded, report.loaded)
    return dict(state, params=params)

  state = checkpoint.restore_or_init(
      ckpt, config, common_program.sharded_abstract(program.abstract_state, state_shardings),
      train_iter, init=lambda: jax.jit(program.init, out_shardings=state_shardings)(init_rng),
      warm_start=warm_start)
  step = int(jax.device_get(state['step']))

  sample_batch = None
  if config.sample_every and set(domains) == set(tt_state.DOMAINS):
    sample_batch = pipeline.make_dataset(config.data, config.eval.split, batch_size=4,
                                         seed=config.seed + 1, process_index=0,
                                         process_count=1, distinct_frames=True)[0]

  # -----------------------------------------------------------------------------------------
  # Train loop.
  def log_metrics(accumulated, step, stage):
    values = nonfinite.pop_and_check({k: np.asarray(v) for k, v in accumulated.compute().items()})
    values['learning_rate'] = np.asarray(config.optim[stage].g_lr)
    writer.write(step, values)

  progress = tqdm.tqdm(total=config.total_steps, initial=step, disable=not is_main,
                       desc='train', unit='step', dynamic_ncols=True)
  accumulated = None
  try:
    with preemption_lib.Preemption() as preemption:
      while step < config.total_steps:
        stage = stage_at(config, step)
        if step == config.stage1_steps and config.copy_real_to_cartoon:
          # Stage 2 starts (also when resuming from the checkpoint written at this step).
          state = copy_stage2(state)
        batch = pipeline.to_global(_pairs_only(next(train_iter)), data_sharding)
        state, metrics = program.train_steps[stage](state, batch, loss_params, train_rng)
        accumulated = metrics if accumulated is None else accumulated.merge(metrics)
        step += 1
        progress.update(1)
        progress.set_postfix(stage=stage, refresh=False)
        last, stop = step == config.total_steps, preemption.reached(step)
        # The stages log different terms: close the interval where stage 1 ends.
        if step % config.log_every == 0 or last or stop or step == config.stage1_steps:
          log_metrics(accumulated, step, stage)
          accumulated = None
        # Also where stage 1 ends: ablations of stage 2 can start from the same stage-1 state.
        if ckpt.should_save(step) or last or stop or step == config.stage1_steps:
          ckpt.save(step, state, train_iter, force=True)
        if sample_batch is not None and (step % config.sample_every == 0 or last):
          results = tt_eval.reenact(generate, state['params']['gen'], sample_batch, config.data)
          writer.write_samples(step, animo_eval.sample_grid(results))
        if stop:
          break
  finally:  # Also on an error: pending checkpoint writes finish before the process ends.
    progress.close()
    ckpt.close()
  if preemption_lib.stopped_early(step, config.total_steps):
    writer.close()
    return state

  # -----------------------------------------------------------------------------------------
  # Evaluation on the test split (all four directions need both domains).
  if config.eval.num_pairs and set(domains) == set(tt_state.DOMAINS):
    evaluate_workdir(config, workdir, generate, state['params']['gen'], step)

  # -----------------------------------------------------------------------------------------
  # Export the generator as a flat '/'-keyed .npz (gathered from every host's shards).
  if config.export_at_end:
    writers.export_params(workdir, state['params']['gen'], 'generator parameters')
  writer.close()
  return state


def evaluate_workdir(config, workdir, generate, params, step, suite=None):
  """AniMo's evaluation table (eval.json, eval.md) over ToonTalker's four directions."""
  return animo_train.evaluate_workdir(config, workdir, generate, params, step, suite,
                                      reenact_fn=tt_eval.reenact)

"""AniMo trainer: readable top to bottom, in the manner of big_vision's train.py.

Sections: workdir and logging, mesh, input pipeline, model/loss/optimiser, update steps, resume,
train loop, evaluation, export. The state is a pytree of plain dicts sharded by config rules;
each stage ('warp', 'gen') has one jitted step, compiled once, with the state donated.

Every process runs every line (a jitted call made by one process would wait for the others
forever): sampling, evaluation and export compute on all processes and process 0 writes.
"""

from absl import logging
import jax
import numpy as np
import tqdm

from animojax.convert import animo_torch
from animojax.data import pipeline
from animojax.metrics import suite as metric_suite
from animojax.trainers.animo import evaluation as animo_eval
from animojax.trainers.animo import program as animo_program
from animojax.trainers.animo import state as animo_state
from animojax.trainers.animo import step as animo_step
from animojax.trainers.animo import optim
from animojax.trainers.common import checkpoint
from animojax.trainers.common import model_init
from animojax.trainers.common import multihost
from animojax.trainers.common import nonfinite
from animojax.trainers.common import preemption as preemption_lib
from animojax.trainers.common import program as common_program
from animojax.trainers.common import writers


def train_and_evaluate(config, workdir):
  """Trains AniMo per `config`, resuming from `workdir` if it holds checkpoints."""
  # -----------------------------------------------------------------------------------------
  # Workdir (config.json), metric writer.
  workdir, writer = writers.start(config, workdir)
  is_main = multihost.is_main()

  # -----------------------------------------------------------------------------------------
  # Input pipeline (checks that every dataset and file exists before anything is compiled).
  pipeline.require_motion(config.data, 'AniMo')
  train_ds = pipeline.make_dataset(config.data, 'train', batch_size=config.batch_size,
                                   seed=config.seed)
  train_iter = pipeline.make_iterator(train_ds, config.data)

  # -----------------------------------------------------------------------------------------
  # Mesh, model, loss, optimiser and the jitted update steps (one per stage, compiled on first
  # use, state donated): see animo_program. The loss weights are checked here.
  program = animo_program.build(config)
  data_sharding, repl = program.data_sharding, program.replicated
  state_shardings, abstract_state = program.state_shardings, program.abstract_state
  train_steps, tx = program.train_steps, program.tx
  loss_params = multihost.replicate(program.image_loss.params, repl)
  generate = animo_step.make_generate(program.graphdef, repl, config.kernels)
  logging.info('AniMo (%s): %.2fM parameters, compute dtype %s.', config.model.variant,
               program.num_params / 1e6, config.compute_dtype)
  init_rng, train_rng = common_program.seed_keys(config.seed, repl)

  # -----------------------------------------------------------------------------------------
  # Resume (this workdir's latest checkpoint) > config.resume > config.model_init > scratch.
  ckpt = checkpoint.Checkpointer(workdir, keep=config.keep_checkpoints,
                                 every=config.checkpoint_every)

  def warm_start(state):
    # The file's weights into params and EMA, a fresh optimiser, step 0. Every process reads
    # the file and places its own shards.
    loaded, report = model_init.load(config.model_init, animo_state.model_params(state['params']),
                                     torch_converter=animo_torch.convert)
    report.log()
    if is_main:
      report.write(workdir)
    for key in ('params', 'ema'):
      merged = model_init.assign(animo_state.model_params(state[key]), loaded, report.loaded)
      state[key] = {group: {k: merged[k] for k in state[key][group]} for group in state[key]}
    return state

  state = checkpoint.restore_or_init(
      ckpt, config, common_program.sharded_abstract(abstract_state, state_shardings), train_iter,
      init=lambda: jax.jit(program.init, out_shardings=state_shardings)(init_rng),
      warm_start=warm_start)
  step = int(jax.device_get(state['step']))

  sample_batch = None
  if config.sample_every:  # The same batch on every process: all of them run the generator.
    sample_ds = pipeline.make_dataset(config.data, config.eval.split, batch_size=4,
                                      seed=config.seed + 1, process_index=0, process_count=1,
                                      distinct_frames=True)
    sample_batch = sample_ds[0]

  # -----------------------------------------------------------------------------------------
  # Train loop.
  def log_metrics(accumulated, step):
    values = nonfinite.pop_and_check({k: np.asarray(v) for k, v in accumulated.compute().items()})
    values['learning_rate'] = np.asarray(optim.learning_rate(config.optim, step - 1))
    writer.write(step, values)

  progress = tqdm.tqdm(total=config.total_steps, initial=step, disable=not is_main,
                       desc='train', unit='step', dynamic_ncols=True)
  accumulated = None
  try:
    with preemption_lib.Preemption() as preemption:
      while step < config.total_steps:
        stage = 'warp' if step < config.warp_steps else 'gen'
        if step == config.warp_steps and config.reset_warp_optimizer_at_gen:
          state['opt']['warp'] = jax.jit(tx.init, out_shardings=state_shardings['opt']['warp'])(
              state['params']['warp'])
        batch = pipeline.to_global(next(train_iter), data_sharding)
        state, metrics = train_steps[stage](state, batch, loss_params, train_rng)
        accumulated = metrics if accumulated is None else accumulated.merge(metrics)
        step += 1
        progress.update(1)
        progress.set_postfix(stage=stage, refresh=False)
        last = step == config.total_steps
        stop = preemption.reached(step)  # The same answer on every process.
        # The stages log different terms: close the interval where the warp-only stage ends.
        if step % config.log_every == 0 or last or stop or step == config.warp_steps:
          log_metrics(accumulated, step)
          accumulated = None
        if ckpt.should_save(step) or last or stop:
          ckpt.save(step, state, train_iter, force=True)
        if sample_batch is not None and (step % config.sample_every == 0 or last):
          results = animo_eval.reenact(generate, state['ema'], sample_batch, config.data)
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
  # Evaluation on the test split, with the EMA weights.
  if config.eval.num_pairs:
    evaluate_workdir(config, workdir, generate, state['ema'], step)

  # -----------------------------------------------------------------------------------------
  # Export the EMA weights as a flat '/'-keyed .npz (gathered from every host's shards).
  if config.export_at_end:
    writers.export_params(workdir, animo_state.model_params(state['ema']), 'EMA parameters')
  writer.close()
  return state


def evaluate_workdir(config, workdir, generate, params, step, suite=None, reenact_fn=None):
  """Scores all reenactment directions on `config.eval.num_pairs` test pairs.

  Every process computes the whole table (the generator runs on all of them); process 0 writes
  eval.json and eval.md. `suite` defaults to every metric whose weights are present
  (`metric_suite.load_for_config`); the skipped ones are listed in eval.md/eval.json with the
  reason. `reenact_fn` runs the directions (default: AniMo's, see `animo_eval.evaluate`;
  ToonTalker passes its own).
  """
  suite = suite or metric_suite.load_for_config(config.eval)
  batch_size = config.eval.batch_size
  num_batches = max(1, config.eval.num_pairs // batch_size)
  ds = pipeline.make_dataset(config.data, config.eval.split, batch_size=batch_size,
                             seed=config.seed + 2, process_index=0, process_count=1,
                             distinct_frames=True)
  table = animo_eval.evaluate(generate, params, (ds[i] for i in range(num_batches)), config.data,
                             suite, reenact_fn=reenact_fn)
  if multihost.is_main():
    report = animo_eval.write_report(workdir, step, table, num_batches * batch_size,
                                     suite.skipped)
    print(report, flush=True)
  return table

"""What a run writes into its workdir, by process 0 only: config, metrics, samples, parameters.

Metrics go to JSON lines and TensorBoard event files, written with tensorboardX, so no TensorFlow
is needed (clu's writers import TensorFlow). Every process still logs to absl.
"""

import json
import os
import time

from absl import logging
import jax
import numpy as np

from animojax.trainers.common import multihost
from animojax.trainers.common import workdir as workdir_lib
from animojax.utils import images
from animojax.utils import tree as tree_util


def start(config, workdir):
  """(absolute workdir, its MetricWriter): writes config.json (`launch` has checked it against a
  resumed run's) and logs the devices. Every trainer begins with this."""
  workdir = os.path.abspath(workdir)
  workdir_lib.write_config(config, workdir)
  logging.info('Devices: %d (%s), processes: %d', jax.device_count(), jax.devices()[0].platform,
               jax.process_count())
  return workdir, MetricWriter(workdir)


def export_params(workdir, params, what='parameters'):
  """`workdir/params.npz`, flat and '/'-keyed, gathered from every host's shards (all processes
  call this; process 0 writes)."""
  params = multihost.fetch(params)
  if multihost.is_main():
    path = os.path.join(workdir, 'params.npz')
    tree_util.save_npz(path, params)
    logging.info('Exported %s to %s', what, path)


class MetricWriter:
  """`write(step, {name: scalar})` to `workdir/metrics.jsonl` and `workdir/tensorboard/`."""

  def __init__(self, workdir, *, tensorboard=True):
    self.active = jax.process_index() == 0
    self._workdir = workdir
    self._jsonl = None
    self._tb = None
    if not self.active:
      return
    os.makedirs(workdir, exist_ok=True)
    self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
    if tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def write(self, step, scalars):
    scalars = {k: float(np.asarray(v)) for k, v in scalars.items()}
    logging.info('step %d: %s', step, ', '.join(f'{k}={v:.5g}' for k, v in scalars.items()))
    if not self.active:
      return
    self._jsonl.write(json.dumps({'step': int(step), 'time': time.time(), **scalars}) + '\n')
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in scalars.items():
        self._tb.add_scalar(k, v, step)

  def write_image(self, step, name, image_uint8):
    if self._tb is not None:
      self._tb.add_image(name, image_uint8, step, dataformats='HWC')

  def write_samples(self, step, grid_uint8):
    """A sample grid as `samples/step_<step>.png` and a TensorBoard image."""
    if not self.active:
      return
    images.save_png(os.path.join(self._workdir, 'samples', f'step_{step:08d}.png'), grid_uint8)
    self.write_image(step, 'samples', grid_uint8)

  def close(self):
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()

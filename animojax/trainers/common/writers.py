"""Metric writers: JSON lines and TensorBoard event files, written by process 0 only.

TensorBoard events are written with tensorboardX, so no TensorFlow is needed (clu's writers
import TensorFlow). Every process still logs to absl.
"""

import json
import os
import time

from absl import logging
import jax
import numpy as np


class MetricWriter:
  """`write(step, {name: scalar})` to `workdir/metrics.jsonl` and `workdir/tensorboard/`."""

  def __init__(self, workdir, *, tensorboard=True):
    self.active = jax.process_index() == 0
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

  def close(self):
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()

"""A workdir's `config.json`: rerunning a run with a changed config is refused unless asked.

`launch` resumes from the latest checkpoint of `--workdir`. A rerun of the same command (after a
preemption, or to finish) must just work; a rerun with another config (`--config.batch_size=4`)
would silently continue the old run under new settings and overwrite its `config.json`, so it is
refused with the differences listed, unless `--allow_config_change` is given. Process 0 decides
and every process follows its answer (hosts may not share the workdir's file system).
"""

import json
import os

import jax
from jax.experimental import multihost_utils
import numpy as np

MAX_LISTED = 12


def _flatten(tree, prefix=''):
  if isinstance(tree, dict):
    out = {}
    for key, value in tree.items():
      out.update(_flatten(value, f'{prefix}{key}.'))
    return out if out or not prefix else {prefix[:-1]: {}}
  return {prefix[:-1]: tree}


def has_checkpoints(workdir):
  folder = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(folder) and any(name.isdigit() for name in os.listdir(folder))


def config_changes(config, workdir):
  """`['key: old -> new', ...]` between the run's `config.json` and `config`.

  Empty when they agree, and when there is nothing to resume (no config.json or no checkpoint
  yet: the old file then describes no trained state).
  """
  path = os.path.join(workdir, 'config.json')
  try:  # Every process waits for this answer: an error here must not stop process 0 alone.
    if not (os.path.isfile(path) and has_checkpoints(workdir)):
      return []
    with open(path) as f:
      old = _flatten(json.load(f))
  except (OSError, ValueError) as e:
    return [f'{path} cannot be read ({e})']
  new = _flatten(json.loads(config.to_json_best_effort()))

  def show(tree, key):  # As JSON text: tuples and lists agree, and so do NaN and NaN.
    return json.dumps(tree[key]) if key in tree else '(absent)'

  return [f'{key}: {show(old, key)} -> {show(new, key)}' for key in sorted(set(old) | set(new))
          if show(old, key) != show(new, key)]


def check_config(config, workdir, *, allow_change=False):
  """Raises ValueError listing the differences when `config` differs from the workdir's run.

  Every process must call it (process 0's answer is shared when there are several).
  """
  if allow_change:
    return
  changes = config_changes(config, workdir) if jax.process_index() == 0 else []
  refused = len(changes)
  if jax.process_count() > 1:
    refused = int(multihost_utils.broadcast_one_to_all(np.int32(refused)))
  if not refused:
    return
  if not changes:
    raise ValueError(f'{workdir}: process 0 found that the config differs from the run saved '
                     'there (its log lists the differences). Pass --allow_config_change to '
                     'resume under the new config, or use another --workdir.')
  listed = '; '.join(changes[:MAX_LISTED])
  more = f'; and {len(changes) - MAX_LISTED} more' if len(changes) > MAX_LISTED else ''
  raise ValueError(
      f'{workdir} holds a run with another config ({len(changes)} difference(s): {listed}{more}). '
      'Rerun with the same config to resume it, pass --allow_config_change to resume it under '
      'the new config (config.json is then replaced), or use another --workdir.')


def write_config(config, workdir):
  """Writes `workdir/config.json` atomically (process 0 only): never a half-written file."""
  if jax.process_index() != 0:
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, 'config.json')
  tmp = f'{path}.tmp-{os.getpid()}'
  with open(tmp, 'w') as f:
    f.write(config.to_json_best_effort(indent=2))
  os.replace(tmp, path)

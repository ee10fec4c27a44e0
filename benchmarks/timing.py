"""Timing shared by the GPU benchmarks: wall clock between device syncs, GPU traces, and one
child process per measured configuration (a fresh process: no compile cache or allocator state
carried from the previous one)."""

import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def report(result):
  """A child's result, on the line its parent (`run_child`) reads."""
  print('RESULT ' + json.dumps(result), flush=True)


def run_child(cmd):
  """Runs a benchmark child; its `report`ed result, or {'error', 'cmd'} with its output shown."""
  print('$', ' '.join(cmd[1:]), flush=True)
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  result = None
  for line in proc.stdout.splitlines():
    if line.startswith('RESULT '):
      result = json.loads(line[len('RESULT '):])
    else:
      print(line)  # e.g. a --profile table.
  if result is not None:
    return result
  sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
  return {'error': f'exit {proc.returncode}', 'cmd': ' '.join(cmd[2:])}


def timed(call, sync, *, warmup, calls, repeats):
  """(median, min) seconds per call of `call(i)`, run `calls` times back to back per repeat.

  `sync(out)` waits for the device (`out` None: for everything queued); `warmup` calls, each
  synced, come first.
  """
  for i in range(warmup):
    sync(call(i))
  runs = []
  for _ in range(repeats):
    sync(None)
    start = time.perf_counter()
    out = None
    for i in range(calls):
      out = call(i)
    sync(out)
    runs.append((time.perf_counter() - start) / calls)
  return statistics.median(runs), min(runs)


def gpu_trace(run):
  """Runs `run()` under `jax.profiler` (CUPTI on GPUs: every stream of the process, whichever
  framework launched the kernels) and returns the trace as `jax.profiler.ProfileData`."""
  import jax  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    run()
    jax.profiler.stop_trace()
    path = glob.glob(os.path.join(trace_dir, '**', '*.xplane.pb'), recursive=True)[0]
    return jax.profiler.ProfileData.from_file(path)

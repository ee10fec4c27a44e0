"""Timing shared by the GPU benchmarks: wall clock between device syncs, and GPU traces."""

import glob
import os
import statistics
import tempfile
import time


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

"""Benchmark: fitting Φ for all 17 semantics at once, after compilation (CPU or GPU).

  python benchmarks/posemap_fit.py                       # print the table
  python benchmarks/posemap_fit.py --append benchmarks/RESULTS.md

Times `animojax.posemap.solve_phi` (one jitted call solves all 17 semantics) on the models that
are available: the embedded model (68 landmarks, K = 64: the size of Deep3DFaceRecon's BFM at the
landmarks), and the 3DDFA (K = 10) and Surrey (K = 6) models from ../shared/testdata when present.
Runs on whatever device JAX picks (set JAX_PLATFORMS=cpu or =cuda to choose). `--append` adds a
subsection named after the device (CPU model from lscpu, GPU from JAX) under the
`## Pose-mapping fit` heading, which it writes once.
"""

import argparse
import os
import platform
import subprocess
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from animojax import posemap  # pylint: disable=wrong-import-position
from animojax.posemap import camera as camera_lib  # pylint: disable=wrong-import-position

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared',
                        'testdata')
HEADING = '## Pose-mapping fit'
CASES = (('perspective', 0), ('perspective', 6), ('weak_perspective', 0))


def device_name() -> str:
  device = jax.devices()[0]
  if device.platform != 'cpu':
    return f'{device.platform.upper()} {device.device_kind} (jax {jax.__version__})'
  try:
    out = subprocess.run(['lscpu'], capture_output=True, text=True, check=True).stdout
    name = next(line.split(':', 1)[1].strip() for line in out.splitlines()
                if line.startswith('Model name'))
  except (OSError, subprocess.CalledProcessError, StopIteration):
    name = platform.processor() or 'unknown CPU'
  return f'CPU {name}, {os.cpu_count()} cores visible (jax {jax.__version__})'


def models():
  yield 'embedded (K=64)', posemap.embedded_model()
  for spec, label in ((f'3ddfa:{TESTDATA}/3ddfa', '3DDFA (K=10)'),
                      (f'sfm:{TESTDATA}/sfm', 'Surrey (K=6)')):
    try:
      yield label, posemap.load_model(spec)
    except FileNotFoundError as e:
      print(f'skipping {label}: {e}', file=sys.stderr)


def time_case(model, camera, iterations, repeats):
  targets = posemap.semantic_targets(model.mean)
  args = (model.mean, model.exp_basis, model.exp_std, targets,
          model.landmark_valid.astype(np.float32), camera_lib.view_rotations([(0, 0, 0)]),
          np.float32(1e-4))
  args = jax.device_put(args)
  start = time.perf_counter()
  posemap.solve_phi(*args, camera=camera, iterations=iterations).block_until_ready()
  compile_s = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    posemap.solve_phi(*args, camera=camera, iterations=iterations).block_until_ready()
    times.append(time.perf_counter() - start)
  return compile_s, float(np.median(times)), float(np.min(times))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--repeats', type=int, default=20)
  parser.add_argument('--append', help='append the section to this markdown file')
  args = parser.parse_args()
  load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
  rows = ['| model | camera | LM iterations | first call (compile + run) | median | min |',
          '|---|---|---:|---:|---:|---:|']
  for label, model in models():
    for camera, iterations in CASES:
      compile_s, median, best = time_case(model, camera, iterations, args.repeats)
      rows.append(f'| {label} | {camera} | {iterations} | {compile_s:.2f} s | '
                  f'{1e3 * median:.2f} ms | {1e3 * best:.2f} ms |')
      print(rows[-1], flush=True)
  section = '\n'.join([
      '', f'### {device_name()}', '',
      '`python benchmarks/posemap_fit.py`: one jitted `solve_phi` call fits all 17 semantics '
      f'(median / min of {args.repeats} calls after compilation; iterations 0 = the closed-form '
      'Gauss–Newton / ridge solve only; 1-minute load average '
      f'{load:.1f} at the start: on a shared machine the medians are noisy and min is the better '
      'estimate). The same script runs unchanged on a GPU (`JAX_PLATFORMS=cuda`).', '', *rows,
      '', ''])
  print(section)
  if args.append:
    append_section(args.append, section)


def append_section(path: str, subsection: str) -> None:
  """Adds a device's subsection at the end of the `## Pose-mapping fit` section (made if missing),
  leaving the other sections of the file as they are."""
  text = ''
  if os.path.exists(path):
    with open(path, encoding='utf-8') as f:
      text = f.read()
  if HEADING not in text:
    text = text.rstrip('\n') + f'\n\n{HEADING}\n'
  start = text.index(HEADING) + len(HEADING)
  end = text.find('\n## ', start)  # The next section, if any.
  end = len(text) if end < 0 else end + 1
  text = text[:end].rstrip('\n') + '\n' + subsection + text[end:]
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)


if __name__ == '__main__':
  main()

"""Trains every translation method's demo on the synthetic data and prints the README table.

  python benchmarks/translate_compare.py --root=/tmp/translate_compare [--methods=cyclegan,ugatit]

Each method runs `python -m animojax.launch --config=translate:METHOD,demo --workdir=ROOT/METHOD`
(a finished workdir is reused: rerunning the command only fills in what is missing), then its
`eval.json` is read. Columns per direction: the probe's roll (in-plane angle) error, mean
head-angle error and expression error against the source's hidden state, the probe's
target-domain rate, FID and KID (when the Inception weights are present), and the wall time of
the run on this machine.
"""

import argparse
import json
import os
import subprocess
import sys
import time

METHODS = ('diffvec', 'encdec', 'cyclegan', 'cyclegan_angle', 'ugatit')
COLUMNS = (('roll_error', 'roll err° ↓', '{:.2f}'), ('angle_error', 'angle err° ↓', '{:.2f}'),
           ('expression_error', 'expr err ↓', '{:.3f}'),
           ('target_domain_rate', 'target-domain % ↑', '{:.0f}'), ('fid', 'FID ↓', '{:.1f}'),
           ('kid', 'KID×100 ↓', '{:.2f}'))


def run(method, root, extra):
  workdir = os.path.join(root, method)
  report = os.path.join(workdir, 'eval.json')
  timing = os.path.join(workdir, 'wall_time_s.txt')
  if not os.path.exists(report):
    start = time.time()
    cmd = [sys.executable, '-m', 'animojax.launch', f'--config=translate:{method},demo',
           f'--workdir={workdir}', *extra]
    print('$', ' '.join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, check=False)
    if proc.returncode:
      return None, None
    with open(timing, 'w') as f:
      f.write(f'{time.time() - start:.0f}\n')
  with open(report) as f:
    results = json.load(f)
  wall = open(timing).read().strip() if os.path.exists(timing) else '?'
  return results, wall


def cell(row, key, fmt):
  value = row.get(key)
  if value is None:
    return 'n/a'
  return fmt.format(100 * value if key == 'kid' else value)


def table(rows):
  lines = ['| method | direction | ' + ' | '.join(c[1] for c in COLUMNS) + ' | steps | wall s |',
           '|' + '---|' * (len(COLUMNS) + 4)]
  for method, results, wall in rows:
    if results is None:
      lines.append(f'| {method} | failed |' + ' |' * (len(COLUMNS) + 2))
      continue
    for direction in ('anime->real', 'real->anime'):
      row = results['results'].get(direction, {}).get('model', {})
      lines.append(f'| {method} | {direction} | ' +
                   ' | '.join(cell(row, k, f) for k, _, f in COLUMNS) +
                   f' | {results["step"]} | {wall} |')
  first = next((r for _, r, _ in rows if r is not None), None)
  if first is not None:
    for direction in ('anime->real', 'real->anime'):
      row = first['results'].get(direction, {}).get('copy', {})
      lines.append(f'| copy (untranslated) | {direction} | ' +
                   ' | '.join(cell(row, k, f) for k, _, f in COLUMNS) + ' | – | – |')
    for domain, row in first['results'].get('probe_floor', {}).items():
      lines.append(f'| probe floor | {domain} test images | ' +
                   ' | '.join(cell(row, k, f) for k, _, f in COLUMNS) + ' | – | – |')
  skipped = {m: why for _, r, _ in rows if r for m, why in r.get('skipped', {}).items()}
  if skipped:
    lines += [''] + [f'Skipped: {m}: {why}' for m, why in sorted(skipped.items())]
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
  parser.add_argument('--root', default='/tmp/translate_compare')
  parser.add_argument('--methods', default=','.join(METHODS))
  args, extra = parser.parse_known_args(argv)
  rows = []
  for method in args.methods.split(','):
    results, wall = run(method, args.root, extra)
    rows.append((method, results, wall))
  text = table(rows)
  print(text)
  return text


if __name__ == '__main__':
  main()

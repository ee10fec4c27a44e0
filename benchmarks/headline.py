"""Re-runs every headline speed figure of the README on this machine's GPU and prints the tables.

  python benchmarks/headline.py --peer=/path/to/PIRender            # all of them (~25 min, H200)
  python benchmarks/headline.py --peer=/path/to/PIRender --only=train_step,generate

Each figure is its own benchmark script, run as a child process with the settings the README
quotes, so that a reader can check a number by running one command:

  train_step      animojax's paper-size AniMo step (bf16, batch 32, 256²) and PIRender's (fp32,
                  bf16, bf16 + torch.compile) -> the "× PIRender" training ratio
  generate        one reenacted 256² frame at batch 1 and 16, fp32/bf16, PIRender eager/compiled
  warp            `ops.grid_sample` against torch's F.grid_sample (issue 5's sizes)
  input_pipeline  the grain pipeline's img/s against what the step consumes
  reenact         the whole video pipeline (decode → detect → 3DDFA → fit → generate → encode),
                  bf16, next to the PyTorch references

The device and date head the output; paste the tables into benchmarks/RESULTS.md under them.
"""

import argparse
import datetime
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def commands(peer):
  peer_flag = [f'--peer={peer}'] if peer else []
  return {
      'train_step': ['train_step.py', '--policies=bfloat16', *peer_flag],
      'generate': ['generate.py', *peer_flag],
      'warp': ['warp.py'],
      'input_pipeline': ['input_pipeline.py'],
      'reenact': ['reenact.py', '--dtype=bfloat16', '--torch'],
  }


def device_name():
  try:
    out = subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out.splitlines()[0] if out else 'unknown GPU'
  except (OSError, subprocess.CalledProcessError):
    return 'no NVIDIA GPU found'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
  parser.add_argument('--peer', default='', help='path to a RenYurui/PIRender checkout')
  parser.add_argument('--only', default='', help='comma list of figures (default: all)')
  args = parser.parse_args()
  available = commands(args.peer)
  names = args.only.split(',') if args.only else list(available)
  unknown = [n for n in names if n not in available]
  if unknown:
    raise SystemExit(f'--only: unknown figure(s) {unknown}; choose from {list(available)}.')
  print(f'# {device_name()}, {datetime.date.today().isoformat()}', flush=True)
  failed = []
  for name in names:
    script = os.path.join(HERE, available[name][0])
    if not os.path.exists(script):
      print(f'\n## {name}: skipped ({available[name][0]} does not exist yet)', flush=True)
      continue
    print(f'\n## {name}: python benchmarks/{" ".join(available[name])}', flush=True)
    code = subprocess.run([sys.executable, script, *available[name][1:]], check=False).returncode
    if code:
      failed.append(name)
  if failed:
    raise SystemExit(f'failed: {", ".join(failed)}')


if __name__ == '__main__':
  main()

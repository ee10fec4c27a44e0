"""Input-pipeline throughput on this host's CPUs against what the train step consumes.

  python benchmarks/input_pipeline.py --data_dir=/tmp/tfds --build --workers=0,8,16 \
      --demand_img_s=1200

Reads `synthetic_heads/anime_256` + `human_256` (`--build` renders them first, in parallel) through
the trainer's own pipeline (`animojax.data.pipeline`: grain random access into ArrayRecord, PNG
decoding, same-identity pair sampling, Φ pose mapping, batching; thread prefetch, plus
`--workers` grain worker processes), and reports images/s, where a batch of B pairs per domain
holds 4·B images (source and driving, two domains) — the same unit as the step's img/s in
`benchmarks/train_step.py`, whose measured figure is the demand. Batches are counted once they are
host-side numpy arrays, before the copy to the device.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
# pylint: disable=g-import-not-at-top,wrong-import-position
from animojax.configs import animo as animo_config
from animojax.data import pipeline
from animojax.data import sources


def build(data_dir, size):
  for domain in ('anime', 'human'):
    start = time.perf_counter()
    sources.get_builder(f'synthetic_heads/{domain}_{size}', data_dir)
    print(f'synthetic_heads/{domain}_{size}: ready in {time.perf_counter() - start:.0f} s',
          flush=True)


def measure(data_dir, size, pairs, threads, workers, batches, warmup):
  config = animo_config.get_config('synthetic').data
  config.data_dir = data_dir
  config.image_size = size
  config.anime.name = f'synthetic_heads/anime_{size}'
  config.human.name = f'synthetic_heads/human_{size}'
  config.num_threads = threads
  config.num_workers = workers
  ds = pipeline.make_dataset(config, 'train', batch_size=pairs, seed=0, process_index=0,
                             process_count=1)
  it = pipeline.make_iterator(ds, config)
  for _ in range(warmup):
    next(it)
  start = time.perf_counter()
  for _ in range(batches):
    batch = next(it)
  elapsed = time.perf_counter() - start
  assert batch['anime']['source'].shape == (pairs, size, size, 3)
  return 4 * pairs * batches / elapsed


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--build', action='store_true', help='build the datasets if missing')
  parser.add_argument('--size', type=int, default=256)
  parser.add_argument('--pairs', type=int, default=16, help='pairs per domain per batch')
  parser.add_argument('--threads', type=int, default=16, help='grain read threads')
  parser.add_argument('--workers', default='0', help='comma list of grain worker-process counts')
  parser.add_argument('--batches', type=int, default=50)
  parser.add_argument('--warmup', type=int, default=10)
  parser.add_argument('--demand_img_s', type=float, default=0.0,
                      help="the train step's img/s on this host's GPUs (train_step.py)")
  args = parser.parse_args()
  if args.build:
    build(args.data_dir, args.size)
  print(f'host: {os.cpu_count()} CPUs; {args.pairs} pairs per domain per batch, {args.size}²')
  print('| grain workers | threads | img/s | supply / demand |\n|---|---|---|---|')
  for workers in [int(w) for w in args.workers.split(',')]:
    img_s = measure(args.data_dir, args.size, args.pairs, args.threads, workers, args.batches,
                    args.warmup)
    ratio = f'{img_s / args.demand_img_s:.2f}x' if args.demand_img_s else 'n/a'
    print(f'| {workers} | {args.threads} | {img_s:.0f} | {ratio} |', flush=True)


if __name__ == '__main__':
  main()

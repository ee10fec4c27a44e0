"""Inference: one reenacted 256² frame through AniMo's generator, next to PIRender's `FaceGenerator`.

  python benchmarks/generate.py                              # ours: fp32 and bf16, batch 1 and 16
  python benchmarks/generate.py --peer=/path/to/PIRender     # + PIRender eager and compiled

What runs: the paper-size AniMo (`model.variant='paper'`) with random weights, the full stage
(mapping → warping → editing), jitted exactly as the trainer's sample/evaluation generator
(`trainers.animo.step.make_generate`); bf16 casts the weights and inputs as the bf16 train step
does. PIRender (`--peer`, the user's checkout): `FaceGenerator` at config/face.yaml sizes under
`torch.inference_mode()`, eager fp32, bf16 autocast, and bf16 autocast under `torch.compile`
(default mode, and 'max-autotune-no-cudagraphs' with `--peer_autotune`); cudnn autotuning on.
Both get the same batch of one driving pose per source image.

Timing: `--warmup` calls, then `--calls` calls back to back between two device syncs, median of
`--repeats`; ms per call (one call = `batch` frames) and frames/s. Each configuration runs in its
own process (`--child`), as benchmarks/train_step.py does.
"""

import argparse
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path.insert(0, ROOT)
from benchmarks import timing  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import train_step  # pylint: disable=g-import-not-at-top,wrong-import-position

OURS_MODES = ('float32', 'bfloat16')
PEER_MODES = ('fp32', 'bf16', 'bf16_compile')


def run_ours(args):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from animojax.configs import animo as animo_config  # pylint: disable=g-import-not-at-top
  from animojax.trainers.animo import program as animo_program  # pylint: disable=g-import-not-at-top
  from animojax.trainers.animo import step as animo_step  # pylint: disable=g-import-not-at-top
  from animojax.trainers.common import precision  # pylint: disable=g-import-not-at-top

  c = animo_config.get_config('synthetic')
  c.loss.network = 'pixel_pyramid'  # The program builds the loss too; inference never runs it.
  c.model.variant = args.variant
  c.data.image_size = args.size
  c.batch_size = args.batch
  c.mesh = [('data', 1)]
  program = animo_program.build(c)
  state = jax.jit(program.init)(jax.random.key(0))
  dtype = precision.compute_dtype(args.mode)
  params = precision.cast_floating(state['ema'], dtype)
  batch = animo_program.random_batch(c, jax.random.key(1))['anime']
  source = batch['source'].astype(dtype)
  pose = batch['driving_pose'].astype(dtype)
  generate = animo_step.make_generate(program.graphdef, kernels_choice=c.kernels)

  def call(_):
    return generate(params, source, pose, domain='anime')['fake_image']

  out = call(0)
  finite = bool(jnp.all(jnp.isfinite(out.astype(jnp.float32))))
  median_s, min_s = timing.timed(call, jax.block_until_ready, warmup=args.warmup,
                                 calls=args.calls, repeats=args.repeats)
  return dict(impl='animojax', mode=args.mode, batch=args.batch, device=jax.devices()[0].device_kind,
              ms=median_s * 1e3, min_ms=min_s * 1e3, frames_s=args.batch / median_s,
              finite=finite)


def run_peer(args):
  import torch  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.abspath(args.peer))
  from generators.face_model import FaceGenerator  # pylint: disable=g-import-not-at-top,import-error

  torch.backends.cudnn.benchmark = True
  dev = 'cuda'
  net = FaceGenerator(**train_step.PIRENDER_FACE).to(dev).eval()
  gen = torch.Generator(device=dev).manual_seed(0)
  b, s = args.batch, args.size
  image = torch.rand(b, 3, s, s, device=dev, generator=gen) * 2 - 1
  semantic = torch.randn(b, 73, 27, device=dev, generator=gen) * 0.1

  def forward(image, semantic):
    with torch.autocast('cuda', dtype=torch.bfloat16, enabled=args.mode != 'fp32'):
      return net(image, semantic, 'gen')['fake_image']

  if args.mode == 'bf16_compile':
    forward = torch.compile(
        forward, mode='max-autotune-no-cudagraphs' if args.peer_autotune else None)

  def call(_):
    with torch.inference_mode():
      return forward(image, semantic)

  finite = bool(torch.isfinite(call(0).float()).all())
  median_s, min_s = timing.timed(call, lambda _: torch.cuda.synchronize(), warmup=args.warmup,
                                 calls=args.calls, repeats=args.repeats)
  return dict(impl='PIRender', mode=args.mode + ('_autotune' if args.peer_autotune else ''),
              batch=b, device=torch.cuda.get_device_name(), ms=median_s * 1e3,
              min_ms=min_s * 1e3, frames_s=b / median_s, finite=finite)


def child_command(args, **overrides):
  values = {**vars(args), **overrides}
  cmd = [sys.executable, os.path.abspath(__file__), '--child']
  for key in ('size', 'variant', 'warmup', 'calls', 'repeats', 'peer', 'mode', 'batch'):
    cmd.append(f'--{key}={values[key]}')
  if values.get('peer_autotune'):
    cmd.append('--peer_autotune')
  if overrides.get('impl') == 'peer':
    cmd.append('--as_peer')
  return cmd


def table(results):
  rows = ['| impl | mode | batch | ms per call | frames/s |', '|---|---|---|---|---|']
  for r in results:
    if 'error' in r:
      rows.append(f'| {r["cmd"]} | failed: {r["error"]} | | | |')
    else:
      rows.append(f'| {r["impl"]} | {r["mode"]} | {r["batch"]} | {r["ms"]:.2f} | '
                  f'{r["frames_s"]:.0f} |')
  return '\n'.join(rows)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
  parser.add_argument('--batches', default='1,16')
  parser.add_argument('--modes', default=','.join(OURS_MODES))
  parser.add_argument('--peer', default='', help='path to a RenYurui/PIRender checkout')
  parser.add_argument('--peer_modes', default=','.join(PEER_MODES))
  parser.add_argument('--peer_autotune', action='store_true',
                      help="compile PIRender with mode='max-autotune-no-cudagraphs'")
  parser.add_argument('--size', type=int, default=256)
  parser.add_argument('--variant', default='paper', help="AniMo's model.variant")
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--calls', type=int, default=20)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--json', default='', help='also write the results here')
  parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--as_peer', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--mode', default='float32', help=argparse.SUPPRESS)
  parser.add_argument('--batch', type=int, default=1, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    result = run_peer(args) if args.as_peer else run_ours(args)
    timing.report(result)
    return

  results = []
  for batch in [int(b) for b in args.batches.split(',')]:
    for mode in filter(None, args.modes.split(',')):
      results.append(timing.run_child(child_command(args, mode=mode, batch=batch)))
      print(json.dumps(results[-1]), flush=True)  # Each as it comes: a killed run keeps them.
    if args.peer:
      for mode in filter(None, args.peer_modes.split(',')):
        results.append(timing.run_child(
            child_command(args, mode=mode, batch=batch, impl='peer')))
        print(json.dumps(results[-1]), flush=True)
  print(table(results))
  for batch in sorted({r['batch'] for r in results if 'batch' in r}):
    ours = [r for r in results if r.get('impl') == 'animojax' and r['batch'] == batch]
    peers = [r for r in results if r.get('impl') == 'PIRender' and r['batch'] == batch]
    if ours and peers:
      best_ours = min(ours, key=lambda r: r['ms'])
      best_peer = min(peers, key=lambda r: r['ms'])
      print(f'batch {batch}: animojax {best_ours["mode"]} {best_ours["ms"]:.2f} ms vs PIRender '
            f'{best_peer["mode"]} {best_peer["ms"]:.2f} ms: '
            f'{best_peer["ms"] / best_ours["ms"]:.2f}x')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=1)


if __name__ == '__main__':
  main()

"""Few-channel convolutions: cuDNN (`lax.conv_general_dilated`) vs `animojax.ops.conv`'s kernels.

  python benchmarks/conv.py                    # bf16, the AniMo/VGG shapes below

The shapes are the train step's convolutions with 2–3 channels on one side (batch 32 per
generator call; VGG's conv1_1 at 64 images): forward, input gradient and weight gradient, each
jitted alone (XLA drops the unused parts of the custom VJP). Ours = `few_channel_conv`, whose
forward for a narrow output is tap planes where those are small (the flow head), else cuDNN's. Wall clock between device syncs, median of
`--repeats` runs of `--calls` back-to-back calls.
"""

import argparse
import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from animojax.ops import conv  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import timing  # pylint: disable=g-import-not-at-top,wrong-import-position

# (name, batch, size, c_in, c_out, kernel)
SHAPES = (
    ('EditingNet final 64->3 7x7', 32, 256, 64, 3, 7),
    ('WarpingNet flow 256->2 7x7', 32, 64, 256, 2, 7),
    ('EditingNet input 3->64 7x7', 32, 256, 3, 64, 7),
    ('WarpingNet input 3->32 7x7', 32, 256, 3, 32, 7),
    ('VGG19 conv1_1 3->64 3x3', 64, 256, 3, 64, 3),
)
DIMS = ('NHWC', 'HWIO', 'NHWC')


def make_fns(conv_fn, k):
  pad = ((k // 2, k // 2), (k // 2, k // 2))

  def forward(x, w):
    return conv_fn(x, w, pad)

  def grad(argnum):
    return lambda x, w, g: jax.grad(
        lambda x, w: jnp.vdot(forward(x, w).astype(jnp.float32), g), argnums=argnum)(x, w)

  return jax.jit(forward), jax.jit(grad(0)), jax.jit(grad(1))


def cudnn(x, w, pad):
  return jax.lax.conv_general_dilated(x, w, (1, 1), pad, dimension_numbers=DIMS)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
  parser.add_argument('--dtype', default='bfloat16')
  parser.add_argument('--calls', type=int, default=20)
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args()
  dtype = jnp.dtype(args.dtype)
  print(f'{jax.devices()[0].device_kind}, {args.dtype}, ms per call (median of {args.repeats}),'
        ' cuDNN / ours')
  print('| convolution | forward | input gradient | weight gradient | all three | speed-up |')
  print('|---|---:|---:|---:|---:|---:|')
  for name, b, s, cin, cout, k in SHAPES:
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (b, s, s, cin), dtype)
    w = (jax.random.normal(keys[1], (k, k, cin, cout)) * 0.05).astype(dtype)
    g = jax.random.normal(keys[2], (b, s, s, cout), jnp.float32)
    times = []
    for conv_fn in (cudnn, conv.few_channel_conv):
      forward, input_grad, weight_grad = make_fns(conv_fn, k)
      row = []
      for call in (lambda _: forward(x, w), lambda _: input_grad(x, w, g),
                   lambda _: weight_grad(x, w, g)):
        median, _ = timing.timed(call, jax.block_until_ready, warmup=2, calls=args.calls,
                                 repeats=args.repeats)
        row.append(median * 1e3)
      times.append(row + [sum(row)])
    cells = ' | '.join(f'{a:.3f} / {b:.3f}' for a, b in zip(*times))
    print(f'| {name} | {cells} | {times[0][3] / times[1][3]:.2f}x |', flush=True)


if __name__ == '__main__':
  main()

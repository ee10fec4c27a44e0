"""Benchmark of `animojax.ops.grid_sample` against torch's `F.grid_sample` on one GPU.

Runs both in one process on the same GPU, over the sizes of issue 5 (batch 32, bilinear, smooth
flow, zeros padding, align_corners=True; fp32 and bf16), forward and forward+backward, and prints
per size: milliseconds, speed-up over torch, and the memory roofline (fewest bytes each pass must
move, each input read once and each output written once, over the device-to-device copy bandwidth
measured here). Before timing it checks, on the same inputs, that the Triton kernels match the XLA
formulation and torch.

  python benchmarks/warp.py                      # the table for benchmarks/RESULTS.md
  python benchmarks/warp.py --impls triton,xla,reference,triton_atomic --breakdown --sweep

Timing: each function is jitted (torch runs eagerly, NCHW, as in the issue's table), warmed up,
then called back to back `--calls` times between two device synchronisations; the median over
`--repeats` such runs, per call, is reported. Inputs rotate between two sets when they would fit in
L2, so no size is timed from cache. torch's gradient is `torch.autograd.grad` (no accumulation).
That wall-clock time includes each framework's host launch overhead, which dominates calls of a
few tens of microseconds; `--device_time` also reports the GPU's own busy time per call (the sum
of the kernels and copies that CUPTI records for `--calls` calls, via `jax.profiler`, for both
frameworks alike), which is what a memory roofline bounds.
"""

import argparse
import functools
import os
import sys

os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')  # torch shares the GPU

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import torch  # pylint: disable=g-import-not-at-top
import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from benchmarks import timing  # pylint: disable=g-import-not-at-top,wrong-import-position
from animojax.ops import warp  # pylint: disable=g-import-not-at-top,wrong-import-position
from animojax.ops import warp_coords  # pylint: disable=g-import-not-at-top,wrong-import-position
from animojax.ops import warp_triton  # pylint: disable=g-import-not-at-top,wrong-import-position
from animojax.ops import warp_xla  # pylint: disable=g-import-not-at-top,wrong-import-position

SIZES = ((32, 64, 256, 256), (32, 128, 128, 128), (32, 256, 64, 64), (32, 512, 32, 32))
L2_ROTATE_BYTES = 256 * 2**20
# CPU only for smoke tests of this script at tiny --shape (the numbers mean nothing there).
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'


def _timed(fn, inputs, calls, repeats, sync):
  """Median milliseconds per call of `fn(*inputs[i % len(inputs)])`, back to back."""
  call = lambda i: fn(*inputs[i % len(inputs)])
  return timing.timed(call, sync, warmup=3, calls=calls, repeats=repeats)[0] * 1e3


def _device_timed(fn, inputs, calls, sync):
  """GPU busy milliseconds per call of `fn` (kernels + copies on every stream), via CUPTI."""
  for i in range(3):
    sync(fn(*inputs[i % len(inputs)]))

  def run():
    out = None
    for i in range(calls):
      out = fn(*inputs[i % len(inputs)])
    sync(out)

  data = timing.gpu_trace(run)
  busy_ns = sum(event.duration_ns for plane in data.planes if plane.name.startswith('/device:GPU')
                for line in plane.lines if line.name.startswith('Stream')
                for event in line.events)
  return busy_ns / calls / 1e6 if busy_ns else float('nan')  # nan: no GPU (a CPU smoke run)


def _jax_sync(out):
  if out is not None:
    jax.block_until_ready(out)


def _torch_sync(_):
  if DEVICE == 'cuda':
    torch.cuda.synchronize()


def copy_bandwidth():
  """Device-to-device copy bandwidth in bytes/s (bytes read + bytes written), via torch."""
  src = torch.empty(2**28 if DEVICE == 'cuda' else 2**20, dtype=torch.float32,
                    device=DEVICE).normal_()
  dst = torch.empty_like(src)
  ms = _timed(lambda: dst.copy_(src), [()], 20, 5, _torch_sync)
  return 2 * src.numel() * 4 / (ms * 1e-3)


def smooth_grid(key, batch, height, width):
  """Identity (align_corners=True) plus a random low-frequency displacement of a few pixels."""
  ys, xs = jnp.meshgrid(jnp.linspace(-1, 1, height), jnp.linspace(-1, 1, width), indexing='ij')
  k1, k2 = jax.random.split(key)
  freq = jax.random.uniform(k1, (batch, 2, 2), minval=0.5, maxval=2.0)
  phase = jax.random.uniform(k2, (batch, 2), maxval=2 * np.pi)
  amp = 0.04  # ~5 px at 256, in normalised units
  dx = amp * jnp.sin(np.pi * (freq[:, 0, 0, None, None] * xs + freq[:, 0, 1, None, None] * ys)
                     + phase[:, 0, None, None])
  dy = amp * jnp.cos(np.pi * (freq[:, 1, 0, None, None] * xs + freq[:, 1, 1, None, None] * ys)
                     + phase[:, 1, None, None])
  return jnp.stack([xs + dx, ys + dy], axis=-1)


def make_inputs(key, size, dtype, sets):
  batch, channels, height, width = size
  out = []
  for k in jax.random.split(key, sets):
    k1, k2, k3 = jax.random.split(k, 3)
    image = jax.random.normal(k1, (batch, height, width, channels), dtype)
    grid = smooth_grid(k2, batch, height, width).astype(jnp.float32)
    cotangent = jax.random.normal(k3, (batch, height, width, channels), dtype)
    out.append((image, grid, cotangent))
  return out


def to_torch(image, grid, cotangent):
  nchw = lambda a: torch.from_dlpack(a).permute(0, 3, 1, 2).contiguous()
  return nchw(image), torch.from_dlpack(grid).to(nchw(image).dtype).contiguous(), nchw(cotangent)


def jax_fns(impl, align_corners, padding_mode):
  sample = functools.partial(warp.grid_sample, align_corners=align_corners,
                             padding_mode=padding_mode, implementation=impl)
  fwd = jax.jit(lambda image, grid, cotangent: sample(image, grid))

  @jax.jit
  def fwd_bwd(image, grid, cotangent):
    out, vjp = jax.vjp(sample, image, grid)
    return out, *vjp(cotangent)

  return fwd, fwd_bwd


def torch_fns(align_corners, padding_mode):
  sample = functools.partial(F.grid_sample, mode='bilinear', padding_mode=padding_mode,
                             align_corners=align_corners)

  def fwd(image, grid, cotangent):
    with torch.no_grad():
      return sample(image, grid)

  def fwd_bwd(image, grid, cotangent):
    image = image.detach().requires_grad_()
    grid = grid.detach().requires_grad_()
    out = sample(image, grid)
    return out, *torch.autograd.grad(out, (image, grid), cotangent)

  return fwd, fwd_bwd


def roofline_bytes(size, dtype):
  """(forward, forward+backward) fewest bytes: each input read once, each output written once."""
  batch, channels, height, width = size
  feature = batch * channels * height * width * jnp.dtype(dtype).itemsize
  grid = batch * height * width * 2 * 4
  forward = feature + grid + feature  # image, grid -> out
  backward = feature + feature + grid + feature + grid  # cotangent, image, grid -> d_image, d_grid
  return forward, forward + backward


def rel_err(actual, expected):
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  return float(np.abs(actual - expected).max() / max(1.0, np.abs(expected).max()))


def check(size, dtype, align_corners, padding_mode, impls):
  """Max error (relative to max(1, max|ref|)) of each impl against the XLA path and torch."""
  (image, grid, cotangent), = make_inputs(jax.random.key(7), size, dtype, 1)
  ref = [np.asarray(a, np.float32) for a in
         jax_fns('xla', align_corners, padding_mode)[1](image, grid, cotangent)]
  # torch would round the grid to bf16 too (it wants one dtype): compare bf16 against float32 torch
  # on the same bf16 values instead, so the error is the output rounding alone.
  upcast = [a.astype(jnp.float32) for a in (image, grid, cotangent)]
  t_out = torch_fns(align_corners, padding_mode)[1](*to_torch(*upcast))
  torch_ref = [t_out[0].permute(0, 2, 3, 1), t_out[1].permute(0, 2, 3, 1), t_out[2]]
  torch_ref = [t.detach().float().cpu().numpy() for t in torch_ref]
  lines = []
  for impl in impls:
    got = jax_fns(impl, align_corners, padding_mode)[1](image, grid, cotangent)
    got = [np.asarray(a, np.float32) for a in got]
    vs_xla = [rel_err(g, r) for g, r in zip(got, ref)]
    vs_torch = [rel_err(g, r) for g, r in zip(got, torch_ref)]
    errors = ' '.join(f'{e:.1e}' for e in vs_xla)
    lines.append(f'  {impl:14s} vs xla (out, d_image, d_grid) {errors}   vs torch '
                 + ' '.join(f'{e:.1e}' for e in vs_torch))
  return lines


def _staged(size, dtype):
  """Inputs with pixel coordinates precomputed: (image, x, y, cotangent, grid) sets."""
  inputs = make_inputs(jax.random.key(3), size, dtype, 1)
  _, height, width, _ = inputs[0][0].shape
  coords = jax.jit(lambda g: warp_coords.pixel_coords(g, height, width, True, 'zeros'))
  return [(im, *coords(g), ct, g) for im, g, ct in inputs], height, width


def breakdown(size, dtype, calls, repeats):
  """Milliseconds of the Triton path's stages (align_corners=True, zeros)."""
  staged, height, width = _staged(size, dtype)
  stages = {
      'xla forward': lambda im, x, y, ct, grid: warp_xla.forward(im, x, y),
      'forward kernel': lambda im, x, y, ct, grid: warp_triton.forward(
          im, grid, align_corners=True, padding_mode='zeros'),
      'corner order (counting)': lambda im, x, y, ct, grid: warp_triton.corner_order(
          x, y, height, width),
      'corner order (xla sort)': lambda im, x, y, ct, grid: warp_triton.corner_order_sorted(
          x, y, height, width),
      'backward (counting + kernel)': lambda im, x, y, ct, grid: warp_triton.backward(im, ct, x, y),
      'backward (xla sort + kernel)': lambda im, x, y, ct, grid: warp_triton.backward(
          im, ct, x, y, sort='sorted'),
      'backward atomic': lambda im, x, y, ct, grid: warp_triton.backward_atomic(im, ct, x, y),
  }
  return {name: _timed(jax.jit(fn), staged, calls, repeats, _jax_sync)
          for name, fn in stages.items()}


FORWARD_SWEEP = ((16, 64, 4), (32, 64, 4), (8, 64, 2), (16, 64, 2), (32, 32, 4), (64, 64, 4),
                 (16, 128, 8), (8, 128, 4), (16, 128, 4), (32, 128, 8), (4, 256, 4))
BACKWARD_SWEEP = ((16, 64, 4, 1), (32, 64, 4, 1), (16, 64, 2, 1), (8, 64, 2, 1), (32, 32, 4, 1),
                  (16, 32, 2, 1), (32, 64, 8, 1), (64, 64, 8, 1), (16, 64, 4, 3))


def sweep(size, dtype, calls, repeats, device_time=False, kinds=('forward', 'backward')):
  """Kernel milliseconds over (pixels, channels, warps[, stages]) block configurations."""
  staged, _, _ = _staged(size, dtype)
  channels = size[1]
  lines = []
  configs = [('forward', c, dict(pixel_block=c[0], channel_block=min(c[1], channels),
                                 num_warps=c[2])) for c in FORWARD_SWEEP if 'forward' in kinds]
  configs += [('backward', c, dict(pixel_block=c[0], channel_block=min(c[1], channels),
                                   num_warps=c[2], num_stages=c[3]))
              for c in BACKWARD_SWEEP if 'backward' in kinds]
  seen = set()
  for kind, config, kw in configs:
    if (kind, tuple(kw.items())) in seen:
      continue
    seen.add((kind, tuple(kw.items())))
    if kind == 'forward':
      fn = jax.jit(lambda im, x, y, ct, grid, kw=kw: warp_triton.forward(
          im, grid, align_corners=True, padding_mode='zeros', **kw))
    else:
      fn = jax.jit(lambda im, x, y, ct, grid, kw=kw: warp_triton.backward(im, ct, x, y, **kw))
    try:
      ms = (_device_timed(fn, staged, calls, _jax_sync) if device_time
            else _timed(fn, staged, calls, repeats, _jax_sync))
      lines.append(f'    {kind:8s} {config}: {ms:.3f}')
    except Exception as e:  # pylint: disable=broad-except
      lines.append(f'    {kind:8s} {config}: failed {type(e).__name__}: {str(e)[:200]}')
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
  parser.add_argument('--impls', default='triton,xla,reference',
                      help='animojax implementations to time, comma-separated')
  parser.add_argument('--dtypes', default='float32,bfloat16')
  parser.add_argument('--sizes', default='', help='indices into SIZES, e.g. 0,3 (default all)')
  parser.add_argument('--shape', default='', help='one B,C,H,W instead of SIZES')
  parser.add_argument('--padding-mode', default='zeros')
  parser.add_argument('--align-corners', default=True, type=lambda s: s.lower() == 'true')
  parser.add_argument('--calls', type=int, default=20)
  parser.add_argument('--repeats', type=int, default=7)
  parser.add_argument('--device_time', action='store_true',
                      help='also report GPU busy time per call (CUPTI, via jax.profiler)')
  parser.add_argument('--breakdown', action='store_true')
  parser.add_argument('--sweep', action='store_true')
  parser.add_argument('--sweep_kinds', default='forward,backward')
  args = parser.parse_args()
  impls = args.impls.split(',')
  sizes = [SIZES[int(i)] for i in args.sizes.split(',')] if args.sizes else SIZES
  if args.shape:
    sizes = [tuple(int(d) for d in args.shape.split(','))]

  name = torch.cuda.get_device_name() if DEVICE == 'cuda' else 'cpu'
  print(f'device: {name} | jax {jax.__version__} on '
        f'{jax.devices()[0].device_kind} | torch {torch.__version__}')
  bandwidth = copy_bandwidth()
  print(f'copy bandwidth (read + write): {bandwidth / 1e12:.2f} TB/s')
  print(f'grid: smooth flow, padding_mode={args.padding_mode}, '
        f'align_corners={args.align_corners}, bilinear')

  print('\nexactness on the benchmark inputs (max |err| / max(1, max |ref|)):')
  for size in sizes:
    for dtype in args.dtypes.split(','):
      print(f' {size} {dtype}')
      for line in check(size, jnp.dtype(dtype), args.align_corners, args.padding_mode,
                        [i for i in impls if i != 'xla']):
        print(line)

  rows = []
  for dtype_name in args.dtypes.split(','):
    dtype = jnp.dtype(dtype_name)
    for size in sizes:
      fwd_bytes, total_bytes = roofline_bytes(size, dtype)
      sets = 2 if fwd_bytes < L2_ROTATE_BYTES else 1
      inputs = make_inputs(jax.random.key(0), size, dtype, sets)
      torch_inputs = [to_torch(*i) for i in inputs]
      t_fwd, t_fb = torch_fns(args.align_corners, args.padding_mode)
      times = {'torch': (_timed(t_fwd, torch_inputs, args.calls, args.repeats, _torch_sync),
                         _timed(t_fb, torch_inputs, args.calls, args.repeats, _torch_sync))}
      for impl in impls:
        j_fwd, j_fb = jax_fns(impl, args.align_corners, args.padding_mode)
        times[impl] = (_timed(j_fwd, inputs, args.calls, args.repeats, _jax_sync),
                       _timed(j_fb, inputs, args.calls, args.repeats, _jax_sync))
      if args.device_time:
        times['torch device'] = tuple(_device_timed(f, torch_inputs, args.calls, _torch_sync)
                                      for f in (t_fwd, t_fb))
        j_fwd, j_fb = jax_fns(impls[0], args.align_corners, args.padding_mode)
        times[f'{impls[0]} device'] = tuple(_device_timed(f, inputs, args.calls, _jax_sync)
                                            for f in (j_fwd, j_fb))
      del torch_inputs
      roof = (fwd_bytes / bandwidth * 1e3, total_bytes / bandwidth * 1e3)
      rows.append((size, dtype_name, times, roof))
      print(f'{size} {dtype_name}: ' + ', '.join(
          f'{k} {v[0]:.3f}/{v[1]:.3f}' for k, v in times.items())
            + f' ms (fwd/fwd+bwd); roofline {roof[0]:.3f}/{roof[1]:.3f}')
      if args.breakdown:
        for name, ms in breakdown(size, dtype, args.calls, args.repeats).items():
          print(f'    {name:24s} {ms:.3f} ms')
      if args.sweep:
        print('\n'.join(sweep(size, dtype, args.calls, args.repeats, args.device_time,
                               args.sweep_kinds.split(','))))

  main_impl = impls[0]
  print(f'\n| size (B, C, H, W) | dtype | torch fwd | {main_impl} fwd | fwd roofline '
        f'| {main_impl} fwd / roofline | torch fwd+bwd | {main_impl} fwd+bwd '
        f'| fwd+bwd roofline | speed-up fwd+bwd vs torch | fwd+bwd / roofline |')
  print('|---|---|---|---|---|---|---|---|---|---|---|')
  for size, dtype_name, times, roof in rows:
    t, o = times['torch'], times[main_impl]
    print(f'| {", ".join(map(str, size))} | {dtype_name} | {t[0]:.3f} | {o[0]:.3f} | {roof[0]:.3f} '
          f'| {o[0] / roof[0]:.2f}x | {t[1]:.3f} | {o[1]:.3f} | {roof[1]:.3f} '
          f'| {t[1] / o[1]:.2f}x | {o[1] / roof[1]:.2f}x |')
  if args.device_time:
    print(f'\nGPU busy time per call (CUPTI), ms, and {main_impl} / roofline:')
    print(f'| size (B, C, H, W) | dtype | torch fwd | {main_impl} fwd | fwd roofline '
          f'| {main_impl} fwd / roofline | torch fwd+bwd | {main_impl} fwd+bwd '
          '| fwd+bwd roofline | speed-up fwd+bwd vs torch | fwd+bwd / roofline |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for size, dtype_name, times, roof in rows:
      t, o = times['torch device'], times[f'{main_impl} device']
      print(f'| {", ".join(map(str, size))} | {dtype_name} | {t[0]:.3f} | {o[0]:.3f} '
            f'| {roof[0]:.3f} | {o[0] / roof[0]:.2f}x | {t[1]:.3f} | {o[1]:.3f} | {roof[1]:.3f} '
            f'| {t[1] / o[1]:.2f}x | {o[1] / roof[1]:.2f}x |')
  others = [i for i in impls if i != main_impl and ' device' not in i]
  if others:
    print('\nother implementations, fwd / fwd+bwd ms:')
    for size, dtype_name, times, _ in rows:
      print(f'  {size} {dtype_name}: ' + ', '.join(
          f'{i} {times[i][0]:.3f} / {times[i][1]:.3f}' for i in others))


if __name__ == '__main__':
  main()

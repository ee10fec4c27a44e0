"""AniMo's jitted train step on GPU(s) — img/s, step time, peak memory, MFU — with PIRender beside it.

  python benchmarks/train_step.py                               # ours: float32 and bfloat16
  python benchmarks/train_step.py --peer=/path/to/PIRender      # + PIRender fp32, bf16, compile
  python benchmarks/train_step.py --policies=bfloat16 --devices=1,2,4   # data-parallel scaling
  python benchmarks/train_step.py --policies=bfloat16 --devices=4 --sharding=fsdp
  python benchmarks/train_step.py --family=toontalker --batch=8 \
      --peer=/path/to/ToonTalker --peer_lia=/path/to/LIA@3f1d865^   # ToonTalker stage 2

What runs (issue 7): AniMo at paper sizes at 256² with PIRender's VGG19 perceptual + style loss
(4 scales, weights 2.5 / 4 / 250), Adam and EMA, the full ('gen') stage — the exact jitted step the
trainer compiles (`animojax.trainers.animo.program`), state donated. The loss network has random
weights (`vgg19_random`; the pretrained file has the same cost) and the data are random.

Counting: one image = one 256² reenactment through generator, loss and backward. Each generator
call sees `--batch` images (PIRender's swap: batch / 2 pairs, source→driving and back), so our
step, which trains both domains, processes 2 × batch images; PIRender's step processes `--batch`.
`--batch` is per GPU: with n devices the global batch is n times larger (weak scaling).

PIRender (`--peer`): their `FaceGenerator` (config/face.yaml sizes) and `PerceptualLoss` imported
from the user's checkout (torchvision's VGG19 built without downloading weights), their trainer's
loss, Adam and EMA (`util.trainer.accumulate`), timed in fp32, under bf16 autocast, and with the
generator + loss under `torch.compile` and bf16 autocast. Nothing of theirs is stored here.

ToonTalker (`--family=toontalker`, issue 21): the paper-size model (two 256² generators, two
StyleGAN2 discriminators) and the trainer's jitted stage step (`trainers/toontalker/program.py`;
`--stage=stage2` by default: reconstruction in both domains + the analogy constraint in both
directions, λper = 10 VGG19 pyramid, λm = 20, non-saturating GAN, G and D Adam updates).
`--batch` is pairs per domain per GPU; one image = one generated 256² image (stage 2 renders 4
per pair: two reconstructions, two analogy images). The peer is the released PyTorch networks
(`Generator_trans_w` from the user's OpenTalker/ToonTalker checkout, LIA's `Discriminator` from a
wyhsirius/LIA checkout of the training code, commit 3f1d865^; torchvision VGG19, random
weights) running the same losses (`peer_toontalker_step` below), fp32 / bf16 autocast /
torch.compile.

Every configuration runs in its own process so peak memory is its own. Timing: `--warmup` steps,
then `--steps` steps between two device synchronisations, median of `--repeats` runs. MFU = the
step's convolution and matmul FLOPs (counted on the traced jaxpr, forward and backward; for
PIRender, torch's FLOP counter) per second over the GPU's dense bf16 tensor-core peak.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path.insert(0, ROOT)
from benchmarks import timing  # pylint: disable=g-import-not-at-top,wrong-import-position

# Dense bf16 tensor-core peak (TFLOP/s) by device-name fragment, for MFU.
PEAK_BF16_TFLOPS = {'H100': 989.4, 'H200': 989.4, 'A100': 312.0, 'L4': 121.0}
PIRENDER_FACE = dict(
    mapping_net=dict(coeff_nc=73, descriptor_nc=256, layer=3),
    warpping_net=dict(encoder_layer=5, decoder_layer=3, base_nc=32),
    editing_net=dict(layer=3, num_res_blocks=2, base_nc=64),
    common=dict(image_nc=3, descriptor_nc=256, max_nc=256, use_spect=False))
PIRENDER_VGG_LAYERS = ['relu_1_1', 'relu_2_1', 'relu_3_1', 'relu_4_1', 'relu_5_1']
PEER_MODES = ('fp32', 'bf16', 'bf16_compile')  # + 'bf16_compile_autotune' (max-autotune)


def peak_tflops(device_name):
  for fragment, tflops in PEAK_BF16_TFLOPS.items():
    if fragment in device_name:
      return tflops
  return None


# ------------------------------------------------------------------------------------------------
# Ours.

def _compiled_step(program, host_batch, args):
  """The program's step for `args.stage` compiled on placed inputs: (state, batch, loss_params,
  rng, step_fn, compiled, compile seconds, matmul/conv FLOPs per device)."""
  import jax  # pylint: disable=g-import-not-at-top
  from animojax.utils import flops as flops_lib  # pylint: disable=g-import-not-at-top
  state = jax.jit(program.init, out_shardings=program.state_shardings)(jax.random.key(0))
  batch = jax.device_put(host_batch, program.data_sharding)
  loss_params = jax.device_put(program.image_loss.params, program.replicated)
  rng = jax.device_put(jax.random.key(2), program.replicated)
  step_fn = program.train_steps[args.stage]
  start = time.perf_counter()
  compiled = step_fn.lower(state, batch, loss_params, rng).compile()
  compile_s = time.perf_counter() - start
  # Convolution and matmul FLOPs per device, counted on the traced program (XLA's GPU cost model
  # does not see inside cuDNN calls).
  flops = flops_lib.matmul_flops(jax.make_jaxpr(step_fn)(state, batch, loss_params, rng))
  return state, batch, loss_params, rng, step_fn, compiled, compile_s, flops / args.devices


def run_ours(args):
  if args.family == 'toontalker':
    return run_ours_toontalker(args)
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from animojax.configs import animo as animo_config  # pylint: disable=g-import-not-at-top
  from animojax.trainers.animo import program as animo_program  # pylint: disable=g-import-not-at-top

  devices = jax.devices()[:args.devices]
  if len(devices) < args.devices:
    raise SystemExit(f'--devices={args.devices} but only {len(jax.devices())} are visible.')
  c = animo_config.get_config('synthetic')
  c.loss.network = 'vgg19_random'
  c.data.image_size = args.size
  c.loss.num_scales = args.num_scales
  c.batch_size = args.batch // 2 * args.devices  # Pairs per domain, global.
  c.compute_dtype = args.policy
  c.remat = args.remat
  c.mesh = [('data', args.devices)]
  c.sharding_rules = ([('.*', 'fsdp')] if args.sharding == 'fsdp' else [('.*', 'replicate')])
  program = animo_program.build(c)
  state, batch, loss_params, rng, step_fn, compiled, compile_s, flops = _compiled_step(
      program, animo_program.random_batch(c, jax.random.key(1)), args)
  if args.dump_hlo:  # To map the profile's HLO op names to shapes and model source lines.
    with open(args.dump_hlo, 'w') as f:
      f.write(compiled.as_text())

  holder = {'state': state}

  def one_step():
    holder['state'], metrics = step_fn(holder['state'], batch, loss_params, rng)
    return metrics

  def sync(out):
    jax.block_until_ready(out if out is not None else holder['state'])

  losses = []
  for _ in range(args.loss_steps):  # Finite, and decreasing on a fixed batch.
    losses.append(float(one_step().compute()['loss']))
  median_s, min_s = timing.timed(lambda _: one_step(), sync, warmup=args.warmup,
                                 calls=args.steps, repeats=args.repeats)
  recompiles = step_fn._cache_size() - 1  # pylint: disable=protected-access
  if args.profile:
    print_profile(one_step, sync, args.profile)
  peak = max((d.memory_stats() or {}).get('peak_bytes_in_use', 0) for d in devices)
  images = 2 * args.batch * args.devices
  name = devices[0].device_kind
  tflops = peak_tflops(name)
  return dict(
      impl='animojax', mode=args.policy, remat=args.remat, sharding=args.sharding,
      devices=args.devices, device=name, batch_per_gpu=args.batch, images_per_step=images,
      step_ms=median_s * 1e3, min_step_ms=min_s * 1e3, img_s=images / median_s,
      img_s_per_gpu=images / median_s / args.devices, peak_gib=peak / 2**30,
      gflop_per_image=flops * args.devices / images / 1e9,
      mfu=(flops / median_s / 1e12 / tflops) if (tflops and flops) else None,
      compile_s=compile_s, recompiles=recompiles, losses=losses,
      finite=bool(np.all(np.isfinite(losses))))


def run_ours_toontalker(args):
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from animojax.configs import toontalker as tt_config  # pylint: disable=g-import-not-at-top
  from animojax.trainers.toontalker import program as tt_program  # pylint: disable=g-import-not-at-top

  c = tt_config.get_config('stage=0')
  c.loss.network = 'vgg19_random'
  c.loss.num_scales = args.num_scales
  c.data.image_size = c.model.size = args.size
  if args.width != 1.0:
    c.model.width, c.model.ffn_dim = args.width, max(8, int(512 * args.width))
  c.batch_size = args.batch * args.devices
  c.compute_dtype = args.policy
  c.mesh = [('data', args.devices)]
  c.stage1_steps = 1 if args.stage == 'stage1' else 0
  c.total_steps = 2
  program = tt_program.build(c)
  state, batch, loss_params, rng, step_fn, _, compile_s, flops = _compiled_step(
      program, tt_program.random_batch(c, jax.random.key(1)), args)
  holder = {'state': state}

  def one_step():
    holder['state'], metrics = step_fn(holder['state'], batch, loss_params, rng)
    return metrics

  losses = [float(one_step().compute()['loss']) for _ in range(args.loss_steps)]
  median_s, min_s = timing.timed(lambda _: one_step(), lambda _: jax.block_until_ready(
      holder['state']), warmup=args.warmup, calls=args.steps, repeats=args.repeats)
  devices = jax.devices()[:args.devices]
  peak = max((d.memory_stats() or {}).get('peak_bytes_in_use', 0) for d in devices)
  images = args.batch * args.devices * (4 if args.stage == 'stage2' else 1)
  name = devices[0].device_kind
  tflops = peak_tflops(name)
  return dict(
      impl='animojax ToonTalker', mode=args.policy, devices=args.devices, device=name,
      batch_per_gpu=args.batch, images_per_step=images, step_ms=median_s * 1e3,
      min_step_ms=min_s * 1e3, img_s=images / median_s,
      img_s_per_gpu=images / median_s / args.devices, peak_gib=peak / 2**30,
      gflop_per_image=flops * args.devices / images / 1e9,
      mfu=(flops / median_s / 1e12 / tflops) if (tflops and flops) else None,
      compile_s=compile_s, losses=losses, finite=bool(np.all(np.isfinite(losses))))


def peer_toontalker_step(torch, F, gens, discs, vgg, g_opt, d_opt, batch, *, stage, autocast,
                         num_scales=4):
  """One ToonTalker train step on the released PyTorch networks, with our trainer's losses
  (`animojax/trainers/toontalker/step.py`): returns the generator loss."""
  real_only = stage == 'stage1'
  domains = ('real',) if real_only else ('real', 'cartoon')
  shared = gens['real'].dec  # The real generator's query transformers serve both domains.

  def query(domain, img, source):
    gen = gens[domain]
    code, _ = gen.enc2(img)
    q0 = gen.dec.direction.weight.unsqueeze(1).repeat(1, img.shape[0], 1)
    layer = shared.transformerlayer_0 if source else shared.transformerlayer_1
    return layer(q0, code[None], code[None])

  def render(domain, source, query_tokens):
    gen = gens[domain]
    was, feats = gen.enc(source)
    dec, bs = gen.dec, source.shape[0]
    tokens = lambda m: m.flatten(2).permute(2, 0, 1)
    q = dec.transformerlayer(query_tokens, tokens(was[0]), tokens(was[0]))
    q = dec.transformerlayer_t(q, tokens(was[1]), tokens(was[1]))
    lat = tokens(dec.latlayer1(was[2]))
    q = dec.transformerlayer_f(q, lat, lat)
    latent = dec.mlp(q.permute(1, 0, 2).flatten(1)).view(bs, -1, 512)
    return dec.synthesis(latent, feats)

  def perceptual(x, y):
    total = 0.0
    for scale in range(num_scales):
      if scale:
        x = F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False)
        y = F.interpolate(y, scale_factor=0.5, mode='bilinear', align_corners=False)
      fx, fy = x, y
      for i, layer in enumerate(vgg):
        fx, fy = layer(fx), layer(fy)
        if i in (1, 6, 11, 20, 29):
          total = total + (fx - fy.detach()).abs().mean()
        if i == 29:
          break
    return total

  with torch.autocast('cuda', dtype=torch.bfloat16, enabled=autocast):
    loss, fakes = 0.0, {}
    for d in domains:
      src, drv = batch[d]
      fake = render(d, src, query(d, src, True) + query(d, drv, False))
      loss = loss + (fake - drv).abs().mean() + 10 * perceptual(fake, drv)
      loss = loss + F.softplus(-discs[d](fake)).mean()
      fakes[d] = [fake]
    if not real_only:
      for d, o in (('cartoon', 'real'), ('real', 'cartoon')):
        src = batch[d][0]
        x_a, x_b = batch[o]
        w_rs, w_ra, w_rb = query(d, src, False), query(o, x_a, False), query(o, x_b, False)
        x_g = render(d, src, query(d, src, True) + w_rs + w_rb - w_ra)
        w_rg = query(d, x_g, False)
        loss = loss + 20 * ((w_rg - w_rs) - (w_rb - w_ra)).abs().mean()
        loss = loss + F.softplus(-discs[d](x_g)).mean()
        fakes[d].append(x_g)
  g_opt.zero_grad(set_to_none=True)
  loss.backward()
  g_opt.step()
  with torch.autocast('cuda', dtype=torch.bfloat16, enabled=autocast):
    d_loss = 0.0
    for d in domains:
      fake = torch.cat(fakes[d]).detach()
      d_loss = d_loss + F.softplus(-discs[d](batch[d][1])).mean() + F.softplus(
          discs[d](fake)).mean()
  d_opt.zero_grad(set_to_none=True)
  d_loss.backward()
  d_opt.step()
  return loss


def run_peer_toontalker(args):
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  import torchvision  # pylint: disable=g-import-not-at-top

  sys.path.insert(0, os.path.abspath(args.peer))
  # The released networks/encoder.py starts with a stray `from turtle import forward` (unused),
  # and turtle needs tkinter, which server images lack: give it an empty module instead.
  if 'turtle' not in sys.modules:
    import types  # pylint: disable=g-import-not-at-top
    sys.modules['turtle'] = types.SimpleNamespace(forward=None)
  from networks.generator import Generator_trans_w  # pylint: disable=g-import-not-at-top,import-error
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      'lia_discriminator', os.path.join(os.path.abspath(args.peer_lia), 'networks',
                                        'discriminator.py'))
  lia_disc = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(lia_disc)
  torch.backends.cudnn.benchmark = True
  dev = 'cuda'
  gens = {d: Generator_trans_w(args.size, 512, 20, 1).to(dev) for d in ('real', 'cartoon')}
  discs = {d: lia_disc.Discriminator(args.size, 1).to(dev) for d in ('real', 'cartoon')}
  vgg = torchvision.models.vgg19(weights=None).features.to(dev).eval().requires_grad_(False)
  g_params = [p for g in gens.values() for p in g.parameters()]
  d_params = [p for d in discs.values() for p in d.parameters()]
  g_opt = torch.optim.Adam(g_params, lr=1e-4, betas=(0.0, 0.99**0.8))
  d_opt = torch.optim.Adam(d_params, lr=1e-4, betas=(0.0, 0.99**(16 / 17)))
  gen = torch.Generator(device=dev).manual_seed(0)
  rand = lambda: torch.rand(args.batch, 3, args.size, args.size, device=dev, generator=gen) * 2 - 1
  batch = {d: (rand(), rand()) for d in ('real', 'cartoon')}

  def one_step():
    return peer_toontalker_step(torch, F, gens, discs, vgg, g_opt, d_opt, batch,
                                stage=args.stage, autocast=args.peer_mode != 'fp32',
                                num_scales=args.num_scales)

  if args.peer_mode == 'bf16_compile':
    for g in gens.values():
      g.enc, g.enc2 = torch.compile(g.enc), torch.compile(g.enc2)
      g.dec.synthesis = torch.compile(g.dec.synthesis)
    for d in discs.values():
      d.forward = torch.compile(d.forward)
  start = time.perf_counter()
  losses = [float(one_step()) for _ in range(args.loss_steps)]
  compile_s = time.perf_counter() - start
  torch.cuda.reset_peak_memory_stats()
  median_s, min_s = timing.timed(lambda _: one_step(), lambda _: torch.cuda.synchronize(),
                                 warmup=args.warmup, calls=args.steps, repeats=args.repeats)
  images = args.batch * (4 if args.stage == 'stage2' else 1)
  return dict(
      impl='ToonTalker (PyTorch)', mode=args.peer_mode, devices=1,
      device=torch.cuda.get_device_name(), batch_per_gpu=args.batch, images_per_step=images,
      step_ms=median_s * 1e3, min_step_ms=min_s * 1e3, img_s=images / median_s,
      img_s_per_gpu=images / median_s, peak_gib=torch.cuda.max_memory_allocated() / 2**30,
      gflop_per_image=float('nan'), mfu=None, compile_s=compile_s, losses=losses)


def _op_kind(name):
  lowered = name.lower()
  for kind, marks in (('conv fprop', ('fprop', 'convolve')), ('conv dgrad', ('dgrad',)),
                      ('conv wgrad', ('wgrad',)), ('fft', ('fft',)), ('gemm', ('gemm',)),
                      ('warp', ('grid_sample',)), ('scatter', ('scatter',)),
                      ('reduce fusion', ('reduce',)), ('fusion', ('fusion',)),
                      ('copy', ('memcpy', 'memset', 'copy', 'transpose'))):
    if any(m in lowered for m in marks):
      return kind
  return 'other'


def print_profile(step_fn, sync, top):
  """Traces 3 steps and prints the `top` device ops by total time (jax.profiler's XSpace)."""
  import collections  # pylint: disable=g-import-not-at-top
  sync(step_fn())

  def three_steps():
    for _ in range(3):
      out = step_fn()
    sync(out)

  data = timing.gpu_trace(three_steps)
  for plane in data.planes:
    if not plane.name.startswith('/device:GPU'):
      continue
    for line in plane.lines:
      totals = collections.Counter()
      for event in line.events:
        totals[event.name] += event.duration_ns
      total = sum(totals.values())
      if not total:
        continue
      print(f'{plane.name} / {line.name}: {total / 3e6:.1f} ms per step, '
            f'{sum(1 for _ in line.events) / 3:.0f} ops per step')
      if line.name not in ('XLA Ops', 'XLA Modules') and 'Stream' not in line.name:
        continue
      kinds = collections.Counter()
      for name, ns in totals.items():
        kinds[_op_kind(name)] += ns
      print('  by kind: ' + ', '.join(f'{k} {ns / 3e6:.1f} ms' for k, ns in kinds.most_common()))
      for name, ns in totals.most_common(top):
        print(f'  {ns / 3e6:8.2f} ms  {100 * ns / total:5.1f}%  {name[:120]}')
      # The same time by the HLO instruction that launched each kernel (see --dump_hlo).
      by_op = collections.Counter()
      for event in line.events:
        by_op[str(dict(event.stats).get('hlo_op', '?'))] += event.duration_ns
      if set(by_op) != {'?'}:
        print('  by HLO op:')
        for name, ns in by_op.most_common(top):
          print(f'  {ns / 3e6:8.2f} ms  {100 * ns / total:5.1f}%  {name[:120]}')


# ------------------------------------------------------------------------------------------------
# PIRender (the user's checkout), same GPU.

def run_peer(args):
  import torch  # pylint: disable=g-import-not-at-top
  import torchvision  # pylint: disable=g-import-not-at-top
  from torch.utils import flop_counter  # pylint: disable=g-import-not-at-top

  vgg19 = torchvision.models.vgg19

  def vgg19_without_download(pretrained=False, **kwargs):
    del pretrained  # No network here; the random network costs the same.
    return vgg19(weights=None, **kwargs)

  torchvision.models.vgg19 = vgg19_without_download
  sys.path.insert(0, os.path.abspath(args.peer))
  from generators.face_model import FaceGenerator  # pylint: disable=g-import-not-at-top,import-error
  from loss.perceptual import PerceptualLoss  # pylint: disable=g-import-not-at-top,import-error

  torch.backends.cudnn.benchmark = True
  dev = 'cuda'
  net = FaceGenerator(**PIRENDER_FACE).to(dev)
  ema = FaceGenerator(**PIRENDER_FACE).to(dev).eval()
  ema.load_state_dict(net.state_dict())
  loss_warp = PerceptualLoss('vgg19', PIRENDER_VGG_LAYERS, num_scales=args.num_scales).to(dev)
  loss_final = PerceptualLoss('vgg19', PIRENDER_VGG_LAYERS, num_scales=args.num_scales,
                              use_style_loss=True, weight_style_to_perceptual=250).to(dev)
  # Fused Adam and a one-kernel EMA (PIRender's util/trainer.py `accumulate`, par1 = decay·par1 +
  # (1-decay)·par2, as one multi-tensor lerp): the fastest forms of their update a user would write.
  opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.5, 0.999), fused=True)
  ema_params, net_params = list(ema.parameters()), list(net.parameters())
  b, s = args.batch, args.size
  gen = torch.Generator(device=dev).manual_seed(0)
  image = torch.rand(b, 3, s, s, device=dev, generator=gen) * 2 - 1
  semantic = torch.randn(b, 73, 27, device=dev, generator=gen) * 0.1
  gt = torch.rand(b, 3, s, s, device=dev, generator=gen) * 2 - 1

  def loss_fn(image, semantic, gt):
    with torch.autocast('cuda', dtype=torch.bfloat16, enabled=args.peer_mode != 'fp32'):
      out = net(image, semantic, 'gen')
      warp = loss_warp(out['warp_image'], gt)
      final = loss_final(out['fake_image'], gt)
      return 2.5 * warp + 4.0 * final

  @torch.no_grad()
  def ema_update():
    torch._foreach_lerp_(ema_params, net_params, 1 - 0.5 ** (32 / 10000))  # pylint: disable=protected-access

  # FLOPs are counted on the eager function before anything is compiled, so that the timed steps
  # run nothing but the compiled graph (no dispatch mode ever wraps it).
  counter = flop_counter.FlopCounterMode(display=False)
  with counter:
    loss_fn(image, semantic, gt).backward()
  flops = counter.get_total_flops()
  opt.zero_grad(set_to_none=True)

  train_loss = loss_fn
  if args.peer_mode.startswith('bf16_compile'):
    compile_mode = 'max-autotune-no-cudagraphs' if args.peer_mode.endswith('autotune') else None
    train_loss = torch.compile(loss_fn, mode=compile_mode)  # Forward and backward (AOTAutograd).
    ema_update = torch.compile(ema_update)

  def one_step():
    loss = train_loss(image, semantic, gt)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    ema_update()
    return loss

  start = time.perf_counter()
  losses = [float(one_step()) for _ in range(args.loss_steps)]
  compile_s = time.perf_counter() - start
  torch.cuda.reset_peak_memory_stats()
  median_s, min_s = timing.timed(lambda _: one_step(), lambda _: torch.cuda.synchronize(),
                                 warmup=args.warmup, calls=args.steps, repeats=args.repeats)
  if args.peer_mode.startswith('bf16_compile'):
    # A graph break or recompile would leave parts of the step eager: say so in the result.
    from torch._dynamo.utils import counters  # pylint: disable=g-import-not-at-top
    graph_breaks = sum(counters['graph_break'].values())
  else:
    graph_breaks = None
  name = torch.cuda.get_device_name()
  tflops = peak_tflops(name)
  return dict(
      impl='PIRender', mode=args.peer_mode, devices=1, device=name, batch_per_gpu=b,
      images_per_step=b, step_ms=median_s * 1e3, min_step_ms=min_s * 1e3, img_s=b / median_s,
      img_s_per_gpu=b / median_s, peak_gib=torch.cuda.max_memory_allocated() / 2**30,
      gflop_per_image=flops / b / 1e9,
      mfu=(flops / median_s / 1e12 / tflops) if tflops else None, compile_s=compile_s,
      losses=losses, graph_breaks=graph_breaks)


# ------------------------------------------------------------------------------------------------
# Driver: one child process per configuration, then the table.

def child_command(args, **overrides):
  cmd = [sys.executable, os.path.abspath(__file__), '--child']
  values = {**vars(args), **overrides}
  for key in ('batch', 'size', 'num_scales', 'steps', 'warmup', 'repeats', 'loss_steps', 'stage',
              'remat', 'sharding', 'peer', 'profile', 'dump_hlo', 'family', 'width', 'peer_lia'):
    cmd.append(f'--{key}={values[key]}')
  for key in ('policy', 'devices', 'peer_mode'):
    if key in overrides:
      cmd.append(f'--{key}={overrides[key]}')
  return cmd


def table(results):
  rows = ['| impl | mode | GPUs | batch/GPU | img/step | step ms | img/s | img/s/GPU | peak GiB '
          '| GFLOP/img | MFU | compile s |', '|' + '---|' * 12]
  for r in results:
    if 'error' in r:
      rows.append(f'| {r["cmd"]} | failed: {r["error"]} |' + ' |' * 10)
      continue
    mode = r['mode'] + (f', remat={r["remat"]}' if r.get('remat', 'none') != 'none' else '') + (
        f', {r["sharding"]}' if r.get('sharding', 'replicate') != 'replicate' else '')
    mfu = f'{100 * r["mfu"]:.1f}%' if r.get('mfu') else 'n/a'
    rows.append(
        f'| {r["impl"]} | {mode} | {r["devices"]} | {r["batch_per_gpu"]} | '
        f'{r["images_per_step"]} | {r["step_ms"]:.1f} | {r["img_s"]:.0f} | '
        f'{r["img_s_per_gpu"]:.0f} | {r["peak_gib"]:.1f} | {r["gflop_per_image"]:.0f} | {mfu} | '
        f'{r["compile_s"]:.0f} |')
  return '\n'.join(rows)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
  parser.add_argument('--policies', default='float32,bfloat16')
  parser.add_argument('--devices', default='1', help='comma list: a run per device count')
  parser.add_argument('--peer', default='', help='path to a RenYurui/PIRender checkout')
  parser.add_argument('--peer_modes', default=','.join(PEER_MODES))
  parser.add_argument('--batch', type=int, default=32, help='images per generator call per GPU')
  parser.add_argument('--size', type=int, default=256)
  parser.add_argument('--num_scales', type=int, default=4)
  parser.add_argument('--family', default='animo', choices=('animo', 'toontalker'))
  parser.add_argument('--stage', default='',
                      help="animo: 'warp' | 'gen' (default); toontalker: 'stage1' | 'stage2' "
                      '(default)')
  parser.add_argument('--width', type=float, default=1.0,
                      help='toontalker: channel width factor (1.0 = paper; CPU checks only)')
  parser.add_argument('--peer_lia', default='',
                      help='toontalker peer: a wyhsirius/LIA checkout at 3f1d865^ (its '
                      'networks/discriminator.py)')
  parser.add_argument('--remat', default='none')
  parser.add_argument('--sharding', default='replicate', choices=('replicate', 'fsdp'))
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--loss_steps', type=int, default=3)
  parser.add_argument('--json', default='', help='also write the results here')
  parser.add_argument('--profile', type=int, default=0, help='print the N costliest device ops')
  parser.add_argument('--dump_hlo', default='', help="write our step's optimised HLO here")
  # Internal: one configuration in this process.
  parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--policy', default='float32', help=argparse.SUPPRESS)
  parser.add_argument('--peer_mode', default='', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if not args.stage:
    args.stage = 'stage2' if args.family == 'toontalker' else 'gen'
  if args.child:
    if args.peer_mode:
      result = run_peer_toontalker(args) if args.family == 'toontalker' else run_peer(args)
    else:
      args.devices = int(args.devices)
      result = run_ours(args)
    timing.report(result)
    return

  results = []
  for n in [int(d) for d in args.devices.split(',')]:
    for policy in filter(None, args.policies.split(',')):
      results.append(timing.run_child(child_command(args, policy=policy, devices=n)))
      print(json.dumps(results[-1]), flush=True)
  if args.peer:
    for mode in args.peer_modes.split(','):
      results.append(timing.run_child(child_command(args, peer_mode=mode)))
      print(json.dumps(results[-1]), flush=True)
  print(table(results))
  ours = [r for r in results if r.get('impl', '').startswith('animojax') and r['devices'] == 1]
  peers = [r for r in results if r.get('impl') in ('PIRender', 'ToonTalker (PyTorch)')]
  for r in ours:
    for p in peers:
      print(f'{r["impl"]} {r["mode"]} / {p["impl"]} {p["mode"]}: '
            f'{r["img_s"] / p["img_s"]:.2f}x img/s')
  base = {r['mode']: r['img_s_per_gpu'] for r in results
          if r.get('impl') == 'animojax' and r['devices'] == 1}
  for r in results:
    if r.get('impl') == 'animojax' and r['devices'] > 1 and r['mode'] in base:
      print(f'{r["mode"]} on {r["devices"]} GPUs: per-GPU scaling efficiency '
            f'{100 * r["img_s_per_gpu"] / base[r["mode"]]:.1f}%')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=1)


if __name__ == '__main__':
  main()

"""CycleGAN and U-GAT-IT train steps — img/s, step time, peak memory — with the upstream PyTorch
code beside them.

  python benchmarks/translate_step.py --method=cyclegan              # ours: float32 and bfloat16
  python benchmarks/translate_step.py --method=cyclegan \
      --peer=/path/to/pytorch-CycleGAN-and-pix2pix                   # + theirs: fp32, bf16, compile
  python benchmarks/translate_step.py --method=ugatit --peer=/path/to/UGATIT-pytorch

What runs: the exact jitted step the trainer compiles (`animojax.trainers.translate.program`) at
the paper sizes (`--config=translate:METHOD,synthetic` at `--size`, default 256: CycleGAN's
ResNet-9 generators and 70×70 PatchGANs with the image pool; U-GAT-IT light with global and local
discriminators), both directions, state donated, random data. One image = one 256² image of one
domain through the whole step (both generators' cycle, identity, both discriminators), so a step
of per-domain batch B processes 2·B images, for ours and theirs alike.

The peer (`--peer`, a checkout of junyanz/pytorch-CycleGAN-and-pix2pix or znxlwm/UGATIT-pytorch):
their networks (`models/networks.py` ResnetGenerator / NLayerDiscriminator / GANLoss and
`util/image_pool.py` ImagePool; or `networks.py` ResnetGenerator / Discriminator / RhoClipper),
imported from the checkout and driven as their `optimize_parameters` / `train` loop drives them
(G then D for CycleGAN, D then G and the ρ clip for U-GAT-IT), timed in fp32, under bf16
autocast, and with every network under `torch.compile` and bf16 autocast. Nothing of theirs is
stored here.

Every configuration runs in its own process so peak memory is its own. Timing: `--warmup` steps,
then `--steps` steps between two device synchronisations, median of `--repeats` runs.
`--size=32 --tiny` runs everything at toy widths (the CPU test; smaller images leave the
discriminators no output pixels).
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path.insert(0, ROOT)
from benchmarks import timing  # pylint: disable=g-import-not-at-top,wrong-import-position

PEER_MODES = ('fp32', 'bf16', 'bf16_compile')
TINY = {'cyclegan': dict(ngf=4, ndf=4, num_blocks=1), 'ugatit': dict(ch=4, num_blocks=1,
                                                                      disc_global_layers=5,
                                                                      disc_local_layers=3)}


def _config(args):
  from animojax.configs import translate as translate_config  # pylint: disable=g-import-not-at-top
  c = translate_config.get_config(f'{args.method},synthetic')
  c.data.image_size = args.size
  c.augment.load_size = args.size + args.size // 8
  c.batch_size = args.batch
  c.compute_dtype = args.policy
  c.mesh = [('data', 1)]
  if args.tiny:
    c.model.update(TINY[args.method])
  return c


def run_ours(args):
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from animojax.trainers.translate import program as translate_program

  c = _config(args)
  program = translate_program.build(c)
  state = jax.jit(program.init, out_shardings=program.state_shardings)(jax.random.key(0))
  batch = jax.device_put(translate_program.random_batch(c, jax.random.key(1)),
                         program.data_sharding)
  rng = jax.device_put(jax.random.key(2), program.replicated)
  step_fn = program.train_steps['train']
  start = time.perf_counter()
  step_fn.lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - start
  holder = {'state': state}

  def one_step():
    holder['state'], metrics = step_fn(holder['state'], batch, rng)
    return metrics

  def sync(out):
    jax.block_until_ready(out if out is not None else holder['state'])

  losses = [float(one_step().compute()['loss']) for _ in range(args.loss_steps)]
  median_s, min_s = timing.timed(lambda _: one_step(), sync, warmup=args.warmup,
                                 calls=args.steps, repeats=args.repeats)
  device = jax.devices()[0]
  peak = (device.memory_stats() or {}).get('peak_bytes_in_use', 0)
  return dict(impl='animojax', method=args.method, mode=args.policy, device=device.device_kind,
              batch=args.batch, images_per_step=2 * args.batch, step_ms=median_s * 1e3,
              min_step_ms=min_s * 1e3, img_s=2 * args.batch / median_s, peak_gib=peak / 2**30,
              compile_s=compile_s, losses=losses,
              finite=bool(np.all(np.isfinite(losses))),
              recompiles=step_fn._cache_size() - 1)  # pylint: disable=protected-access


# ------------------------------------------------------------------------------------------------
# Theirs (imported from the user's checkout).

def _peer_cyclegan(args, dev, autocast):
  import torch  # pylint: disable=g-import-not-at-top
  from models import networks  # pylint: disable=g-import-not-at-top,import-error
  from util.image_pool import ImagePool  # pylint: disable=g-import-not-at-top,import-error

  widths = TINY['cyclegan'] if args.tiny else dict(ngf=64, ndf=64, num_blocks=9)
  norm = networks.get_norm_layer('instance')
  gens = [networks.ResnetGenerator(3, 3, widths['ngf'], norm_layer=norm, use_dropout=False,
                                   n_blocks=widths['num_blocks']).to(dev) for _ in range(2)]
  discs = [networks.NLayerDiscriminator(3, widths['ndf'], n_layers=3, norm_layer=norm).to(dev)
           for _ in range(2)]
  if args.peer_mode == 'bf16_compile':
    gens, discs = [torch.compile(g) for g in gens], [torch.compile(d) for d in discs]
  g_a, g_b = gens
  d_a, d_b = discs
  gan = networks.GANLoss('lsgan').to(dev)
  l1 = torch.nn.L1Loss()
  opt_g = torch.optim.Adam([p for g in gens for p in g.parameters()], lr=2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam([p for d in discs for p in d.parameters()], lr=2e-4,
                           betas=(0.5, 0.999))
  pool_a, pool_b = ImagePool(50), ImagePool(50)
  gen = torch.Generator(device=dev).manual_seed(0)
  real_a = torch.rand(args.batch, 3, args.size, args.size, device=dev, generator=gen) * 2 - 1
  real_b = torch.rand(args.batch, 3, args.size, args.size, device=dev, generator=gen) * 2 - 1

  def one_step():  # models/cycle_gan_model.py::optimize_parameters.
    with autocast():
      fake_b, fake_a = g_a(real_a), g_b(real_b)
      rec_a, rec_b = g_b(fake_b), g_a(fake_a)
      for d in discs:
        d.requires_grad_(False)
      loss_g = (gan(d_a(fake_b), True) + gan(d_b(fake_a), True) + 10 * l1(rec_a, real_a)
                + 10 * l1(rec_b, real_b) + 5 * l1(g_a(real_b), real_b)
                + 5 * l1(g_b(real_a), real_a))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    for d in discs:
      d.requires_grad_(True)
    with autocast():
      pooled_b, pooled_a = pool_b.query(fake_b), pool_a.query(fake_a)
      loss_d = 0.5 * (gan(d_a(real_b), True) + gan(d_a(pooled_b.detach()), False)) + 0.5 * (
          gan(d_b(real_a), True) + gan(d_b(pooled_a.detach()), False))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    return loss_g + loss_d

  return one_step


def _peer_ugatit(args, dev, autocast):
  import torch  # pylint: disable=g-import-not-at-top
  import networks  # pylint: disable=g-import-not-at-top,import-error

  w = TINY['ugatit'] if args.tiny else dict(ch=64, num_blocks=4, disc_global_layers=7,
                                            disc_local_layers=5)
  gens = [networks.ResnetGenerator(3, 3, w['ch'], w['num_blocks'], args.size, light=True).to(dev)
          for _ in range(2)]
  discs = [networks.Discriminator(3, w['ch'], n).to(dev)
           for n in (w['disc_global_layers'], w['disc_global_layers'], w['disc_local_layers'],
                     w['disc_local_layers'])]
  clipper = networks.RhoClipper(0, 1)
  run_gens, run_discs = gens, discs
  if args.peer_mode == 'bf16_compile':
    run_gens, run_discs = [torch.compile(g) for g in gens], [torch.compile(d) for d in discs]
  g_ab, g_ba = run_gens
  d_ga, d_gb, d_la, d_lb = run_discs
  mse, l1, bce = torch.nn.MSELoss(), torch.nn.L1Loss(), torch.nn.BCEWithLogitsLoss()
  opt_g = torch.optim.Adam([p for g in gens for p in g.parameters()], lr=1e-4,
                           betas=(0.5, 0.999), weight_decay=1e-4)
  opt_d = torch.optim.Adam([p for d in discs for p in d.parameters()], lr=1e-4,
                           betas=(0.5, 0.999), weight_decay=1e-4)
  gen = torch.Generator(device=dev).manual_seed(0)
  real_a = torch.rand(args.batch, 3, args.size, args.size, device=dev, generator=gen) * 2 - 1
  real_b = torch.rand(args.batch, 3, args.size, args.size, device=dev, generator=gen) * 2 - 1

  def adv(outs, target):
    return sum(mse(o, torch.full_like(o, target)) for out in outs for o in out[:2])

  def one_step():  # UGATIT.py::train: D, then G, then the rho clip.
    with autocast():
      fake_ab, fake_ba = g_ab(real_a)[0].detach(), g_ba(real_b)[0].detach()
      loss_d = (adv([d_ga(real_a), d_la(real_a), d_gb(real_b), d_lb(real_b)], 1.0)
                + adv([d_ga(fake_ba), d_la(fake_ba), d_gb(fake_ab), d_lb(fake_ab)], 0.0))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    with autocast():
      fake_ab, cam_ab, _ = g_ab(real_a)
      fake_ba, cam_ba, _ = g_ba(real_b)
      rec_a, rec_b = g_ba(fake_ab)[0], g_ab(fake_ba)[0]
      same_a, cam_aa, _ = g_ba(real_a)
      same_b, cam_bb, _ = g_ab(real_b)
      loss_g = (adv([d_ga(fake_ba), d_la(fake_ba), d_gb(fake_ab), d_lb(fake_ab)], 1.0)
                + 10 * (l1(rec_a, real_a) + l1(rec_b, real_b))
                + 10 * (l1(same_a, real_a) + l1(same_b, real_b))
                + 1000 * (bce(cam_ba, torch.ones_like(cam_ba))
                          + bce(cam_aa, torch.zeros_like(cam_aa))
                          + bce(cam_ab, torch.ones_like(cam_ab))
                          + bce(cam_bb, torch.zeros_like(cam_bb))))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    for g in gens:
      g.apply(clipper)
    return loss_g + loss_d

  return one_step


def run_peer(args):
  import contextlib  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top

  sys.path.insert(0, os.path.abspath(os.path.expanduser(args.peer)))
  dev = 'cuda' if torch.cuda.is_available() else 'cpu'
  torch.backends.cudnn.benchmark = True

  def autocast():
    if args.peer_mode == 'fp32':
      return contextlib.nullcontext()
    return torch.autocast(dev, dtype=torch.bfloat16)

  one_step = (_peer_cyclegan if args.method == 'cyclegan' else _peer_ugatit)(args, dev, autocast)
  sync = (lambda _: torch.cuda.synchronize()) if dev == 'cuda' else (lambda _: None)
  start = time.perf_counter()
  losses = [float(one_step()) for _ in range(args.loss_steps)]
  compile_s = time.perf_counter() - start
  if dev == 'cuda':
    torch.cuda.reset_peak_memory_stats()
  median_s, min_s = timing.timed(lambda _: one_step(), sync, warmup=args.warmup,
                                 calls=args.steps, repeats=args.repeats)
  name = torch.cuda.get_device_name() if dev == 'cuda' else 'cpu'
  peak = torch.cuda.max_memory_allocated() if dev == 'cuda' else 0
  return dict(impl='upstream', method=args.method, mode=args.peer_mode, device=name,
              batch=args.batch, images_per_step=2 * args.batch, step_ms=median_s * 1e3,
              min_step_ms=min_s * 1e3, img_s=2 * args.batch / median_s, peak_gib=peak / 2**30,
              compile_s=compile_s, losses=losses)


# ------------------------------------------------------------------------------------------------
# Driver: one child process per configuration, then the table.

def child_command(args, **overrides):
  cmd = [sys.executable, os.path.abspath(__file__), '--child']
  values = {**vars(args), **overrides}
  for key in ('method', 'batch', 'size', 'steps', 'warmup', 'repeats', 'loss_steps', 'peer'):
    cmd.append(f'--{key}={values[key]}')
  if args.tiny:
    cmd.append('--tiny')
  for key in ('policy', 'peer_mode'):
    if key in overrides:
      cmd.append(f'--{key}={overrides[key]}')
  return cmd


def table(results):
  rows = ['| impl | method | mode | device | batch/domain | img/step | step ms | img/s | peak GiB '
          '| compile s |', '|' + '---|' * 10]
  for r in results:
    if 'error' in r:
      rows.append(f'| {r["cmd"]} | failed: {r["error"]} |' + ' |' * 8)
      continue
    rows.append(f'| {r["impl"]} | {r["method"]} | {r["mode"]} | {r["device"]} | {r["batch"]} | '
                f'{r["images_per_step"]} | {r["step_ms"]:.1f} | {r["img_s"]:.1f} | '
                f'{r["peak_gib"]:.1f} | {r["compile_s"]:.0f} |')
  return '\n'.join(rows)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
  parser.add_argument('--method', default='cyclegan', choices=('cyclegan', 'ugatit'))
  parser.add_argument('--policies', default='float32,bfloat16')
  parser.add_argument('--peer', default='', help='checkout of the method\'s upstream repository')
  parser.add_argument('--peer_modes', default=','.join(PEER_MODES))
  parser.add_argument('--batch', type=int, default=1, help='images per domain (upstream: 1)')
  parser.add_argument('--size', type=int, default=256)
  parser.add_argument('--tiny', action='store_true', help='toy widths (CPU test)')
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--loss_steps', type=int, default=3)
  parser.add_argument('--json', default='', help='also write the results here')
  parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--policy', default='float32', help=argparse.SUPPRESS)
  parser.add_argument('--peer_mode', default='', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    result = run_peer(args) if args.peer_mode else run_ours(args)
    timing.report(result)
    return []
  results = [timing.run_child(child_command(args, policy=p))
             for p in args.policies.split(',') if p]
  if args.peer:
    results += [timing.run_child(child_command(args, peer_mode=m))
                for m in args.peer_modes.split(',')]
  print(table(results))
  ours = [r for r in results if r.get('impl') == 'animojax']
  peers = [r for r in results if r.get('impl') == 'upstream']
  if ours and peers:
    best_ours = max(ours, key=lambda r: r['img_s'])
    best_peer = max(peers, key=lambda r: r['img_s'])
    print(f'best animojax ({best_ours["mode"]}) / best upstream ({best_peer["mode"]}): '
          f'{best_ours["img_s"] / best_peer["img_s"]:.2f}x img/s')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=1)
  return results


if __name__ == '__main__':
  main()

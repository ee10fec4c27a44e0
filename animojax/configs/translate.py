r"""Anime <-> real face translation: the methods of "anime to real" (difference vector,
encoder-decoder, CycleGAN + angle), CycleGAN as published, and U-GAT-IT (light).

`--config=translate:METHOD[,demo][,synthetic]`; METHOD is one of cyclegan (default),
cyclegan_angle, ugatit, diffvec, encdec. Paper settings on two image folders (anime A, real B;
`tfds_builders/unpaired_faces`, e.g. Kaggle anime faces and CelebA as the paper used):

COMMAND: python -m animojax.launch --config=translate:cyclegan --workdir=/tmp/cyclegan

COMMAND: python -m animojax.launch --config=translate:ugatit --workdir=/tmp/ugatit

Built-in synthetic data, no download, minutes on a CPU (the README comparison table):

COMMAND: python -m animojax.launch --config=translate:cyclegan,demo --workdir=/tmp/tr_cyclegan

COMMAND: python -m animojax.launch --config=translate:cyclegan_angle,demo --workdir=/tmp/tr_angle

The paper-size networks on the 256² synthetic data (`synthetic`; e.g. to check an accelerator):

COMMAND: python -m animojax.launch --config=translate:cyclegan,synthetic --workdir=/tmp/tr_syn

Upstream settings: CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix `options/*`,
`models/cycle_gan_model.py`): batch 1, load 286 -> random crop 256 + flip, ResNet-9 generators,
70×70 PatchGAN, LSGAN, cycle λ 10, identity 0.5·λ, pool 50, Adam 2e-4 (β1 0.5), 100 epochs
constant + 100 linear decay. U-GAT-IT (znxlwm/UGATIT-pytorch `main.py`, `UGATIT.py`): batch 1,
resize 286 -> crop 256 + flip, ch 64, 4 residual blocks, 6-layer global / 4-layer local
discriminators (n_dis 6), adv 1, cycle 10, identity 10, CAM 1000, Adam 1e-4 (β 0.5, 0.999,
weight decay 1e-4), 1M iterations with linear decay over the second half, ρ clipped to [0, 1].
"""

import ml_collections

from animojax.configs import common

METHODS = ('cyclegan', 'cyclegan_angle', 'ugatit', 'diffvec', 'encdec')
# An upstream "epoch" at batch 1: the paper's 15,000 images per domain (CycleGAN's epoch is
# max(|A|, |B|) iterations).
_PAPER_IMAGES = 15000


def _split_method(arg):
  items = [i for i in (arg or '').split(',') if i]
  if items and items[0] in METHODS:
    return items[0], ','.join(items[1:])
  for item in items:
    if '=' not in item and item not in ('demo', 'synthetic'):
      raise ValueError(f'Unknown translation method {item!r}; choose one of {METHODS} '
                       '(first in the config argument, e.g. translate:ugatit,demo).')
  return 'cyclegan', ','.join(items)


def get_config(arg=None):
  method, rest = _split_method(arg)
  arg = common.parse_arg(rest, demo=False, synthetic=False)
  c = ml_collections.ConfigDict()
  c.trainer = 'translate'  # animojax.trainers.<trainer>
  c.method = method
  c.seed = 0
  c.batch_size = 1  # Global, per domain.

  c.data = ml_collections.ConfigDict()
  # unpaired_faces holds both domains in one dataset; `domain_label` picks one.
  c.data.anime = dict(name='unpaired_faces/faces_256', sample='single', domain_label='anime')
  c.data.real = dict(name='unpaired_faces/faces_256', sample='single', domain_label='real')
  c.data.data_dir = ''
  c.data.image_size = 256
  c.data.phi = 'synthetic'  # Unused (no motion vectors); pipeline field.
  c.data.anime_angle_permutation = (0, 2, 1)  # Unused; pipeline field.
  c.data.num_threads = 8
  c.data.prefetch = 64
  c.data.num_workers = -1
  c.augment = dict(load_size=286, flip=True)

  c.model = ml_collections.ConfigDict()
  c.loss = ml_collections.ConfigDict()
  c.optim = ml_collections.ConfigDict(dict(lr=2e-4, b1=0.5, b2=0.999, eps=1e-8, weight_decay=0.0,
                                           steps_per_epoch=_PAPER_IMAGES, epochs_constant=100,
                                           epochs_decay=100))
  c.pool_size = 0
  if method in ('cyclegan', 'cyclegan_angle'):
    c.model.update(ngf=64, ndf=64, num_blocks=9, disc_layers=3)
    c.loss.update(cycle=10.0, identity=0.5)
    c.pool_size = 50
    if method == 'cyclegan_angle':
      c.loss.angle = 1.0  # Angle regression (D on reals, G on fakes), ours (the paper has none).
      c.augment.load_size = 0  # Crops would move the eyes the angle was measured on: resize only.
  elif method == 'ugatit':
    c.model.update(ch=64, num_blocks=4, disc_global_layers=7, disc_local_layers=5, light=True)
    c.loss.update(adv=1.0, cycle=10.0, identity=10.0, cam=1000.0)
    # Upstream lowers the rate by lr / 500k before each of the last 500k of 1M iterations.
    c.optim.update(lr=1e-4, weight_decay=1e-4, steps_per_epoch=1, epochs_constant=500_000,
                   epochs_decay=500_000 - 1)
    c.total_steps = 1_000_000
  elif method == 'diffvec':
    # The paper: 100-image batches, 10,000 iterations; the rate is not given (ours).
    c.batch_size = 100
    c.loss.update(rate=0.01)
    c.optim.update(steps_per_epoch=1, epochs_constant=10_000, epochs_decay=0)
    c.augment.update(load_size=0, flip=False)
  elif method == 'encdec':
    # 'synthetic': true pairs from the synthetic data's hidden state (the same semantic state
    # rendered in the other domain); 'random': each input with a random image of the other
    # domain (all that unpaired data allow; the paper's data were unpaired).
    c.model.update(ch=32, num_layers=3)
    c.loss.update(pairing='random')
    c.batch_size = 16
    c.optim.update(lr=1e-3, b1=0.9, steps_per_epoch=_PAPER_IMAGES // 16, epochs_constant=15,
                   epochs_decay=0)  # The paper: 15 epochs.
    c.augment.update(load_size=0, flip=False)
  # Warm start (trainers/translate/warm_start.py): 'NET=PATH,...' (e.g. official CycleGAN
  # gen_to_real=latest_net_G_A.pth) or one PATH for every net (a params.npz, a U-GAT-IT .pt).
  c.model_init = ''
  # Continue another run: its workdir (or checkpoints/<step>) gives the whole train state and data
  # position. Precedence: this workdir's own checkpoint > resume > model_init > scratch.
  c.resume = ''
  if 'total_steps' not in c:
    c.total_steps = -1  # -1: the schedule's end (optim epochs_constant + epochs_decay).

  c.compute_dtype = 'float32'  # 'bfloat16': forward/backward in bf16, float32 params and stats.
  c.mesh = [('data', -1)]
  c.sharding_rules = [('.*', 'replicate')]
  c.log_every = 100
  c.checkpoint_every = 5000
  c.keep_checkpoints = 3
  c.sample_every = 5000
  # FID and KID per direction (translations vs the target domain's test images; Inception
  # weights from `python -m animojax.convert.fetch fid_inception`, else skipped with the reason);
  # the angle error on synthetic data.
  c.eval = dict(split='test', num_images=1000, batch_size=16, metrics=('fid', 'kid', 'angle'),
                fid_weights='', probe_steps=600)
  c.export_at_end = True

  if arg.synthetic or arg.demo:
    res = 64 if arg.demo else 256
    c.data.anime = dict(name=f'synthetic_heads/anime_{res}', sample='single')
    c.data.real = dict(name=f'synthetic_heads/human_{res}', sample='single')
    c.data.image_size = res
    if method in ('cyclegan', 'cyclegan_angle', 'encdec'):  # Epoch-based schedules: an epoch
      # is the synthetic set, 40 (64²) or 200 (256²) identities × 24 or 32 frames.
      c.optim.steps_per_epoch = max(1, (960 if arg.demo else 6400) // c.batch_size)
    if method == 'encdec':
      c.loss.pairing = 'synthetic'
    if arg.synthetic:
      c.augment.load_size = res + res // 8 if c.augment.load_size else 0

  if arg.demo:  # Minutes on a 2-core CPU; every change from the recipe is deliberate.
    c.data.num_threads = 2
    c.data.prefetch = 4
    c.augment.load_size = 72 if c.augment.load_size else 0
    c.log_every = 20
    c.checkpoint_every = 200
    c.sample_every = 200
    c.eval.num_images = 192
    c.eval.batch_size = 32
    if method in ('cyclegan', 'cyclegan_angle'):
      c.model.update(ngf=16, ndf=16, num_blocks=3)
      c.batch_size = 4
      c.optim.update(lr=5e-4, steps_per_epoch=100, epochs_constant=3, epochs_decay=2)
    elif method == 'ugatit':
      c.model.update(ch=16, num_blocks=2, disc_global_layers=5, disc_local_layers=3)
      c.batch_size = 4
      c.total_steps = -1  # The demo schedule's end, not upstream's 1M iterations.
      c.optim.update(lr=5e-4, steps_per_epoch=100, epochs_constant=3, epochs_decay=2)
    elif method == 'diffvec':
      c.optim.update(epochs_constant=300)
      c.loss.rate = 0.05
    elif method == 'encdec':
      c.model.update(ch=16)
      c.optim.update(steps_per_epoch=100, epochs_constant=6)
  return c

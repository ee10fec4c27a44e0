r"""AniMo (AnimeCeleb, ECCV 2022): cross-domain head reenactment between anime and human heads.

Paper settings (256², batch 12, AnimeCeleb + VoxCeleb, VGG19 perceptual/style loss, warp-only for
100 epochs then everything, Adam 1e-4 (β 0.5, 0.999) ×0.2 after 150 of 200 epochs, EMA):

COMMAND: python -m animojax.launch --config=animo --workdir=/tmp/animo \
    --config.data.phi=/path/to/pose_coeffs.npy --config.loss.vgg19_weights=/path/to/vgg19.npz

Built-in synthetic data, no download (the README quickstart; 64², small model, pixel loss):

COMMAND: python -m animojax.launch --config=animo:demo --workdir=/tmp/animo_demo

Paper model and loss on the synthetic data at 256² (e.g. to check a new accelerator):

COMMAND: python -m animojax.launch --config=animo:synthetic --workdir=/tmp/animo_syn \
    --config.loss.vgg19_weights=/path/to/vgg19.npz

Arguments: `demo` (bool), `synthetic` (bool: paper model/loss on synthetic 256² data).
"""

import ml_collections

from animojax.configs import common

# AniMo's epochs in steps at the paper batch: 3,319 AnimeCeleb train identities × 75 repeats / 12.
_STEPS_PER_EPOCH = 3319 * 75 // 12


def get_config(arg=None):
  arg = common.parse_arg(arg, demo=False, synthetic=False)
  c = ml_collections.ConfigDict()
  c.trainer = 'animo'  # animojax.train.<trainer>.train_and_evaluate
  c.seed = 0
  c.batch_size = 12  # Pairs per domain per step (global, over all devices and hosts).

  # Two-stage schedule (AniMo: warp-only until epoch 99 of 200).
  c.total_steps = 200 * _STEPS_PER_EPOCH
  c.warp_steps = 100 * _STEPS_PER_EPOCH
  # PIRender re-creates Adam for the warping nets when the full stage starts; AniMo does not.
  c.reset_warp_optimizer_at_gen = False

  c.data = ml_collections.ConfigDict()
  c.data.anime = dict(name='animeceleb/default', pose='anime_pose')
  c.data.human = dict(name='voxceleb/deep3d_256', pose='deep3d_coeff')
  c.data.data_dir = ''  # '' = $TFDS_DATA_DIR or ~/tensorflow_datasets.
  c.data.image_size = 256
  c.data.phi = 'pose_coeffs.npy'  # Φ: released Animo/data/pose_coeffs.npy, or 'synthetic'.
  c.data.anime_angle_permutation = (0, 2, 1)  # AniMo's reading of the CSV angle columns.
  c.data.num_threads = 8
  c.data.prefetch = 64
  c.data.num_workers = 0  # >0: grain worker processes (multiprocessing) after thread prefetch.
  c.augment = dict(color_jitter=0.1)

  c.model = dict(variant='paper', padding_mode='border')

  c.loss = ml_collections.ConfigDict()
  c.loss.network = 'vgg19'  # 'vgg19' (converted torchvision weights), 'vgg19_random',
  #                            'pixel_pyramid' (no-download stand-in; not the paper's loss).
  c.loss.vgg19_weights = ''  # '' = ~/.cache/animojax/vgg19.npz (see animojax.convert.vgg19).
  c.loss.num_scales = 4
  c.loss.warp_weight = 2.5
  c.loss.final_weight = 4.0
  c.loss.style_weight = 250.0

  c.optim = dict(lr=1e-4, b1=0.5, b2=0.999, eps=1e-8, lr_decay_every=150 * _STEPS_PER_EPOCH,
                 lr_decay_factor=0.2, ema_decay=0.5 ** (32 / 10000))

  c.mesh = [('data', -1)]
  # (regex over '/'-joined parameter names, 'replicate' | 'fsdp'); first match wins.
  c.sharding_rules = [('.*', 'replicate')]

  c.log_every = 100
  c.checkpoint_every = 5000
  c.keep_checkpoints = 3
  c.sample_every = 5000
  c.eval = dict(split='test', num_pairs=256, batch_size=16, every=0)  # every=0: at the end only.
  c.export_at_end = True

  if arg.synthetic or arg.demo:
    res = 64 if arg.demo else 256
    c.data.anime.name = f'synthetic_heads/anime_{res}'
    c.data.human.name = f'synthetic_heads/human_{res}'
    c.data.image_size = res
    c.data.phi = 'synthetic'

  if arg.demo:  # Minutes on a 2-core CPU.
    c.batch_size = 8
    c.total_steps = 1000
    c.warp_steps = 600
    c.optim.lr = 2e-4
    c.optim.lr_decay_every = 800
    c.optim.ema_decay = 0.99
    c.model.variant = 'demo'
    c.loss.network = 'pixel_pyramid'
    c.data.num_threads = 2
    c.data.prefetch = 4
    c.log_every = 20
    c.checkpoint_every = 200
    c.sample_every = 250
    c.eval.num_pairs = 64
  return c

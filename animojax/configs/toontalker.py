r"""ToonTalker (Gong et al., ICCV 2023): cartoon <-> real head reenactment by transformer motion
alignment in a shared canonical space, trained with the analogy constraint.

Paper recipe (§3.3, §4.1) in two launches. Stage 1: real videos only (VoxCeleb), reconstruction,
450K iterations, batch 64, Adam 5e-4:

COMMAND: python -m animojax.launch --config=toontalker:stage=1 --workdir=/tmp/tt_stage1 \
    --config.loss.vgg19_weights=/path/to/vgg19.npz

Stage 2: the cartoon domain copied from the real one, then 10K joint iterations with the
analogy constraint (λm = 20, λper = 10), batch 8, Adam 1e-4, from stage 1's export:

COMMAND: python -m animojax.launch --config=toontalker --workdir=/tmp/tt_stage2 \
    --config.model_init=/tmp/tt_stage1/params.npz --config.loss.vgg19_weights=/path/to/vgg19.npz

Warm start from the released checkpoint instead (`cross-domain.pt` converts to both domains;
`in-domain440000.pt` to the real one, the default; `:both` for both):

COMMAND: python -m animojax.launch --config=toontalker --workdir=/tmp/tt_ft \
    --config.model_init=/path/to/in-domain440000.pt

Built-in synthetic data, no download: both stages in one run, on the CPU in minutes
(64² images, small widths, pixel-pyramid loss instead of VGG19):

COMMAND: python -m animojax.launch --config=toontalker:demo --workdir=/tmp/tt_demo

The 'w/o analogy' ablation (paper Table 5): stage 2 with reconstruction only:

COMMAND: python -m animojax.launch --config=toontalker:demo,no_analogy --workdir=/tmp/tt_demo_wo

Arguments: `stage` (int: 1 = stage 1 alone, 2 = stage 2 alone (default), 0 = both in one run),
`demo` (bool: synthetic 64² data, both stages), `no_analogy` (bool: the ablation).

Deviations, all stated: the perceptual loss is PIRender's bilinear pyramid of VGG19 features
(`losses/perceptual.py`) weighted λper = 10, where LIA's trainer uses a Gaussian anti-aliased
pyramid; the paper gives no discriminator learning rate or Adam betas, so both use LIA's betas
(G (0, 0.99^0.8), D (0, 0.99^(16/17))) and the paper's G learning rate; attention dropout 0.1
(released layer, training only) is not applied (`models/toontalker/transformer.py`).
"""

import ml_collections

from animojax.configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, stage=2, demo=False, no_analogy=False)
  if arg.stage not in (0, 1, 2):
    raise ValueError(f'toontalker: stage must be 0 (both), 1 or 2, got {arg.stage}.')
  c = ml_collections.ConfigDict()
  c.trainer = 'toontalker'  # animojax.trainers.<trainer> (animojax/trainers/__init__.py)
  c.seed = 0

  # Stage 2 of the paper by default (a separate launch after stage 1, see the docstring).
  c.batch_size = 8  # Pairs per domain per step (global).
  c.stage1_steps = 0  # Steps of stage 1 before stage 2 (0: this run is stage 2 only).
  c.total_steps = 10_000
  c.copy_real_to_cartoon = True  # §3.3: stage 2 starts from copies of the real components.

  c.data = ml_collections.ConfigDict()
  # 'video_pairs': source and driving frame of one video (no 3DMM needed).
  c.data.real = dict(name='voxceleb_3dmm/deep3d_256', sample='video_pairs')
  c.data.cartoon = dict(name='cartoon_videos/frames_256', sample='video_pairs')
  c.data.data_dir = ''  # '' = $TFDS_DATA_DIR or ~/tensorflow_datasets.
  c.data.image_size = 256
  c.data.phi = ''  # No motion vectors are read.
  c.data.anime_angle_permutation = (0, 2, 1)  # Unused (no anime poses); the pipeline reads it.
  c.data.num_threads = 8
  c.data.prefetch = 64
  c.data.num_workers = -1

  c.model = dict(variant='paper')  # animojax.models.toontalker.VARIANTS (+ overrides).
  # Flow heads' init scale: 1.0 = LIA's N(0, 1); 0.0 = the identity warp (the demo's deviation).
  c.model.flow_init_scale = 1.0
  # Warm start (generator only): an exported .npz, or a released ToonTalker .pt (see
  # convert/toontalker_torch.py; PATH:both / PATH:cartoon for the in-domain file).
  c.model_init = ''
  # Continue another run: its workdir (or checkpoints/<step>) gives the whole train state and data
  # position. Precedence: this workdir's own checkpoint > resume > model_init > scratch.
  c.resume = ''

  c.loss = ml_collections.ConfigDict()
  c.loss.network = 'vgg19'  # 'vgg19' | 'vgg19_random' | 'pixel_pyramid' (losses/perceptual.py)
  c.loss.vgg19_weights = ''
  c.loss.num_scales = 4
  c.loss.perceptual_weight = 10.0  # λper
  c.loss.motion_weight = 20.0  # λm
  c.loss.adv_weight = 1.0
  c.loss.analogy = True  # False: the 'w/o analogy' ablation.

  c.optim = ml_collections.ConfigDict()
  c.optim.g_betas = (0.0, 0.99**0.8)
  c.optim.d_betas = (0.0, 0.99**(16 / 17))
  c.optim.eps = 1e-8
  c.optim.stage1 = dict(g_lr=5e-4, d_lr=5e-4)
  c.optim.stage2 = dict(g_lr=1e-4, d_lr=1e-4)

  c.compute_dtype = 'float32'  # 'bfloat16': bf16 forward/backward, float32 master weights.
  c.kernels = 'auto'
  c.mesh = [('data', -1)]
  c.sharding_rules = [('.*', 'replicate')]

  c.log_every = 100
  c.checkpoint_every = 1000
  c.keep_checkpoints = 3
  c.sample_every = 1000
  c.eval = dict(split='test', num_pairs=256, batch_size=16,
                metrics=('l1', 'psnr', 'ssim', 'lpips', 'fid', 'cpbd'), fid_weights='',
                lpips_weights='')
  c.export_at_end = True

  if arg.stage == 1:  # Real videos only; the cartoon domain is untouched.
    del c.data['cartoon']
    c.batch_size = 64
    c.stage1_steps = c.total_steps = 450_000
    c.copy_real_to_cartoon = False
    c.checkpoint_every = 5000
    c.sample_every = 0
    c.eval.num_pairs = 0
  elif arg.stage == 0:
    c.stage1_steps, c.total_steps = 450_000, 460_000

  if arg.demo:  # Minutes on a 2-core CPU; every change from the paper recipe is deliberate.
    c.data.real = dict(name='synthetic_heads/human_64', sample='video_pairs')
    c.data.cartoon = dict(name='synthetic_heads/anime_64', sample='video_pairs')
    c.data.image_size = 64
    c.data.num_threads = 2
    c.data.prefetch = 4
    c.model.variant = 'demo'
    # Deviation: from LIA's init the warp stayed unused for the demo's few hundred steps and the
    # output was a blur far below copy-source (README, ToonTalker demo).
    c.model.flow_init_scale = 0.0
    c.loss.network = 'pixel_pyramid'  # No VGG19 download; not the paper's loss.
    c.batch_size = 8
    c.stage1_steps = 150
    c.total_steps = 300
    c.copy_real_to_cartoon = True
    c.optim.stage1 = dict(g_lr=2e-3, d_lr=2e-3)  # Hundreds of steps instead of 450K.
    c.optim.stage2 = dict(g_lr=1e-3, d_lr=1e-3)
    c.log_every = 20
    c.checkpoint_every = 100
    c.sample_every = 150
    c.eval.num_pairs = 64
    c.eval.metrics = ('l1', 'psnr', 'ssim', 'lpips', 'cpbd')
  if arg.no_analogy:
    c.loss.analogy = False
  return c

r"""AniMo (AnimeCeleb, ECCV 2022): cross-domain head reenactment between anime and human heads.

Paper settings (256², batch 12, AnimeCeleb + VoxCeleb, VGG19 perceptual/style loss, warp-only for
100 epochs then everything, Adam 1e-4 (β 0.5, 0.999) ×0.2 after 150 of 200 epochs, EMA):

COMMAND: python -m animojax.launch --config=animo --workdir=/tmp/animo \
    --config.data.phi=/path/to/pose_coeffs.npy --config.loss.vgg19_weights=/path/to/vgg19.npz

Built-in synthetic data, no download (the README quickstart; 64², small model, pixel loss):

COMMAND: python -m animojax.launch --config=animo:demo --workdir=/tmp/animo_demo

With DECA (FLAME) coefficients for VoxCeleb instead of Deep3DFaceRecon's: 56-D motion
(exp 50 | angles 3 | jaw 3), anime poses mapped by EDTN's 17 × 50 morph -> FLAME matrix:

COMMAND: python -m animojax.launch --config=animo:deca --workdir=/tmp/animo_deca \
    --config.data.phi=/path/to/transform_matrix_08_30.npy \
    --config.loss.vgg19_weights=/path/to/vgg19.npz

VoxCeleb from raw videos, no external tool: `voxceleb_3dmm/capture_256` labels every frame while
it is built, with this package's motion capture (FaceBoxes + 3DDFA_V2, expression fitted into the
embedded model, so Φ is the synthetic data's; tfds_builders/voxceleb_3dmm/README.md):

COMMAND: python -m animojax.launch --config=animo:capture --workdir=/tmp/animo_capture \
    --config.loss.vgg19_weights=/path/to/vgg19.npz

Paper model and loss on the synthetic data at 256² (e.g. to check a new accelerator):

COMMAND: python -m animojax.launch --config=animo:synthetic --workdir=/tmp/animo_syn \
    --config.loss.vgg19_weights=/path/to/vgg19.npz

Faster on GPUs/TPUs: bf16 compute with float32 parameters and optimiser state:

COMMAND: python -m animojax.launch --config=animo --workdir=/tmp/animo \
    --config.compute_dtype=bfloat16

Arguments: `demo` (bool), `synthetic` (bool: paper model/loss on synthetic 256² data), `deca`
(bool: `voxceleb_3dmm/deca_256` with the 56-D DECA motion), `capture` (bool:
`voxceleb_3dmm/capture_256`, labelled by this package's capture; a deviation from the paper's
Deep3DFaceRecon regression).
"""

import ml_collections

from animojax.configs import common

# AniMo's epochs in steps at the paper batch: 3,319 AnimeCeleb train identities × 75 repeats / 12.
_STEPS_PER_EPOCH = 3319 * 75 // 12


def get_config(arg=None):
  arg = common.parse_arg(arg, demo=False, synthetic=False, deca=False, capture=False)
  c = ml_collections.ConfigDict()
  c.trainer = 'animo'  # animojax.trainers.<trainer> (registered in animojax/trainers/__init__.py)
  c.seed = 0
  c.batch_size = 12  # Pairs per domain per step (global, over all devices and hosts).

  # Two-stage schedule (AniMo: warp-only until epoch 99 of 200).
  c.total_steps = 200 * _STEPS_PER_EPOCH
  c.warp_steps = 100 * _STEPS_PER_EPOCH
  # PIRender re-creates Adam for the warping nets when the full stage starts; AniMo does not.
  c.reset_warp_optimizer_at_gen = False

  c.data = ml_collections.ConfigDict()
  # Datasets by TFDS name (tfds_builders/<name>/README.md says how to build them). pair_within:
  # 'identity' (two frames of one identity) or 'video' (a video of the identity, then two of
  # its frames: AniMo's and PIRender's VoxCeleb sampling).
  c.data.anime = dict(name='animeceleb/default', pose='anime_pose', pair_within='identity')
  c.data.human = dict(name='voxceleb_3dmm/deep3d_256', pose='deep3d_coeff', pair_within='video')
  c.data.data_dir = ''  # '' = $TFDS_DATA_DIR or ~/tensorflow_datasets.
  c.data.image_size = 256
  c.data.phi = 'pose_coeffs.npy'  # Φ: released Animo/data/pose_coeffs.npy, or 'synthetic'.
  c.data.anime_angle_permutation = (0, 2, 1)  # AniMo's reading of the CSV angle columns.
  c.data.num_threads = 8
  c.data.prefetch = 64
  # Grain worker processes after thread prefetch: -1 = one per 4 CPUs (max 16; none below 8 CPUs).
  c.data.num_workers = -1
  c.augment = dict(color_jitter=0.1)

  c.model = dict(variant='paper', padding_mode='border')
  # Warm start: an exported .npz or an AniMo/PIRender PyTorch checkpoint (PATH:human / :anime
  # puts PIRender's single-domain nets into one domain). Partial; report in model_init.json.
  # A checkpoint in the workdir takes precedence (resume). '' = random init.
  c.model_init = ''
  # Continue another run: its workdir (or checkpoints/<step>) gives the whole train state and data
  # position; this workdir gets the new checkpoints. Precedence: this workdir's own checkpoint >
  # resume > model_init > scratch.
  c.resume = ''

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

  # Speed knobs that leave the maths unchanged (animojax/trainers/common/precision.py, trainers/animo/step.py):
  # 'bfloat16' runs forward/backward in bf16 with float32 parameters, optimiser state and
  # reductions (benchmarks/RESULTS.md: its loss curve against float32's); remat 'none' |
  # 'generator' | 'loss' | 'all' recomputes those activations in the backward pass (less memory).
  c.compute_dtype = 'float32'
  c.remat = 'none'
  # Hand-written kernels (animojax/ops/kernels.py): 'auto' = Pallas Triton kernels for the warp
  # and the few-channel convs on CUDA GPUs, the XLA ops elsewhere (CPU, TPU); 'xla' = the
  # portable XLA ops everywhere (the reference the kernels are tested against; same maths).
  c.kernels = 'auto'

  c.mesh = [('data', -1)]
  # (regex over '/'-joined parameter names, 'replicate' | 'fsdp'); first match wins.
  c.sharding_rules = [('.*', 'replicate')]

  c.log_every = 100
  c.checkpoint_every = 5000
  c.keep_checkpoints = 3
  c.sample_every = 5000
  # Evaluation at the end of training. Metrics whose weights are missing are skipped and listed
  # in eval.md ('' weights = ~/.cache/animojax/, see `python -m animojax.convert.fetch`).
  c.eval = dict(split='test', num_pairs=256, batch_size=16,
                metrics=('l1', 'psnr', 'ssim', 'lpips', 'fid', 'cpbd'), fid_weights='',
                lpips_weights='')
  c.export_at_end = True

  if arg.deca:  # VoxCeleb with DECA files; Φ must then be the 17 × 50 FLAME map.
    c.data.human.name = 'voxceleb_3dmm/deca_256'
    c.data.human.pose = 'deca_coeff'
    c.data.phi = 'transform_matrix_08_30.npy'
    c.model.pose_dim = 56

  if arg.capture:  # The embedded model's expression: Φ is the synthetic data's.
    c.data.human.name = 'voxceleb_3dmm/capture_256'
    c.data.phi = 'synthetic'

  if arg.synthetic or arg.demo:
    res = 64 if arg.demo else 256
    c.data.anime.name = f'synthetic_heads/anime_{res}'
    c.data.human.name = f'synthetic_heads/human_{res}'
    c.data.human.pair_within = 'identity'  # One "video" per synthetic identity.
    c.data.image_size = res
    c.data.phi = 'synthetic'

  if arg.demo:  # Minutes on a 2-core CPU; every change from the paper recipe is deliberate.
    c.batch_size = 8
    c.total_steps = 900
    c.warp_steps = 400
    c.optim.lr = 1e-3  # A few hundred steps instead of millions: a larger step size.
    c.optim.lr_decay_every = 750
    c.optim.ema_decay = 0.99
    c.augment.color_jitter = 0.0  # Too few steps to profit from augmentation.
    c.model.variant = 'demo'
    c.loss.network = 'pixel_pyramid'
    c.data.num_threads = 2
    c.data.prefetch = 4
    c.log_every = 20
    c.checkpoint_every = 200
    c.sample_every = 250
    c.eval.num_pairs = 64
    # FID's 2048-d matrix square roots cost minutes on a CPU; it needs thousands of images anyway.
    c.eval.metrics = ('l1', 'psnr', 'ssim', 'lpips', 'cpbd')
  return c

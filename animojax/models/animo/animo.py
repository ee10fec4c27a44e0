"""AniMo (AnimeCeleb, Kim et al. ECCV 2022): cross-domain head reenactment from 70-D motion.

One MotionNet shared by both domains, and per domain a WarpingNet and an EditingNet
(kangyeolk/AnimeCeleb: Animo/models/__init__.py, method 'animo'). Attribute names are the parameter
paths used by checkpoints and the flat .npz export:

  motion      <- PyTorch `mapping_net_shared`
  warp_anime  <- `warpping_net_anime`,  edit_anime <- `editing_net_anime`
  warp_human  <- `warpping_net_vox`,    edit_human <- `editing_net_vox`

Training runs a warp-only stage (editing nets untouched) and then a 'gen' stage; `EDIT_PREFIXES` /
`edit_filter()` name the editing parameters so the trainer can freeze or select them.

Deviations from the PyTorch code: none in the computation. `__call__` also returns the deformation
(the PyTorch EditingNet recomputes it from the flow) and names the flow 'flow' (PyTorch
'flow_field').
"""

from typing import Any

import jax
from flax import nnx

from animojax.models.animo import editing
from animojax.models.blocks import pirender as layers
from animojax.models.animo import motion
from animojax.models.animo import warping

DOMAINS = ('anime', 'human')
STAGES = ('warp', 'gen')
EDIT_PREFIXES = ('edit_anime', 'edit_human')
WARP_PREFIXES = ('warp_anime', 'warp_human')

# Sizes of the released config (Animo/configs/animo.yaml) and a small variant for 64x64 CPU demos.
# The demo keeps 5 encoder / 3 decoder layers so the flow stays at 1/4 of the image size.
VARIANTS: dict[str, dict[str, Any]] = {
    'paper': dict(
        pose_dim=70, descriptor_nc=256, mapping_layers=3,
        warp_ngf=32, warp_img_f=256, warp_encoder_layers=5, warp_decoder_layers=3,
        edit_ngf=64, edit_img_f=256, edit_layers=3, edit_num_res_blocks=2,
        padding_mode='border'),
    'demo': dict(
        pose_dim=70, descriptor_nc=256, mapping_layers=3,
        warp_ngf=8, warp_img_f=32, warp_encoder_layers=5, warp_decoder_layers=3,
        edit_ngf=8, edit_img_f=32, edit_layers=3, edit_num_res_blocks=2,
        padding_mode='border'),
}


def edit_filter() -> nnx.filterlib.Filter:
  """NNX filter selecting the editing nets' state, e.g. `nnx.split(model, edit_filter(), ...)`."""
  return nnx.Any(*(nnx.PathContains(prefix) for prefix in EDIT_PREFIXES))


def is_edit_path(path: tuple[Any, ...]) -> bool:
  """True for a state path (as from `nnx.to_flat_state`) inside one of the editing nets."""
  return bool(path) and str(path[0]) in EDIT_PREFIXES


class AniMo(nnx.Module):
  """Shared motion net + per-domain warping and editing nets."""

  def __init__(self, *, variant: str = 'paper', rngs: nnx.Rngs, **overrides):
    if variant not in VARIANTS:
      raise ValueError(f'AniMo: unknown variant {variant!r}; expected one of {tuple(VARIANTS)}.')
    config = dict(VARIANTS[variant])
    unknown = set(overrides) - set(config)
    if unknown:
      raise ValueError(
          f'AniMo: unknown override(s) {sorted(unknown)}; valid keys are {sorted(config)}.')
    config.update(overrides)
    # Stored as a sorted tuple, not a dict: static attributes end up in the GraphDef, which must be
    # hashable to be a static jit argument.
    self._config_items = tuple(sorted(config.items()))
    self.pose_dim = config['pose_dim']
    # The warp needs H, W divisible by 2**encoder_layers, the editing encoder by 2**edit_layers.
    self.size_multiple = 2**max(config['warp_encoder_layers'], config['edit_layers'])

    self.motion = motion.MotionNet(config['pose_dim'], config['descriptor_nc'],
                                   config['mapping_layers'], rngs=rngs)
    for domain in DOMAINS:
      setattr(self, f'warp_{domain}', warping.WarpingNet(
          3, config['descriptor_nc'], config['warp_ngf'], config['warp_img_f'],
          config['warp_encoder_layers'], config['warp_decoder_layers'],
          padding_mode=config['padding_mode'], rngs=rngs))
    for domain in DOMAINS:
      setattr(self, f'edit_{domain}', editing.EditingNet(
          3, config['descriptor_nc'], config['edit_ngf'], config['edit_img_f'],
          config['edit_layers'], config['edit_num_res_blocks'],
          padding_mode=config['padding_mode'], rngs=rngs))

  @property
  def config(self) -> dict[str, Any]:
    """The variant's sizes with overrides applied (keys as in `VARIANTS`)."""
    return dict(self._config_items)

  def __call__(self, source: jax.Array, pose: jax.Array, *, domain: str,
               stage: str = 'gen') -> dict[str, jax.Array]:
    """Reenacts `source` with `pose` using the `domain` nets.

    Args:
      source: `[B, H, W, 3]` images in [-1, 1]; H, W divisible by `self.size_multiple`.
      pose: `[B, pose_dim]` motion vectors (exp 64 | angles 3 | trans 3).
      domain: 'anime' or 'human': which warping/editing nets render the output.
      stage: 'warp' (warping only) or 'gen' (also run the editing net).

    Returns:
      {'descriptor' [B, 256], 'flow' [B, H/4, W/4, 2] (pixel units of that grid), 'deformation'
      [B, H/4, W/4, 2], 'warp_image' [B, H, W, 3]} plus 'fake_image' [B, H, W, 3] in 'gen'.
    """
    if domain not in DOMAINS:
      raise ValueError(f'AniMo: domain={domain!r}, expected one of {DOMAINS}.')
    if stage not in STAGES:
      raise ValueError(f'AniMo: stage={stage!r}, expected one of {STAGES}.')
    layers.check_image(source, owner='AniMo', channels=3, multiple=self.size_multiple)
    if pose.ndim != 2 or pose.shape != (source.shape[0], self.pose_dim):
      raise ValueError(
          f'AniMo: pose must be [B, {self.pose_dim}] with B = {source.shape[0]} (the source '
          f'batch), got shape {pose.shape}.')

    descriptor = self.motion(pose)
    outputs = {'descriptor': descriptor}
    outputs.update(getattr(self, f'warp_{domain}')(source, descriptor))
    if stage == 'gen':
      outputs['fake_image'] = getattr(self, f'edit_{domain}')(
          source, outputs['deformation'], descriptor)
    return outputs

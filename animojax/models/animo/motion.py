"""AniMo's shared MappingNet: a 70-D motion vector -> 256-D motion descriptor.

AniMo (kangyeolk/AnimeCeleb: Animo/models/animo/model.py, `multi_frame: False`) replaces
PIRenderer's temporal Conv1d mapping with an MLP on a single frame's pose: Linear(70 -> 256)
followed by residual layers `x + Linear(LReLU_0.1(x))`. PyTorch names: `first.0` -> `first`,
`encoder{i}.1` -> `encoder{i}`.
"""

import jax
from flax import nnx

from animojax.models.blocks import pirender as layers


class MotionNet(nnx.Module):
  """Pose `[B, pose_dim]` -> descriptor `[B, descriptor_nc]`."""

  def __init__(self, pose_dim: int = 70, descriptor_nc: int = 256, num_layers: int = 3, *,
               rngs: nnx.Rngs):
    self.pose_dim = pose_dim
    self.num_layers = num_layers
    self.first = layers.linear(pose_dim, descriptor_nc, rngs=rngs)
    # Named like the PyTorch attributes (encoder0, encoder1, ...) so checkpoint keys map 1:1.
    for i in range(num_layers):
      setattr(self, f'encoder{i}', layers.linear(descriptor_nc, descriptor_nc, rngs=rngs))

  def __call__(self, pose: jax.Array) -> jax.Array:
    if pose.ndim != 2 or pose.shape[-1] != self.pose_dim:
      raise ValueError(
          f'MotionNet: pose must be [B, {self.pose_dim}], got shape {pose.shape}.')
    out = self.first(pose)
    for i in range(self.num_layers):
      out = getattr(self, f'encoder{i}')(layers.leaky_relu(out)) + out
    return out

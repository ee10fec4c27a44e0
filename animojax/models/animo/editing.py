"""AniMo's EditingNet: encode the source, warp its features, decode conditioned on the descriptor.

AniMo (kangyeolk/AnimeCeleb: Animo/models/animo/model.py) changes PIRenderer's EditingNet: the
FineEncoder sees only the source image (3 channels, not source || warped), and each of its feature
maps is warped with the WarpingNet's deformation (bilinearly resized to the map's size, AniMo's
'border' padding) before the FineDecoder. The blocks themselves are PIRenderer's
(RenYurui/PIRender: generators/base_function.py: FineEncoder, FineDecoder, FirstBlock2d,
DownBlock2d, UpBlock2d, Jump, FineADAINResBlock(s), FinalBlock2d).

Submodule names mirror the PyTorch attributes; each `model` Sequential
[conv, LayerNorm2d, LReLU(, pool)] becomes `conv` / `norm` (PyTorch `model.0` / `model.1`), and
`final.model.0` becomes `final`.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from animojax.models.blocks import pirender as layers
from animojax.ops import warp


def _channels(ngf: int, img_f: int, level: int) -> int:
  return min(ngf * 2**level, img_f)


class ConvNormAct(nnx.Module):
  """conv -> LayerNorm2d -> LReLU(0.1): FirstBlock2d, Jump, and the core of Down/UpBlock2d."""

  def __init__(self, in_nc: int, out_nc: int, kernel_size: int, *, rngs: nnx.Rngs):
    self.conv = layers.conv2d(in_nc, out_nc, kernel_size, rngs=rngs)
    self.norm = layers.LayerNorm2d(out_nc)

  def __call__(self, x: jax.Array) -> jax.Array:
    return layers.leaky_relu(self.norm(self.conv(x)))


class FineADAINResBlock(nnx.Module):
  """PIRenderer's FineADAINResBlock2d, dead branch included: output = x + ADAIN(conv2(x)).

  The PyTorch forward computes `LReLU(norm1(conv1(x)))` and then overwrites it, so conv1/norm1
  never influence the output (and get no gradient). They are kept only so PyTorch checkpoints load
  1:1; the dead branch is not evaluated here since it cannot change any result.
  """

  def __init__(self, num_features: int, descriptor_nc: int, *, rngs: nnx.Rngs):
    self.conv1 = layers.conv2d(num_features, num_features, 3, rngs=rngs)
    self.conv2 = layers.conv2d(num_features, num_features, 3, rngs=rngs)
    self.norm1 = layers.ADAIN(num_features, descriptor_nc, rngs=rngs)
    self.norm2 = layers.ADAIN(num_features, descriptor_nc, rngs=rngs)

  def __call__(self, x: jax.Array, descriptor: jax.Array) -> jax.Array:
    return x + self.norm2(self.conv2(x), descriptor)


class FineADAINResBlocks(nnx.Module):
  """`num_blocks` FineADAINResBlocks in sequence (PyTorch names res0, res1, ...)."""

  def __init__(self, num_blocks: int, num_features: int, descriptor_nc: int, *, rngs: nnx.Rngs):
    self.num_blocks = num_blocks
    for i in range(num_blocks):
      setattr(self, f'res{i}', FineADAINResBlock(num_features, descriptor_nc, rngs=rngs))

  def __call__(self, x: jax.Array, descriptor: jax.Array) -> jax.Array:
    for i in range(self.num_blocks):
      x = getattr(self, f'res{i}')(x, descriptor)
    return x


class FineEncoder(nnx.Module):
  """conv7x7 block, then `num_layers` [conv3x3 -> norm -> act -> AvgPool2]; returns every output."""

  def __init__(self, image_nc: int, ngf: int, img_f: int, num_layers: int, *, rngs: nnx.Rngs):
    self.num_layers = num_layers
    self.first = ConvNormAct(image_nc, ngf, 7, rngs=rngs)
    for i in range(num_layers):
      setattr(self, f'down{i}', ConvNormAct(_channels(ngf, img_f, i), _channels(ngf, img_f, i + 1),
                                            3, rngs=rngs))

  def __call__(self, x: jax.Array) -> list[jax.Array]:
    x = self.first(x)
    outs = [x]
    for i in range(self.num_layers):
      x = layers.avg_pool2x(getattr(self, f'down{i}')(x))
      outs.append(x)
    return outs


class FineDecoder(nnx.Module):
  """Per level (deepest first): res blocks -> nearest x2 + conv/norm/act -> + Jump(skip); then
  conv7x7 + tanh."""

  def __init__(self, image_nc: int, descriptor_nc: int, ngf: int, img_f: int, num_layers: int,
               num_res_blocks: int, *, rngs: nnx.Rngs):
    self.num_layers = num_layers
    for i in reversed(range(num_layers)):
      in_nc = _channels(ngf, img_f, i + 1)
      out_nc = _channels(ngf, img_f, i)
      setattr(self, f'up{i}', ConvNormAct(in_nc, out_nc, 3, rngs=rngs))
      setattr(self, f'res{i}', FineADAINResBlocks(num_res_blocks, in_nc, descriptor_nc, rngs=rngs))
      setattr(self, f'jump{i}', ConvNormAct(out_nc, out_nc, 3, rngs=rngs))
    self.final = layers.conv2d(_channels(ngf, img_f, 0), image_nc, 7, rngs=rngs)

  def __call__(self, features: list[jax.Array], descriptor: jax.Array) -> jax.Array:
    features = list(features)
    out = features.pop()
    for i in reversed(range(self.num_layers)):
      out = getattr(self, f'res{i}')(out, descriptor)
      out = getattr(self, f'up{i}')(layers.upsample_nearest2x(out))
      out = getattr(self, f'jump{i}')(features.pop()) + out
    return jnp.tanh(self.final(out))


class EditingNet(nnx.Module):
  """AniMo's refiner: (source, deformation, descriptor) -> image in [-1, 1]."""

  def __init__(self, image_nc: int = 3, descriptor_nc: int = 256, ngf: int = 64, img_f: int = 256,
               num_layers: int = 3, num_res_blocks: int = 2, *, padding_mode: str = 'border',
               rngs: nnx.Rngs):
    warp.check_padding_mode(padding_mode, 'EditingNet')
    self.image_nc = image_nc
    self.num_layers = num_layers
    self.padding_mode = padding_mode
    self.encoder = FineEncoder(image_nc, ngf, img_f, num_layers, rngs=rngs)
    # AniMo hard-codes 3 output channels (FineDecoder(3, ...)); image_nc is 3 in every config.
    self.decoder = FineDecoder(3, descriptor_nc, ngf, img_f, num_layers, num_res_blocks,
                               rngs=rngs)

  def __call__(self, source: jax.Array, deformation: jax.Array,
               descriptor: jax.Array) -> jax.Array:
    """Source `[B, H, W, C]`, deformation `[B, h, w, 2]`, descriptor `[B, D]` -> `[B, H, W, 3]`.

    AniMo passes the flow and converts it again; passing the WarpingNet's deformation is the same
    computation done once.
    """
    layers.check_image(source, owner='EditingNet', channels=self.image_nc,
                       multiple=2**self.num_layers)
    features = self.encoder(source)
    warped = [warp.warp_image(f, deformation, padding_mode=self.padding_mode) for f in features]
    return self.decoder(warped, descriptor)

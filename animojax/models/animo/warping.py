"""PIRenderer's WarpingNet (ADAIN hourglass flow estimator), as used by AniMo.

Follows RenYurui/PIRender `generators/base_function.py` (ADAINHourglass, ADAINEncoder/Decoder and
their blocks) and `generators/face_model.py` (WarpingNet), with AniMo's changes from
kangyeolk/AnimeCeleb `Animo/models/animo/model.py` and `Animo/utils/functions.py`: a 4th input
channel is dropped before warping, and the warp uses `padding_mode='border'` (configurable here;
PIRenderer used 'zeros').

Submodule names mirror the PyTorch attributes (`hourglass.encoder.encoder0.conv_0`, ...), except the
`flow_out` Sequential, whose `flow_out.0` / `flow_out.2` are `flow_norm` / `flow_conv` here.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from animojax.models.blocks import pirender as layers
from animojax.ops import warp


def _channels(ngf: int, img_f: int, level: int) -> int:
  """Channel count at hourglass level `level` (PIRenderer: min(ngf * 2**level, img_f))."""
  return min(ngf * 2**level, img_f)


class ADAINEncoderBlock(nnx.Module):
  """[ADAIN -> LReLU -> conv 4x4 s2] then [ADAIN -> LReLU -> conv 3x3]; halves H, W."""

  def __init__(self, in_nc: int, out_nc: int, descriptor_nc: int, *, rngs: nnx.Rngs):
    self.conv_0 = layers.conv2d(in_nc, out_nc, 4, stride=2, padding=1, rngs=rngs)
    self.conv_1 = layers.conv2d(out_nc, out_nc, 3, rngs=rngs)
    self.norm_0 = layers.ADAIN(in_nc, descriptor_nc, rngs=rngs)
    self.norm_1 = layers.ADAIN(out_nc, descriptor_nc, rngs=rngs)

  def __call__(self, x: jax.Array, descriptor: jax.Array) -> jax.Array:
    x = self.conv_0(layers.leaky_relu(self.norm_0(x, descriptor)))
    return self.conv_1(layers.leaky_relu(self.norm_1(x, descriptor)))


class ADAINDecoderBlock(nnx.Module):
  """Residual x2 upsampler: ADAIN/LReLU/conv3x3/ADAIN/LReLU/convT + shortcut ADAIN/LReLU/convT."""

  def __init__(self, in_nc: int, out_nc: int, hidden_nc: int, descriptor_nc: int, *,
               rngs: nnx.Rngs):
    self.conv_0 = layers.conv2d(in_nc, hidden_nc, 3, rngs=rngs)
    self.conv_1 = layers.conv_transpose2d(hidden_nc, out_nc, rngs=rngs)
    self.conv_s = layers.conv_transpose2d(in_nc, out_nc, rngs=rngs)
    self.norm_0 = layers.ADAIN(in_nc, descriptor_nc, rngs=rngs)
    self.norm_1 = layers.ADAIN(hidden_nc, descriptor_nc, rngs=rngs)
    self.norm_s = layers.ADAIN(in_nc, descriptor_nc, rngs=rngs)

  def __call__(self, x: jax.Array, descriptor: jax.Array) -> jax.Array:
    shortcut = self.conv_s(layers.leaky_relu(self.norm_s(x, descriptor)))
    dx = self.conv_0(layers.leaky_relu(self.norm_0(x, descriptor)))
    dx = self.conv_1(layers.leaky_relu(self.norm_1(dx, descriptor)))
    return shortcut + dx


class ADAINEncoder(nnx.Module):
  """Input conv 7x7 (no norm/act) then `num_layers` stride-2 ADAIN blocks; returns every output."""

  def __init__(self, image_nc: int, descriptor_nc: int, ngf: int, img_f: int, num_layers: int, *,
               rngs: nnx.Rngs):
    self.num_layers = num_layers
    self.input_layer = layers.conv2d(image_nc, ngf, 7, rngs=rngs)
    for i in range(num_layers):
      block = ADAINEncoderBlock(_channels(ngf, img_f, i), _channels(ngf, img_f, i + 1),
                                descriptor_nc, rngs=rngs)
      setattr(self, f'encoder{i}', block)

  def __call__(self, x: jax.Array, descriptor: jax.Array) -> list[jax.Array]:
    out = self.input_layer(x)
    outs = [out]
    for i in range(self.num_layers):
      out = getattr(self, f'encoder{i}')(out, descriptor)
      outs.append(out)
    return outs


class ADAINDecoder(nnx.Module):
  """Upsampling blocks for levels i = encoder_layers - 1 down to encoder_layers - decoder_layers.

  Each block's output is concatenated with the matching encoder output (the skip).
  """

  def __init__(self, descriptor_nc: int, ngf: int, img_f: int, encoder_layers: int,
               decoder_layers: int, *, rngs: nnx.Rngs):
    self.levels = tuple(range(encoder_layers - decoder_layers, encoder_layers))[::-1]
    for i in self.levels:
      in_nc = _channels(ngf, img_f, i + 1)
      # Every block but the deepest sees [previous block output, encoder skip] concatenated.
      if i != encoder_layers - 1:
        in_nc *= 2
      out_nc = _channels(ngf, img_f, i)
      setattr(self, f'decoder{i}', ADAINDecoderBlock(in_nc, out_nc, out_nc, descriptor_nc,
                                                     rngs=rngs))
    self.output_nc = 2 * _channels(ngf, img_f, self.levels[-1])

  def __call__(self, features: list[jax.Array], descriptor: jax.Array) -> jax.Array:
    features = list(features)
    out = features.pop()
    for i in self.levels:
      out = getattr(self, f'decoder{i}')(out, descriptor)
      out = jnp.concatenate([out, features.pop()], axis=-1)
    return out


class ADAINHourglass(nnx.Module):
  """Encoder + decoder; output has `output_nc` channels at 1 / 2**(enc - dec) of the input size."""

  def __init__(self, image_nc: int, descriptor_nc: int, ngf: int, img_f: int, encoder_layers: int,
               decoder_layers: int, *, rngs: nnx.Rngs):
    if not 0 < decoder_layers <= encoder_layers:
      raise ValueError(
          f'ADAINHourglass: need 0 < decoder_layers <= encoder_layers, got {decoder_layers} '
          f'and {encoder_layers}.')
    self.encoder = ADAINEncoder(image_nc, descriptor_nc, ngf, img_f, encoder_layers, rngs=rngs)
    self.decoder = ADAINDecoder(descriptor_nc, ngf, img_f, encoder_layers, decoder_layers,
                                rngs=rngs)
    self.output_nc = self.decoder.output_nc

  def __call__(self, x: jax.Array, descriptor: jax.Array) -> jax.Array:
    return self.decoder(self.encoder(x, descriptor), descriptor)


class WarpingNet(nnx.Module):
  """Predicts a flow from (source, descriptor) and warps the source with it.

  The flow is in pixel units of the hourglass output grid (source size / 2**(enc - dec), i.e. 1/4
  for the 5/3 configuration); the deformation is built at that resolution and bilinearly resized
  to the source size for the warp.
  """

  def __init__(self, image_nc: int = 3, descriptor_nc: int = 256, ngf: int = 32, img_f: int = 256,
               encoder_layers: int = 5, decoder_layers: int = 3, *,
               padding_mode: str = 'border', rngs: nnx.Rngs):
    warp.check_padding_mode(padding_mode, 'WarpingNet')
    self.image_nc = image_nc
    self.encoder_layers = encoder_layers
    self.padding_mode = padding_mode
    self.hourglass = ADAINHourglass(image_nc, descriptor_nc, ngf, img_f, encoder_layers,
                                    decoder_layers, rngs=rngs)
    self.flow_norm = layers.LayerNorm2d(self.hourglass.output_nc)
    self.flow_conv = layers.conv2d(self.hourglass.output_nc, 2, 7, rngs=rngs)

  def __call__(self, source: jax.Array, descriptor: jax.Array) -> dict[str, jax.Array]:
    """Source `[B, H, W, image_nc]`, descriptor `[B, D]` -> {flow, deformation, warp_image}."""
    layers.check_image(source, owner='WarpingNet', channels=self.image_nc,
                       multiple=2**self.encoder_layers)
    features = self.hourglass(source, descriptor)
    # The flow sets sampling positions: under a bf16 compute policy it is added to the identity
    # grid in float32 (a bf16 position of 100 px would be rounded to 0.5 px; the flow offset itself
    # keeps bf16's relative precision). A no-op in float32.
    flow = self.flow_conv(layers.leaky_relu(self.flow_norm(features))).astype(jnp.float32)
    deformation = warp.flow_to_deformation(flow)
    # AniMo's `_detach_label`: a 4th (label) channel feeds the hourglass but is never warped.
    image = source[..., :3] if source.shape[-1] == 4 else source
    warped = warp.warp_image(image, deformation, padding_mode=self.padding_mode)
    return {'flow': flow, 'deformation': deformation, 'warp_image': warped}

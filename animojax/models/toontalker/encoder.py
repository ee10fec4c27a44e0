"""LIA's encoders as ToonTalker uses them: the appearance encoder (multi-scale) and the motion
encoder (one global code per image).

OpenTalker/ToonTalker `networks/encoder.py` (`EncoderApp3`, `EncoderApp`, the latter identical to
wyhsirius/LIA `networks/encoder.py`): a 1x1 ConvLayer to the widest map, then one downsampling
ResBlock per octave down to 4²; the motion encoder ends with a 4x4 EqualConv2d (no bias) to a
`style_dim` code.
"""

import math

from flax import nnx

from animojax.models.blocks import stylegan2


def channel_table(width: float = 1.0, channel_multiplier: int = 1):
  """channels(res): LIA/StyleGAN2's {≤32: 512, 64: 256·m, 128: 128·m, ...}, times `width`
  (the size knob of the reduced test/demo models; 1.0 is the released network)."""

  def channels(res: int) -> int:
    full = 512 if res <= 32 else (16384 // res) * channel_multiplier
    return max(1, int(round(full * width)))

  return channels


class _Trunk(nnx.Module):
  """ConvLayer 1x1 (3 → channels(size)) then ResBlocks size → 4²."""

  def __init__(self, size: int, channels, *, rngs: nnx.Rngs):
    log_size = int(math.log2(size))
    convs = [stylegan2.ConvLayer(3, channels(size), 1, rngs=rngs)]
    in_ch = channels(size)
    for i in range(log_size, 2, -1):
      out_ch = channels(2**(i - 1))
      convs.append(stylegan2.ResBlock(in_ch, out_ch, rngs=rngs))
      in_ch = out_ch
    self.convs = nnx.List(convs)

  def trunk(self, x):
    maps = []
    for conv in self.convs:
      x = conv(x)
      maps.append(x)
    return maps  # size², size/2², ..., 4²


class AppearanceEncoder(_Trunk):
  """`EncoderApp3`: returns the backward transformer's memories [4², 16², 64²] and the
  synthesis skip features [8², 16², ..., size²] (PyTorch `res[::-1][1:]`)."""

  def __call__(self, x):
    maps = self.trunk(x)
    return [maps[-1], maps[-3], maps[-5]], maps[::-1][1:]


class MotionEncoder(_Trunk):
  """`EncoderApp`: the trunk plus a 4x4 valid EqualConv2d → [B, style_dim]."""

  def __init__(self, size: int, channels, style_dim: int, *, rngs: nnx.Rngs):
    super().__init__(size, channels, rngs=rngs)
    self.convs.append(stylegan2.EqualConv2d(channels(4), style_dim, 4, bias=False, rngs=rngs))

  def __call__(self, x):
    return self.trunk(x)[-1][:, 0, 0, :]

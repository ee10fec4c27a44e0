"""CycleGAN's networks (Zhu et al., ICCV 2017) in NHWC: the ResNet generator and the PatchGAN.

As junyanz/pytorch-CycleGAN-and-pix2pix `models/networks.py` builds them for CycleGAN
(`--netG resnet_9blocks --netD basic --norm instance`, no dropout):

* `ResnetGenerator`: reflection-pad 3 → conv 7×7 → IN → ReLU; 2 × [conv 3×3 stride 2 → IN →
  ReLU]; `num_blocks` residual blocks [reflection-pad 1 → conv 3×3 → IN → ReLU → reflection-pad 1
  → conv 3×3 → IN, + x]; 2 × [transposed conv 3×3 stride 2 (output padding 1) → IN → ReLU];
  reflection-pad 3 → conv 7×7 → tanh. With InstanceNorm every conv has a bias.
* `PatchDiscriminator` (`basic`, the 70×70 PatchGAN for `num_layers=3`): conv 4×4 s2 → LReLU 0.2;
  `num_layers - 1` × [conv 4×4 s2 → IN → LReLU]; conv 4×4 s1 → IN → LReLU; conv 4×4 s1 → 1 map
  (30×30 for 256² inputs). Widths double from `ndf` up to 8·`ndf`.

InstanceNorm has no affine parameters and always uses the statistics of the image at hand (the
current upstream `track_running_stats=False`; old checkpoints' running statistics are ignored by
`convert/cyclegan_torch.py`, as upstream's own loader deletes them). Weights N(0, 0.02), biases 0
(upstream `init_type normal`). `in_channels` may be 4 (CycleGAN + angle: image ‖ angle plane),
and the discriminator may have `out_channels` > 1 (an auxiliary regression map).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from animojax.models.blocks import pirender as layers

LRELU_SLOPE = 0.2  # Upstream's LeakyReLU(0.2) in the PatchGAN.


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
  """`nn.ReflectionPad2d(pad)` on NHWC."""
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='reflect')


class ResnetBlock(nnx.Module):
  """x + IN(conv(pad(ReLU(IN(conv(pad(x))))))), reflection padding."""

  def __init__(self, channels: int, *, rngs: nnx.Rngs):
    self.conv_0 = layers.conv2d(channels, channels, 3, padding=0, rngs=rngs)
    self.conv_1 = layers.conv2d(channels, channels, 3, padding=0, rngs=rngs)
    self.norm = layers.InstanceNorm()

  def __call__(self, x: jax.Array) -> jax.Array:
    h = jax.nn.relu(self.norm(self.conv_0(reflect_pad(x, 1))))
    return x + self.norm(self.conv_1(reflect_pad(h, 1)))


class ResnetGenerator(nnx.Module):
  """CycleGAN's `resnet_{num_blocks}blocks` generator; returns named intermediates."""

  NUM_DOWN = 2

  def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
               num_blocks: int = 9, *, rngs: nnx.Rngs):
    self.in_channels = in_channels
    self.stem = layers.conv2d(in_channels, ngf, 7, padding=0, rngs=rngs)
    self.down = nnx.List([layers.conv2d(ngf * 2**i, ngf * 2**(i + 1), 3, stride=2, padding=1,
                                        rngs=rngs) for i in range(self.NUM_DOWN)])
    width = ngf * 2**self.NUM_DOWN
    self.blocks = nnx.List([ResnetBlock(width, rngs=rngs) for _ in range(num_blocks)])
    self.up = nnx.List([layers.conv_transpose2d(width // 2**i, width // 2**(i + 1), rngs=rngs)
                        for i in range(self.NUM_DOWN)])
    self.head = layers.conv2d(ngf, out_channels, 7, padding=0, rngs=rngs)
    self.norm = layers.InstanceNorm()

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """x `[B, H, W, in_channels]` in [-1, 1] (H, W divisible by 4) -> {'bottleneck', 'image'}."""
    layers.check_image(x, owner='ResnetGenerator', channels=self.in_channels,
                       multiple=2**self.NUM_DOWN)
    h = jax.nn.relu(self.norm(self.stem(reflect_pad(x, 3))))
    for conv in self.down:
      h = jax.nn.relu(self.norm(conv(h)))
    for block in self.blocks:
      h = block(h)
    bottleneck = h
    for conv in self.up:
      h = jax.nn.relu(self.norm(conv(h)))
    image = jnp.tanh(self.head(reflect_pad(h, 3)))
    return {'bottleneck': bottleneck, 'image': image}


class PatchDiscriminator(nnx.Module):
  """CycleGAN's `NLayerDiscriminator` (70×70 receptive field for `num_layers=3`)."""

  def __init__(self, in_channels: int = 3, ndf: int = 64, num_layers: int = 3,
               out_channels: int = 1, *, rngs: nnx.Rngs):
    widths = [ndf * min(2**n, 8) for n in range(num_layers + 1)]
    strides = [2] * num_layers + [1]
    cins = [in_channels] + widths[:-1]
    self.convs = nnx.List([layers.conv2d(cin, cout, 4, stride=s, padding=1, rngs=rngs)
                           for cin, cout, s in zip(cins, widths, strides)])
    self.head = layers.conv2d(widths[-1], out_channels, 4, padding=1, rngs=rngs)
    self.norm = layers.InstanceNorm()

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """x `[B, H, W, C]` -> {'features': last hidden map, 'logits': `[B, h, w, out_channels]`}."""
    h = x
    for i, conv in enumerate(self.convs):
      h = conv(h)
      if i > 0:  # Upstream: no normalisation after the first conv.
        h = self.norm(h)
      h = jax.nn.leaky_relu(h, LRELU_SLOPE)
    return {'features': h, 'logits': self.head(h)}

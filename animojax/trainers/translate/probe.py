"""The synthetic benchmark's judge: a small CNN that reads the hidden semantic state and the
domain of a synthetic image, trained on the real (not translated) train images of both domains.

A translation should keep the face's pose and expression and land in the other domain. On the
synthetic data the source's state is known exactly, so the probe's reading of a translation is
compared with it: in-plane angle (roll) error in degrees, mean error of the three head angles,
mean error of the 17 expression morphs, and the fraction of translations the probe's domain
head assigns to the target domain. The probe's own error on real test images of the target
domain is reported next to them (the floor of the first three numbers).

Training is deterministic (fixed seed, fixed data), runs on one local device of every process
(no collective) and is cached in the workdir (`probe.npz`), so re-evaluating a run is cheap.
"""

import os

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animojax.data import sources
from animojax.face3d import semantics
from animojax.models.blocks import initializers
from animojax.models.blocks import pirender as layers
from animojax.trainers.translate import common
from animojax.utils import tree as tree_util

NUM_MORPHS = semantics.NUM_MORPHS
WIDTHS = (16, 32, 64, 128)
BATCH = 32


class Probe(nnx.Module):
  """4 × [conv 3×3 s2 → LReLU] → mean pool → linear: 20 semantics (morphs, angles / 20°) +
  1 domain logit (real > 0)."""

  def __init__(self, *, rngs):
    cins = (3,) + WIDTHS[:-1]
    self.convs = nnx.List([layers.conv2d(i, o, 3, stride=2, rngs=rngs)
                           for i, o in zip(cins, WIDTHS)])
    self.head = layers.linear(WIDTHS[-1], semantics.NUM_SEMANTICS + 1, rngs=rngs)

  def __call__(self, x):
    for conv in self.convs:
      x = jax.nn.leaky_relu(conv(x), 0.2)
    return self.head(x.mean(axis=(1, 2)))


def _targets(semantic):
  scaled = np.array(semantic, np.float32)
  scaled[:, NUM_MORPHS:] /= common.ANGLE_SCALE_DEG
  return scaled


def _load_split(config, split):
  """{domain: (images [N, S, S, 3] in [-1, 1], semantic [N, 20])} of a synthetic split."""
  out = {}
  for domain in common.DOMAINS:
    source, _ = sources.open_split(config.data[domain].name, split, config.data.data_dir)
    examples = [source[i] for i in range(len(source))]
    out[domain] = (np.stack([e['image'] for e in examples]).astype(np.float32) / 127.5 - 1.0,
                   np.stack([e['semantic'] for e in examples]).astype(np.float32))
  return out


def train(config, workdir=None):
  """(graphdef, params) of the probe for `config.data`, from `workdir/probe.npz` when cached
  (`config.eval.probe_steps` Adam steps of batch 32)."""
  model = Probe(rngs=initializers.KeyStream(0))
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  cache = os.path.join(workdir, 'probe.npz') if workdir else None
  if cache and os.path.exists(cache):
    return graphdef, tree_util.restore_like(tree_util.load_npz_flat(cache), params)
  data = _load_split(config, 'train')
  images = np.concatenate([data[d][0] for d in common.DOMAINS])
  targets = np.concatenate([_targets(data[d][1]) for d in common.DOMAINS])
  labels = np.concatenate([np.full(len(data[d][0]), i, np.float32)
                           for i, d in enumerate(common.DOMAINS)])
  tx = optax.adam(2e-3)

  def loss_fn(p, x, y, label):
    out = nnx.merge(graphdef, p)(x)
    return (jnp.mean(jnp.square(out[:, :-1] - y))
            + 0.1 * jnp.mean(optax.sigmoid_binary_cross_entropy(out[:, -1], label)))

  @jax.jit
  def step(p, opt, x, y, label):
    grads = jax.grad(loss_fn)(p, x, y, label)
    updates, opt = tx.update(grads, opt, p)
    return optax.apply_updates(p, updates), opt

  rng = np.random.default_rng(0)
  opt = tx.init(params)
  for _ in range(config.eval.get('probe_steps', 600)):
    idx = rng.integers(len(images), size=BATCH)
    params, opt = step(params, opt, images[idx], targets[idx], labels[idx])
  params = jax.device_get(params)
  if cache and jax.process_index() == 0:
    tree_util.save_npz(cache, params)
  return graphdef, params


def make_reader(graphdef, params):
  """read(images) -> (semantic [B, 20] with angles in degrees, real-domain probability [B])."""
  apply = jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))

  def read(images):
    out = np.asarray(apply(params, jnp.asarray(images, jnp.float32)))
    semantic = out[:, :-1].copy()
    semantic[:, NUM_MORPHS:] *= common.ANGLE_SCALE_DEG
    return semantic, 1.0 / (1.0 + np.exp(-out[:, -1]))

  return read


def errors(read_semantic, truth):
  """Per-image errors: roll (°), mean |Δ| of the 3 angles (°), mean |Δ| of the 17 morphs."""
  diff = np.abs(read_semantic - truth)
  return {'roll_error': diff[:, common.ROLL_INDEX],
          'angle_error': diff[:, NUM_MORPHS:].mean(axis=1),
          'expression_error': diff[:, :NUM_MORPHS].mean(axis=1)}

"""The paper's method 2: encoder-decoder CNNs trained with a reconstruction loss, both directions.

One network per direction, each trained with the L1 distance between its output and an image of
the target domain (the paper says only "comparing the output image with the destination image";
L1 is our choice). Pairs (`config.loss.pairing`):

* 'random': row i of the anime batch with row i of the real batch: two independent uniform draws,
  which is all that unpaired data offer (the paper's data were unpaired). The optimum is then the
  target domain's mean image whatever the input: the method cannot learn a per-image mapping.
* 'synthetic': true pairs from the synthetic data's hidden state: the target of an anime frame
  (identity i, semantic state s) is the real-domain identity i rendered at s (and vice versa), on
  the host in the input pipeline (`host_transform`). Identity i of one domain standing for
  identity i of the other is the benchmark's convention, not something an image determines.
"""

import functools

import jax
import numpy as np

from animojax.models.translate import encdec as nets_lib
from animojax.trainers.common import precision
from animojax.trainers.translate import common

NET = {'anime->real': 'encdec_to_real', 'real->anime': 'encdec_to_anime'}
GROUPS = {'encdec': tuple(sorted(NET.values()))}
PAIRINGS = ('random', 'synthetic')


def _pairing(config):
  pairing = config.loss.pairing
  if pairing not in PAIRINGS:
    raise ValueError(f'config.loss.pairing={pairing!r}: choose one of {PAIRINGS}.')
  return pairing


def build_nets(config, rngs):
  return {name: nets_lib.EncoderDecoder(config.model.ch, config.model.num_layers, rngs=rngs)
          for name in NET.values()}


def init_extra(config):
  del config
  return {}


def batch_fields(config):
  return ('image', 'paired') if _pairing(config) == 'synthetic' else ('image',)


def data_fields(config):
  if _pairing(config) == 'synthetic':
    return ('image', 'identity', 'semantic')
  return ('image',)


def loss_terms(config):
  del config
  return ('l1_to_real', 'l1_to_anime')


@functools.lru_cache(maxsize=8192)
def _render(config_name, identity, semantic_bytes):
  """uint8 [S, S, 3]: `identity` of a synthetic config at a semantic state, rendered once.

  Training draws from the dataset's fixed frames (960 per domain at 64²), so after the first
  epoch every pair is a cache hit and rendering stops being the bottleneck (≈12 KiB each).
  """
  from animojax.synthetic import dataset as synthetic  # pylint: disable=g-import-not-at-top
  semantic = np.frombuffer(semantic_bytes, np.float32)[None]
  return synthetic.render_uint8(config_name, identity, semantic)['image'][0]


def _render_pairs(names, batch):
  """Adds `paired`: each frame's identity and semantic state rendered in the other domain."""
  out = {}
  for domain in common.DOMAINS:
    other_config = names[common.other(domain)]
    ids = batch[domain]['identity']
    semantic = np.asarray(batch[domain]['semantic'], np.float32)
    paired = np.stack([_render(other_config, int(i), s.tobytes()) for i, s in zip(ids, semantic)])
    out[domain] = {'image': batch[domain]['image'],
                   'paired': paired.astype(np.float32) / 127.5 - 1.0}
  return out


def host_transform(config, split):
  """For 'synthetic' pairing, the renderer of the true pairs (run in the input pipeline)."""
  del split
  if _pairing(config) != 'synthetic':
    return None
  names = {}
  for domain in common.DOMAINS:
    builder, _, name = config.data[domain].name.partition('/')
    if builder != 'synthetic_heads':
      raise ValueError(f"config.loss.pairing='synthetic' needs synthetic_heads data, but "
                       f'config.data.{domain}.name is {config.data[domain].name!r}; use '
                       "pairing='random' for unpaired data.")
    names[domain] = name
  return functools.partial(_render_pairs, names)


def make_translate(graphdefs, config):
  del config

  def translate(params, images, direction, angle=None):
    del angle
    return common.apply(graphdefs, params, NET[direction], images)

  return translate


def make_train_step(graphdefs, tx, config, *, optim, metrics_collection):
  dtype = precision.compute_dtype(config.compute_dtype)
  translate = make_translate(graphdefs, config)
  synthetic = _pairing(config) == 'synthetic'

  def train_step(state, batch, base_rng):
    del base_rng  # No randomness: no augmentation (the paper names none).
    step = state['step']

    def loss_fn(params):
      p = precision.cast_floating(params, dtype)
      terms = {}
      for direction in common.DIRECTIONS:
        source, target = common.split_direction(direction)
        wanted = batch[source]['paired'] if synthetic else batch[target]['image']
        out = translate(p, batch[source]['image'].astype(dtype), direction)['image']
        terms[f'l1_to_{target}'] = common.l1(out, wanted)
      return sum(terms.values()), terms

    (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state['params'])
    lr = optim.learning_rate(config.optim, step)
    params, opt = optim.apply_updates(tx, state['params'], grads, state['opt'], lr, GROUPS)
    new_state = {'step': step + 1, 'params': params, 'opt': opt, 'extra': state['extra']}
    return new_state, metrics_collection.single_from_model_output(loss=loss, step=step, **terms)

  return train_step

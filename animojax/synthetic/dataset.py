"""The `synthetic_heads` dataset: configs, example generators and ground-truth rendering.

Every frame of every identity is a pure function of (config seed, identity, frame): its semantic
vector does not depend on the domain, so anime identity i frame f and human identity i frame f
share the same hidden semantic state, and `render_target` can render the exact ground truth of
any identity at any semantic vector (e.g. to score a cross-domain reenactment).

Train and test identities are disjoint: train ids are 0 .. num_train-1, test ids follow them.
"""

from collections.abc import Iterator
import concurrent.futures
import dataclasses
import multiprocessing
import os

import numpy as np

from animojax.face3d import embedded
from animojax.face3d import layouts
from animojax.synthetic import anime
from animojax.synthetic import human
from animojax.synthetic import identities
from animojax.synthetic import semantics

DOMAINS = ('anime', 'human')
SPLITS = ('train', 'test')
# Per-frame translation jitter (model units) on top of each person's base translation.
TRANS_JITTER = 0.005
_SEMANTIC_STREAM = 11  # Seed-sequence tags of the per-identity random streams.
_TRANS_STREAM = 12


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """What to generate.

  Attributes:
    domain: 'anime' or 'human'.
    image_size: S, images are S x S.
    num_train_identities: identities 0 .. num_train_identities - 1 form the train split.
    num_test_identities: the next num_test_identities ids form the test split.
    frames_per_identity: frames (semantic vectors) rendered per identity.
    seed: dataset seed; identities and semantics are pure functions of it.
  """
  domain: str
  image_size: int
  num_train_identities: int
  num_test_identities: int
  frames_per_identity: int
  seed: int = 0

  def __post_init__(self):
    if self.domain not in DOMAINS:
      raise ValueError(f'SyntheticConfig.domain must be one of {DOMAINS}, got {self.domain!r}.')
    for field in ('image_size', 'num_train_identities', 'num_test_identities',
                  'frames_per_identity'):
      if getattr(self, field) < 1:
        raise ValueError(f'SyntheticConfig.{field} must be >= 1, got {getattr(self, field)}.')

  def identities(self, split: str) -> range:
    """Identity ids of a split."""
    if split == 'train':
      return range(self.num_train_identities)
    if split == 'test':
      return range(self.num_train_identities,
                   self.num_train_identities + self.num_test_identities)
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}.')


CONFIGS: dict[str, SyntheticConfig] = {
    'anime_64': SyntheticConfig('anime', 64, 40, 8, 24),
    'human_64': SyntheticConfig('human', 64, 40, 8, 24),
    'anime_256': SyntheticConfig('anime', 256, 200, 20, 32),
    'human_256': SyntheticConfig('human', 256, 200, 20, 32),
}
# Tiny configs for tests (not TFDS builder configs; pass them to the builder explicitly).
TEST_CONFIGS: dict[str, SyntheticConfig] = {
    'anime_16': SyntheticConfig('anime', 16, 2, 2, 3),
    'human_16': SyntheticConfig('human', 16, 2, 2, 3),
}


def get_config(config: str | SyntheticConfig) -> SyntheticConfig:
  """Resolves a config name (from CONFIGS or TEST_CONFIGS) or passes a config through."""
  if isinstance(config, SyntheticConfig):
    return config
  if config in CONFIGS:
    return CONFIGS[config]
  if config in TEST_CONFIGS:
    return TEST_CONFIGS[config]
  raise ValueError(f'Unknown synthetic_heads config {config!r}; expected one of '
                   f'{sorted(CONFIGS) + sorted(TEST_CONFIGS)} or a SyntheticConfig.')


def frame_semantics(config: str | SyntheticConfig, identity: int) -> np.ndarray:
  """The semantic vectors float32[F, 20] of an identity's frames (domain independent)."""
  config = get_config(config)
  rng = np.random.default_rng([config.seed, int(identity), _SEMANTIC_STREAM])
  return semantics.sample_semantics(rng, config.frames_per_identity)


def frame_trans(config: str | SyntheticConfig, identity: int) -> np.ndarray:
  """Per-frame human translations float32[F, 3]: the person's base plus a tiny jitter."""
  config = get_config(config)
  person = identities.human_person(config.seed, identity)
  rng = np.random.default_rng([config.seed, int(identity), _TRANS_STREAM])
  jitter = rng.normal(0.0, TRANS_JITTER, (config.frames_per_identity, 3))
  return (person.trans + jitter).astype(np.float32)


def human_coeff(config: str | SyntheticConfig, identity: int, semantic: np.ndarray,
                trans: np.ndarray | None = None) -> np.ndarray:
  """Deep3DFaceRecon coefficients float32[N, 257] of a person at semantic vectors [N, 20].

  exp = semantic[:, :17] @ true_phi; angles are the semantic angles in radians; trans defaults
  to zeros (a drive from the anime domain carries no translation).
  """
  config = get_config(config)
  semantic = np.asarray(semantic, np.float32)
  if semantic.ndim != 2 or semantic.shape[1] != semantics.NUM_SEMANTICS:
    raise ValueError(f'semantic must be [N, {semantics.NUM_SEMANTICS}], got {semantic.shape}.')
  n = semantic.shape[0]
  person = identities.human_person(config.seed, identity)
  model = embedded.load_face_model()
  trans = np.zeros((n, 3), np.float32) if trans is None else np.broadcast_to(
      np.asarray(trans, np.float32), (n, 3))
  coeff = np.zeros((n, layouts.DEEP3D.dim), np.float32)
  s = layouts.DEEP3D.slices
  coeff[:, s['id']] = person.id_coeff
  coeff[:, s['exp']] = semantic[:, :semantics.NUM_MORPHS] @ model.true_phi
  coeff[:, s['tex']] = person.tex_coeff
  coeff[:, s['angle']] = np.radians(semantic[:, semantics.ANGLE_SLICE])
  coeff[:, s['gamma']] = person.gamma
  coeff[:, s['trans']] = trans
  return coeff


def render_uint8(config: str | SyntheticConfig, identity: int, semantic: np.ndarray,
                 trans: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """Renders an identity at semantic vectors [N, 20]: {'image': uint8[N, S, S, 3], ...}.

  Anime adds 'alpha' uint8[N, S, S, 1]; human adds 'coeff' float32[N, 257].
  """
  config = get_config(config)
  semantic = np.asarray(semantic, np.float32)
  if config.domain == 'anime':
    character = identities.anime_character(config.seed, identity)
    rgb, alpha = anime.render_anime(character, semantic, config.image_size)
    return {'image': rgb, 'alpha': alpha}
  coeff = human_coeff(config, identity, semantic, trans)
  person = identities.human_person(config.seed, identity)
  return {'image': human.render_human(person, coeff, config.image_size), 'coeff': coeff}


def render_target(config: str | SyntheticConfig, identity: int, semantic: np.ndarray,
                  trans: np.ndarray | None = None) -> np.ndarray:
  """Ground-truth images float32[N, S, S, 3] in [-1, 1] of `identity` at `semantic` [N, 20].

  Uses the config's domain and seed. Anime images are composited on white (as stored). For the
  human domain, `trans` [N, 3] or [3] defaults to zeros, because a drive from the anime domain
  carries no translation; pass an example's `coeff[254:257]` to reproduce it exactly.
  """
  image = render_uint8(config, identity, semantic, trans)['image']
  return image.astype(np.float32) / 127.5 - 1.0


def _identity_examples(config: SyntheticConfig, identity: int) -> list[tuple[str, dict]]:
  """All frames of one identity, rendered in one vectorised batch."""
  semantic = frame_semantics(config, identity)
  trans = frame_trans(config, identity) if config.domain == 'human' else None
  rendered = render_uint8(config, identity, semantic, trans)
  if config.domain == 'anime':
    pose = semantics.semantic_to_anime_pose(semantic)
    style = identities.anime_style(config.seed, identity)
  examples = []
  for frame in range(config.frames_per_identity):
    example = {'image': rendered['image'][frame], 'semantic': semantic[frame],
               'identity': identity, 'frame': frame}
    if config.domain == 'anime':
      example.update(alpha=rendered['alpha'][frame], pose=pose[frame], style=style)
    else:
      example['coeff'] = rendered['coeff'][frame]
    examples.append((f'{identity:06d}_{frame:04d}', example))
  return examples


def generate_examples(config: str | SyntheticConfig, split: str, *,
                      num_workers: int | None = None) -> Iterator[tuple[str, dict[str, object]]]:
  """Yields (key, example) sorted by identity then frame; keys are f'{identity:06d}_{frame:04d}'.

  Examples hold numpy arrays (uint8 images); all frames of one identity are rendered in one
  vectorised batch. Anime: image, alpha, pose (semantic with angles as pitch/roll/yaw),
  semantic, identity, style, frame. Human: image, coeff, semantic, identity, frame.

  `num_workers` > 1 renders identities in that many processes (None: one per CPU for splits of
  16 or more identities); the output is identical and in the same order, streamed.
  """
  config = get_config(config)
  ids = config.identities(split)
  if num_workers is None:
    num_workers = (os.cpu_count() or 1) if len(ids) >= 16 else 1
  if num_workers <= 1:
    for identity in ids:
      yield from _identity_examples(config, identity)
    return
  # 'spawn': the parent may have started JAX's threads, which fork would copy mid-flight.
  context = multiprocessing.get_context('spawn')
  with concurrent.futures.ProcessPoolExecutor(min(num_workers, len(ids)),
                                              mp_context=context) as pool:
    for examples in pool.map(_identity_examples, [config] * len(ids), ids):
      yield from examples

"""Deterministic per-identity parameters of the synthetic anime characters and human people.

Each identity is a pure function of (seed, identity): the generator is seeded with
SeedSequence([seed, identity, domain]), so identities can be re-created anywhere (e.g. to render
evaluation targets) without storing them.
"""

import colorsys
import dataclasses

import numpy as np

_ANIME_DOMAIN = 1
_HUMAN_DOMAIN = 2
NUM_ANIME_STYLES = 4


def _rng(seed: int, identity: int, domain: int) -> np.random.Generator:
  if identity < 0:
    raise ValueError(f'identity must be >= 0, got {identity}.')
  return np.random.default_rng([int(seed), int(identity), domain])


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
  return tuple(float(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


@dataclasses.dataclass(frozen=True)
class AnimeCharacter:
  """Look of one anime character. Lengths are in head units (head half-width ~ 1).

  Colours are RGB floats in [0, 1]. `style` indexes `anime.STYLE_NAMES`.
  """
  identity: int
  style: int
  skin: tuple[float, float, float]
  hair: tuple[float, float, float]
  eye: tuple[float, float, float]
  clothes: tuple[float, float, float]
  face_width: float  # Half-width of the face (cheeks).
  chin_y: float  # Height of the chin tip (negative, below the head centre).
  eye_width: float  # Half-width of an eye.
  eye_height: float  # Height of the open upper lid above the eye line.
  eye_spacing: float  # |x| of each eye centre.
  eye_y: float
  eye_tilt: float  # How much the outer corner is raised.
  iris_size: float  # Iris half-width as a fraction of the eye half-width.
  brow_thickness: float
  brow_y: float  # Brow height above the eye line.
  mouth_width: float  # Scale of the mouth shapes.
  hair_length: int  # 0 short, 1 shoulder-length bob, 2 long.
  fringe_spikes: int
  fringe_y: float  # Height of the fringe tips.
  fringe_jitter: float
  fringe_phase: float
  sidelock_length: float
  ahoge: bool  # A single upright strand on top of the head.
  blush: bool
  collar: int  # 0 round collar, 1 sailor collar, 2 hoodie.


@dataclasses.dataclass(frozen=True, eq=False)
class HumanPerson:
  """Look of one synthetic person: Deep3DFaceRecon-style coefficients plus what they lack.

  Attributes:
    id_coeff: float32[80] shape coefficients of the embedded face model.
    tex_coeff: float32[80] texture coefficients; tex[0] = skin lightness, tex[1] = redness,
      tex[2] = yellowness, tex[3] = lip redness, tex[4] = cheek flush (others unused).
    gamma: float32[27] spherical-harmonics lighting, Deep3DFaceRecon layout ([3 colours, 9]
      flattened, 0.8 added to each colour's DC term at render time).
    trans: float32[3] base translation (model units, |t| <= 0.03).
    hair, eye, background, clothes: RGB colours in [0, 1].
    hair_style: 0 short, 1 medium (ear-length), 2 long, 3 buzz cut.
  """
  identity: int
  id_coeff: np.ndarray
  tex_coeff: np.ndarray
  gamma: np.ndarray
  trans: np.ndarray
  hair: tuple[float, float, float]
  eye: tuple[float, float, float]
  background: tuple[float, float, float]
  clothes: tuple[float, float, float]
  hair_style: int


def _anime_hair_colour(rng: np.random.Generator) -> tuple[float, float, float]:
  kind = rng.random()
  if kind < 0.35:  # Natural: black, brown, blonde.
    return _hsv(rng.uniform(0.04, 0.12), rng.uniform(0.3, 0.75), rng.uniform(0.2, 0.95))
  if kind < 0.45:  # Silver / white.
    return _hsv(rng.uniform(0.55, 0.7), rng.uniform(0.03, 0.12), rng.uniform(0.78, 0.92))
  return _hsv(rng.random(), rng.uniform(0.35, 0.75), rng.uniform(0.55, 0.95))


def anime_style(seed: int, identity: int) -> int:
  """Style of an identity: a seeded permutation per block of 4 ids, so any 4 consecutive
  identities starting at a multiple of 4 cover all styles (small splits stay balanced)."""
  block = np.random.default_rng([int(seed), int(identity) // NUM_ANIME_STYLES, 3])
  return int(block.permutation(NUM_ANIME_STYLES)[identity % NUM_ANIME_STYLES])


def anime_character(seed: int, identity: int) -> AnimeCharacter:
  """Deterministic anime character number `identity` of dataset seed `seed`."""
  rng = _rng(seed, identity, _ANIME_DOMAIN)
  skin_v = rng.uniform(0.9, 1.0)
  return AnimeCharacter(
      identity=int(identity),
      style=anime_style(seed, identity),
      skin=_hsv(rng.uniform(0.03, 0.08), rng.uniform(0.1, 0.28), skin_v),
      hair=_anime_hair_colour(rng),
      eye=_hsv(rng.random(), rng.uniform(0.45, 0.85), rng.uniform(0.45, 0.9)),
      clothes=_hsv(rng.random(), rng.uniform(0.2, 0.7), rng.uniform(0.35, 0.9)),
      face_width=float(rng.uniform(0.86, 0.96)),
      chin_y=float(rng.uniform(-1.12, -1.0)),
      eye_width=float(rng.uniform(0.165, 0.2)),
      eye_height=float(rng.uniform(0.17, 0.23)),
      eye_spacing=float(rng.uniform(0.36, 0.42)),
      eye_y=float(rng.uniform(-0.3, -0.22)),
      eye_tilt=float(rng.uniform(-0.02, 0.05)),
      iris_size=float(rng.uniform(0.58, 0.72)),
      brow_thickness=float(rng.uniform(0.7, 1.3)),
      brow_y=float(rng.uniform(0.24, 0.3)),
      mouth_width=float(rng.uniform(0.85, 1.15)),
      hair_length=int(rng.integers(0, 3)),
      fringe_spikes=int(rng.integers(5, 9)),
      fringe_y=float(rng.uniform(0.12, 0.24)),
      fringe_jitter=float(rng.uniform(0.0, 0.08)),
      fringe_phase=float(rng.uniform(-0.5, 0.5)),
      sidelock_length=float(rng.uniform(0.5, 1.15)),
      ahoge=bool(rng.random() < 0.3),
      blush=bool(rng.random() < 0.5),
      collar=int(rng.integers(0, 3)),
  )


def human_person(seed: int, identity: int) -> HumanPerson:
  """Deterministic person number `identity` of dataset seed `seed`."""
  rng = _rng(seed, identity, _HUMAN_DOMAIN)
  id_coeff = np.clip(rng.normal(0.0, 1.0, 80), -2.5, 2.5).astype(np.float32)
  tex = np.clip(rng.normal(0.0, 1.0, 80), -2.5, 2.5).astype(np.float32)
  gamma = np.zeros((3, 9), np.float32)
  # One light shared by the colour channels (real light is mostly white): from above (Y1 < 0
  # means brighter where n_y > 0), from the front, from a random side; slight colour cast.
  direction = np.array([-rng.uniform(0.04, 0.14), rng.uniform(0.05, 0.14),
                        rng.uniform(-0.12, 0.12)], np.float32)
  cast = 1.0 + rng.normal(0.0, 0.04, 3).astype(np.float32)
  gamma[:, 0] = rng.normal(0.0, 0.06) + rng.normal(0.0, 0.02, 3)
  gamma[:, 1:4] = direction[None, :] * cast[:, None]
  gamma[:, 4:] = rng.normal(0.0, 0.025, (1, 5)) + rng.normal(0.0, 0.005, (3, 5))
  trans = rng.uniform(-0.03, 0.03, 3).astype(np.float32)
  hair_kind = rng.random()
  if hair_kind < 0.3:  # Black / near-black.
    hair = _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.2, 0.5), rng.uniform(0.06, 0.18))
  elif hair_kind < 0.75:  # Browns.
    hair = _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.4, 0.7), rng.uniform(0.2, 0.5))
  elif hair_kind < 0.9:  # Blonde.
    hair = _hsv(rng.uniform(0.1, 0.13), rng.uniform(0.35, 0.6), rng.uniform(0.6, 0.85))
  else:  # Red / auburn or grey.
    hair = (_hsv(rng.uniform(0.02, 0.05), rng.uniform(0.55, 0.8), rng.uniform(0.35, 0.6))
            if rng.random() < 0.6 else _hsv(0.08, 0.05, rng.uniform(0.55, 0.8)))
  eye_kind = rng.random()
  eye = (_hsv(rng.uniform(0.06, 0.1), rng.uniform(0.5, 0.8), rng.uniform(0.15, 0.4))
         if eye_kind < 0.65 else
         _hsv(rng.uniform(0.5, 0.6), rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.7)))
  return HumanPerson(
      identity=int(identity),
      id_coeff=id_coeff,
      tex_coeff=tex,
      gamma=gamma.reshape(27),
      trans=trans,
      hair=hair,
      eye=eye,
      background=_hsv(rng.random(), rng.uniform(0.05, 0.3), rng.uniform(0.55, 0.9)),
      clothes=_hsv(rng.random(), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.8)),
      hair_style=int(rng.choice(4, p=[0.35, 0.3, 0.25, 0.1])),
  )

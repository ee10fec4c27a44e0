"""The hidden semantic state shared by both synthetic domains, and how to sample it.

Every synthetic frame (anime or human) is rendered from one float32[20] semantic vector
(`animojax.face3d.semantics`): 17 AnimeCeleb morph weights in [0, 1] followed by the head angles
pitch, yaw, roll in degrees (3DMM order). The synthetic anime `pose` stores the angles in the
column order AniMo's runner expects of AnimeCeleb's CSV (`ANIME_ANGLE_COLUMNS`). Because both
domains are rendered from the same vector, a cross-domain reenactment can be scored against the
exact target image.

Side convention: `*_left` / `*_right` are the character's (person's) OWN left / right. With the
head facing the camera, the own-left eye/brow appears on the RIGHT half of the image.
"""

import numpy as np

from animojax.face3d import semantics as face_semantics

# The conventions are face3d's; re-exported because the renderers' callers, the TFDS builders'
# dummy-data scripts and the tests read them through this module.
MORPH_NAMES = face_semantics.MORPH_NAMES
ANGLE_NAMES = face_semantics.ANGLE_NAMES
SEMANTIC_NAMES = face_semantics.SEMANTIC_NAMES
NUM_MORPHS = face_semantics.NUM_MORPHS
NUM_SEMANTICS = face_semantics.NUM_SEMANTICS
ANIME_ANGLE_COLUMNS = face_semantics.ANIME_ANGLE_COLUMNS
ANIMO_ANGLE_PERMUTATION = face_semantics.ANIMO_ANGLE_PERMUTATION
EYE_STATES = face_semantics.EYE_STATES
BROW_STATES = face_semantics.BROW_STATES
VOWELS = face_semantics.VOWELS
SIDES = face_semantics.SIDES
MOUTH_SLICE = face_semantics.MOUTH_SLICE
ANGLE_SLICE = face_semantics.ANGLE_SLICE
morph_index = face_semantics.morph_index
MAX_ANGLE_DEG = 20.0


def _check_last_dim(array: np.ndarray, name: str) -> np.ndarray:
  array = np.asarray(array, np.float32)
  if array.shape[-1:] != (NUM_SEMANTICS,):
    raise ValueError(f'{name} must have a trailing dimension of {NUM_SEMANTICS}, got shape '
                     f'{array.shape}; see animojax.face3d.semantics.SEMANTIC_NAMES.')
  return array


def _permute_angles(vectors: np.ndarray, name: str) -> np.ndarray:
  vectors = _check_last_dim(vectors, name)
  out = vectors.copy()
  out[..., ANGLE_SLICE] = vectors[..., ANGLE_SLICE][..., list(ANIMO_ANGLE_PERMUTATION)]
  return out


def semantic_to_anime_pose(semantic: np.ndarray) -> np.ndarray:
  """Converts semantic vectors [..., 20] to synthetic anime poses (angles as pitch/roll/yaw)."""
  return _permute_angles(semantic, 'semantic')


def anime_pose_to_semantic(pose: np.ndarray) -> np.ndarray:
  """Inverse of `semantic_to_anime_pose` (the permutation (0, 2, 1) is its own inverse)."""
  return _permute_angles(pose, 'pose')


def sample_semantics(rng: np.random.Generator, n: int) -> np.ndarray:
  """Samples `n` realistic semantic vectors, float32[n, 20].

  Morphs are sparse like AnimeCeleb's: each eye state / brow state is active with p ~ 0.24, at
  most one state per eye and per brow, with both sides sharing the state 70% of the time (faces
  are mostly symmetric). At most one mouth vowel is active (p = 0.55), occasionally blended with
  a second one. Angles follow a normal(0, 9 deg) truncated to +-20 deg.

  Args:
    rng: numpy random generator (the only source of randomness, so results are reproducible).
    n: number of vectors.

  Returns:
    float32[n, 20] with morph weights in [0, 1] and angles in degrees.
  """
  out = np.zeros((n, NUM_SEMANTICS), np.float32)
  # Eye states then brow states, each laid out state-major.
  for group_start in (face_semantics.EYE_SLICE.start, face_semantics.BROW_SLICE.start):
    for_side = []
    for _ in SIDES:
      active = rng.random(n) < 0.72
      state = rng.integers(0, 3, n)
      weight = rng.uniform(0.15, 1.0, n) * active
      for_side.append((state, weight))
    symmetric = rng.random(n) < 0.7
    for side_index, (state, weight) in enumerate(for_side):
      if side_index == 1:  # The right side copies the left state/weight when symmetric.
        state = np.where(symmetric, for_side[0][0], state)
        weight = np.where(symmetric, for_side[0][1], weight)
      out[np.arange(n), group_start + 2 * state + side_index] = weight
  # Mouth: one vowel, sometimes a weaker second one (speech transitions).
  vowel = rng.integers(0, len(VOWELS), n)
  active = rng.random(n) < 0.55
  out[np.arange(n), MOUTH_SLICE.start + vowel] = rng.uniform(0.2, 1.0, n) * active
  second = rng.integers(0, len(VOWELS), n)
  blend = active & (rng.random(n) < 0.15) & (second != vowel)
  out[np.arange(n), MOUTH_SLICE.start + second] += rng.uniform(0.1, 0.4, n) * blend
  angles = rng.normal(0.0, 9.0, (n, 3))
  # Truncate by resampling out-of-range values uniformly so no mass piles up at +-20.
  outside = np.abs(angles) > MAX_ANGLE_DEG
  angles[outside] = rng.uniform(-MAX_ANGLE_DEG, MAX_ANGLE_DEG, outside.sum())
  out[:, ANGLE_SLICE] = angles
  return np.clip(out, [0.0] * NUM_MORPHS + [-MAX_ANGLE_DEG] * 3,
                 [1.0] * NUM_MORPHS + [MAX_ANGLE_DEG] * 3).astype(np.float32)

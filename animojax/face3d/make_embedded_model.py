"""Generates the embedded sparse morphable face model `embedded_model.npz` (deterministic script).

Run `python -m animojax.face3d.make_embedded_model [--output PATH]`. Re-running it reproduces the
packaged npz bit-exactly (a test checks this), so the npz is reviewable package data, not an
opaque artifact.

The model is a Deep3DFaceRecon-shaped 3DMM restricted to the 68 iBUG landmarks:
  landmarks = mean + id_basis @ id_coeff[80] + exp_basis @ exp_coeff[64]      ([68, 3])
Units: 1 unit = 7 cm, so the face is ~2 units wide; x points to the subject's left (image right
when facing the camera), y up, z toward the camera; the origin is roughly the centre of the head
(nose tip at z ~ 1.3).

The expression basis is built so that the 17 semantic displacements (`semantic_offsets`, what a
morph of weight 1 does to the landmarks) lie exactly in its span: the 17 offsets plus 47 smooth
random fields are orthonormalised, rotated by a random orthogonal 64x64 matrix (so that, as in a
real PCA basis, no coefficient is aligned with one semantic) and scaled by slowly decreasing
stds. `true_phi = D^-1 M^T Q^T offsets` then solves `exp_basis @ true_phi[k] = offsets[k]`
exactly in float64; after the float32 cast the residual is ~1e-7 of the offset norm.
"""

import argparse
import io
import pathlib

import numpy as np

from animojax.face3d import embedded

CM_PER_UNIT = embedded.CM_PER_UNIT
SEED = 20240617
NUM_ID = embedded.NUM_ID
NUM_EXP = embedded.NUM_EXP

# Mirror partner of each iBUG-68 landmark (left/right swap).
MIRROR_INDEX = np.array(
    list(range(16, -1, -1))  # Jaw.
    + list(range(26, 16, -1))  # Brows.
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]  # Nose.
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # Eyes.
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # Outer lips.
    + [64, 63, 62, 61, 60, 67, 66, 65],  # Inner lips.
    np.int32)

# Landmarks of the subject's RIGHT half (x < 0, image left) plus the midline, in cm, with y = 0
# on the eye line. Proportions follow adult anthropometry: 14 cm bizygomatic width, eye width
# 2.9 cm ~ intercanthal distance, brow-to-subnasale ~ subnasale-to-chin.
_RIGHT_HALF_CM = {
    0: (-6.9, 0.1, -3.6), 1: (-6.8, -1.6, -3.5), 2: (-6.55, -3.3, -3.2), 3: (-6.1, -4.9, -2.7),
    4: (-5.4, -6.4, -2.0), 5: (-4.4, -7.7, -1.2), 6: (-3.1, -8.7, -0.4), 7: (-1.6, -9.3, 0.25),
    8: (0.0, -9.5, 0.6),
    17: (-5.0, 1.45, -1.6), 18: (-4.2, 2.05, -0.9), 19: (-3.2, 2.3, -0.4), 20: (-2.2, 2.25, -0.05),
    21: (-1.2, 1.95, 0.15),
    27: (0.0, 0.45, 0.2), 28: (0.0, -0.55, 0.75), 29: (0.0, -1.55, 1.3), 30: (0.0, -2.6, 1.9),
    31: (-1.35, -3.25, 0.55), 32: (-0.7, -3.45, 0.95), 33: (0.0, -3.55, 1.15),
    36: (-4.5, 0.0, -1.3), 37: (-3.6, 0.5, -0.55), 38: (-2.5, 0.55, -0.35), 39: (-1.6, 0.0, -0.45),
    40: (-2.5, -0.45, -0.45), 41: (-3.6, -0.45, -0.7),
    48: (-2.5, -5.35, 0.0), 49: (-1.55, -4.85, 0.85), 50: (-0.6, -4.6, 1.2), 51: (0.0, -4.72, 1.3),
    57: (0.0, -6.3, 1.15), 58: (-0.8, -6.2, 1.05), 59: (-1.6, -5.9, 0.8),
    60: (-2.2, -5.35, 0.1), 61: (-0.85, -5.2, 0.95), 62: (0.0, -5.22, 1.1),
    66: (0.0, -5.26, 1.1), 67: (-0.85, -5.25, 0.95),
}
Y_CENTER_CM = -3.5  # Subtracted so that the landmarks are roughly centred on the origin.
# Added to z so the origin is the centre of the head (like BFM's): rotations then pivot inside
# the skull, as a real head does, instead of about the nose.
Z_SHIFT_CM = 7.5

# Displacements (cm) of one morph at weight 1, for the RIGHT-side variant (left = mirror).
_EYE_OFFSETS_CM = {
    'closed': {37: (0.0, -0.89, 0.3), 38: (0.0, -0.94, 0.3), 40: (0.0, 0.06, 0.0),
               41: (0.0, 0.06, 0.0), 36: (0.0, -0.02, 0.0), 39: (0.0, -0.02, 0.0)},
    # Half-lidded: the upper lid drops to a flat line just above the pupil.
    'unimpressed': {37: (-0.15, -0.45, 0.05), 38: (0.1, -0.52, 0.05), 40: (0.0, 0.12, 0.0),
                    41: (0.0, 0.12, 0.0), 36: (0.0, 0.04, 0.0)},
    'surprised': {37: (0.0, 0.4, -0.05), 38: (0.0, 0.38, -0.05), 40: (0.0, -0.17, 0.0),
                  41: (0.0, -0.17, 0.0), 36: (-0.05, 0.0, 0.0)},
}
_BROW_OFFSETS_CM = {  # Right brow 17 (outer) .. 21 (inner); +x points to the midline.
    'angry': {17: (0.0, 0.25, 0.0), 18: (0.0, 0.1, 0.0), 19: (0.05, -0.15, 0.0),
              20: (0.15, -0.45, 0.05), 21: (0.25, -0.65, 0.1)},
    'raised': {17: (0.0, 0.4, -0.03), 18: (0.0, 0.6, -0.05), 19: (0.0, 0.75, -0.05),
               20: (0.0, 0.8, -0.05), 21: (0.0, 0.75, -0.05)},
    # Lowered brows also knit toward the midline and push forward, unlike raised ones.
    'lowered': {17: (0.0, -0.45, 0.05), 18: (0.05, -0.5, 0.1), 19: (0.1, -0.5, 0.15),
                20: (0.2, -0.45, 0.15), 21: (0.3, -0.4, 0.15)},
}
# Mouth offsets (cm), given for the right half + midline and mirrored (they are symmetric).
# Inward means toward the midline (+x on the right half).
_MOUTH_OFFSETS_CM = {
    'a': {48: (0.25, -0.5, 0.0), 60: (0.25, -0.5, 0.0), 49: (0.0, 0.1, 0.0), 50: (0.0, 0.1, 0.0),
          51: (0.0, 0.1, 0.0), 61: (0.0, 0.15, 0.0), 62: (0.0, 0.15, 0.0),
          59: (0.05, -1.2, -0.1), 58: (0.1, -1.6, -0.1), 57: (0.0, -1.7, -0.1),
          67: (0.05, -1.6, -0.2), 66: (0.0, -1.75, -0.2),
          3: (0.0, -0.1, 0.0), 4: (0.0, -0.3, 0.0), 5: (0.0, -0.6, -0.05), 6: (0.0, -0.9, -0.1),
          7: (0.0, -1.1, -0.15), 8: (0.0, -1.2, -0.2)},
    'i': {48: (-0.55, 0.15, -0.15), 60: (-0.55, 0.15, -0.15), 49: (-0.3, 0.05, -0.05),
          50: (-0.12, 0.05, 0.0), 51: (0.0, 0.05, 0.0), 61: (-0.3, 0.08, 0.0),
          62: (0.0, 0.08, 0.0), 59: (-0.3, -0.2, -0.05), 58: (-0.12, -0.25, 0.0),
          57: (0.0, -0.25, 0.0), 67: (-0.3, -0.3, 0.0), 66: (0.0, -0.3, 0.0),
          7: (0.0, -0.15, 0.0), 8: (0.0, -0.2, 0.0)},
    'u': {48: (0.9, 0.0, 0.3), 60: (1.35, 0.0, 0.3), 49: (0.5, 0.0, 0.45), 50: (0.2, 0.0, 0.5),
          51: (0.0, 0.0, 0.5), 59: (0.5, 0.0, 0.45), 58: (0.2, 0.0, 0.5), 57: (0.0, 0.0, 0.5),
          61: (0.35, 0.2, 0.45), 62: (0.0, 0.25, 0.45), 67: (0.35, -0.25, 0.45),
          66: (0.0, -0.3, 0.45), 7: (0.0, -0.15, 0.0), 8: (0.0, -0.2, 0.0)},
    'e': {48: (-0.35, 0.05, -0.05), 60: (-0.35, 0.05, -0.05), 49: (-0.15, 0.05, 0.0),
          61: (-0.15, 0.12, 0.0), 62: (0.0, 0.12, 0.0), 59: (-0.15, -0.75, -0.05),
          58: (0.0, -0.8, -0.05), 57: (0.0, -0.8, -0.05), 67: (-0.15, -0.8, -0.1),
          66: (0.0, -0.85, -0.1), 5: (0.0, -0.25, 0.0), 6: (0.0, -0.4, 0.0),
          7: (0.0, -0.5, -0.05), 8: (0.0, -0.55, -0.05)},
    'o': {48: (0.6, -0.3, 0.2), 60: (0.85, -0.35, 0.2), 49: (0.3, 0.2, 0.3), 50: (0.1, 0.2, 0.3),
          51: (0.0, 0.2, 0.3), 61: (0.2, 0.3, 0.3), 62: (0.0, 0.3, 0.3),
          59: (0.3, -1.1, 0.2), 58: (0.1, -1.3, 0.2), 57: (0.0, -1.3, 0.2),
          67: (0.2, -1.25, 0.15), 66: (0.0, -1.35, 0.15),
          4: (0.0, -0.2, 0.0), 5: (0.0, -0.45, 0.0), 6: (0.0, -0.7, -0.05),
          7: (0.0, -0.9, -0.1), 8: (0.0, -1.0, -0.1)},
}
_MIRROR_X = np.array([-1.0, 1.0, 1.0])


def _mirror_complete(right_half: dict[int, tuple[float, float, float]]) -> np.ndarray:
  """Builds [68, 3] from right-half entries, mirroring them (x -> -x) onto their partners."""
  points = np.zeros((68, 3))
  for index, xyz in right_half.items():
    points[index] = xyz
    points[MIRROR_INDEX[index]] = np.asarray(xyz) * _MIRROR_X
  return points


def _one_side(entries: dict[int, tuple[float, float, float]], side: str) -> np.ndarray:
  """Offsets [68, 3] for one side; entries are given for the right side (x < 0)."""
  offsets = np.zeros((68, 3))
  for index, xyz in entries.items():
    if side == 'right':
      offsets[index] = xyz
    else:
      offsets[MIRROR_INDEX[index]] = np.asarray(xyz) * _MIRROR_X
  return offsets


def mean_landmarks() -> np.ndarray:
  """The mean face, float64[68, 3] in model units."""
  points = _mirror_complete(_RIGHT_HALF_CM)
  points[:, 1] -= Y_CENTER_CM
  points[:, 2] += Z_SHIFT_CM
  return points / CM_PER_UNIT


def semantic_offsets() -> np.ndarray:
  """Landmark displacement of each of the 17 morphs at weight 1, float64[17, 68, 3]."""
  offsets = []
  for table in (_EYE_OFFSETS_CM, _BROW_OFFSETS_CM):
    for state in table:  # Order: state-major, left before right (matches semantics.MORPH_NAMES).
      offsets.append(_one_side(table[state], 'left'))
      offsets.append(_one_side(table[state], 'right'))
  for vowel in ('a', 'i', 'u', 'e', 'o'):
    offsets.append(_mirror_complete(_MOUTH_OFFSETS_CM[vowel]))
  return np.stack(offsets) / CM_PER_UNIT


def _smooth_fields(rng: np.random.Generator, points: np.ndarray, count: int,
                   frequency: float) -> np.ndarray:
  """`count` smooth random displacement fields sampled at `points`, float64[count, 68, 3].

  Each field is a sum of 6 random Fourier features with spatial frequency ~`frequency` per unit,
  so nearby landmarks move together (no field tears an eyelid away from its eye).
  """
  fields = np.zeros((count, points.shape[0], 3))
  for c in range(count):
    for _ in range(6):
      direction = rng.normal(size=3) * frequency
      phase = rng.uniform(0.0, 2.0 * np.pi)
      amplitude = rng.normal(size=3)
      fields[c] += np.sin(points @ direction + phase)[:, None] * amplitude
  return fields


def _symmetrise(fields: np.ndarray) -> np.ndarray:
  """Projects fields onto left/right-symmetric ones (mirror partner moves mirrored)."""
  return 0.5 * (fields + fields[:, MIRROR_INDEX] * _MIRROR_X)


def _gram_schmidt(columns: np.ndarray) -> np.ndarray:
  """Orthonormalises the columns of [D, K] in order (modified Gram-Schmidt, twice for accuracy).

  Explicit rather than `np.linalg.qr` so that column order and signs are fixed by construction.
  """
  q = np.array(columns, np.float64)
  for j in range(q.shape[1]):
    for _ in range(2):
      for i in range(j):
        q[:, j] -= np.sum(q[:, i] * q[:, j]) * q[:, i]
    norm = np.sqrt(np.sum(q[:, j] ** 2))
    if norm < 1e-6:
      raise ValueError(f'Basis column {j} is (nearly) linearly dependent on earlier columns.')
    q[:, j] /= norm
  return q


def build_arrays() -> dict[str, np.ndarray]:
  """Computes every array of the face model (deterministic)."""
  rng = np.random.default_rng(SEED)
  mean = mean_landmarks()
  offsets = semantic_offsets()
  dim = mean.size

  # Identity: 60 symmetric smooth modes (face shape) then 20 asymmetric ones with smaller std.
  id_fields = np.concatenate([
      _symmetrise(_smooth_fields(rng, mean, 60, 1.0)),
      _smooth_fields(rng, mean, 20, 1.2),
  ])
  id_q = _gram_schmidt(id_fields.reshape(NUM_ID, dim).T)
  id_std = 0.16 * np.exp(-np.arange(NUM_ID) / 25.0)
  id_basis = id_q * id_std

  # Expression: semantic offsets first so they span the first 17 orthonormal directions.
  extra = _smooth_fields(rng, mean, NUM_EXP - offsets.shape[0], 1.5)
  exp_columns = np.concatenate([offsets, extra]).reshape(NUM_EXP, dim).T
  exp_q = _gram_schmidt(exp_columns)
  mix = _gram_schmidt(rng.normal(size=(NUM_EXP, NUM_EXP)))  # Random orthogonal matrix.
  exp_std = 0.2 * (1.0 - 0.5 * np.arange(NUM_EXP) / (NUM_EXP - 1))
  exp_basis = (exp_q @ mix) * exp_std
  # exp_basis = Q M D with Q^T Q = I and M orthogonal, so its pseudo-inverse is D^-1 M^T Q^T.
  flat_offsets = offsets.reshape(offsets.shape[0], dim)
  true_phi = ((flat_offsets @ exp_q) @ mix) / exp_std

  return {
      'mean': mean.astype(np.float32),
      'id_basis': id_basis.reshape(68, 3, NUM_ID).astype(np.float32),
      'exp_basis': exp_basis.reshape(68, 3, NUM_EXP).astype(np.float32),
      'true_phi': true_phi.astype(np.float32),
      'semantic_offsets': offsets.astype(np.float32),
      'mirror_index': MIRROR_INDEX,
      'cm_per_unit': np.float32(CM_PER_UNIT),
  }


def npz_bytes() -> bytes:
  """The exact bytes of `embedded_model.npz` (uncompressed npz: zip entries carry a fixed date)."""
  buffer = io.BytesIO()
  np.savez(buffer, **build_arrays())
  return buffer.getvalue()


def default_output_path() -> pathlib.Path:
  return pathlib.Path(__file__).with_name(embedded.NPZ_NAME)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output', type=pathlib.Path, default=default_output_path(),
                      help='where to write the npz (default: the packaged embedded_model.npz)')
  args = parser.parse_args(argv)
  data = npz_bytes()
  args.output.write_bytes(data)
  print(f'Wrote {args.output} ({len(data)} bytes).')


if __name__ == '__main__':
  main()

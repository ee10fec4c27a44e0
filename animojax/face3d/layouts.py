"""Coefficient and motion-vector layouts of the 3DMMs the project reads, as named slices.

Each layout is defined once here; everything else indexes through `Layout.slices`.

* `DEEP3D` (257): Deep3DFaceRecon's BFM coefficients (sicxu/Deep3DFaceRecon_pytorch,
  models/bfm.py `ParametricFaceModel.split_coeff`): id 80 | exp 64 | tex 80 | angle 3 (radians,
  pitch, yaw, roll; see `rotations`) | gamma 27 (9 SH bands x 3 colours) | trans 3.
* `DECA` (156): DECA's FLAME codes (yfeng95/DECA, decalib/deca.py `decompose_code`, in the order
  AniMo's `read_deca` concatenates them): shape 100 | exp 50 | pose 6, with pose = global
  rotation 3 | jaw rotation 3 (axis-angle, radians). DECA's `cam` (scale, tx, ty) is separate.
* `TDDFA` (62): 3DDFA_V2's regressed parameters (cleardusk/3DDFA_V2, utils/tddfa_util.py
  `_parse_param`): pose 12 | shape 40 | exp 10, where pose is a row-major 3 x 4 matrix
  [s R | t] (`tddfa_pose`). The network predicts them normalised; 3DDFA_V2 first maps them back
  with `param * param_std + param_mean` (its `param_mean_std_62d_120x120.pkl`).
* `MOTION` (70): AniMo's driving vector (kangyeolk/AnimeCeleb, Animo): Deep3DFaceRecon's
  exp 64 | angle 3 | trans 3 (RenYurui/PIRender's 73-D one without its 3 crop parameters).
* `DECA_MOTION` (56): this project's DECA counterpart: exp 50 | angle 3 (the global rotation as
  Deep3DFaceRecon Euler angles) | jaw 3 (in the slot of Deep3DFaceRecon's translation).
* `ANIME_POSE` (20): an AnimeCeleb pose (AnimeCeleb paper, §3.1): 17 morph weights | 3 head
  angles in degrees (column order: `semantics.ANIMO_ANGLE_PERMUTATION`).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Layout:
  """A vector made of named contiguous blocks, optionally subdivided into named parts.

  Attributes:
    name: what the vector is (used in error messages).
    blocks: (name, size) of each block, in order; together they cover the whole vector.
    parts: block name -> (name, size) of its sub-blocks, in order, covering that block.
  """
  name: str
  blocks: tuple[tuple[str, int], ...]
  parts: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()

  def __post_init__(self):
    names = [n for n, _ in self.blocks]
    for block, subs in self.parts:
      if block not in names:
        raise ValueError(f'{self.name}: parts of unknown block {block!r}.')
      if sum(size for _, size in subs) != dict(self.blocks)[block]:
        raise ValueError(f'{self.name}: the parts of {block!r} do not cover it.')
      names += [n for n, _ in subs]
    if len(set(names)) != len(names):
      raise ValueError(f'{self.name}: duplicate block names {names}.')

  @property
  def dim(self) -> int:
    return sum(size for _, size in self.blocks)

  @property
  def slices(self) -> dict[str, slice]:
    """Block name -> slice, blocks first in vector order, then each block's parts."""
    out, start = {}, 0
    for name, size in self.blocks:
      out[name] = slice(start, start + size)
      start += size
    for block, subs in self.parts:
      start = out[block].start
      for name, size in subs:
        out[name] = slice(start, start + size)
        start += size
    return out

  def check(self, vector):
    """Returns `vector` after checking that its trailing dimension is `dim`."""
    if vector.shape[-1:] != (self.dim,):
      blocks = ' | '.join(f'{n} {s}' for n, s in self.blocks)
      raise ValueError(f'{self.name} vectors have {self.dim} entries ({blocks}), got shape '
                       f'{vector.shape}.')
    return vector

  def split(self, vector) -> dict:
    """Named views of vector [..., dim] (numpy or jax), blocks and parts."""
    self.check(vector)
    return {name: vector[..., s] for name, s in self.slices.items()}

  def join(self, blocks: dict):
    """Concatenates {block name: [..., size]} in block order (jax if any input is jax)."""
    arrays = [blocks[name] for name, _ in self.blocks]
    for (name, size), array in zip(self.blocks, arrays):
      if array.shape[-1:] != (size,):
        raise ValueError(f'{self.name}: block {name!r} needs {size} entries, got shape '
                         f'{array.shape}.')
    if all(isinstance(a, np.ndarray) for a in arrays):
      return np.concatenate(arrays, axis=-1)
    # Imported here: the synthetic generator's worker processes and the dataset readers use
    # layouts on numpy only and should not pay for importing jax.
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    return jnp.concatenate(arrays, axis=-1)


DEEP3D = Layout('Deep3DFaceRecon coefficient', (
    ('id', 80), ('exp', 64), ('tex', 80), ('angle', 3), ('gamma', 27), ('trans', 3)))
DECA = Layout('DECA coefficient', (('shape', 100), ('exp', 50), ('pose', 6)),
              parts=(('pose', (('global_pose', 3), ('jaw_pose', 3))),))
TDDFA = Layout('3DDFA_V2 parameter', (('pose', 12), ('shape', 40), ('exp', 10)))
MOTION = Layout('AniMo motion', (('exp', 64), ('angle', 3), ('trans', 3)))
DECA_MOTION = Layout('DECA motion', (('exp', 50), ('angle', 3), ('jaw', 3)))
ANIME_POSE = Layout('AnimeCeleb pose', (('morphs', 17), ('angles', 3)))


def tddfa_pose(param):
  """3DDFA_V2's pose block: (s R [..., 3, 3], offset [..., 3]) of parameters [..., 62].

  The 12 entries are the rows of [s R | t]; a posed vertex is s R v + t (3DDFA_V2 adds the
  offset before flipping y into image rows). Works on numpy and jax arrays.
  """
  pose = TDDFA.split(param)['pose'].reshape(param.shape[:-1] + (3, 4))
  return pose[..., :3], pose[..., 3]

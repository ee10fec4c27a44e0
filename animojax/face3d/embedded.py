"""The embedded sparse morphable face model: a Deep3DFaceRecon-shaped 3DMM on 68 landmarks.

`embedded_model.npz` is package data written by `make_embedded_model.py` (see there for how the
bases are built; re-running it reproduces the file bit for bit). It follows Deep3DFaceRecon's
model (sicxu/Deep3DFaceRecon_pytorch, models/bfm.py): landmarks = mean + id_basis @ id +
exp_basis @ exp with 80 identity and 64 expression coefficients, x to the subject's left, y up,
z toward the camera, iBUG-68 order (`ibug68`); its unit is 7 cm (`DM_PER_UNIT` decimetres).
It also holds the 17 semantics' landmark displacements (`semantics.MORPH_NAMES` order) and the
true linear map from morphs to expression coefficients, so a fit of that map has a known answer.
The synthetic data renders from it and the pose-mapping fit uses it as a reference face.
"""

import dataclasses
import functools
import importlib.resources

import numpy as np

NPZ_NAME = 'embedded_model.npz'
NUM_ID = 80
NUM_EXP = 64
CM_PER_UNIT = 7.0
DM_PER_UNIT = 0.7
_REGENERATE = 'regenerate it with `python -m animojax.face3d.make_embedded_model`'


@dataclasses.dataclass(frozen=True, eq=False)
class FaceModel:
  """Arrays of the embedded face model (all float32, model units: 1 unit = 7 cm).

  Attributes:
    mean: [68, 3] mean landmarks (iBUG-68 order).
    id_basis: [68, 3, 80] identity modes, scaled by their std (coefficients ~ N(0, 1)).
    exp_basis: [68, 3, 64] expression modes.
    true_phi: [17, 64] the true linear map morphs -> expression coefficients
      (exp64 = morphs17 @ true_phi).
    semantic_offsets: [17, 68, 3] landmark displacement of each morph at weight 1;
      exp_basis @ true_phi[k] == semantic_offsets[k] up to float32 rounding.
    mirror_index: int32[68], left/right partner of each landmark.
  """
  mean: np.ndarray
  id_basis: np.ndarray
  exp_basis: np.ndarray
  true_phi: np.ndarray
  semantic_offsets: np.ndarray
  mirror_index: np.ndarray


def load_face_model_from(path) -> FaceModel:
  """Reads a face model npz from `path` (a str, pathlib.Path or importlib resource)."""
  try:
    with np.load(path) as data:
      arrays = {field.name: np.asarray(data[field.name])
                for field in dataclasses.fields(FaceModel)}
  except FileNotFoundError:
    raise FileNotFoundError(f'Face model {path} is missing; {_REGENERATE}.') from None
  except KeyError as e:
    raise ValueError(f'Face model {path} lacks array {e}; {_REGENERATE}.') from None
  for array in arrays.values():
    array.setflags(write=False)  # The cached model is shared; nobody may edit it in place.
  return FaceModel(**arrays)


@functools.cache
def load_face_model() -> FaceModel:
  """The packaged face model (cached; arrays are read-only)."""
  resource = importlib.resources.files('animojax.face3d').joinpath(NPZ_NAME)
  with importlib.resources.as_file(resource) as path:
    return load_face_model_from(path)


def landmarks(model: FaceModel, id_coeff: np.ndarray, exp_coeff: np.ndarray) -> np.ndarray:
  """Landmarks in model space, [..., 68, 3], for id [..., 80] and exp [..., 64] coefficients."""
  id_coeff = np.asarray(id_coeff, np.float32)
  exp_coeff = np.asarray(exp_coeff, np.float32)
  if id_coeff.shape[-1] != NUM_ID or exp_coeff.shape[-1] != NUM_EXP:
    raise ValueError(f'landmarks expects id_coeff [..., {NUM_ID}] and exp_coeff [..., {NUM_EXP}], '
                     f'got {id_coeff.shape} and {exp_coeff.shape}.')
  return (model.mean + np.einsum('lck,...k->...lc', model.id_basis, id_coeff)
          + np.einsum('lck,...k->...lc', model.exp_basis, exp_coeff))

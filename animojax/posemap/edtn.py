"""EDTN: the learned alternative to Φ, mapping DECA/FLAME expression + jaw to the 17 anime morphs.

The AnimeCeleb repository's follow-up (kangyeolk/AnimeCeleb `EDTN/`) replaces the fixed linear
map with an MLP, `Generator2ani`: Linear(53, 512) → LReLU(0.2) → Linear(512, 512) → LReLU(0.2) →
Linear(512, 512) → LReLU(0.2) → Linear(512, 17) → sigmoid. Its input is DECA's `exp` (50) followed
by the jaw pose `pose[3:6]` (axis-angle, radians). At inference the 20-D AnimeCeleb pose is the
MLP's 17 morphs followed by DECA's global pose `pose[0:3]` in degrees, reordered with (0, 2, 1)
(`EDTN/demo/func.py: convert_deca_to_angles`). The demo's `fake_full_pose[12:17] *= 1.5` indexes
the batch axis of a (1, 20) tensor and so does nothing; it is not reproduced.

Weights: the released `EDTN/pretrained/EDTN.pt` (a torch state dict `main.{0,2,4,6}.{weight,
bias}`), read without torch by `animojax.convert.torch_pickle`.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from animojax.convert import torch_pickle
from animojax.face3d import layouts
from animojax.face3d import semantics
from animojax.models.blocks import initializers
from animojax.models.blocks import pirender as layers

DECA_EXP = dict(layouts.DECA.blocks)['exp']
INPUT_DIM = DECA_EXP + 3
HIDDEN = 512
NUM_MORPHS = semantics.NUM_MORPHS
LRELU_SLOPE = 0.2
# torch Sequential index of each Linear in `Generator2ani.main`.
TORCH_LINEAR_INDICES = (0, 2, 4, 6)
# DECA global pose (roll, yaw, pitch per the authors' comment) -> AnimeCeleb pose columns.
DECA_ANGLE_PERMUTATION = (0, 2, 1)


class EDTN(nnx.Module):
  """The EDTN MLP; `layers[i]` holds torch's `main.{2 i}`."""

  def __init__(self, *, rngs: nnx.Rngs):
    sizes = (INPUT_DIM, HIDDEN, HIDDEN, HIDDEN, NUM_MORPHS)
    # The papers' N(0, 0.02) init; only matters before the released weights are loaded.
    self.layers = nnx.List([layers.linear(i, o, rngs=rngs) for i, o in zip(sizes, sizes[1:])])

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """x: [..., 53] DECA exp ‖ jaw. Returns {'logits', 'morphs'} ([..., 17], morphs in [0, 1])."""
    if x.shape[-1] != INPUT_DIM:
      raise ValueError(f'EDTN expects [..., {INPUT_DIM}] inputs (DECA exp {DECA_EXP} ‖ jaw 3), '
                       f'got {x.shape}.')
    h = x
    for layer in self.layers[:-1]:
      h = jax.nn.leaky_relu(layer(h), LRELU_SLOPE)
    logits = self.layers[-1](h)
    return {'logits': logits, 'morphs': jax.nn.sigmoid(logits)}


def convert_state_dict(state_dict, src: str = '<state dict>') -> dict[int, dict[str, np.ndarray]]:
  """torch `main.N.weight/bias` -> {layer: {'kernel': (in, out), 'bias': (out,)}}."""
  sizes = (INPUT_DIM, HIDDEN, HIDDEN, HIDDEN, NUM_MORPHS)
  out, problems = {}, []
  for i, index in enumerate(TORCH_LINEAR_INDICES):
    w_key, b_key = f'main.{index}.weight', f'main.{index}.bias'
    if w_key not in state_dict or b_key not in state_dict:
      problems.append(f'missing {w_key}/{b_key}')
      continue
    weight, bias = np.asarray(state_dict[w_key]), np.asarray(state_dict[b_key])
    if weight.shape != (sizes[i + 1], sizes[i]) or bias.shape != (sizes[i + 1],):
      problems.append(f'{w_key} {weight.shape} / {b_key} {bias.shape}, expected '
                      f'{(sizes[i + 1], sizes[i])} / {(sizes[i + 1],)}')
      continue
    out[i] = {'kernel': weight.T.astype(np.float32), 'bias': bias.astype(np.float32)}
  if problems:
    raise ValueError(f'{src}: not an EDTN (Generator2ani) state dict: {"; ".join(problems)}.')
  return out


def load_edtn(path) -> EDTN:
  """Builds EDTN with the weights of a torch checkpoint (e.g. the released EDTN.pt)."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'EDTN weights {path!r} not found; download EDTN/pretrained/EDTN.pt '
                            'from github.com/kangyeolk/AnimeCeleb.')
  params = convert_state_dict(torch_pickle.load_torch_state_dict(path), path)
  # Values are replaced right away.
  module = nnx.eval_shape(lambda: EDTN(rngs=initializers.KeyStream(0)))
  state = nnx.state(module, nnx.Param)
  nnx.replace_by_pure_dict(state, {'layers': jax.tree.map(jnp.asarray, params)})
  nnx.update(module, state)
  return module


def read_deca_mat(path) -> dict[str, np.ndarray]:
  """DECA codes of one frame from a `.mat` file: {'exp': [50], 'pose': [6], 'shape': [100]}."""
  from scipy import io as sio  # pylint: disable=g-import-not-at-top
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'DECA code file {path!r} not found.')
  try:
    mat = sio.loadmat(path)
  except Exception as e:  # scipy raises several types for non-.mat input.
    raise ValueError(f'Could not read {path!r} as a MATLAB .mat file: {e}') from e
  out = {}
  for key, size in (('exp', DECA_EXP), ('pose', 6), ('shape', 100)):
    if key not in mat:
      raise ValueError(f'{path}: missing DECA field {key!r} (expected shape, exp, pose).')
    try:
      value = np.asarray(mat[key], np.float32).reshape(-1)
    except (TypeError, ValueError) as e:
      raise ValueError(f'{path}: DECA field {key!r} is not numeric ({e}).') from e
    if value.shape != (size,):
      raise ValueError(f'{path}: DECA field {key!r} has {value.size} entries, expected {size}.')
    if not np.all(np.isfinite(value)):
      raise ValueError(f'{path}: DECA field {key!r} contains NaN or Inf.')
    out[key] = value
  return out


def deca_to_input(exp, pose):
  """EDTN input [..., 53] = DECA exp [..., 50] ‖ jaw pose[..., 3:6]."""
  xp = np if isinstance(exp, np.ndarray) and isinstance(pose, np.ndarray) else jnp
  if exp.shape[-1] != DECA_EXP or pose.shape[-1] != 6:
    raise ValueError(f'deca_to_input expects exp [..., {DECA_EXP}] and pose [..., 6], got '
                     f'{exp.shape} and {pose.shape}.')
  return xp.concatenate([exp, pose[..., 3:6]], axis=-1)


def deca_to_anime_pose(model: EDTN, exp, pose) -> jax.Array:
  """The 20-D AnimeCeleb pose EDTN drives AniMo with: morphs 17 ‖ global angles in degrees."""
  morphs = model(jnp.asarray(deca_to_input(exp, pose), jnp.float32))['morphs']
  angles = jnp.asarray(pose)[..., list(DECA_ANGLE_PERMUTATION)] * (180.0 / np.pi)
  return jnp.concatenate([morphs, angles.astype(morphs.dtype)], axis=-1)

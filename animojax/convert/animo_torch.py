r"""Converts AniMo and PIRender PyTorch checkpoints into AniMo's parameter names, without torch.

  python -m animojax.convert.animo_torch --src animo.ckpt --out animo_params.npz [--domain human]

The output is a flat `/`-keyed `.npz` whose keys are `animojax.models.AniMo`'s own parameter
paths (as `animojax.export` writes them), so `--config.model_init` reads it like an export; the
trainer also reads the PyTorch file itself (`trainers/common/model_init.py`), through `convert`.

Layouts read (the generator's state dict is found inside the checkpoint, see `find_generator`):

* AniMo, released Lightning checkpoint (kangyeolk/AnimeCeleb `Animo/runners/animo.py`): a
  `state_dict` keyed by the runner's attributes `mapping_net.`, `warpping_netA.`,
  `editing_netA.` (anime), `warpping_netV.`, `editing_netV.` (VoxCeleb = our 'human'). The
  runner's perceptual-loss VGG (`perceptual_warp.`, `perceptual_final.`) is not part of the
  generator and is reported as unconverted.
* AniMo, model-pack names (`Animo/models/__init__.py`): `mapping_net_shared.`,
  `warpping_net_anime.`, `warpping_net_vox.`, `editing_net_anime.`, `editing_net_vox.`.
* PIRender (RenYurui/PIRender, `{'net_G', 'net_G_ema', 'opt_G', ...}`; or AnimeCeleb's
  PIRender runners, Lightning `generator.` / `generator_ema.`): one `mapping_net`,
  `warpping_net`, `editing_net` for a single domain. The EMA generator is taken when present
  (it is the one PIRender evaluates and releases). The single-domain nets are copied into the
  domains named by `domains` -- by default both, since a trained flow estimator is a better
  start for either domain than a random one; pass `domains=('human',)` (model_init:
  `PATH:human`) to leave the other domain random. What does not carry over, by construction:
  PIRender's face MappingNet is a temporal Conv1d over a 27-frame 73-D window (AniMo's is an
  MLP on one 70-D vector), so its weights are reported unconverted; the MLP MappingNet of
  AnimeCeleb's PIRender baseline (20-D input) converts, and the partial loader then skips its
  first layer for its shape; PIRender's EditingNet encoder sees source‖warped (6 channels), so
  its first conv has the wrong shape for AniMo's 3-channel encoder and is skipped the same way.
  The rest of the EditingNet has AniMo's shapes, but AniMo warps the encoder features before
  decoding, so those weights are a warm start, not an equivalent network.

Leaf conventions: Conv2d (O, I, kh, kw) and ConvTranspose2d (I, O, kh, kw) both become
(kh, kw, I', O') by one transpose (ours stores transposed kernels as (kh, kw, O, I)); Linear
(out, in) becomes (in, out); LayerNorm2d's (C, 1, 1) affine becomes `scale`/`bias` of shape (C,).
Shapes are not checked here (the converter does not know the model's sizes): the loader compares
them with the model.
"""

import argparse
import dataclasses
import os
import re
from typing import Any, Mapping, Sequence

import numpy as np

from animojax.convert import torch_pickle
from animojax.utils import cli
from animojax.utils import tree as tree_utils

DOMAINS = ('anime', 'human')

# Checkpoint prefix -> (our top-level module, kind). '{domain}' expands to the chosen domains.
_ANIMO_PREFIXES = {
    # Lightning runner attributes (the released checkpoint).
    'mapping_net': ('motion', 'motion'),
    'warpping_netA': ('warp_anime', 'warp'),
    'warpping_netV': ('warp_human', 'warp'),
    'editing_netA': ('edit_anime', 'edit'),
    'editing_netV': ('edit_human', 'edit'),
    # Model-pack names.
    'mapping_net_shared': ('motion', 'motion'),
    'warpping_net_anime': ('warp_anime', 'warp'),
    'warpping_net_vox': ('warp_human', 'warp'),
    'editing_net_anime': ('edit_anime', 'edit'),
    'editing_net_vox': ('edit_human', 'edit'),
}
_PIRENDER_PREFIXES = {
    'mapping_net': ('motion', 'motion'),
    'warpping_net': ('warp_{domain}', 'warp'),
    'editing_net': ('edit_{domain}', 'edit'),
}

# Renames inside a sub-network: PyTorch `nn.Sequential` indices -> our named submodules.
_BLOCK_RENAMES = (
    (r'(^|\.)flow_out\.0\.', r'\1flow_norm.'),
    (r'(^|\.)flow_out\.2\.', r'\1flow_conv.'),
    (r'(^|\.)mlp_shared\.0\.', r'\1mlp_shared.'),
    (r'(^|\.)final\.model\.0\.', r'\1final.'),
    (r'(^|\.)model\.0\.', r'\1conv.'),
    (r'(^|\.)model\.1\.', r'\1norm.'),
)
_MOTION_RENAMES = (
    (r'^first\.0\.', 'first.'),
    (r'^encoder(\d+)\.1\.', r'encoder\1.'),
)

# Keys under which checkpoints keep the generator, most preferred first (EMA before raw).
_GENERATOR_KEYS = ('net_G_ema', 'net_G', 'state_dict', 'model', 'generator')
# Lightning runners of PIRender keep both generators in one state dict under these prefixes.
_LIGHTNING_GENERATORS = ('generator_ema.', 'generator.')


@dataclasses.dataclass
class Conversion:
  """A converted checkpoint.

  Attributes:
    params: `{'warp_anime/.../kernel': array}` in our layout (shapes as in the file).
    unconverted: `{checkpoint key: reason}` for weights with no counterpart in AniMo.
    layout: 'animo' or 'pirender'.
    source: where in the checkpoint the weights came from (e.g. "net_G_ema").
  """
  params: dict[str, np.ndarray]
  unconverted: dict[str, str]
  layout: str
  source: str = ''


def _convert_leaf(leaf: str, value: np.ndarray) -> tuple[str, np.ndarray] | str:
  """(our leaf name, array) for one PyTorch parameter, or the reason it has no counterpart."""
  if value.ndim == 4 and leaf == 'weight':  # Conv2d and ConvTranspose2d alike (module doc).
    return 'kernel', np.ascontiguousarray(value.transpose(2, 3, 1, 0))
  if value.ndim == 2 and leaf == 'weight':  # Linear.
    return 'kernel', np.ascontiguousarray(value.T)
  if value.ndim == 3 and value.shape[1:] == (1, 1) and leaf in ('weight', 'bias'):
    return ('scale' if leaf == 'weight' else 'bias'), value.reshape(-1)  # LayerNorm2d affine.
  if value.ndim == 3:
    return f'3-D weight {value.shape} (a Conv1d, e.g. PIRender\'s temporal MappingNet)'
  if value.ndim == 1 and leaf == 'bias':
    return 'bias', value
  return f'{leaf!r} of shape {value.shape} is not a Conv/Linear/LayerNorm2d parameter'


def convert_submodule(state_dict: Mapping[str, np.ndarray], kind: str
                      ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
  """Converts one sub-network's state dict (keys relative to it) to `/`-names relative to ours.

  Args:
    state_dict: e.g. a WarpingNet's `state_dict()` as numpy arrays.
    kind: 'motion' (MappingNet), 'warp' (WarpingNet) or 'edit' (EditingNet and its blocks).

  Returns:
    (`{'hourglass/encoder/input_layer/kernel': array}`, `{key: reason}` for unconverted keys).
  """
  if kind not in ('motion', 'warp', 'edit'):
    raise ValueError(f"kind must be 'motion', 'warp' or 'edit', got {kind!r}.")
  renames = _MOTION_RENAMES if kind == 'motion' else _BLOCK_RENAMES
  params, unconverted = {}, {}
  for key, value in state_dict.items():
    name = key
    for pattern, repl in renames:
      name = re.sub(pattern, repl, name)
    *path, leaf = name.split('.')
    converted = _convert_leaf(leaf, np.asarray(value))
    if isinstance(converted, str):
      unconverted[key] = converted
      continue
    leaf, array = converted
    params[tree_utils.SEPARATOR.join(path + [leaf])] = array
  return params, unconverted


def _strip_prefix(keys: Sequence[str]) -> str:
  """DDP's 'module.' prefix when every key has it (a wrapped model saved as is)."""
  return 'module.' if keys and all(k.startswith('module.') for k in keys) else ''


def convert_state_dict(state_dict: Mapping[str, np.ndarray],
                       domains: Sequence[str] = DOMAINS) -> Conversion:
  """Converts a generator state dict in any layout of the module docstring.

  Args:
    state_dict: `{torch key: array}` (as `torch_pickle` reads it).
    domains: the AniMo domains PIRender's single-domain nets are copied into (ignored for AniMo
      checkpoints, which name their domains).

  Raises:
    ValueError: unknown domain.
  """
  bad = [d for d in domains if d not in DOMAINS]
  if bad or not domains:
    raise ValueError(f'domains must be a non-empty subset of {DOMAINS}, got {tuple(domains)}.')
  strip = _strip_prefix(list(state_dict))
  state_dict = {k[len(strip):]: v for k, v in state_dict.items()}
  pirender = any(k.startswith('warpping_net.') for k in state_dict)
  prefixes = _PIRENDER_PREFIXES if pirender else _ANIMO_PREFIXES
  grouped: dict[str, dict[str, np.ndarray]] = {}
  unconverted = {}
  for key, value in state_dict.items():
    prefix, _, rest = key.partition('.')
    if prefix not in prefixes:
      unconverted[strip + key] = 'not an AniMo/PIRender generator weight'
      continue
    grouped.setdefault(prefix, {})[rest] = value
  params = {}
  for prefix, sub_state in grouped.items():
    target, kind = prefixes[prefix]
    converted, skipped = convert_submodule(sub_state, kind)
    unconverted.update({f'{strip}{prefix}.{k}': why for k, why in skipped.items()})
    targets = [target.format(domain=d) for d in domains] if '{domain}' in target else [target]
    for module in targets:
      params.update({f'{module}/{name}': array for name, array in converted.items()})
  return Conversion(params, unconverted, 'pirender' if pirender else 'animo')


def find_generator(obj: Any, path: str = '<checkpoint>') -> tuple[dict[str, np.ndarray], str]:
  """The generator's state dict inside a loaded checkpoint, and where it was found.

  Raises:
    ValueError: no state dict of generator weights in `obj`; the message names `path`.
  """
  source = []
  while isinstance(obj, Mapping) and not any(isinstance(v, np.ndarray) for v in obj.values()):
    key = next((k for k in _GENERATOR_KEYS if isinstance(obj.get(k), Mapping)), None)
    if key is None:
      raise ValueError(
          f'{path}: no generator weights found (top-level keys {list(obj)[:10]}); expected an '
          f'AniMo/PIRender checkpoint holding one of {_GENERATOR_KEYS} or a plain state dict.')
    source.append(key)
    obj = obj[key]
  if not isinstance(obj, Mapping):
    raise ValueError(f'{path}: holds a {type(obj).__name__}, expected a checkpoint dict.')
  # Lightning keeps non-tensor entries out of `state_dict`, but be lenient with stray scalars.
  state = {str(k): v for k, v in obj.items() if isinstance(v, np.ndarray)}
  for prefix in _LIGHTNING_GENERATORS:
    if any(k.startswith(prefix) for k in state):
      source.append(prefix.rstrip('.'))
      state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
      break
  return state, '/'.join(source) or '<top level>'


def convert(checkpoint: Any, path: str = '<checkpoint>', option: str = '') -> Conversion:
  """Converts a loaded checkpoint (`torch_pickle.load_torch_pickle`) or a file path.

  Args:
    checkpoint: the loaded object, or a path to a `torch.save` / Lightning file.
    path: the file name, for messages.
    option: '' (both domains), 'anime', 'human' or 'both': the domains PIRender's single-domain
      nets go to (see the module docstring); AniMo checkpoints accept only ''/'both'.
  """
  if isinstance(checkpoint, (str, os.PathLike)):
    path = os.fspath(checkpoint)
    checkpoint = torch_pickle.load_torch_pickle(path)
  if option not in ('', 'both') + DOMAINS:
    raise ValueError(f'{path}: unknown option {option!r}; expected one of {DOMAINS} or "both".')
  domains = DOMAINS if option in ('', 'both') else (option,)
  state, source = find_generator(checkpoint, path)
  conversion = convert_state_dict(state, domains)
  if conversion.layout == 'animo' and option not in ('', 'both'):
    raise ValueError(f'{path}: is a two-domain AniMo checkpoint; the domain option {option!r} '
                     'only applies to single-domain PIRender checkpoints.')
  conversion.source = source
  return conversion


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
  parser.add_argument('--src', required=True, help='AniMo/PIRender .pth/.pt/.ckpt file.')
  parser.add_argument('--out', required=True, help='output .npz path.')
  parser.add_argument('--domain', default='both', choices=('both',) + DOMAINS,
                      help='PIRender checkpoints: which AniMo domains get its nets.')
  args = parser.parse_args(argv)
  with cli.user_errors('animo_torch'):
    cli.check_out_path(os.path.expanduser(args.out))
    conversion = convert(os.path.expanduser(args.src), option=args.domain)
    if not conversion.params:
      raise SystemExit(f'{args.src}: no AniMo/PIRender generator weights found.')
    tree_utils.save_flat_npz(os.path.expanduser(args.out), conversion.params)
  print(f'wrote {len(conversion.params)} arrays ({conversion.layout} layout, from '
        f'{conversion.source}) to {args.out}; {len(conversion.unconverted)} weights had no '
        'counterpart.')


if __name__ == '__main__':
  main()

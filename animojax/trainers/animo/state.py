"""AniMo's train state: {'step', 'params', 'opt', 'ema'} as plain nested dicts.

`params` and `ema` hold the model's parameters split into the optimiser groups ('warp': shared
motion net + warping nets; 'edit': editing nets). Plain dicts (not NNX objects) keep the state a
simple pytree for jit, sharding rules, Orbax and the flat .npz export; `nnx.merge` rebuilds the
model from them inside the jitted steps.
"""

from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections

from animojax.models.animo import animo as animo_model
from animojax.models.blocks import initializers
from animojax.trainers.animo import optim


def _is_edit(path, _):
  return path[0] in animo_model.EDIT_PREFIXES


def model_config(config) -> dict:
  """`config.model` as the keyword arguments of `AniMo`."""
  model = config.model
  return model.to_dict() if isinstance(model, ml_collections.ConfigDict) else dict(model)


def build_model(model_config, rngs):
  return animo_model.AniMo(rngs=rngs, **model_config)


def split_params(model):
  """(graphdef, {'warp': pure dict, 'edit': pure dict})."""
  graphdef, edit, warp = nnx.split(model, _is_edit, ...)
  return graphdef, {'warp': nnx.to_pure_dict(warp), 'edit': nnx.to_pure_dict(edit)}


def graphdef_of(model_config):
  """The model's graph definition, without allocating its weights."""
  abstract = nnx.eval_shape(lambda: build_model(model_config, initializers.KeyStream(0)))
  return split_params(abstract)[0]


def make_init(model_config, tx):
  """Returns init(rng) -> train state (jit it with out_shardings to create it sharded)."""

  def init(rng):
    _, params = split_params(build_model(model_config, initializers.KeyStream(rng)))
    return {
        'step': jnp.zeros((), jnp.int32),
        'params': params,
        'opt': {g: tx.init(params[g]) for g in optim.GROUPS},
        'ema': jax.tree.map(jnp.copy, params),
    }

  return init


def model_params(group_params):
  """Joins the groups back into the model's own parameter tree (for export and loading)."""
  return {**group_params['warp'], **group_params['edit']}

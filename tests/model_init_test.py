"""Tests for the warm start (`config.model_init`) and the AniMo/PIRender checkpoint converter.

Checkpoints are built with torch (test-only) from the PyTorch reference networks of
`models_test.py`, which carry the official module names, and saved in the layouts the released
files use: AniMo's Lightning checkpoint (runner attributes under `state_dict`, with the loss's VGG
beside the generator), AniMo's model-pack names, and PIRender's `{'net_G', 'net_G_ema', ...}`.
"""

import collections
import json
import os

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from animojax.convert import animo_torch
from animojax.models.blocks import initializers
from animojax.trainers.animo import optim
from animojax.trainers.animo import state as animo_state
from animojax.trainers.animo import train as trainer
from animojax.trainers.common import model_init
from animojax.utils import tree as tree_util
from tests import torch_reference_animo as ref_nets
from tests import helpers
from tests.conftest import assert_close

TINY = dict(variant='demo', **helpers.TINY_MODEL)
D = TINY['descriptor_nc']


def _torch_nets(seed=0, pirender=False):
  """Tiny PyTorch AniMo sub-networks (`TINY`'s sizes), random weights, official names."""
  warp = lambda: ref_nets.TWarpingNet(D, TINY['warp_ngf'], TINY['warp_img_f'],
                                      TINY['warp_encoder_layers'], TINY['warp_decoder_layers'])
  edit = lambda: ref_nets.TEditingNet(D, TINY['edit_ngf'], TINY['edit_img_f'],
                                      TINY['edit_layers'], TINY['edit_num_res_blocks'])
  if pirender:
    # PIRender's face MappingNet (temporal Conv1d over 73-D windows) and its 6-channel editing
    # encoder (source ‖ warped): both without an AniMo counterpart of that shape.
    mapping = torch.nn.Module()
    mapping.first = torch.nn.Sequential(torch.nn.Conv1d(73, D, 7))
    mapping.encoder0 = torch.nn.Sequential(torch.nn.LeakyReLU(0.1), torch.nn.Conv1d(D, D, 3))
    editing = edit()
    editing.encoder.first = ref_nets.TSeq(6, TINY['edit_ngf'], 7)
    nets = {'mapping_net': mapping, 'warpping_net': warp(), 'editing_net': editing}
  else:
    nets = {'mapping_net_shared': ref_nets.TMappingNet(70, D),
            'warpping_net_anime': warp(), 'warpping_net_vox': warp(),
            'editing_net_anime': edit(), 'editing_net_vox': edit()}
  for i, net in enumerate(nets.values()):
    ref_nets.randomize(net, std=0.1, seed=seed + 10 * i)
  return nets


def _state_dict(nets, rename=None):
  rename = rename or {}
  return collections.OrderedDict(
      (f'{rename.get(name, name)}.{k}', v) for name, net in nets.items()
      for k, v in net.state_dict().items())


# The released AniMo Lightning checkpoint names the nets by the runner's attributes.
_RUNNER_NAMES = {'mapping_net_shared': 'mapping_net', 'warpping_net_anime': 'warpping_netA',
                 'warpping_net_vox': 'warpping_netV', 'editing_net_anime': 'editing_netA',
                 'editing_net_vox': 'editing_netV'}


def _save_lightning(nets, path, legacy=False):
  state = _state_dict(nets, _RUNNER_NAMES)
  state['perceptual_warp.model.features.0.weight'] = torch.zeros(4, 3, 3, 3)  # The loss's VGG.
  checkpoint = {'epoch': 199, 'global_step': 1000, 'pytorch-lightning_version': '1.5.8',
                'state_dict': state, 'lr_schedulers': [{'step_size': 150, 'gamma': 0.2}],
                'optimizer_states': [{'state': {0: {'step': 3, 'exp_avg': torch.ones(2)}},
                                      'param_groups': [{'lr': 1e-4, 'params': [0]}]}]}
  torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
  return str(path)


@pytest.fixture(scope='module')
def model_parts():
  """(graphdef, pure-dict params) of the tiny AniMo, initialised in one compiled program."""
  abstract = nnx.eval_shape(lambda: animo_state.build_model(TINY, initializers.KeyStream(0)))
  graphdef, _ = nnx.split(abstract)
  init = jax.jit(lambda key: nnx.to_pure_dict(
      nnx.state(animo_state.build_model(TINY, initializers.KeyStream(key)))))
  return graphdef, init


def _flat(tree):
  return {k: np.asarray(v) for k, v in tree_util.flatten_with_names(tree).items()}


def test_npz_round_trip_gives_identical_params(model_parts, tmp_path):
  _, init = model_parts
  saved, reference = init(jax.random.key(1)), init(jax.random.key(2))
  path = str(tmp_path / 'params.npz')
  tree_util.save_npz(path, saved)
  params, report = model_init.load(path, reference)
  assert report.format == 'npz' and len(report.loaded) == len(_flat(reference))
  assert not (report.missing or report.shape_mismatch or report.unexpected)
  got, want = _flat(params), _flat(saved)
  assert set(got) == set(want)
  for name in want:
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize('legacy', [False, True])
def test_animo_lightning_checkpoint_converts_to_the_torch_weights(model_parts, tmp_path, legacy):
  graphdef, init = model_parts
  nets = _torch_nets()
  path = _save_lightning(nets, tmp_path / 'animo.ckpt', legacy)
  params, report = model_init.load(path, init(jax.random.key(0)), animo_torch.convert)
  assert report.format == 'torch' and 'animo layout, from state_dict' in report.source
  assert not (report.missing or report.shape_mismatch or report.unexpected), report.summary()
  assert list(report.unconverted) == ['perceptual_warp.model.features.0.weight']
  flat = _flat(params)
  # Spot checks of each leaf convention against the torch tensors themselves.
  warp = nets['warpping_net_vox']
  np.testing.assert_array_equal(
      flat['warp_human/hourglass/encoder/input_layer/kernel'],
      warp.hourglass.encoder.input_layer.weight.detach().numpy().transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(
      flat['warp_human/flow_norm/scale'], warp.flow_out[0].weight.detach().numpy().reshape(-1))
  np.testing.assert_array_equal(
      flat['motion/first/kernel'], nets['mapping_net_shared'].first[0].weight.detach().numpy().T)

  # The whole network: the converted weights compute what the torch network computes.
  rng = np.random.default_rng(0)
  source = rng.uniform(-1, 1, size=(2, 32, 32, 3)).astype(np.float32)
  pose = rng.normal(size=(2, 70)).astype(np.float32)
  out = jax.jit(lambda p, s, z: nnx.merge(graphdef, p)(s, z, domain='human', stage='gen'))(
      params, jnp.asarray(source), jnp.asarray(pose))
  nchw, nhwc = ref_nets.nchw, ref_nets.nhwc
  with torch.no_grad():
    z = nets['mapping_net_shared'](torch.from_numpy(pose))
    flow, _ = warp(nchw(source), z)
    fake = nets['editing_net_vox'](nchw(source), flow, z)
  assert_close(out['descriptor'], z.numpy(), 1e-5)
  assert_close(out['flow'], nhwc(flow), 1e-4)
  assert_close(out['fake_image'], nhwc(fake), 1e-3)


def test_model_pack_layout_matches_the_lightning_layout(model_parts, tmp_path):
  _, init = model_parts
  nets = _torch_nets(seed=3)
  lightning = _save_lightning(nets, tmp_path / 'a.ckpt')
  pack = str(tmp_path / 'b.pth')
  torch.save({'module.' + k: v for k, v in _state_dict(nets).items()}, pack)  # DDP-wrapped.
  reference = init(jax.random.key(0))
  (a, _), (b, report) = (model_init.load(p, reference, animo_torch.convert)
                         for p in (lightning, pack))
  assert not report.unconverted and not report.missing
  for name, value in _flat(a).items():
    np.testing.assert_array_equal(_flat(b)[name], value, err_msg=name)


@pytest.mark.parametrize('option', ['', 'human'])
def test_pirender_checkpoint_fills_the_chosen_domains(model_parts, tmp_path, option):
  _, init = model_parts
  raw, ema = _torch_nets(seed=5, pirender=True), _torch_nets(seed=6, pirender=True)
  path = str(tmp_path / 'pirender.pth')
  torch.save({'net_G': _state_dict(raw), 'net_G_ema': _state_dict(ema),
              'opt_G': {'state': {}, 'param_groups': [{'lr': 1e-4}]}, 'current_iteration': 7},
             path)
  reference = init(jax.random.key(0))
  params, report = model_init.load(path + (f':{option}' if option else ''), reference,
                                   animo_torch.convert)
  assert 'pirender layout, from net_G_ema' in report.source
  # The temporal Conv1d MappingNet has no counterpart; the 6-channel editing conv is skipped.
  assert sorted(report.unconverted) == ['mapping_net.encoder0.1.weight',
                                        'mapping_net.first.0.weight']
  domains = ('human',) if option else ('anime', 'human')
  assert set(report.shape_mismatch) == {f'edit_{d}/encoder/first/conv/kernel' for d in domains}
  assert report.shape_mismatch['edit_human/encoder/first/conv/kernel'] == ((7, 7, 6, 4),
                                                                           (7, 7, 3, 4))
  flat, ref = _flat(params), _flat(reference)
  kernel = ema['warpping_net'].flow_out[2].weight.detach().numpy().transpose(2, 3, 1, 0)
  for domain in domains:  # EMA weights, not the raw ones.
    np.testing.assert_array_equal(flat[f'warp_{domain}/flow_conv/kernel'], kernel)
  if option:
    assert all(n in report.missing for n in ref if n.startswith(('warp_anime/', 'edit_anime/')))
    np.testing.assert_array_equal(flat['warp_anime/flow_conv/kernel'],
                                  ref['warp_anime/flow_conv/kernel'])
  assert 'motion/first/kernel' in report.missing  # Left at its random init.


def test_partial_loading_reports_mismatch_missing_and_extra(model_parts, tmp_path):
  _, init = model_parts
  saved, reference = _flat(init(jax.random.key(1))), init(jax.random.key(2))
  saved['motion/first/kernel'] = np.zeros((20, D), np.float32)  # AnimeCeleb's 20-D PIRender MLP.
  del saved['warp_anime/flow_conv/bias']
  saved['discriminator/kernel'] = np.ones((3,), np.float32)
  path = str(tmp_path / 'partial.npz')
  tree_util.save_flat_npz(path, saved)
  params, report = model_init.load(path, reference)
  assert report.shape_mismatch == {'motion/first/kernel': ((20, D), (70, D))}
  assert report.missing == ['warp_anime/flow_conv/bias']
  assert report.unexpected == ['discriminator/kernel']
  assert len(report.loaded) == len(_flat(reference)) - 2
  flat, ref = _flat(params), _flat(reference)
  for kept in ('motion/first/kernel', 'warp_anime/flow_conv/bias'):
    np.testing.assert_array_equal(flat[kept], ref[kept])
  np.testing.assert_array_equal(flat['warp_human/flow_conv/kernel'],
                                saved['warp_human/flow_conv/kernel'])
  with open(report.write(str(tmp_path)), encoding='utf-8') as f:
    written = json.load(f)
  assert written['shape_mismatch'] == {'motion/first/kernel': {'file': [20, D], 'model': [70, D]}}
  total = len(_flat(reference))
  assert f'loaded {total - 2} of {total} parameters' in report.summary()


def _one_line_error(exc_type, path, reference, match):
  with pytest.raises(exc_type, match=match) as info:
    model_init.load(path, reference, animo_torch.convert)
  assert '\n' not in str(info.value) and os.path.basename(path) in str(info.value)


def test_clear_errors_for_bad_files(model_parts, tmp_path):
  _, init = model_parts
  reference = jax.eval_shape(init, jax.random.key(0))
  _one_line_error(FileNotFoundError, str(tmp_path / 'nope.npz'), reference, 'does not exist')
  empty = tmp_path / 'empty.pth'
  empty.write_bytes(b'')
  _one_line_error(ValueError, str(empty), reference, 'empty')
  garbage = tmp_path / 'garbage.npz'
  garbage.write_bytes(b'not a checkpoint at all')
  _one_line_error(ValueError, str(garbage), reference, 'neither')
  good = tmp_path / 'good.npz'
  tree_util.save_flat_npz(good, {'motion/first/bias': np.zeros(D, np.float32)})
  truncated = tmp_path / 'truncated.npz'
  truncated.write_bytes(good.read_bytes()[:40])
  _one_line_error(ValueError, str(truncated), reference, 'corrupt')
  unrelated = tmp_path / 'unrelated.npz'
  tree_util.save_flat_npz(unrelated, {'vgg/conv1_1/kernel': np.zeros(3, np.float32)})
  _one_line_error(ValueError, str(unrelated), reference, 'shares no parameter')
  torch_file = str(tmp_path / 'animo.pth')
  torch.save({'state_dict': {'x.weight': torch.zeros(2)}}, torch_file)
  _one_line_error(ValueError, torch_file, reference, 'shares no parameter')


def test_trainer_warm_starts_at_step_0_with_the_file_weights(synthetic_data_dir, model_parts,
                                                             tmp_path):
  _, init = model_parts
  path = str(tmp_path / 'animo.ckpt')
  nets = _torch_nets(seed=9)
  _save_lightning(nets, path)
  expected = _flat(model_init.load(path, init(jax.random.key(0)), animo_torch.convert)[0])
  config = helpers.tiny_config(synthetic_data_dir, total_steps=0, sample_every=0,
                                  export_at_end=False)
  config.eval.num_pairs = 0
  config.model_init = path
  workdir = str(tmp_path / 'run')
  state = trainer.train_and_evaluate(config, workdir)
  assert int(state['step']) == 0
  for key in ('params', 'ema'):
    got = _flat(animo_state.model_params(state[key]))
    assert set(got) == set(expected)
    for name, value in expected.items():
      np.testing.assert_array_equal(got[name], value, err_msg=f'{key}: {name}')
  # A fresh optimiser (zero moments, count 0), as `tx.init` makes it.
  tx = optim.make_optimizer(config.optim)
  for group, opt_state in state['opt'].items():
    fresh = jax.tree.leaves(tx.init(state['params'][group]))
    for got, want in zip(jax.tree.leaves(opt_state), fresh, strict=True):
      np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  with open(os.path.join(workdir, model_init.REPORT_FILENAME), encoding='utf-8') as f:
    report = json.load(f)
  assert report['unconverted'] and not report['missing'] and len(report['loaded']) == len(expected)

"""Parity of the translation networks with PyTorch re-implementations (official key layouts).

The PyTorch nets get random weights, are saved with `torch.save`, read back WITHOUT torch by our
converters, and loaded into our NNX modules: so the tests pin the architectures and the
checkpoint key mapping together.
"""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from animojax.convert import cyclegan_torch
from animojax.convert import ugatit_torch
from animojax.models.blocks import initializers
from animojax.models.translate import cyclegan
from animojax.models.translate import ugatit
from animojax.utils import tree as tree_utils
from tests import torch_reference_translate as ref
from tests.conftest import assert_close


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(x), (0, 3, 1, 2))))


def _nhwc(t):
  return np.transpose(t.detach().numpy(), (0, 2, 3, 1))


def _load(model, flat):
  """Our (abstract) module with `flat` ('/'-named arrays) as its parameters, every one set."""
  graphdef, state = nnx.split(model)
  reference = nnx.to_pure_dict(state)
  assert set(flat) == set(tree_utils.flatten_with_names(reference))
  return graphdef, tree_utils.restore_like(flat, reference)


def _apply(graphdef, params, x):
  return jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))(params, x)


def _saved_and_converted(net, tmp_path, name, kind=''):
  path = str(tmp_path / name)
  torch.save(net.state_dict(), path)
  return cyclegan_torch.convert(path, option=kind)


def test_resnet_generator_matches_pytorch(tmp_path):
  torch_net = ref.randomize(ref.ResnetGenerator(3, 3, ngf=4, n_blocks=2), seed=0)
  conversion = _saved_and_converted(torch_net, tmp_path, 'latest_net_G_A.pth')
  assert conversion.layout == 'cyclegan_G' and not conversion.unconverted
  model = nnx.eval_shape(lambda: cyclegan.ResnetGenerator(3, 3, ngf=4, num_blocks=2,
                                                          rngs=initializers.KeyStream(0)))
  graphdef, params = _load(model, conversion.params)
  x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
  ours = _apply(graphdef, params, jnp.asarray(x))
  with torch.no_grad():
    theirs = _nhwc(torch_net(_nchw(x)))
  assert ours['image'].shape == (2, 32, 32, 3)
  assert ours['bottleneck'].shape == (2, 8, 8, 16)
  assert_close(ours['image'], theirs, 1e-4)


def test_patch_discriminator_matches_pytorch(tmp_path):
  torch_net = ref.randomize(ref.NLayerDiscriminator(3, ndf=4, n_layers=3), seed=1)
  conversion = _saved_and_converted(torch_net, tmp_path, 'latest_net_D_A.pth')
  assert conversion.layout == 'cyclegan_D'
  model = nnx.eval_shape(lambda: cyclegan.PatchDiscriminator(3, ndf=4, num_layers=3,
                                                             rngs=initializers.KeyStream(0)))
  graphdef, params = _load(model, conversion.params)
  x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
  ours = _apply(graphdef, params, jnp.asarray(x))
  with torch.no_grad():
    theirs = _nhwc(torch_net(_nchw(x)))
  assert ours['logits'].shape == theirs.shape == (2, 2, 2, 1)  # 30×30 at 256², 2×2 at 32².
  assert_close(ours['logits'], theirs, 1e-4)


def test_converter_drops_2018_instance_norm_statistics_and_names_bad_files(tmp_path):
  state = {k: v.numpy() for k, v in ref.ResnetGenerator(3, 3, ngf=2, n_blocks=1).state_dict()
           .items()}
  state['model.2.running_mean'] = np.zeros(2, np.float32)
  conversion = cyclegan_torch.convert_state_dict(state)
  assert set(conversion.unconverted) == {'model.2.running_mean'}
  assert 'blocks/0/conv_1/kernel' in conversion.params
  with pytest.raises(ValueError, match='not a CycleGAN'):
    cyclegan_torch.convert_state_dict({'encoder.weight': np.zeros((1, 1, 1, 1))}, path='x.pth')
  with pytest.raises(SystemExit, match='does not exist'):
    cyclegan_torch.main(['--src', str(tmp_path / 'missing.pth'), '--out', str(tmp_path / 'o')])


# ---------------------------------------------------------------------------------------------
# U-GAT-IT.

def _ugatit_flat(net, kind, tmp_path):
  path = str(tmp_path / 'params.pt')
  torch.save({kind: net.state_dict()}, path)
  conversion = ugatit_torch.convert(path)
  assert not conversion.unconverted, conversion.unconverted
  prefix = ugatit_torch.NETS[kind] + '/'
  return {k[len(prefix):]: v for k, v in conversion.params.items()}


@pytest.mark.parametrize('light', [True, False])
def test_ugatit_generator_matches_pytorch(tmp_path, light):
  torch_net = ref.randomize(ref.UgatitGenerator(ngf=2, n_blocks=2, img_size=16, light=light), 2)
  with torch.no_grad():  # ρ, γ, β away from their inits so both norms and the mix are tested.
    for name, p in torch_net.named_parameters():
      if name.endswith('rho'):
        p.copy_(torch.rand(p.shape, generator=torch.Generator().manual_seed(3)))
  flat = _ugatit_flat(torch_net, 'genA2B', tmp_path)
  model = nnx.eval_shape(lambda: ugatit.Generator(2, 2, image_size=16, light=light,
                                                  rngs=initializers.KeyStream(0)))
  graphdef, params = _load(model, flat)
  x = np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  ours = _apply(graphdef, params, jnp.asarray(x))
  with torch.no_grad():
    image, cam_logit, heatmap = torch_net(_nchw(x))
    exact = copy.deepcopy(torch_net).double()(_nchw(x).double())
  assert_close(ours['cam_logit'], cam_logit.numpy(), 1e-4)
  assert_close(ours['heatmap'], _nhwc(heatmap), 1e-4)
  # The port's variance of variances over a few pixels is ill-conditioned (PyTorch's own float32
  # image is up to ~5e-4 from its float64 one), so the image is compared in float64 on both sides.
  with jax.enable_x64(True):
    ours64 = _apply(graphdef, jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), params),
                    jnp.asarray(x, jnp.float64))
  assert_close(ours64['image'], _nhwc(exact[0]), 1e-4)
  assert_close(ours64['cam_logit'], exact[1].numpy(), 1e-6)


@pytest.mark.parametrize('training', [False, True])
def test_ugatit_discriminator_matches_pytorch(tmp_path, training):
  torch_net = ref.randomize(ref.UgatitDiscriminator(ndf=2, n_layers=5), 4)
  with torch.no_grad():  # Move u, v off their fixed point: the first forward must iterate.
    torch_net.train()(torch.zeros(1, 3, 32, 32))
  torch_net.train(training)
  flat = _ugatit_flat(torch_net, 'disLA', tmp_path)
  model = nnx.eval_shape(lambda: ugatit.Discriminator(2, 5, rngs=initializers.KeyStream(0)))
  model.set_attributes(training=training)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  reference = {**tree_utils.flatten_with_names(nnx.to_pure_dict(params)),
               **tree_utils.flatten_with_names(nnx.to_pure_dict(rest))}
  assert set(flat) == set(reference)
  params, rest = (tree_utils.restore_like(
      {k: flat[k] for k in tree_utils.flatten_with_names(nnx.to_pure_dict(part))},
      nnx.to_pure_dict(part)) for part in (params, rest))

  @jax.jit
  def run(p, r, x):
    net = nnx.merge(graphdef, p, r)
    out = net(x)
    return out, nnx.to_pure_dict(nnx.state(net, ugatit.SpectralVector))

  x = np.random.default_rng(5).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
  ours, vectors = run(params, rest, jnp.asarray(x))
  with torch.no_grad():
    logits, cam_logit, heatmap = torch_net(_nchw(x))
  assert ours['logits'].shape == (2, 2, 2, 1)
  assert_close(ours['logits'], _nhwc(logits), 1e-4)
  assert_close(ours['cam_logit'], cam_logit.numpy(), 1e-4)
  assert_close(ours['heatmap'], _nhwc(heatmap), 1e-4)
  assert_close(vectors['head']['u'], torch_net.conv.weight_u.numpy(), 1e-5)


def test_warm_start_from_official_cyclegan_file_into_a_run_state(tmp_path):
  from animojax.configs import translate as translate_config  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from animojax.trainers.translate import program as translate_program
  from animojax.trainers.translate import warm_start  # pylint: disable=g-import-not-at-top
  config = translate_config.get_config('cyclegan,demo')
  config.model.update(ngf=2, ndf=2, num_blocks=1)
  torch_net = ref.randomize(ref.ResnetGenerator(3, 3, ngf=2, n_blocks=1), seed=6)
  path = str(tmp_path / 'latest_net_G_A.pth')
  torch.save(torch_net.state_dict(), path)
  config.model_init = f'gen_to_real={path}'
  from animojax.trainers.translate import optim  # pylint: disable=g-import-not-at-top
  init = translate_program.make_init(config, optim.make_optimizer(config.optim))
  state = jax.eval_shape(init, jax.random.key(0))
  params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), state['params'])
  loaded = warm_start.load(config, params, str(tmp_path))
  np.testing.assert_array_equal(loaded['gen_to_real']['head']['bias'],
                                torch_net.model[-2].bias.detach().numpy())
  assert float(jnp.abs(loaded['gen_to_anime']['head']['kernel']).max()) == 0.0  # Untouched.
  assert (tmp_path / 'model_init.json').exists()
  config.model_init = f'gen_to_nowhere={path}'
  with pytest.raises(ValueError, match='not a network'):
    warm_start.load(config, params)

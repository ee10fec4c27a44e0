"""FID Inception: converter + Flax port vs a PyTorch pytorch-fid reference with random weights."""

from flax import nnx
import jax
import numpy as np
import pytest
import torch

from animojax.convert import inception as inception_convert
from animojax.metrics import fid
from animojax.nets import fid_inception
from tests import torch_reference_nets as refs
from tests.conftest import RUN_FAST_COMPILER_OPTIONS

RTOL = 1e-4  # Relative to the largest reference magnitude of each output.


def _assert_relative(actual, expected, what):
  actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
  assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
  err = np.abs(actual - expected).max() / np.abs(expected).max()
  assert err <= RTOL, f'{what}: max error {err:.3g} of max |ref| > {RTOL}'


@pytest.fixture(scope='module')
def torch_and_npz(tmp_path_factory):
  """A random-weight reference, saved as a state dict (zip format) and converted without torch."""
  model = refs.randomize(refs.FIDInception(), seed=1)
  path = tmp_path_factory.mktemp('inception')
  torch.save(model.state_dict(), path / 'pt_inception.pth')
  npz = str(path / 'fid_inception.npz')
  flat = inception_convert.convert(str(path / 'pt_inception.pth'), npz)
  assert len(flat) == 94 * 5  # Every conv + BN (4 tensors), fc and num_batches_tracked dropped.
  return model, npz


def test_blocks_and_pool3_match_pytorch_fid_at_299(torch_and_npz):
  model, npz = torch_and_npz
  # Two 8-bit images at 67x53: exercises the non-square bilinear upsampling to 299 as well.
  rng = np.random.default_rng(0)
  u8 = rng.integers(0, 256, (2, 67, 53, 3)).astype(np.float32)
  u8[1] = np.round(np.linspace(0, 255, 53))[None, :, None] * np.ones((67, 1, 3))
  images = u8 / 127.5 - 1.0  # [-1, 1], exactly on 8-bit levels: quantisation is the identity.
  with torch.no_grad():
    ref = [t.numpy() for t in model(torch.from_numpy(u8 / 255.0).permute(0, 3, 1, 2).float())]
  graphdef, params = nnx.split(fid_inception.build(npz))
  # Jitted: XLA compiles this network faster than eager mode runs it.
  ours = jax.jit(lambda p, x: nnx.merge(graphdef, p)(fid.preprocess(x)),
                 compiler_options=RUN_FAST_COMPILER_OPTIONS)(params, images)
  for name, expected in zip(('block0', 'block1', 'block2'), ref[:3]):
    _assert_relative(ours[name], expected.transpose(0, 2, 3, 1), name)
  _assert_relative(ours['pool3'], ref[3][:, :, 0, 0], 'pool3')
  assert np.abs(ref[3]).max() > 1e-2  # The random network did not collapse to zeros.
  # The metric's own jitted entry point gives the same features.
  features_fn, params = fid.make_fid_features(npz)
  _assert_relative(features_fn(params, images), ref[3][:, :, 0, 0], 'make_fid_features')


def test_converter_names_the_file_and_the_bad_entries(torch_and_npz, tmp_path):
  model, _ = torch_and_npz
  sd = dict(model.state_dict())
  del sd['Mixed_6c.branch7x7_2.conv.weight']
  sd['Mixed_7c.branch_pool.bn.weight'] = torch.zeros(7)
  torch.save(sd, tmp_path / 'broken.pth')
  with pytest.raises(ValueError, match=r'broken\.pth.*Mixed_6c/branch7x7_2/conv/kernel.*'
                     r'Mixed_7c/branch_pool/bn/scale \(7,\)'):
    inception_convert.convert(str(tmp_path / 'broken.pth'), str(tmp_path / 'out.npz'))


def test_missing_weights_say_how_to_get_them(tmp_path):
  with pytest.raises(FileNotFoundError) as e:
    fid_inception.build(str(tmp_path / 'nope.npz'))
  message = str(e.value)
  assert 'nope.npz' in message and 'python -m animojax.convert.fetch fid_inception' in message
  assert 'pt_inception-2015-12-05-6726825d.pth' in message and 'downloads' in message


def test_small_inputs_are_rejected_before_compiling(torch_and_npz):
  net = fid_inception.build(torch_and_npz[1])
  with pytest.raises(ValueError, match='at least 75x75'):
    net(np.zeros((1, 74, 80, 3), np.float32))

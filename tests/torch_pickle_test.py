"""Tests for the torch-free `.pt/.pth` reader against `torch.save` / `torch.load`."""

import collections
import io
import os
import pathlib
import pickle
import zipfile

import ml_dtypes
import numpy as np
import pytest
import torch

from animojax.convert import torch_pickle

TESTDATA = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'testdata'


def _testdata(relative: str) -> pathlib.Path:
  path = TESTDATA / relative
  assert path.is_file(), f'missing shared test file {path} (see ../shared/testdata/README)'
  return path


def _to_numpy(t: torch.Tensor) -> np.ndarray:
  if t.dtype == torch.bfloat16:
    return t.view(torch.uint16).numpy().view(ml_dtypes.bfloat16)
  return t.numpy()


def _assert_same(ours: np.ndarray, theirs: torch.Tensor, name: str = '') -> None:
  expected = _to_numpy(theirs.detach())
  assert ours.dtype == expected.dtype, name
  assert ours.shape == expected.shape, name
  assert ours.flags.c_contiguous and ours.flags.owndata, name
  # Bitwise comparison: exact for every dtype, including bfloat16 and complex.
  assert ours.tobytes() == np.ascontiguousarray(expected).tobytes(), name


def _save(obj, path, legacy: bool) -> str:
  torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
  return str(path)


def _mixed_tensors() -> dict[str, torch.Tensor]:
  g = torch.Generator().manual_seed(0)
  base = torch.randn(6, 10, generator=g)
  shared = torch.arange(24, dtype=torch.float64)
  return collections.OrderedDict([
      ('f32', torch.randn(3, 4, generator=g)),
      ('f64', torch.randn(5, generator=g, dtype=torch.float64)),
      ('f16', torch.randn(2, 3, generator=g).half()),
      ('bf16', torch.randn(4, 2, generator=g).bfloat16()),
      ('i64', torch.randint(-2**40, 2**40, (7,), generator=g)),
      ('i32', torch.randint(-1000, 1000, (2, 2), generator=g, dtype=torch.int32)),
      ('i16', torch.tensor([-3, 7], dtype=torch.int16)),
      ('i8', torch.tensor([-128, 127], dtype=torch.int8)),
      ('u8', torch.randint(0, 255, (3, 3), generator=g, dtype=torch.uint8)),
      ('bool', torch.tensor([True, False, True])),
      ('c64', torch.randn(3, generator=g, dtype=torch.complex64)),
      ('scalar', torch.tensor(3.5)),
      ('empty', torch.zeros(0, 3)),
      # Views: transposed, strided, offset, broadcast (stride 0), and two views of one storage.
      ('transposed', base.t()),
      ('strided', base[::2, 1::3]),
      ('offset', base[3:, 4:]),
      ('expanded', torch.arange(3.0).expand(4, 3)),
      ('shared_a', shared[2:14].view(3, 4)),
      ('shared_b', shared.view(4, 6)[:, ::2]),
      ('bf16_view', torch.randn(4, 6, generator=g).bfloat16()[1:, ::2]),
  ])


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_dtypes_and_views_round_trip(tmp_path, legacy):
  tensors = _mixed_tensors()
  path = _save(tensors, tmp_path / 'mixed.pt', legacy)
  loaded = torch_pickle.load_torch_state_dict(path)
  assert list(loaded) == list(tensors)
  for name, tensor in tensors.items():
    _assert_same(loaded[name], tensor, name)


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_nested_checkpoints_and_parameters(tmp_path, legacy):
  linear = torch.nn.Linear(3, 2)
  inner = linear.state_dict()
  checkpoint = {'epoch': 7, 'state_dict': inner, 'optimizer': {'state': {}, 'lr': 0.1}}
  path = _save(checkpoint, tmp_path / 'ckpt.pth', legacy)
  loaded = torch_pickle.load_torch_state_dict(path)
  assert list(loaded) == ['weight', 'bias']
  _assert_same(loaded['weight'], inner['weight'])

  # Parameters (keep_vars=True) go through _rebuild_parameter; a Python attribute on one makes
  # torch use _rebuild_parameter_with_state.
  params = linear.state_dict(keep_vars=True)
  params['weight'].note = 'extra state'
  path = _save({'model': {'generator': params}}, tmp_path / 'params.pth', legacy)
  loaded = torch_pickle.load_torch_state_dict(path)
  _assert_same(loaded['bias'], linear.bias)
  _assert_same(loaded['weight'], linear.weight)
  assert set(torch_pickle.load_torch_state_dict(path, key='model/generator')) == {'weight', 'bias'}

  raw = torch_pickle.load_torch_pickle(path)
  assert isinstance(raw['model']['generator'], collections.OrderedDict)


def test_ambiguous_nesting_requires_key(tmp_path):
  two = {'encoder': {'w': torch.ones(2)}, 'decoder': {'w': torch.zeros(3)}}
  path = _save(two, tmp_path / 'two.pt', legacy=False)
  with pytest.raises(ValueError, match=r'two\.pt.*key='):
    torch_pickle.load_torch_state_dict(path)
  np.testing.assert_array_equal(
      torch_pickle.load_torch_state_dict(path, key='decoder')['w'], np.zeros(3, np.float32))
  with pytest.raises(ValueError, match="'middle'"):
    torch_pickle.load_torch_state_dict(path, key='middle')


def test_untyped_storage_dtypes(tmp_path):
  # uint16/uint32 have no legacy storage class: torch saves them with _rebuild_tensor_v3.
  tensors = {'u16': torch.from_numpy(np.arange(5, dtype=np.uint16) * 1000),
             'u32': torch.from_numpy(np.arange(6, dtype=np.uint32).reshape(2, 3)).t()}
  path = _save(tensors, tmp_path / 'v3.pt', legacy=False)
  loaded = torch_pickle.load_torch_state_dict(path)
  np.testing.assert_array_equal(loaded['u16'], np.arange(5, dtype=np.uint16) * 1000)
  np.testing.assert_array_equal(loaded['u32'], np.arange(6, dtype=np.uint32).reshape(2, 3).T)
  assert loaded['u32'].dtype == np.uint32


def test_big_endian_zip_and_any_archive_prefix(tmp_path):
  tensors = _mixed_tensors()
  little = _save(tensors, tmp_path / 'little.pt', legacy=False)
  big = tmp_path / 'big.pt'
  # Rewrite as a big-endian file under another archive prefix: swap every storage's elements.
  dtypes = {}
  with zipfile.ZipFile(little) as zin:
    pkl = zin.read('little/data.pkl')
    loader = torch_pickle._RestrictedUnpickler(io.BytesIO(pkl), little, legacy=False)
    loader.load()
    for key, ref in loader.storages.items():
      dtypes[key] = ref.dtype
    with zipfile.ZipFile(big, 'w', zipfile.ZIP_STORED) as zout:
      for info in zin.infolist():
        data = zin.read(info.filename)
        name = info.filename.replace('little/', 'renamed/', 1)
        if name.endswith('/byteorder'):
          data = b'big'
        elif '/data/' in name:
          dtype = dtypes[name.rsplit('/', 1)[1]]
          word = dtype.itemsize // 2 if dtype.kind == 'c' else dtype.itemsize
          if word > 1:
            data = np.frombuffer(data, f'<u{word}').astype(f'>u{word}').tobytes()
        zout.writestr(name, data)
  loaded = torch_pickle.load_torch_state_dict(big)
  theirs = torch.load(big, weights_only=True)
  for name, tensor in tensors.items():
    _assert_same(loaded[name], tensor, name)
    _assert_same(loaded[name], theirs[name], name)


class _Evil:

  def __reduce__(self):
    return (os.system, ('echo pwned',))


def test_refuses_unknown_globals(tmp_path):
  zip_path = tmp_path / 'evil.pt'
  with zipfile.ZipFile(zip_path, 'w') as zf:
    zf.writestr('archive/data.pkl', pickle.dumps({'w': _Evil()}, protocol=2))
  with pytest.raises(ValueError, match=r'evil\.pt.*(posix|os|nt)\.system'):
    torch_pickle.load_torch_state_dict(zip_path)

  legacy_path = tmp_path / 'evil_legacy.pth'
  with open(legacy_path, 'wb') as f:
    for header in (torch_pickle._LEGACY_MAGIC_NUMBER, 1001, {'little_endian': True}):
      pickle.dump(header, f, protocol=2)
    pickle.dump({'w': _Evil()}, f, protocol=2)
  with pytest.raises(ValueError, match=r'evil_legacy\.pth.*system'):
    torch_pickle.load_torch_state_dict(legacy_path)
  # The header pickles are untrusted too.
  with open(legacy_path, 'wb') as f:
    pickle.dump(_Evil(), f, protocol=2)
  with pytest.raises(ValueError, match=r'evil_legacy\.pth.*system'):
    torch_pickle.load_torch_state_dict(legacy_path)

  module_path = _save(torch.nn.Linear(2, 2), tmp_path / 'module.pt', legacy=False)
  with pytest.raises(ValueError, match=r'torch\.nn\.modules\.linear\.Linear.*state_dict'):
    torch_pickle.load_torch_state_dict(module_path)


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_missing_and_corrupt_files(tmp_path, legacy):
  with pytest.raises(FileNotFoundError, match='nothere.pt'):
    torch_pickle.load_torch_state_dict(tmp_path / 'nothere.pt')
  path = _save({'w': torch.randn(100, 100)}, tmp_path / 'good.pt', legacy)
  data = open(path, 'rb').read()
  truncated = tmp_path / 'truncated.pt'
  truncated.write_bytes(data[:len(data) // 2])
  with pytest.raises(ValueError, match='truncated.pt'):
    torch_pickle.load_torch_state_dict(truncated)
  garbage = tmp_path / 'garbage.pt'
  garbage.write_bytes(b'not a checkpoint at all')
  with pytest.raises(ValueError, match='garbage.pt'):
    torch_pickle.load_torch_state_dict(garbage)


@pytest.mark.parametrize('relative', [
    'animeceleb/EDTN.pt',  # zip format
    'lpips/alex.pth',  # legacy format, saved from a GPU (cuda:0 storages)
    '3ddfa/mb05_120x120.pth',  # legacy, {'epoch', 'state_dict'} wrapper, int64 buffers
])
def test_real_checkpoints_match_torch_load(relative):
  path = _testdata(relative)
  theirs = torch.load(path, map_location='cpu', weights_only=True)
  if 'state_dict' in theirs:
    theirs = theirs['state_dict']
  ours = torch_pickle.load_torch_state_dict(path)
  assert list(ours) == list(theirs)
  for name, tensor in theirs.items():
    _assert_same(ours[name], tensor, name)

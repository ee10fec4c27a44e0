"""`python -m animojax.convert.fetch`: download from a local HTTP server, checksum, convert, and
the messages an offline user gets. The server (127.0.0.1 only) serves files made by the test."""

import dataclasses
import functools
import hashlib
import http.server
import os
import re
import shutil
import threading

import numpy as np
import pytest
import torch

from animojax.convert import fetch
from animojax.convert import sources
from animojax.metrics import lpips
from tests import conftest
from tests import torch_reference_nets as refs


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
  requests = []

  def log_message(self, *args):
    del args

  def do_GET(self):  # pylint: disable=invalid-name
    _QuietHandler.requests.append(self.path)
    super().do_GET()


@pytest.fixture(scope='module')
def server(tmp_path_factory):
  """(base URL, served folder) with a random AlexNet and the real LPIPS heads in it."""
  folder = tmp_path_factory.mktemp('served')
  torch.save(refs.randomize(refs.AlexNet(), seed=3).state_dict(),
             folder / 'alexnet-owt-7be5be79.pth')
  shutil.copy(conftest.shared_file('lpips', 'alex.pth'), folder / 'lpips_v0.1_alex.pth')
  httpd = http.server.ThreadingHTTPServer(
      ('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(folder)))
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield f'http://127.0.0.1:{httpd.server_address[1]}', folder
  httpd.shutdown()
  httpd.server_close()


def _sha256(path):
  return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def _local_spec(base, folder, **changes):
  """LPIPS_ALEX with the test files' URLs, sizes and sums (the official ones cannot match)."""
  downloads = tuple(
      dataclasses.replace(d, url=f'{base}/{d.filename}', sha256=_sha256(folder / d.filename),
                          size=os.path.getsize(folder / d.filename), **changes)
      for d in sources.LPIPS_ALEX.downloads)
  return dataclasses.replace(sources.LPIPS_ALEX, downloads=downloads)


def test_download_verify_convert_then_reuse(server, tmp_path):
  base, folder = server
  spec = _local_spec(base, folder)
  _QuietHandler.requests.clear()
  out = fetch.fetch('lpips_alex', cache_dir=str(tmp_path), spec=spec, verbose=False)
  assert out == str(tmp_path / 'lpips_alex.npz')
  assert sorted(os.listdir(tmp_path / 'downloads')) == sorted(d.filename for d in spec.downloads)
  assert len(_QuietHandler.requests) == 2
  fn, params = lpips.make_lpips(out)  # The converted file loads into the metric.
  x = np.zeros((1, 32, 32, 3), np.float32)
  assert abs(float(fn(params, x, x)[0])) < 1e-7
  # A second call finds the .npz; with --force it reconverts from the downloads, offline.
  assert fetch.fetch('lpips_alex', cache_dir=str(tmp_path), spec=spec, verbose=False) == out
  os.remove(out)
  fetch.fetch('lpips_alex', cache_dir=str(tmp_path), spec=spec, verbose=False)
  assert os.path.isfile(out) and len(_QuietHandler.requests) == 2


def test_wrong_checksum_keeps_nothing(server, tmp_path):
  base, folder = server
  spec = _local_spec(base, folder)
  bad = dataclasses.replace(spec.downloads[0], sha256='0' * 64)
  spec = dataclasses.replace(spec, downloads=(bad, spec.downloads[1]))
  with pytest.raises(ValueError, match='sha256 .* expected 0000'):
    fetch.fetch('lpips_alex', cache_dir=str(tmp_path), spec=spec, verbose=False)
  assert os.listdir(tmp_path / 'downloads') == []  # No partial or unverified file left.
  assert not os.path.exists(tmp_path / 'lpips_alex.npz')


def test_offline_message_names_files_urls_and_folder(tmp_path, capsys):
  # Port 1 on localhost refuses connections: the same path as a machine without internet.
  code = fetch.main(['lpips_alex', '--cache_dir', str(tmp_path), '--mirror', 'http://127.0.0.1:1'])
  assert code == 1
  err = capsys.readouterr().err
  first = sources.LPIPS_ALEX.downloads[0]
  assert 'Could not download http://127.0.0.1:1/alexnet-owt-7be5be79.pth' in err
  assert first.url in err and first.sha256 in err
  assert str(tmp_path / 'downloads' / first.filename) in err
  # The official files, when present in downloads/, are checked against the recorded sums.
  os.makedirs(tmp_path / 'downloads', exist_ok=True)
  open(tmp_path / 'downloads' / first.filename, 'wb').write(b'not the file')
  assert fetch.main(['lpips_alex', '--cache_dir', str(tmp_path)]) == 1
  assert f'but {first.filename} is {first.sha256}' in capsys.readouterr().err


def test_local_sources_convert_without_network(server, tmp_path, capsys):
  _, folder = server
  srcs = [str(folder / d.filename) for d in sources.LPIPS_ALEX.downloads]
  # Test-made files differ from the official ones, so the checksum must be waived explicitly.
  args = ['lpips_alex', '--cache_dir', str(tmp_path), '--src', srcs[0], '--src', srcs[1]]
  assert fetch.main(args) == 1
  assert '--skip_checksum' in capsys.readouterr().err
  assert fetch.main(args + ['--skip_checksum']) == 0
  assert os.path.isfile(tmp_path / 'lpips_alex.npz')


def test_every_spec_has_a_converter_and_a_pinned_sum():
  for name, spec in sources.SPECS.items():
    assert name in fetch.CONVERTERS
    for d in spec.downloads:
      assert len(d.sha256) == 64 and d.url.startswith('https://') and d.size > 0
      # torchvision / pytorch-fid file names carry the first 8 hex digits of the sum.
      prefix = re.search(r'-([0-9a-f]{8})\.pth$', d.filename)
      if prefix:
        assert d.sha256.startswith(prefix.group(1)), d.filename
  # The real LPIPS heads in ../shared/testdata are the pinned file.
  real_heads = conftest.shared_file('lpips', 'alex.pth')
  assert _sha256(real_heads) == sources.LPIPS_ALEX.downloads[1].sha256

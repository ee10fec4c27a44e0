r"""One command per pretrained network: download the official files, check them, convert them.

  python -m animojax.convert.fetch --list                   # what exists, what is cached
  python -m animojax.convert.fetch vgg19 fid_inception lpips_alex   # or: all

For each name, the official PyTorch files (`animojax.convert.sources`: URL, size, SHA-256) are
downloaded into `~/.cache/animojax/downloads/` unless already there, their SHA-256 is checked,
and they are converted without torch into `~/.cache/animojax/NAME.npz`, the default path every
loss and metric reads. Offline: copy the files into the downloads folder (or pass `--src`, once
per file in the listed order) and run the same command. `--mirror URL` fetches the files by name
from another server (e.g. an internal mirror); their checksums must still match.
"""

import argparse
import dataclasses
import hashlib
import os
import shutil
import sys
import urllib.error
import urllib.request
from typing import Callable, Sequence

from animojax.convert import sources
from animojax.utils import cli

_CHUNK = 1 << 20


class DownloadError(OSError):
  """A file could not be downloaded; the message gives the offline route."""


def _convert_vgg19(paths: Sequence[str], out: str) -> None:
  from animojax.convert import vgg19  # pylint: disable=g-import-not-at-top
  vgg19.convert(paths[0], out)


def _convert_inception(paths: Sequence[str], out: str) -> None:
  from animojax.convert import inception  # pylint: disable=g-import-not-at-top
  inception.convert(paths[0], out)


def _convert_lpips(paths: Sequence[str], out: str) -> None:
  from animojax.convert import lpips  # pylint: disable=g-import-not-at-top
  lpips.convert(paths[0], paths[1], out)


def _convert_tddfa(paths: Sequence[str], out: str) -> None:
  from animojax.convert import tddfa  # pylint: disable=g-import-not-at-top
  tddfa.convert(paths[0], paths[1], paths[2], paths[3:6], out)


# Converters are imported lazily: the flax-based ones are only needed for the name asked for.
CONVERTERS: dict[str, Callable[[Sequence[str], str], None]] = {
    'vgg19': _convert_vgg19,
    'fid_inception': _convert_inception,
    'lpips_alex': _convert_lpips,
    'tddfa_v2': _convert_tddfa,
}


def sha256_of(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(_CHUNK), b''):
      digest.update(chunk)
  return digest.hexdigest()


def rerun_command(name: str, cache_dir: str = sources.CACHE_DIR) -> str:
  """The command that makes `name` again, keeping a non-default --cache_dir."""
  command = f'python -m animojax.convert.fetch {name}'
  if os.path.expanduser(cache_dir) != os.path.expanduser(sources.CACHE_DIR):
    command += f' --cache_dir={cache_dir}'
  return command


def _offline_help(download: sources.Download, dest: str, command: str) -> str:
  return (f'Offline? Download {download.filename} ({download.size:,} bytes, sha256 '
          f'{download.sha256}) from {download.url} on a machine with internet, put it at {dest} '
          f'(or pass its path with --src), and rerun `{command}`.')


def download(download: sources.Download, dest: str, *, name: str, url: str | None = None,
             timeout: float = 60.0, verbose: bool = True, command: str | None = None) -> str:
  """Downloads `download` (from `url` if given) to `dest`, checking its SHA-256; returns `dest`.

  The file is written to `dest + '.part'` and renamed only once complete and verified, so an
  interrupted or corrupted download never looks like a valid file.

  Raises:
    DownloadError: the server could not be reached or answered with an error.
    ValueError: the downloaded bytes have the wrong SHA-256 (the partial file is removed).
  """
  url = url or download.url
  command = command or rerun_command(name)
  part = dest + '.part'
  os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
  digest = hashlib.sha256()
  received = 0
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(part, 'wb') as f:
      total = int(response.headers.get('Content-Length') or download.size)
      next_report = 0
      for chunk in iter(lambda: response.read(_CHUNK), b''):
        f.write(chunk)
        digest.update(chunk)
        received += len(chunk)
        if verbose and total > 8 * _CHUNK and received >= next_report:
          print(f'  {download.filename}: {received / 2**20:.0f} / {total / 2**20:.0f} MiB',
                file=sys.stderr, flush=True)
          next_report = received + total // 10
  except (urllib.error.URLError, OSError) as e:
    if os.path.exists(part):
      os.remove(part)
    raise DownloadError(f'Could not download {url}: {e}.\n'
                        + _offline_help(download, dest, command)) from e
  actual = digest.hexdigest()
  if actual != download.sha256:
    os.remove(part)
    raise ValueError(f'{url} gave {received:,} bytes with sha256 {actual}, expected '
                     f'{download.sha256} ({download.size:,} bytes); nothing was kept. A proxy or '
                     f'mirror may serve another file. ' + _offline_help(download, dest, command))
  os.replace(part, dest)
  return dest


def _check_existing(path: str, download: sources.Download, command: str) -> None:
  actual = sha256_of(path)
  if actual != download.sha256:
    raise ValueError(
        f'{path} has sha256 {actual}, but {download.filename} is {download.sha256}. Delete or '
        f'replace it with the official file from {download.url}, or pass --skip_checksum if you '
        f'really mean to convert this file (`{command} --skip_checksum`).')


def fetch(name: str, *, cache_dir: str = sources.CACHE_DIR, mirror: str | None = None,
          src: Sequence[str] | None = None, force: bool = False, skip_checksum: bool = False,
          spec: sources.WeightSpec | None = None, verbose: bool = True) -> str:
  """Makes `<cache_dir>/NAME.npz` (downloading what is missing); returns its path.

  Args:
    name: a key of `sources.SPECS` (selects the converter).
    cache_dir: where the `.npz` goes; originals go in its `downloads/` sub-folder.
    mirror: base URL that serves the files by their names, instead of the official URLs.
    src: local paths of the original files, in the order of `spec.downloads`.
    force: convert again even if the `.npz` exists.
    skip_checksum: do not check the SHA-256 of files that are already on disk (downloads are
      always checked).
    spec: overrides `sources.SPECS[name]` (other URLs/sums, e.g. for tests).
    verbose: print progress to stderr.
  """
  spec = spec or sources.spec(name)
  if name not in CONVERTERS:
    raise ValueError(f'no converter for {name!r}; known: {sorted(CONVERTERS)}.')
  cache_dir = os.path.expanduser(cache_dir)
  out = os.path.join(cache_dir, spec.npz_filename)
  if os.path.isfile(out) and not force:
    if verbose:
      print(f'{name}: {out} already exists (use --force to convert again).', file=sys.stderr)
    return out
  if src is not None and len(src) != len(spec.downloads):
    raise ValueError(f'{name} is made from {len(spec.downloads)} file(s) '
                     f'({", ".join(d.filename for d in spec.downloads)}); got --src {list(src)}.')
  paths = []
  for i, d in enumerate(spec.downloads):
    path = (os.path.expanduser(src[i]) if src is not None
            else os.path.join(cache_dir, sources.DOWNLOADS, d.filename))
    if os.path.isfile(path):
      if not skip_checksum:
        _check_existing(path, d, rerun_command(name, cache_dir))
    elif src is not None:
      raise FileNotFoundError(
          f'--src {path} does not exist: check the path; it should be {d.filename} '
          f'({d.size:,} bytes, sha256 {d.sha256}) from {d.url}.')
    else:
      url = mirror.rstrip('/') + '/' + d.filename if mirror else d.url
      if verbose:
        print(f'{name}: downloading {url}', file=sys.stderr, flush=True)
      download(d, path, name=name, url=url, verbose=verbose,
               command=rerun_command(name, cache_dir))
    paths.append(path)
  tmp_out = out + '.tmp.npz'
  try:
    CONVERTERS[name](paths, tmp_out)
    os.replace(tmp_out, out)  # Readers never see a half-written .npz.
  finally:
    if os.path.exists(tmp_out):  # A failed conversion leaves nothing behind.
      os.remove(tmp_out)
  if verbose:
    print(f'{name}: wrote {out}', file=sys.stderr)
  return out


def describe(cache_dir: str = sources.CACHE_DIR) -> str:
  """One paragraph per known network: files, sums, and whether the `.npz` is cached."""
  lines = []
  for s in sources.SPECS.values():
    npz = os.path.join(os.path.expanduser(cache_dir), s.npz_filename)
    state = 'present' if os.path.isfile(npz) else 'missing'
    lines.append(f'{s.name}: {s.what}; used by {s.used_by}.\n  {npz} ({state})')
    for d in s.downloads:
      lines.append(f'  <- {d.filename} {d.size:,} bytes sha256 {d.sha256}\n     {d.url} '
                   f'[{d.licence}]')
  return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog=__doc__.split('\n\n', 1)[1])
  parser.add_argument('names', nargs='*', help=f'{", ".join(sources.SPECS)} or all')
  parser.add_argument('--list', action='store_true', help='describe the networks and exit')
  parser.add_argument('--cache_dir', default=sources.CACHE_DIR)
  parser.add_argument('--mirror', default=None, help='base URL serving the files by name')
  parser.add_argument('--src', action='append', default=None,
                      help='local original file (repeat, in the listed order; one name only)')
  parser.add_argument('--force', action='store_true', help='convert even if the .npz exists')
  parser.add_argument('--skip_checksum', action='store_true',
                      help='accept local files whose SHA-256 differs from the official one')
  args = parser.parse_args(argv)
  if args.list or not args.names:
    print(describe(args.cache_dir))
    return 0
  names = list(sources.SPECS) if args.names == ['all'] else args.names
  unknown = [n for n in names if n not in sources.SPECS]
  if unknown:
    parser.error(f'unknown {unknown}; choose from {list(sources.SPECS)} or all')
  if args.src is not None and len(names) != 1:
    parser.error('--src needs exactly one name')
  failed = 0
  for name in names:
    try:
      print(fetch(name, cache_dir=args.cache_dir, mirror=args.mirror, src=args.src,
                  force=args.force, skip_checksum=args.skip_checksum))
    except Exception as e:  # pylint: disable=broad-except
      if not cli.is_user_error(e):  # A bug keeps its traceback.
        raise
      print(cli.message(name, e), file=sys.stderr)
      failed += 1
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())

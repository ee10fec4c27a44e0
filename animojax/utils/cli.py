"""How the command-line tools end on bad input: one line naming the input, no traceback.

Every tool (`launch`, `export`, `evaluate`, `compile_check`, `posemap`, `convert.fetch`,
`data.tfds_build`, `reenact`, `translate`, `mocap.label`) ends a user error the way `launch`
always has: `SystemExit(message)`, which Python prints as one line on stderr with exit status 1.
Two helpers route the other errors there:

* `parse_flags`, absl's flags parser for `app.run`, turns ml_collections' traceback for an
  unknown `--config.x=y` key (and for a config file whose `get_config` rejects its argument)
  into one line naming the key and the nearest valid ones.
* `user_errors(prog)`, a context manager around a tool's work, turns the library's own checks
  (a `raise ValueError/FileNotFoundError/...` in this repository, whose messages name the input
  and the fix) and the operating system's refusals of a named path (missing, permission
  denied, a folder where a file is expected) into that one line. Anything else (a bug) keeps
  its traceback.
"""

import contextlib
import difflib
import linecache
import os

from absl import flags

_REPO_DIRS = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), d) + os.sep for d in ('animojax', 'tfds_builders'))
# Raised by the library's checks with a message that names the input.
_CHECK_ERRORS = (ValueError, OSError)
# The operating system's refusals of a named path: user errors wherever they are raised.
_PATH_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
                NotADirectoryError)


def _raised_by_a_check(error):
  """Whether the innermost frame of `error` is a `raise` statement of this repository."""
  tb = error.__traceback__
  if tb is None:
    return False
  while tb.tb_next is not None:
    tb = tb.tb_next
  path = tb.tb_frame.f_code.co_filename
  line = linecache.getline(path, tb.tb_lineno).strip()
  return path.startswith(_REPO_DIRS) and line.startswith('raise')


def is_user_error(error):
  if isinstance(error, _PATH_ERRORS) and getattr(error, 'filename', None):
    return True
  return isinstance(error, _CHECK_ERRORS) and _raised_by_a_check(error)


def message(prog, error):
  """`prog: message` on as few lines as the message itself has."""
  text = str(error).strip()
  return f'{prog}: {text}' if prog else text


@contextlib.contextmanager
def user_errors(prog):
  """Ends the program with `prog: message` (exit status 1) on a user error; see the docstring."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    if is_user_error(e):
      raise SystemExit(message(prog, e)) from None
    raise


def check_out_path(out, flag='--out'):
  """Fails before any work when `out` cannot be written (missing folder, no permission)."""
  folder = os.path.dirname(os.path.abspath(out))
  if os.path.isdir(out):
    raise IsADirectoryError(f'{flag}={out} is a folder; give the path of a file in it.')
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'{flag}={out}: the folder {folder} does not exist; create it first '
                            'or choose another path.')
  if not os.access(folder, os.W_OK):
    raise PermissionError(f'{flag}={out}: the folder {folder} is not writable; choose another '
                          'path.')


def _config_paths(config, prefix=''):
  """Every '.'-joined key path of a (nested) ConfigDict or dict."""
  paths = []
  for key, value in config.items():
    path = f'{prefix}{key}'
    paths.append(path)
    if hasattr(value, 'items'):
      paths.extend(_config_paths(value, path + '.'))
  return paths


def _first_unknown(config, path):
  """The shortest prefix of '.'-joined `path` that `config` lacks, or None."""
  node, parts = config, path.split('.')
  for i, part in enumerate(parts):
    if not hasattr(node, 'items'):
      return None  # Below a leaf: ml_collections reports that itself.
    if part not in node:
      return '.'.join(parts[:i + 1])
    node = node[part]
  return None


def unknown_config_key(argv, flag_name='config'):
  """One line naming the first unknown `--config.x=y` key of argv and its nearest valid keys.

  None when every override names a key of the config (or the config cannot be loaded here).
  """
  from ml_collections.config_flags import config_flags  # pylint: disable=g-import-not-at-top
  spec = next((a.split('=', 1)[1] for a in argv if a.startswith(f'--{flag_name}=')), None)
  if spec is None and f'--{flag_name}' in argv[:-1]:
    spec = argv[argv.index(f'--{flag_name}') + 1]
  if spec is None:
    return None
  try:
    config = config_flags.ConfigFileFlagParser(flag_name).parse(spec)
  except Exception:  # pylint: disable=broad-except  (its own error is reported elsewhere)
    return None
  prefix = f'--{flag_name}.'
  for arg in argv:
    name = arg.split('=', 1)[0]
    if name.startswith(f'--no{flag_name}.'):  # absl's --noconfig.flag for booleans.
      name = '--' + name[len('--no'):]
    if not name.startswith(prefix):
      continue
    unknown = _first_unknown(config, name[len(prefix):])
    if unknown is not None:
      nearest = difflib.get_close_matches(unknown, _config_paths(config), n=3, cutoff=0.0)
      return (f'{prefix}{unknown}: the config has no key {unknown!r}; nearest valid keys: '
              f'{", ".join(nearest)}.')
  return None


def _last_line(text):
  lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
  return lines[-1] if lines else text


def parse_flags(argv, flag_values=flags.FLAGS):
  """absl's flag parsing for `app.run(main, flags_parser=parse_flags)`: one line per error."""
  try:
    rest = flag_values(argv)
  except SyntaxError as e:  # In a config file given by path.
    raise SystemExit(f'--config: {e.filename}:{e.lineno}: {e.msg}') from None
  except AttributeError as e:  # ml_collections: an override of a key the locked config lacks.
    line = unknown_config_key(argv) or f'{e}'.replace('\\n', ' ')
    raise SystemExit(line) from None
  except flags.Error as e:
    text = str(e)
    if 'Error whilst parsing config file' in text:  # get_config raised: keep its last line.
      text = f'--config: {_last_line(text)}'
    elif '\n' in text.strip():
      text = _last_line(text)
    raise SystemExit(f'{text} (--helpfull lists the flags)') from None
  # ml_collections defers a config file it could not read until first use, then raises twice.
  error = getattr(flag_values, 'config', None) if 'config' in flag_values else None
  error = vars(error).get('_error') if type(error).__name__ == '_ErrorConfig' else None
  if error is not None:
    raise SystemExit(f'--config: cannot load the config file ({_last_line(str(error))}); give '
                     'a config name (animo, animo:demo) or the path of a config file.')
  return rest


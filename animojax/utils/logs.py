"""Quiet logs by default: animojax's own INFO lines, and only warnings from libraries.

Orbax, grain, TFDS and JAX log many INFO lines per checkpoint and per start-up through absl, which
bury the progress bar. Unless `--verbosity` (or `-v`) is given on the command line, a filter on
absl's handler drops INFO records that do not come from animojax itself.
"""

import logging
import os

from absl import flags
from absl import logging as absl_logging

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _OwnInfoOnly(logging.Filter):

  def filter(self, record):
    return record.levelno >= logging.WARNING or record.pathname.startswith(_PACKAGE_DIR)


def quiet_library_logs():
  """Installs the filter unless the user asked for a verbosity (absl's --verbosity / -v)."""
  if flags.FLAGS.is_parsed() and flags.FLAGS['verbosity'].present:
    return
  handler = absl_logging.get_absl_handler()
  if not any(isinstance(f, _OwnInfoOnly) for f in handler.filters):
    handler.addFilter(_OwnInfoOnly())

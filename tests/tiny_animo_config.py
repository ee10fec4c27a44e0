"""`tests/helpers.py`'s tiny AniMo at 16² as a config file, for the CLIs that tests start
(`--config=<this file>`): it compiles several times faster than `animo:demo` and runs the same code."""

from tests import helpers


def get_config(arg=None):
  del arg
  return helpers.program_config()

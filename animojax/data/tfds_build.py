r"""`tfds build` without TensorFlow: the same command, flags and behaviour.

The `tfds` command of tensorflow-datasets 4.9.x imports TensorFlow when it starts (its
`convert_format` command does, at import time), although building needs none. This runs TFDS's
own `build` command directly:

  python -m animojax.data.tfds_build tfds_builders/voxceleb_3dmm --config=deca_256 \
      --manual_dir=~/vox --data_dir=~/tensorflow_datasets --file_format=array_record

Every `tfds build` flag works (`--config` also takes a JSON of config fields for a custom
config, `--beam_pipeline_options=...` builds with Apache Beam, `--max_examples_per_split=N`);
`--file_format` defaults to array_record here, the only format read without TensorFlow.
"""

import difflib
import os
import sys

import simple_parsing
import tensorflow_datasets as tfds
from tensorflow_datasets.scripts.cli import build

from animojax.utils import cli


_BUILDERS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'tfds_builders')


def check_dataset(spec):
  """Fails with one line when `spec` is neither a builder folder nor a known builder name.

  TFDS reads a path that does not exist as a dataset name (`tfds_builders/cartoon_video` becomes
  dataset 'tfds_builders') and answers with a long error about the wrong name.
  """
  from animojax.data import sources  # pylint: disable=g-import-not-at-top
  path = spec.split(':')[0].rstrip('/')
  if os.path.isdir(path) or path.split('/')[0] in sources.LOCAL_BUILDERS:
    return
  if '/' not in path and path in tfds.list_builders(with_community_datasets=False):
    return
  known = [f'tfds_builders/{name}' for name in sources.LOCAL_BUILDERS]
  near = difflib.get_close_matches(path, known + list(sources.LOCAL_BUILDERS), n=1, cutoff=0.6)
  hint = f'did you mean {near[0]}? ' if near else ''
  raise SystemExit(f'tfds_build: {spec!r} is neither a builder folder nor a known dataset; '
                   f'{hint}The builders of this repository are {", ".join(known)} (run from '
                   f'the repository root, or give the folder\'s path, e.g. {_BUILDERS_DIR}/'
                   f'{next(iter(sources.LOCAL_BUILDERS))}).')


def main(argv=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  if not any(a == '--file_format' or a.startswith('--file_format=') for a in argv):
    argv.append('--file_format=array_record')
  args = simple_parsing.parse(build.Args, args=argv)
  for spec in list(args.positional_datasets or []) + list(args.datasets or []):
    check_dataset(spec)
  with cli.user_errors('tfds_build'):
    try:
      args.execute()
    except AssertionError as e:  # TFDS's check of --manual_dir is an assert.
      if not str(e).startswith('Manual directory'):
        raise
      raise SystemExit(f'tfds_build: --manual_dir: {str(e).splitlines()[0]} '
                       f'{str(e).splitlines()[-1]}') from None


if __name__ == '__main__':
  main()

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

import sys

import simple_parsing
from tensorflow_datasets.scripts.cli import build


def main(argv=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  if not any(a == '--file_format' or a.startswith('--file_format=') for a in argv):
    argv.append('--file_format=array_record')
  args = simple_parsing.parse(build.Args, args=argv)
  args.execute()


if __name__ == '__main__':
  main()

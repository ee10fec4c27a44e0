"""Config files, the config-name resolver and locked overrides."""

import subprocess
import sys

import pytest

from animojax import launch
from animojax.configs import animo
from animojax.configs import common


def test_resolve_config_name_to_packaged_file():
  path = launch.resolve_config_arg('animo')
  assert path.endswith('animojax/configs/animo.py')
  assert launch.resolve_config_arg('animo:demo').endswith('animojax/configs/animo.py:demo')
  assert launch.resolve_config_arg('some/dir/x.py:a=1') == 'some/dir/x.py:a=1'


def test_unknown_config_name_lists_known_ones():
  with pytest.raises(SystemExit, match="Unknown config 'anmo'.*'animo'"):
    launch.resolve_config_arg('anmo')


def test_rewrite_argv_both_flag_forms():
  argv = launch.rewrite_argv(['prog', '--config=animo:demo', '--workdir=w'])
  assert argv[1].endswith('configs/animo.py:demo')
  argv = launch.rewrite_argv(['prog', '--config', 'animo', '--config.seed=3'])
  assert argv[2].endswith('configs/animo.py') and argv[3] == '--config.seed=3'


def test_parse_arg_types_and_errors():
  arg = common.parse_arg('demo,n=3,name=x', demo=False, n=1, name='a')
  assert arg.demo is True and arg.n == 3 and arg.name == 'x'
  with pytest.raises(ValueError, match="Unknown config argument 'dmo'"):
    common.parse_arg('dmo', demo=False)
  with pytest.raises(ValueError, match='needs a value'):
    common.parse_arg('n', n=1)


def test_paper_and_demo_configs():
  paper = animo.get_config()
  assert paper.data.image_size == 256 and paper.batch_size == 12
  assert paper.loss.network == 'vgg19' and paper.model.variant == 'paper'
  assert paper.warp_steps * 2 == paper.total_steps  # Warp-only for 100 of 200 epochs.
  assert paper.optim.lr == 1e-4 and (paper.optim.b1, paper.optim.b2) == (0.5, 0.999)
  assert paper.loss.warp_weight == 2.5 and paper.loss.final_weight == 4.0
  assert paper.loss.style_weight == 250.0
  demo = animo.get_config('demo')
  assert demo.data.anime.name == 'synthetic_heads/anime_64'
  assert demo.loss.network == 'pixel_pyramid' and demo.model.variant == 'demo'


def test_config_typo_in_override_fails_through_launch():
  # The whole CLI path: name resolution, locked config, override of a misspelled key.
  proc = subprocess.run(
      [sys.executable, '-m', 'animojax.launch', '--config=animo:demo', '--workdir=/tmp/x',
       '--config.optim.lrr=1'], capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert 'lrr' in proc.stderr

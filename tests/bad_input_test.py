"""Bad input, every path: each gets one short message naming the input and the fix.

Every row of the table in docs/bad_input.md names the test that backs it (its last column);
`test_every_row_of_the_table_has_a_test` keeps the two in step. The command-line tools are
called in-process (their parsers and `animojax.utils.cli`), except one subprocess run that
checks what a real process prints.
"""

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys

from absl import flags
import numpy as np
import pytest

from animojax import compile_check
from animojax import export
from animojax import launch
from animojax.configs import animo as animo_config
from animojax.convert import fetch
from animojax.convert import sources as weight_sources
from animojax.data import building
from animojax.data import pipeline
from animojax.data import tfds_build
from animojax.metrics import suite as metric_suite
from animojax.posemap import __main__ as posemap_cli
from animojax.trainers.animo import evaluation as animo_eval
from animojax.trainers.common import workdir as workdir_lib
from animojax.utils import cli
from animojax.utils import tree as tree_util
from tests import helpers
from tfds_builders.animeceleb import animeceleb_dataset_builder as animeceleb
from tfds_builders.cartoon_videos import cartoon_videos_dataset_builder as cartoon
from tfds_builders.unpaired_faces import unpaired_faces_dataset_builder as unpaired
from tfds_builders.voxceleb_3dmm import voxceleb_3dmm_dataset_builder as vox

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARTOON_DUMMY = os.path.join(ROOT, 'tfds_builders', 'cartoon_videos', 'dummy_data')
VOX_DUMMY = os.path.join(ROOT, 'tfds_builders', 'voxceleb_3dmm', 'dummy_data', 'deca')
UNPAIRED_DUMMY = os.path.join(ROOT, 'tfds_builders', 'unpaired_faces', 'dummy_data')
TABLE = os.path.join(ROOT, 'docs', 'bad_input.md')
IS_ROOT = hasattr(os, 'geteuid') and os.geteuid() == 0
needs_non_root = pytest.mark.skipif(IS_ROOT, reason='root reads files whatever their mode, so '
                                    'chmod cannot make a permission-denied input')
# The tools' own flag definitions, applied to a fresh FlagValues in each test.
LAUNCH_FLAGS = launch._define_flags  # pylint: disable=protected-access
COMPILE_CHECK_FLAGS = compile_check._define_flags  # pylint: disable=protected-access
# Small and quick: one frame per video at 16 x 16.
FAST = dict(image_size=16, max_frames_per_video=1)


def one_line(text):
  text = str(text).strip()
  assert '\n' not in text and 'Traceback' not in text, text
  return text


def user_error(fn, *args, prog='tool', **kwargs):
  """The one-line message `cli.user_errors` ends the program with when `fn` fails."""
  with pytest.raises(SystemExit) as info:
    with cli.user_errors(prog):
      fn(*args, **kwargs)
  return str(info.value.code)


def build_cartoon(manual, data_dir, **changes):
  return building.prepare(cartoon.Builder, 'frames_64', manual_dir=manual, data_dir=data_dir,
                          **{**FAST, **changes})


def build_vox(manual, data_dir, **changes):
  return building.prepare(vox.Builder, 'deca_64', manual_dir=manual, data_dir=data_dir,
                          **{**FAST, **changes})


@pytest.fixture(scope='module')
def cartoon_data(tmp_path_factory):
  """cartoon_videos built from its dummy clips (no poses), for the pipeline checks."""
  data_dir = tmp_path_factory.mktemp('cartoon_data')
  building.prepare(cartoon.Builder, 'frames_64', manual_dir=CARTOON_DUMMY, data_dir=data_dir)
  return str(data_dir)


# ---------------------------------------------------------------------------------------------
# The three holes of issue 25.


def test_zero_byte_video_in_cartoon_videos(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(CARTOON_DUMMY, manual)
  (manual / 'show_a' / 'empty.mp4').write_bytes(b'')
  with open(manual / 'train_list.txt', 'a') as f:
    f.write('show_a/empty.mp4\n')
  with pytest.raises(building.BadExampleError, match=r'empty\.mp4: the file is empty \(0 bytes\)'):
    build_cartoon(manual, tmp_path / 'a')
  built = build_cartoon(manual, tmp_path / 'b', skip_bad_examples=True)
  skipped = built.info.metadata['skipped']['train']
  assert skipped['count'] == 1 and 'empty.mp4' in skipped['first'][0]
  assert built.info.splits['train'].num_examples == 2
  only = tmp_path / 'only'
  os.makedirs(only)
  (only / 'empty.mp4').write_bytes(b'')
  with pytest.raises(ValueError, match=r"nothing to build in split 'train'.*empty\.mp4"):
    build_cartoon(only, tmp_path / 'c', skip_bad_examples=True, test_percent=0.0)
  assert not list((tmp_path / 'c').glob('cartoon_videos/*/1.0.0/dataset_info.json'))


def _vox_copy(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(VOX_DUMMY, manual)
  return manual


def test_zero_byte_video_in_voxceleb_3dmm(tmp_path):
  manual = _vox_copy(tmp_path)
  name = 'id00009#vidZ#000001#000002'
  (manual / 'images' / 'train' / f'{name}.mp4').write_bytes(b'')
  os.makedirs(manual / '3dmm' / 'train' / name)  # Its (empty) coefficient folder.
  with pytest.raises(building.BadExampleError, match=rf'{name}\.mp4: the file is empty'):
    build_vox(manual, tmp_path / 'a')
  built = build_vox(manual, tmp_path / 'b', skip_bad_examples=True)
  assert built.info.metadata['skipped']['train']['count'] == 1
  only = tmp_path / 'only'
  os.makedirs(only / 'images' / 'train')
  os.makedirs(only / '3dmm' / 'train' / name)
  (only / 'images' / 'train' / f'{name}.mp4').write_bytes(b'')
  with pytest.raises(ValueError, match="nothing to build in split 'train'"):
    build_vox(only, tmp_path / 'c', skip_bad_examples=True)


def test_voxceleb_3dmm_empty_folders_say_where_they_looked(tmp_path):
  manual = tmp_path / 'empty'
  os.makedirs(manual / 'images')
  os.makedirs(manual / '3dmm')
  (manual / 'README').write_text('TFDS wants a non-empty manual dir.')
  with pytest.raises(FileNotFoundError, match=rf'No videos found in {manual}/images: expected'):
    build_vox(manual, tmp_path / 'a')
  os.makedirs(manual / 'images' / 'train' / 'id00001#vid#1#2')  # An empty video folder.
  with pytest.raises(FileNotFoundError, match=rf'No videos found in {manual}/images/train'):
    build_vox(manual, tmp_path / 'b')
  assert not list((tmp_path / 'b').glob('voxceleb_3dmm/*/1.0.0/dataset_info.json'))


def _parse(define, argv, monkeypatch):
  """`cli.parse_flags` over a tool's own flag definitions, on a fresh FlagValues."""
  fv = flags.FlagValues()
  define(fv)
  argv = launch.rewrite_argv(argv)
  monkeypatch.setattr(sys, 'argv', argv)  # ml_collections reads the overrides from sys.argv.
  return cli.parse_flags(argv, fv), fv


@pytest.mark.parametrize('override, unknown, nearest', [
    ('--config.no_such_key=1', 'no_such_key', None),
    ('--config.batch_sise=4', 'batch_sise', 'batch_size'),
    ('--config.data.anime.nme=x', 'data.anime.nme', 'data.anime.name'),
    ('--noconfig.export_at_endd', 'export_at_endd', 'export_at_end'),
])
def test_unknown_config_key_names_it_and_the_nearest(override, unknown, nearest, monkeypatch):
  for define in (LAUNCH_FLAGS, COMPILE_CHECK_FLAGS):
    with pytest.raises(SystemExit) as info:
      _parse(define, ['launch', '--config=animo:demo', '--workdir=/tmp/x', override], monkeypatch)
    text = one_line(info.value.code)
    assert text.startswith(f'--config.{unknown}: the config has no key {unknown!r}; nearest '
                           'valid keys: '), text
    assert nearest is None or nearest in text.split('nearest valid keys: ')[1], text


@pytest.mark.parametrize('flag, expected', [
    ('--config.batch_sise=4', 'compile_check: --config.batch_sise: the config has no key'),
    ('--devices=abc', "compile_check: flag --devices=abc: invalid literal for int()"),
    ('--headroom=lots', 'compile_check: flag --headroom=lots: '),
])
def test_compile_check_flag_errors_exit_2(flag, expected, monkeypatch, capsys):
  fv = flags.FlagValues()
  COMPILE_CHECK_FLAGS(fv)
  argv = launch.rewrite_argv(['compile_check', '--config=animo:demo', flag])
  monkeypatch.setattr(sys, 'argv', argv)
  monkeypatch.setattr(os, 'environ', dict(os.environ))  # _fake_devices sets XLA_FLAGS.
  compile_check._fake_devices(argv)  # pylint: disable=protected-access  (runs before parsing)
  with pytest.raises(SystemExit) as info:
    compile_check._parse_flags(argv, fv)  # pylint: disable=protected-access
  assert info.value.code == 2
  assert one_line(capsys.readouterr().err).startswith(expected)


@pytest.mark.parametrize('argv, expected', [
    (['--config=animo:nosuch'], "--config: ValueError: Unknown config argument 'nosuch'"),
    (['--config=animo:demo', '--config.batch_size=abc'], 'flag --config.batch_size=abc: '),
    (['--config=animo:demo', '--bogus=1'], "Unknown command line flag 'bogus'"),
    (['--config=nosuch'], "Unknown config 'nosuch'; known configs: ['animo', "),
    (['--config=/missing/cfg.py'], "--config: cannot load the config file ([Errno 2] No such "
     "file or directory: '/missing/cfg.py')"),
    (['--config={tmp}/broken.py'], '--config: {tmp}/broken.py:1: invalid syntax'),
])
def test_bad_flags_are_one_line(argv, expected, monkeypatch, tmp_path):
  (tmp_path / 'broken.py').write_text('def get_config(:\n')
  argv = [a.format(tmp=tmp_path) for a in argv]
  with pytest.raises(SystemExit) as info:
    _parse(LAUNCH_FLAGS, ['launch', *argv, '--workdir=/tmp/x'], monkeypatch)
  text = one_line(info.value.code)
  assert text.startswith(expected.format(tmp=tmp_path)), text


def test_launch_process_prints_one_line_and_exits_1(tmp_path):
  proc = subprocess.run(
      [sys.executable, '-m', 'animojax.launch', '--config=animo:demo',
       f'--workdir={tmp_path}', '--config.no_such_key=1'],
      capture_output=True, text=True, timeout=120, cwd=ROOT,
      env={**os.environ, 'PYTHONPATH': ROOT})
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert proc.stderr.strip().startswith('--config.no_such_key: the config has no key'), proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
  assert not os.listdir(tmp_path)  # Nothing written before the flags are right.


# ---------------------------------------------------------------------------------------------
# The newcomer's list.


def _demo_data(data_dir, anime_name, pose):
  c = helpers.tiny_config(data_dir)
  c.data.anime.name = anime_name
  c.data.anime.pose = pose
  return c.data


def test_anime_domain_on_a_dataset_without_poses(cartoon_data):
  data = _demo_data(cartoon_data, 'cartoon_videos/frames_64', 'anime_pose')
  with pytest.raises(ValueError, match=r"config.data.anime.pose='anime_pose' needs the 'pose' "
                     r"feature, but dataset 'cartoon_videos/frames_64/1.0.0' has none"):
    pipeline.make_dataset(data, 'train', batch_size=8, seed=0)
  data = _demo_data(cartoon_data, 'cartoon_videos/frames_64', '')
  text = one_line(user_error(pipeline.require_motion, data, 'AniMo'))
  assert "config.data.anime.pose is empty for dataset 'cartoon_videos/frames_64'" in text


def test_builder_path_typo_is_one_line():
  with pytest.raises(SystemExit) as info:
    tfds_build.main(['tfds_builders/cartoon_video', '--config=frames_64'])
  assert 'did you mean tfds_builders/cartoon_videos?' in one_line(info.value.code)
  tfds_build.check_dataset('tfds_builders/cartoon_videos')  # The right ones pass.
  tfds_build.check_dataset('voxceleb_3dmm')


def test_tfds_build_empty_manual_dir(tmp_path):
  os.makedirs(tmp_path / 'manual')
  with pytest.raises(SystemExit) as info:
    tfds_build.main([os.path.join(ROOT, 'tfds_builders', 'cartoon_videos'), '--config=frames_64',
                     f'--manual_dir={tmp_path / "manual"}', f'--data_dir={tmp_path / "data"}'])
  text = str(info.value.code)
  assert text.startswith(f'tfds_build: --manual_dir: Manual directory {tmp_path / "manual"} '
                         'does not exist or is empty'), text
  one_line(text)


@pytest.mark.parametrize('out, expected', [
    ('/nonexistent_dir/x.npz', '--out=/nonexistent_dir/x.npz: the folder /nonexistent_dir does '
     'not exist'),
    ('{tmp}', '--out={tmp} is a folder'),
])
def test_export_out_path(out, expected, tmp_path):
  out, expected = out.format(tmp=tmp_path), expected.format(tmp=tmp_path)
  text = one_line(user_error(export.export, str(tmp_path / 'no_run'), out, prog='export'))
  assert text.startswith(f'export: {expected}'), text


@needs_non_root
def test_export_out_folder_not_writable(tmp_path):
  folder = tmp_path / 'ro'
  os.makedirs(folder)
  os.chmod(folder, 0o500)
  try:
    assert 'is not writable' in user_error(export.export, str(tmp_path), str(folder / 'x.npz'))
  finally:
    os.chmod(folder, 0o700)


@pytest.mark.parametrize('content, expected', [
    (None, 'config.json not found: is'),
    (b'', 'is not the JSON a training run writes'),
    (b'{"trainer": ', 'is not the JSON a training run writes'),
    (b'\xff\xfe', 'is not the JSON a training run writes'),
    (b'{"batch_size": 8}', 'has no "trainer" entry'),
    (b'{"trainer": "nosuch"}', "config.trainer='nosuch' is not a trainer family"),
])
def test_export_and_evaluate_workdir(content, expected, tmp_path):
  if content is not None:
    (tmp_path / 'config.json').write_bytes(content)
  text = one_line(user_error(export.restore_latest, str(tmp_path), prog='evaluate'))
  assert expected in text, text


def test_export_without_checkpoint(tmp_path):
  workdir_lib.write_config(helpers.tiny_config(str(tmp_path)), str(tmp_path))
  text = one_line(user_error(export.export, str(tmp_path), str(tmp_path / 'p.npz')))
  assert 'No checkpoint in' in text and not os.path.exists(tmp_path / 'p.npz')


def test_fetch_offline_keeps_cache_dir(tmp_path, capsys):
  cache = str(tmp_path / 'cache')
  assert fetch.main(['lpips_alex', '--cache_dir', cache, '--mirror', 'http://127.0.0.1:1']) == 1
  err = capsys.readouterr().err
  assert f'rerun `python -m animojax.convert.fetch lpips_alex --cache_dir={cache}`' in err, err
  assert fetch.rerun_command('vgg19') == 'python -m animojax.convert.fetch vgg19'


def test_fetch_missing_src_is_not_circular(tmp_path, capsys):
  missing = str(tmp_path / 'missing.pth')
  assert fetch.main(['vgg19', '--cache_dir', str(tmp_path), '--src', missing]) == 1
  err = one_line(capsys.readouterr().err)
  assert err.startswith(f'vgg19: --src {missing} does not exist: check the path'), err
  assert 'put it at' not in err


@pytest.mark.parametrize('content', [b'', b'PK\x03\x04 truncated zip', b'not a checkpoint'])
def test_fetch_bad_src_leaves_no_npz(content, tmp_path, capsys):
  src = tmp_path / 'vgg19.pth'
  src.write_bytes(content)
  assert fetch.main(['vgg19', '--cache_dir', str(tmp_path), '--src', str(src),
                     '--skip_checksum']) == 1
  err = one_line(capsys.readouterr().err)
  assert err.startswith('vgg19: ') and str(src) in err, err
  assert not [f for f in os.listdir(tmp_path) if f.endswith('.npz')]


def test_fetch_wrong_checksum_names_the_rerun(tmp_path, capsys):
  first = weight_sources.VGG19.downloads[0]
  os.makedirs(tmp_path / 'downloads')
  (tmp_path / 'downloads' / first.filename).write_bytes(b'not the file')
  assert fetch.main(['vgg19', '--cache_dir', str(tmp_path)]) == 1
  err = one_line(capsys.readouterr().err)
  assert f'--cache_dir={tmp_path} --skip_checksum' in err, err


@needs_non_root
def test_fetch_cache_dir_not_writable(tmp_path, capsys):
  os.chmod(tmp_path, 0o500)
  try:
    assert fetch.main(['vgg19', '--cache_dir', str(tmp_path / 'c'),
                       '--mirror', 'http://127.0.0.1:1']) == 1
    assert 'Permission denied' in one_line(capsys.readouterr().err)
  finally:
    os.chmod(tmp_path, 0o700)


def _posemap(*argv):
  with pytest.raises(SystemExit) as info:
    posemap_cli.main(list(argv))
  return one_line(info.value.code)


def test_posemap_apply_missing_phi_names_the_flag(tmp_path):
  np.save(tmp_path / 'poses.npy', np.zeros((2, 20), np.float32))
  text = _posemap('apply', '--phi', str(tmp_path / 'missing.npy'), '--poses',
                  str(tmp_path / 'poses.npy'), '--out', str(tmp_path / 'm.npy'))
  assert text.startswith('posemap apply: Pose-mapping matrix') and 'Point --phi at' in text
  assert 'config.data.phi' not in text and 'synthetic' not in text
  np.save(tmp_path / 'phi.npy', np.ones((17, 64), np.float32))  # Good input still works.
  posemap_cli.main(['apply', '--phi', str(tmp_path / 'phi.npy'), '--poses',
                    str(tmp_path / 'poses.npy'), '--out', str(tmp_path / 'm')])
  assert np.load(tmp_path / 'm.npy').shape == (2, 70)
  assert sorted(os.listdir(tmp_path)) == ['m.npy', 'phi.npy', 'poses.npy']


def _write(path, what):
  if what == 'zero-byte':
    path.write_bytes(b'')
  elif what == 'truncated':
    whole = path.with_suffix('.whole.npy')
    np.save(whole, np.ones((17, 64), np.float32))
    path.write_bytes(whole.read_bytes()[:100])
  elif what == 'wrong-type':
    path.write_text('not numpy at all')
  elif what == 'wrong-dtype':
    np.save(path, np.array([['a'] * 20] * 17))
  elif what == 'nan':
    np.save(path, np.full((17, 20), np.nan, np.float32))
  elif what == 'wrong-shape':
    np.save(path, np.ones((5, 3), np.float32))


@pytest.mark.parametrize('what, expected', [
    ('zero-byte', 'cannot read it as a .npy file'),
    ('truncated', 'cannot read it as a .npy file'),
    ('wrong-type', 'cannot read it as a .npy file'),
    ('wrong-dtype', 'expected real numbers, got dtype <U1'),
    ('nan', 'contains NaN or Inf'),
    ('wrong-shape', 'expected AnimeCeleb pose vectors [..., 20], got shape (5, 3)'),
])
def test_posemap_apply_bad_poses(what, expected, tmp_path):
  phi = tmp_path / 'phi.npy'
  np.save(phi, np.ones((17, 64), np.float32))
  _write(tmp_path / 'poses.npy', what)
  text = _posemap('apply', '--phi', str(phi), '--poses', str(tmp_path / 'poses.npy'), '--out',
                  str(tmp_path / 'm.npy'))
  assert text.startswith(f'posemap apply: --poses {str(tmp_path / "poses.npy")!r}') and \
      expected in text, text
  assert not os.path.exists(tmp_path / 'm.npy')


@pytest.mark.parametrize('what, expected', [
    ('zero-byte', 'Could not read pose-mapping matrix'),
    ('truncated', 'Could not read pose-mapping matrix'),
    ('wrong-type', 'Could not read pose-mapping matrix'),
    ('wrong-dtype', 'expected a real-valued matrix'),
    ('nan', 'the pose-mapping matrix contains NaN or Inf'),
    ('wrong-shape', 'expected a (17, K) matrix, got shape (5, 3)'),
])
def test_posemap_apply_bad_phi(what, expected, tmp_path):
  np.save(tmp_path / 'poses.npy', np.zeros((2, 20), np.float32))
  _write(tmp_path / 'phi.npy', what)
  text = _posemap('apply', '--phi', str(tmp_path / 'phi.npy'), '--poses',
                  str(tmp_path / 'poses.npy'), '--out', str(tmp_path / 'm.npy'))
  assert '--phi' in text and expected in text, text


def test_posemap_out_folder_missing(tmp_path):
  text = _posemap('fit', '--model=embedded', f'--out={tmp_path}/no/phi.npy')
  assert text.startswith(f'posemap fit: --out={tmp_path}/no/phi.npy: the folder'), text


@pytest.mark.parametrize('what, expected', [
    ('missing', 'DECA code file'),
    ('zero-byte', 'as a MATLAB .mat file'),
    ('wrong-type', 'as a MATLAB .mat file'),
    ('nan', "DECA field 'exp' contains NaN or Inf"),
    ('wrong-shape', "DECA field 'exp' has 3 entries, expected 50"),
    ('wrong-dtype', "DECA field 'exp' is not numeric"),
])
def test_posemap_edtn_bad_deca_files(what, expected, tmp_path):
  from scipy import io as sio  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'frame.mat'
  fields = {'exp': np.zeros(50), 'pose': np.zeros(6), 'shape': np.zeros(100)}
  if what == 'zero-byte':
    path.write_bytes(b'')
  elif what == 'wrong-type':
    path.write_text('not a mat file')
  elif what != 'missing':
    fields['exp'] = {'nan': np.full(50, np.nan), 'wrong-shape': np.zeros(3),
                     'wrong-dtype': np.array(['x'] * 50)}[what]
    sio.savemat(path, fields)
  from animojax.posemap import edtn  # pylint: disable=g-import-not-at-top
  assert expected in user_error(edtn.read_deca_mat, path)


def test_posemap_edtn_bad_weights(tmp_path):
  (tmp_path / 'EDTN.pt').write_bytes(b'')
  text = _posemap('edtn', f'--weights={tmp_path / "EDTN.pt"}', f'--out={tmp_path / "p.npy"}',
                  str(tmp_path / 'x.mat'))
  assert text.startswith('posemap edtn: ') and 'EDTN.pt' in text, text


def test_voxceleb_without_coefficients_says_how_to_make_them(tmp_path):
  manual = _vox_copy(tmp_path)
  shutil.rmtree(manual / '3dmm' / 'train' / 'id00001#vidA#000001#000004.mp4')
  with pytest.raises(building.BadExampleError, match='no 3DMM coefficients for this video.*'
                     'Extract them with Deep3DFaceRecon'):
    build_vox(manual, tmp_path / 'a')
  shutil.rmtree(manual / '3dmm')
  with pytest.raises(FileNotFoundError, match=r'3dmm not found: the folders layout needs .*'
                     r'face_recon_videos\.py.*README'):
    build_vox(manual, tmp_path / 'b')


def test_rerun_with_changed_config_is_refused(tmp_path):
  workdir = str(tmp_path)
  config = animo_config.get_config('demo')
  workdir_lib.write_config(config, workdir)
  assert workdir_lib.config_changes(config, workdir) == []  # No checkpoint: nothing to protect.
  os.makedirs(tmp_path / 'checkpoints' / '200')
  # The same config (a rerun after preemption) resumes, tuples and lists notwithstanding.
  workdir_lib.check_config(animo_config.get_config('demo'), workdir)
  changed = animo_config.get_config('demo')
  changed.batch_size = 4
  changed.eval.metrics = ('l1',)
  text = one_line(user_error(workdir_lib.check_config, changed, workdir, prog='launch'))
  assert text.startswith(f'launch: {workdir} holds a run with another config (2 difference(s): '
                         'batch_size: 8 -> 4; eval.metrics: ["l1", "psnr"'), text
  assert '--allow_config_change' in text
  workdir_lib.check_config(changed, workdir, allow_change=True)
  assert json.load(open(tmp_path / 'config.json'))['batch_size'] == 8  # Not yet replaced.
  (tmp_path / 'config.json').write_text('{"trai')
  assert 'cannot be read' in user_error(workdir_lib.check_config, changed, workdir)


_AGREE = """
import sys
from animojax import launch
launch.initialize_processes(sys.argv[1], 2, int(sys.argv[2]))
from animojax.configs import animo
from animojax.trainers.common import workdir
from animojax.utils import cli
config = animo.get_config('demo')
config.batch_size = 4
with cli.user_errors('launch'):
  workdir.check_config(config, sys.argv[3])
print('resuming')
"""


def test_processes_follow_process_0_on_a_changed_config(tmp_path):
  """Hosts that do not share the workdir's file system still all refuse (process 0 decides)."""
  shared, local = str(tmp_path / 'p0'), str(tmp_path / 'p1')
  workdir_lib.write_config(animo_config.get_config('demo'), shared)
  os.makedirs(os.path.join(shared, 'checkpoints', '200'))
  with socket.socket() as sock:
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
  env = {**os.environ, 'PYTHONPATH': ROOT, 'JAX_PLATFORMS': 'cpu',
         'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}
  procs = [subprocess.Popen([sys.executable, '-c', _AGREE, f'127.0.0.1:{port}', str(pid), path],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for pid, path in enumerate((shared, local))]
  outs = [p.communicate(timeout=180) for p in procs]
  assert [p.returncode for p in procs] == [1, 1], outs
  assert 'batch_size: 8 -> 4' in outs[0][1].strip().splitlines()[-1], outs[0]
  assert 'process 0 found that the config differs' in outs[1][1].strip().splitlines()[-1], outs[1]
  assert all('resuming' not in out for out, _ in outs)


@pytest.mark.parametrize('layout', ['missing', 'empty checkpoints'])
def test_config_resume_without_checkpoint(layout, tmp_path):
  from animojax.trainers.common import checkpoint  # pylint: disable=g-import-not-at-top
  if layout == 'empty checkpoints':
    os.makedirs(tmp_path / 'run' / 'checkpoints' / '200.orbax-checkpoint-tmp-1')  # Unfinished.
  text = one_line(user_error(checkpoint.locate, str(tmp_path / 'run')))
  assert f"config.resume={str(tmp_path / 'run')!r} holds no checkpoint" in text, text


def test_launch_allow_config_change_flag(monkeypatch):
  _, fv = _parse(LAUNCH_FLAGS, ['launch', '--config=animo:demo', '--workdir=/tmp/x',
                                '--allow_config_change'], monkeypatch)
  assert fv.allow_config_change


def test_demo_report_lists_fid_and_lpips_as_skipped(tmp_path):
  config = animo_config.get_config('demo')
  config.eval.lpips_weights = str(tmp_path / 'lpips_alex.npz')
  config.eval.fid_weights = str(tmp_path / 'fid_inception.npz')
  suite = metric_suite.load_for_config(config.eval)
  assert set(suite.skipped) == {'fid', 'lpips'}
  assert suite.skipped['fid'].startswith('not in config.eval.metrics')
  assert 'convert.fetch fid_inception' in suite.skipped['fid']
  assert 'convert.fetch lpips_alex' in suite.skipped['lpips']
  table = {'anime<-anime': {'model': {'l1': 0.1}, 'copy_source': {'l1': 0.2}}}
  report = animo_eval.write_report(str(tmp_path), 1, table, 8, suite.skipped)
  assert '- FID: not in config.eval.metrics' in report and '- LPIPS: ' in report


def test_bad_metric_weights_files(tmp_path):
  for content, expected in ((b'', 'is not a readable .npz'), (b'PK\x03\x04xx', 'is not a '
                                                                                'readable .npz')):
    path = tmp_path / 'lpips_alex.npz'
    path.write_bytes(content)
    text = one_line(user_error(metric_suite.load, ('lpips',), lpips_weights=str(path)))
    assert str(path) in text and expected in text, text
  tree_util.save_flat_npz(tmp_path / 'nan.npz', {'a/kernel': np.full(3, np.nan, np.float32)})
  from animojax.nets import weights  # pylint: disable=g-import-not-at-top
  text = user_error(weights.load_values, str(tmp_path / 'nan.npz'),
                    {'a': {'kernel': np.zeros(3, np.float32)}}, remedy='Fetch it again.')
  assert "['a/kernel'] contain NaN or Inf. Fetch it again." in text


def test_unknown_metric_names_the_choices():
  assert 'unknown metrics' in one_line(user_error(metric_suite.load, ('fidd',)))


def test_hash_split_with_few_videos_is_reported(caplog):
  caplog.set_level(logging.INFO)
  building.report_split('cartoon_videos', {'train': 1, 'test': 2}, 'hash', test_percent=10.0)
  assert 'train 1 videos, test 2 videos' in caplog.text
  assert 'the hash split put 2 of 3 videos in test (67%; test_percent is 10)' in caplog.text
  caplog.clear()
  building.report_split('cartoon_videos', {'train': 90, 'test': 10}, 'hash', test_percent=10.0)
  assert 'per split' in caplog.text and 'hash split put' not in caplog.text
  building.report_split('cartoon_videos', {'train': 3}, 'hash', test_percent=10.0)
  assert 'the hash split put 0 of 3 videos in test' in caplog.text


# ---------------------------------------------------------------------------------------------
# The fuzz pass over the builders' manual folders.


@pytest.mark.parametrize('what, expected', [
    ('text', 'cannot decode the video'),
    ('truncated', 'cannot decode the video'),
    ('missing', 'No videos in'),
])
def test_cartoon_videos_bad_videos(what, expected, tmp_path):
  manual = tmp_path / 'manual'
  os.makedirs(manual)
  good = os.path.join(CARTOON_DUMMY, 'show_a', 'ep1.mp4')
  if what == 'text':
    (manual / 'clip.mp4').write_text('this is not a video')
  elif what == 'truncated':
    (manual / 'clip.mp4').write_bytes(open(good, 'rb').read()[:300])
  else:
    (manual / 'notes.txt').write_text('no videos here')
  with pytest.raises((building.BadExampleError, FileNotFoundError), match=expected):
    build_cartoon(manual, tmp_path / 'data', test_percent=0.0)


@needs_non_root
def test_cartoon_videos_unreadable_video(tmp_path):
  manual = tmp_path / 'manual'
  os.makedirs(manual)
  shutil.copy(os.path.join(CARTOON_DUMMY, 'show_a', 'ep1.mp4'), manual / 'clip.mp4')
  os.chmod(manual / 'clip.mp4', 0)
  with pytest.raises(building.BadExampleError, match=r'clip\.mp4: cannot read the file'):
    build_cartoon(manual, tmp_path / 'data', test_percent=0.0)


@pytest.mark.parametrize('what, expected', [
    ('zero-byte', 'cannot read the .mat file'),
    ('wrong-type', 'cannot read the .mat file'),
    ('truncated', 'cannot read the .mat file'),
    ('nan', "'exp' contains NaN or Inf"),
    ('wrong-dtype', "'exp' is not numeric"),
    ('missing-key', 'is not a DECA file: expected entries shape (100), exp (50), pose (6)'),
])
def test_voxceleb_3dmm_bad_coefficient_files(what, expected, tmp_path):
  from scipy import io as sio  # pylint: disable=g-import-not-at-top
  manual = _vox_copy(tmp_path)
  mat = manual / '3dmm' / 'train' / 'id00001#vidA#000001#000004.mp4' / '0000000.mat'
  values = {k: v for k, v in sio.loadmat(mat).items() if not k.startswith('__')}
  if what == 'zero-byte':
    mat.write_bytes(b'')
  elif what == 'wrong-type':
    mat.write_text('not a mat file')
  elif what == 'truncated':
    mat.write_bytes(mat.read_bytes()[:200])
  else:
    if what == 'missing-key':
      del values['exp']
    else:
      values['exp'] = (np.full_like(values['exp'], np.nan) if what == 'nan' else
                       np.array(['x'] * values['exp'].size))
    sio.savemat(mat, values)
  with pytest.raises(building.BadExampleError, match=rf'0000000\.mat: .*{re.escape(expected)}'):
    build_vox(manual, tmp_path / 'a')


def test_voxceleb_3dmm_zero_byte_lmdb(tmp_path):
  manual = tmp_path / 'manual'
  os.makedirs(manual)
  (manual / 'data.mdb').write_bytes(b'')
  text = one_line(user_error(build_vox, manual, tmp_path / 'data', coeff_format='deep3d'))
  assert f'{manual}/data.mdb: cannot open the LMDB' in text, text


def test_frame_folder_with_bad_frames(tmp_path):
  manual = _vox_copy(tmp_path)
  folder = manual / 'images' / 'train' / 'id00001#vidA#000001#000004.mp4'
  (folder / '0000000.png').write_bytes(b'')
  with pytest.raises(building.BadExampleError, match=r'0000000\.png: cannot decode the image'):
    build_vox(manual, tmp_path / 'a')


@pytest.mark.parametrize('layout', ['empty', 'trainA-empty'])
def test_unpaired_faces_without_images(layout, tmp_path):
  manual = tmp_path / 'manual'
  for d in (('A', 'B') if layout == 'empty' else ('trainA', 'trainB')):
    os.makedirs(manual / d)
  (manual / 'notes.txt').write_text('x')
  with pytest.raises(FileNotFoundError, match=r'No images \(.png'):
    building.prepare(unpaired.Builder, unpaired.Builder.BUILDER_CONFIGS[0].name,
                     manual_dir=manual, data_dir=tmp_path / 'data')


def test_unpaired_faces_zero_byte_image(tmp_path):
  manual = tmp_path / 'manual'
  shutil.copytree(UNPAIRED_DUMMY, manual)
  (manual / 'trainA' / 'zero.jpg').write_bytes(b'')
  with pytest.raises(building.BadExampleError, match=r'zero\.jpg: cannot decode the image'):
    building.prepare(unpaired.Builder, unpaired.Builder.BUILDER_CONFIGS[0].name,
                     manual_dir=manual, data_dir=tmp_path / 'data', image_size=16)


CSV_HEADER = ','.join(['org_id', 'folder_name', 'png_name'] + [f'morph_{i}' for i in range(17)]
                      + ['angle_0', 'angle_1', 'angle_2']) + '\n'


@pytest.mark.parametrize('csv, expected', [
    (None, "Could not find 'combined_pose.csv' in the manual directory; looked for"),
    ('', 'combined_pose.csv: no valid rows'),
    ('a,b\n1,2\n', 'combined_pose.csv:2: malformed CSV row: 2 columns, expected 23'),
    (CSV_HEADER + '0,100,a.png,' + ','.join(['0'] * 19 + ['abc']) + '\n',
     'combined_pose.csv:2: malformed CSV row: a pose value is not a number'),
    (CSV_HEADER + '0,100,a.png,' + ','.join(['0'] * 19 + ['nan']) + '\n',
     'combined_pose.csv:2: malformed CSV row: the pose has NaN or Inf'),
])
def test_animeceleb_csv(csv, expected, tmp_path):
  manual = tmp_path / 'manual'
  os.makedirs(manual)
  (manual / 'notes.txt').write_text('x')
  if csv is not None:
    (manual / animeceleb.CSV_NAME).write_text(csv)
  text = one_line(user_error(building.prepare, animeceleb.Builder,
                             animeceleb.Builder.BUILDER_CONFIGS[0].name, manual_dir=manual,
                             data_dir=tmp_path / 'data'))
  assert expected in text, text


@pytest.mark.parametrize('what, expected', [
    ('missing', "PyTorch checkpoint '{src}' does not exist"),
    ('zero-byte', '{src}: neither a zip-format nor a legacy torch.save file'),
    ('out-folder', '--out={tmp}/no/o.npz: the folder {tmp}/no does not exist'),
])
def test_animo_torch_converter_input(what, expected, tmp_path):
  from animojax.convert import animo_torch  # pylint: disable=g-import-not-at-top
  src, out = tmp_path / 'animo.pth', tmp_path / ('no/o.npz' if what == 'out-folder' else 'o.npz')
  if what != 'missing':
    src.write_bytes(b'')
  with pytest.raises(SystemExit) as info:
    animo_torch.main(['--src', str(src), '--out', str(out)])
  text = one_line(info.value.code)
  assert expected.format(src=src, tmp=tmp_path) in text, text
  assert not os.path.exists(out)


@pytest.mark.parametrize('spec, expected', [
    ('nosuch', "Model spec 'nosuch': expected"),
    ('bfm:/missing/BFM_model_front.mat', "file '/missing/BFM_model_front.mat' not found"),
    ('bfm:{tmp}/zero.mat', 'as a MATLAB .mat file'),
    ('3ddfa:{tmp}', "u_base.txt' not found"),
])
def test_posemap_model_specs(spec, expected, tmp_path):
  (tmp_path / 'zero.mat').write_bytes(b'')
  text = _posemap('fit', f'--model={spec.format(tmp=tmp_path)}', f'--out={tmp_path}/phi.npy')
  assert text.startswith('posemap fit: ') and expected in text, text


@pytest.mark.parametrize('flag', ['num_pairs', 'batch_size'])
def test_evaluate_counts_must_be_positive(flag, tmp_path):
  from animojax import evaluate  # pylint: disable=g-import-not-at-top
  text = one_line(user_error(evaluate.run, str(tmp_path), **{flag: 0}))
  assert f'--{flag}=0: give a positive number' in text


def test_workdir_that_is_a_file(tmp_path):
  (tmp_path / 'run').write_text('a file')
  text = one_line(user_error(workdir_lib.write_config, animo_config.get_config('demo'),
                             str(tmp_path / 'run'), prog='launch'))
  assert text.startswith('launch: ') and str(tmp_path / 'run') in text, text


@needs_non_root
def test_workdir_not_writable(tmp_path):
  os.chmod(tmp_path, 0o500)
  try:
    text = one_line(user_error(workdir_lib.write_config, animo_config.get_config('demo'),
                               str(tmp_path / 'run')))
    assert 'Permission denied' in text
  finally:
    os.chmod(tmp_path, 0o700)


def test_bugs_keep_their_traceback():
  """Only the library's own checks and refused paths are user errors; anything else is a bug."""
  with pytest.raises(ZeroDivisionError):
    with cli.user_errors('tool'):
      _ = 1 / 0
  with pytest.raises(ValueError):
    with cli.user_errors('tool'):
      int('not a number')  # Raised by Python, not by a check.


def test_every_row_of_the_table_has_a_test():
  """Each row of docs/bad_input.md names a test (`file::name`) that exists."""
  rows = [line for line in open(TABLE).read().splitlines()
          if line.startswith('|') and not line.startswith('|--') and '`' in line]
  assert len(rows) > 40
  for row in rows:
    ids = re.findall(r'`([\w/]+_test\.py)::(\w+)`', row.rsplit('|', 2)[-2])
    assert ids, f'no test named in: {row}'
    for path, name in ids:
      source = open(os.path.join(ROOT, path)).read()
      assert re.search(rf'^def {name}\(', source, re.M), f'{path}::{name} (row: {row})'


def test_translate_inputs_missing_empty_corrupt_and_a_workdir_of_another_family(tmp_path):
  from animojax import translate as translate_cli  # pylint: disable=g-import-not-at-top
  from animojax.utils import cli  # pylint: disable=g-import-not-at-top
  with pytest.raises(FileNotFoundError, match=r"--input '.*nope' does not exist") as error:
    translate_cli.list_inputs(str(tmp_path / 'nope'))
  assert cli.is_user_error(error.value)  # The command prints these as one line.
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ValueError, match='holds no image') as error:
    translate_cli.list_inputs(str(tmp_path / 'empty'))
  assert cli.is_user_error(error.value)
  (tmp_path / 'zero.png').write_bytes(b'')
  (tmp_path / 'text.png').write_bytes(b'not a png at all')
  for name in ('zero.png', 'text.png'):
    with pytest.raises(ValueError, match=rf'{name}: not a readable image') as error:
      translate_cli.load_image(str(tmp_path / name), 64)
    assert cli.is_user_error(error.value)
  animo_run = tmp_path / 'animo_run'
  animo_run.mkdir()
  (animo_run / 'config.json').write_text(json.dumps({'trainer': 'animo'}))
  with pytest.raises(ValueError, match='is not a translation run') as error:
    translate_cli.translate_files(str(animo_run), [str(tmp_path / 'text.png')],
                                  str(tmp_path / 'out'))
  assert cli.is_user_error(error.value)
  assert not (tmp_path / 'out').exists()

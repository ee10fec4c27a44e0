"""The input pipeline: TFDS data sources -> samplers -> grain -> per-host batches -> global arrays.

The domains of a run are the entries of `config.data` that are dicts with a dataset `name` (AniMo:
`anime` and `human`; a translator: e.g. `a` and `b`). Each domain picks its sampler and optional
motion map:

  config.data.<domain> = dict(
      name='voxceleb_3dmm/deep3d_256',  # TFDS dataset `builder/config`.
      sample='pairs',          # 'pairs' | 'video_pairs' | 'single' (animojax.data.samplers).
      pose='deep3d_coeff',     # Motion vectors: a MotionAdapter kind, or '' for none (Φ is
                               # loaded only for 'anime_pose').
      pair_within='video',     # 'pairs' only: 'identity' or 'video' (a video of the identity).
      video_field='',          # 'video_pairs' only: the feature naming a frame's video; '' =
                               # `video_index` if the dataset has it, else `identity`.
      domain_label='',         # Only examples whose `domain` ClassLabel is this class
                               # (unpaired_faces holds both domains in one dataset).
  )

Item i of the run is `{domain: sampler_domain(seed, stream_domain, i)}`, with streams numbered
in sorted domain order. One grain `MapDataset` over an (effectively infinite) index range: step s
of the global batch B holds items s·B ... s·B + B - 1, and process p of P reads the contiguous
block s·B + p·B/P + j (j < B/P), so the assembled global batch is the same for any number of
processes. Batched, prefetched by threads (or worker processes); its iterator state is saved with
every checkpoint.
"""

import functools
import os

from absl import flags
import grain
import jax
import ml_collections
import numpy as np

from animojax import posemap
from animojax.data import pairs
from animojax.data import samplers
from animojax.data import sources

_INDEX_RANGE = 2**40  # "Forever": a 2-core CPU would need centuries to exhaust it.
# The keys a domain's config may set (see the module docstring); a misspelt key is an error.
DOMAIN_KEYS = ('name', 'sample', 'pose', 'pair_within', 'video_field', 'domain_label')
# The dataset feature each motion kind reads.
MOTION_FIELDS = {'anime_pose': 'pose', 'deep3d_coeff': 'coeff', 'deca_coeff': 'coeff'}


def domains(data_config):
  """The domain names of `config.data`: its dict entries with a dataset `name`, sorted."""
  return sorted(key for key, value in data_config.items()
                if isinstance(value, (dict, ml_collections.ConfigDict)) and 'name' in value)


def load_phi(spec):
  """Φ from config.data.phi: a .npy path, or 'synthetic' for the synthetic data's true map."""
  if spec == 'synthetic':
    from animojax.synthetic import face_model  # Imported lazily: only the synthetic data needs it.
    return face_model.load_face_model().true_phi
  return posemap.load_phi(spec)


def _check_dataset_conventions(spec, builder, data_config):
  """Fails early when a built dataset's recorded conventions disagree with config.data."""
  metadata = builder.info.metadata or {}
  recorded = metadata.get('angle_permutation')
  if spec.pose == 'anime_pose' and recorded is not None and tuple(recorded) != tuple(
      data_config.anime_angle_permutation):
    raise ValueError(
        f'{spec.name} was built with angle_permutation {tuple(recorded)}, but '
        f'config.data.anime_angle_permutation is {tuple(data_config.anime_angle_permutation)}. '
        f"Pass --config.data.anime_angle_permutation='{tuple(recorded)}' (or rebuild the "
        'dataset with the order you want).')
  fmt = (metadata.get('coeff_layout') or {}).get('format')
  want = pairs.MotionAdapter.COEFF_FORMATS.get(spec.pose)
  if fmt is not None and want is not None and fmt != want:
    kind = {v: k for k, v in pairs.MotionAdapter.COEFF_FORMATS.items()}[fmt]
    raise ValueError(f'{spec.name} stores {fmt} coefficients, but its pose kind is '
                     f'{spec.pose!r} (for {want}); use pose={kind!r}.')


def _require(builder, domain, field, key, value):
  """Fails at start-up when the dataset lacks `field`, which config.data.<domain>.<key> needs."""
  features = builder.info.features
  if field not in features:
    raise ValueError(
        f'config.data.{domain}.{key}={value!r} needs the {field!r} feature, but dataset '
        f'{builder.info.full_name!r} has none (it has {sorted(features)}). Change '
        f'config.data.{domain}.{key} or config.data.{domain}.name.')


def _make_sampler(data_config, domain, split, *, stream, seed, distinct_frames, get_phi):
  """The sampler of one domain, checked against its dataset before any item is read."""
  spec = data_config[domain]
  unknown = sorted(set(spec.keys()) - set(DOMAIN_KEYS))
  if unknown:
    raise ValueError(f'config.data.{domain} has unknown keys {unknown}; a domain may set '
                     f'{DOMAIN_KEYS}.')
  kind = spec.get('sample', 'pairs')
  if kind not in samplers.KINDS:
    raise ValueError(f'config.data.{domain}.sample must be one of {samplers.KINDS}, got '
                     f'{kind!r}.')
  source, builder = sources.open_split(spec.name, split, data_config.data_dir)
  _require(builder, domain, 'image', 'name', spec.name)
  motion = None
  pose = spec.get('pose', '')
  if pose:
    if pose not in pairs.MotionAdapter.KINDS:
      raise ValueError(f'config.data.{domain}.pose must be one of {pairs.MotionAdapter.KINDS} '
                       f"(or '' for no motion), got {pose!r}.")
    _require(builder, domain, MOTION_FIELDS[pose], 'pose', pose)
    _check_dataset_conventions(spec, builder, data_config)
    motion = pairs.MotionAdapter(pose, phi=get_phi() if pose == 'anime_pose' else None,
                                 angle_permutation=tuple(data_config.anime_angle_permutation))
  indices = None
  label = spec.get('domain_label', '')
  if label:
    _require(builder, domain, 'domain', 'domain_label', label)
    indices = sources.label_indices(builder, split, 'domain', label)
  reader = samplers.FrameReader(source, image_size=data_config.image_size,
                                name=f'{spec.name}:{split}', motion=motion)
  if kind == 'single':
    if indices is None:
      indices = np.arange(len(source))
    return samplers.SingleSampler(reader, indices, seed=seed, stream=stream)
  if kind == 'video_pairs':
    field = spec.get('video_field', '')
    if field:
      _require(builder, domain, field, 'video_field', field)
    else:  # Datasets without video_index hold one video per identity (cartoon_videos).
      field = 'video_index' if 'video_index' in builder.info.features else 'identity'
      _require(builder, domain, field, 'sample', kind)
    videos = sources.identity_groups(builder, split, field, indices)
    return samplers.VideoPairSampler(reader, videos, seed=seed, stream=stream,
                                     distinct_frames=distinct_frames)
  _require(builder, domain, 'identity', 'sample', kind)
  pair_within = spec.get('pair_within', 'identity')
  if pair_within == 'video':
    _require(builder, domain, 'video_index', 'pair_within', pair_within)
    groups = sources.video_groups(builder, split, indices=indices)
  elif pair_within == 'identity':
    groups = sources.identity_groups(builder, split, indices=indices)
  else:
    raise ValueError(f'config.data.{domain}.pair_within must be "identity" or "video", got '
                     f'{pair_within!r}.')
  return samplers.PairSampler(reader, groups, seed=seed, stream=stream,
                              distinct_frames=distinct_frames)


def require_motion(data_config, family):
  """Fails before any work when a domain gives no motion vectors but `family` needs them.

  Without this a domain with `pose=''` (e.g. `cartoon_videos`, which has no poses) trains
  until the first step asks for the missing field.
  """
  for domain in domains(data_config):
    spec = data_config[domain]
    if not spec.get('pose', ''):
      raise ValueError(
          f'{family} drives every domain by motion vectors, but config.data.{domain}.pose is '
          f"empty for dataset {spec.name!r}. Use a dataset with poses or 3DMM coefficients "
          f"(animeceleb, synthetic_heads: 'anime_pose'; voxceleb_3dmm: 'deep3d_coeff' or "
          f"'deca_coeff') and set config.data.{domain}.pose to match.")


def make_samplers(data_config, split, *, seed, distinct_frames=False):
  """{domain: sampler} from config.data (see the module docstring for the keys).

  `distinct_frames` makes every pair two different frames (for evaluation). Φ is loaded only if
  a domain's pose kind is 'anime_pose'.
  """
  names = domains(data_config)
  if not names:
    raise ValueError('config.data has no domain: a domain is a dict entry with a dataset '
                     "`name`, e.g. config.data.anime = dict(name='animeceleb/default', ...).")
  phi = []
  def get_phi():
    if not phi:
      phi.append(load_phi(data_config.phi))
    return phi[0]
  built = {domain: _make_sampler(data_config, domain, split, stream=stream, seed=seed,
                                 distinct_frames=distinct_frames, get_phi=get_phi)
           for stream, domain in enumerate(names)}
  dims = {domain: s.reader.motion.dim for domain, s in built.items()
          if s.reader.motion is not None}
  if len(set(dims.values())) > 1:
    raise ValueError(
        f'The domains give motion vectors of different sizes {dims}: the anime pose mapping Φ '
        f'({data_config.phi}) must map into the human 3DMM space (17 x 64 Deep3DFaceRecon '
        'expression for deep3d_coeff, e.g. pose_coeffs.npy; 17 x 50 FLAME expression for '
        'deca_coeff, e.g. transform_matrix_08_30.npy).')
  return built


def global_index(local_index, *, batch_size, local_batch_size, process_index):
  """The run's item index of a process's `local_index`-th item: its block of the global batch."""
  step, j = divmod(local_index, local_batch_size)
  return step * batch_size + process_index * local_batch_size + j


def make_dataset(data_config, split, *, batch_size, seed, process_index=None,
                 process_count=None, distinct_frames=False):
  """This process's batches of `{domain: sample}`; `batch_size` is global.

  Process p of P gets rows p·B/P ... (p+1)·B/P - 1 of every global batch, so concatenating the
  processes' batches in process order gives the one-process batch (`to_global` does, on a mesh
  whose batch axis lists the processes' devices in order, as `jax.make_mesh` does).
  `distinct_frames` makes every pair two different frames (for evaluation).
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if batch_size % process_count:
    raise ValueError(f'batch_size {batch_size} is not divisible by {process_count} processes.')
  local = batch_size // process_count
  joint = samplers.JointSampler(make_samplers(data_config, split, seed=seed,
                                              distinct_frames=distinct_frames))
  # A module-level function with bound arguments: grain's worker processes pickle the dataset.
  to_global_index = functools.partial(global_index, batch_size=batch_size,
                                      local_batch_size=local, process_index=process_index)
  ds = grain.MapDataset.range(_INDEX_RANGE // batch_size * local)
  return ds.map(to_global_index).map(joint).batch(local, drop_remainder=True)


def worker_processes(num_workers: int, cpus: int | None = None) -> int:
  """`num_workers`, or for -1 (auto) one grain worker process per 4 CPUs, at most 16.

  Decoding and pair assembly hold Python's GIL, so threads alone stop scaling at about 1,000 img/s
  at 256² (benchmarks/RESULTS.md: 1,058 img/s on 64 CPUs, 5,014 with 16 worker processes); on
  small machines (< 8 CPUs) worker processes only compete with the threads and the trainer.
  """
  if num_workers >= 0:
    return num_workers
  if num_workers != -1:
    raise ValueError(f'data.num_workers={num_workers}: use -1 (auto), 0 (threads only) or a '
                     'number of worker processes.')
  if cpus is None:
    cpus = os.cpu_count() or 1
  return 0 if cpus < 8 else min(16, cpus // 4)


def make_iterator(dataset, data_config):
  """A checkpointable iterator with thread (and optionally process) prefetching."""
  it_ds = dataset.to_iter_dataset(grain.ReadOptions(
      num_threads=data_config.num_threads, prefetch_buffer_size=data_config.prefetch))
  workers = worker_processes(data_config.num_workers)
  if workers > 0:
    if not flags.FLAGS.is_parsed():  # Grain's workers read absl flags; outside an absl app the
      flags.FLAGS.mark_as_parsed()   # defaults (the launcher parses the command line itself).
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
  return iter(it_ds)


def to_global(local_batch, sharding):
  """Assembles each host's local batch into global arrays sharded along the batch axis."""
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)

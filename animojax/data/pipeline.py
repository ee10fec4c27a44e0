"""The input pipeline: TFDS data sources -> grain -> per-host batches -> global jax.Arrays.

One grain `MapDataset` over an (effectively infinite) index range, sliced per JAX process so that
hosts read disjoint items, mapped to joint anime + human pairs, batched, and prefetched by
threads (or worker processes). Its iterator state is saved with every checkpoint.
"""

import os

from absl import flags
import grain
import jax
import numpy as np

from animojax import posemap
from animojax.data import pairs
from animojax.data import sources

DOMAINS = ('anime', 'human')
_INDEX_RANGE = 2**40  # "Forever": a 2-core CPU would need centuries to exhaust it.


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


def make_samplers(data_config, split, *, seed, distinct_frames=False):
  """Builds one PairSampler per domain from config.data.

  A domain spec may set `pair_within='video'` (datasets with a `video_index` feature, e.g.
  `voxceleb_3dmm`): a video of the drawn identity is drawn, and both frames come from it.
  """
  phi = None
  samplers = {}
  for stream, domain in enumerate(DOMAINS):
    spec = data_config[domain]
    source, builder = sources.open_split(spec.name, split, data_config.data_dir)
    if spec.pose == 'anime_pose' and phi is None:
      phi = load_phi(data_config.phi)
    motion = pairs.MotionAdapter(spec.pose, phi=phi if spec.pose == 'anime_pose' else None,
                                 angle_permutation=tuple(data_config.anime_angle_permutation))
    _check_dataset_conventions(spec, builder, data_config)
    pair_within = spec.get('pair_within', 'identity')
    if pair_within == 'video':
      groups = sources.video_groups(builder, split)
    elif pair_within == 'identity':
      groups = sources.identity_groups(builder, split)
    else:
      raise ValueError(f'config.data.{domain}.pair_within must be "identity" or "video", got '
                       f'{pair_within!r}.')
    samplers[domain] = pairs.PairSampler(
        source, groups, motion, image_size=data_config.image_size, seed=seed, stream=stream,
        name=f'{spec.name}:{split}', distinct_frames=distinct_frames)
  dims = {domain: s.motion.dim for domain, s in samplers.items()}
  if len(set(dims.values())) > 1:
    raise ValueError(
        f'The domains give motion vectors of different sizes {dims}: the anime pose mapping Φ '
        f'({data_config.phi}) must map into the human 3DMM space (17 x 64 Deep3DFaceRecon '
        'expression for deep3d_coeff, e.g. pose_coeffs.npy; 17 x 50 FLAME expression for '
        'deca_coeff, e.g. transform_matrix_08_30.npy).')
  return samplers


def make_dataset(data_config, split, *, batch_size, seed, process_index=None,
                 process_count=None, distinct_frames=False):
  """Per-host batches of joint pairs; `batch_size` is global and split evenly over processes.

  `distinct_frames` makes every pair two different frames (for evaluation).
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if batch_size % process_count:
    raise ValueError(f'batch_size {batch_size} is not divisible by {process_count} processes.')
  joint = pairs.JointPairs(make_samplers(data_config, split, seed=seed,
                                         distinct_frames=distinct_frames))
  ds = grain.MapDataset.range(_INDEX_RANGE)[process_index::process_count]
  ds = ds.map(joint).batch(batch_size // process_count, drop_remainder=True)
  return ds


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

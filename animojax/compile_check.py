r"""Ahead-of-time compile check: does a config's train step fit the target's device memory?

Compiles every stage's jitted train step (`jax.jit(...).lower(...).compile()`) with the config's
own shapes, shardings and sharding rules for the target's device count, and reports the
per-device memory the compiler plans: arguments + outputs - donated aliases + temporaries. Exits
with status 1, naming the stage and the shortfall, when that exceeds `--device_memory` ×
`--headroom`. No accelerator is needed; run it before booking the machines (`--config.x=y`
overrides work as in `animojax.launch`).

* `--topology=v5e:4x4` (TPU pods): the real TPU compiler, via libtpu (`pip install 'jax[tpu]'`)
  on this CPU-only host, for that topology's chips: the figure is the TPU's own plan, and a step
  the compiler cannot fit in HBM is reported as not fitting.
* otherwise `--devices=N` fake CPU devices and the CPU compiler: parameter, optimiser-state and
  batch bytes are exact, but the CPU compiler keeps far more temporaries alive than the GPU one
  (measured: 72 GiB planned vs an 18.5 GiB H100 peak for the bf16 benchmark step, 82 vs 48.5 GiB
  in float32; benchmarks/RESULTS.md), so on GPUs treat it as a pessimistic bound.

Exit status: 0 when every stage fits, 1 when one does not (or does not compile; its line says
which), 2 for bad flags or a config that cannot be built. The TPU compiler takes minutes on
these steps on a small CPU host (the demo's gen stage about 6 minutes on 2 busy cores).

COMMAND: python -m animojax.compile_check --config=animo:demo --topology=v5e:2x2 \
    --config.batch_size=8

COMMAND: python -m animojax.compile_check --config=animo --topology=v5e:2x2 --stages=warp \
    --config.batch_size=8 --config.compute_dtype=bfloat16

COMMAND: python -m animojax.compile_check --config=animo:synthetic --devices=8 \
    --device_memory=h100 --config.batch_size=128

The loss network's weights are not needed: a missing `vgg19` file is replaced by same-shaped
random weights for the check.
"""

import os
import re
import sys

from absl import app
from absl import flags

from animojax import launch
from animojax.utils import cli

# Per-device memory of common targets, GiB (HBM per chip).
DEVICE_MEMORY_GIB = {
    'v4': 32, 'v5e': 16, 'v5p': 95, 'v6e': 32, 'a100-40': 40, 'a100': 80, 'h100': 80,
    'h200': 141, 'b200': 180,
}
_UNITS = {'': 1, 'b': 1, 'kib': 2**10, 'mib': 2**20, 'gib': 2**30, 'tib': 2**40, 'kb': 1e3,
          'mb': 1e6, 'gb': 1e9, 'tb': 1e12}


def parse_memory(text):
  """'v4' | 'h100' | '16GiB' | '80GB' | '1234' (bytes) -> bytes."""
  key = text.strip().lower()
  if key in DEVICE_MEMORY_GIB:
    return int(DEVICE_MEMORY_GIB[key] * 2**30)
  match = re.fullmatch(r'([0-9.]+)\s*([a-z]*)', key)
  if not match or match.group(2) not in _UNITS:
    raise ValueError(f'--device_memory={text!r}: give a size such as 16GiB or 80GB, or one of '
                     f'{sorted(DEVICE_MEMORY_GIB)} (the default is the --topology '
                     'generation).')
  return int(float(match.group(1)) * _UNITS[match.group(2)])


def tpu_devices(topology):
  """The devices of a TPU topology such as 'v5e:4x4' or 'v5p:2x2x2', for compiling without TPUs.

  Needs libtpu (`pip install 'jax[tpu]'`); no TPU hardware is touched. Raises ValueError naming
  the flag when the topology cannot be described.
  """
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
  try:
    return topologies.get_topology_desc(topology_name=topology, platform='tpu').devices
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'--topology={topology!r}: cannot describe this TPU topology ({e}). It '
                     "needs libtpu (pip install 'jax[tpu]') and a name such as v5e:2x2, v4:2x2x2 "
                     'or v5p:2x2x4.') from e


def check(config, stages=None, devices=None, keep_hlo=False):
  """Compiles `config`'s train steps (default: every stage of its family) for `devices`
  (default: all visible); returns memory.

  Returns {stage: dict} with 'arguments', 'outputs', 'aliased', 'temporaries' and 'total'
  bytes per device, or {'error': message, 'kind': 'does not fit' | 'does not compile'} where
  the compiler refused the program (the TPU compiler does when it cannot fit its HBM); with
  `keep_hlo`, also 'hlo': the compiled module's text (e.g. to count its collectives).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from animojax import trainers  # pylint: disable=g-import-not-at-top
  from animojax.utils import sharding  # pylint: disable=g-import-not-at-top

  if 'loss' in config and config.loss.get('network') == 'vgg19':
    # Same shapes and cost as the pretrained file, which the check does not need.
    config = config.copy_and_resolve_references()
    with config.unlocked():
      config.loss.network = 'vgg19_random'
  devices = jax.devices() if devices is None else devices
  program = trainers.get(config.trainer).build_program(config,
                                                       sharding.make_mesh(config.mesh, devices))
  stages = tuple(program.train_steps) if not stages else tuple(stages)
  unknown = sorted(set(stages) - set(program.train_steps))
  if unknown:
    raise ValueError(f'--stages: {unknown} are not stages of {config.trainer!r}; it has '
                     f'{sorted(program.train_steps)}.')
  report = {}
  for stage in stages:
    try:
      compiled = program.train_steps[stage].lower(*program.step_args[stage]).compile()
    except jax.errors.JaxRuntimeError as e:
      # The TPU compiler refuses programs that cannot fit its HBM; that is the answer. Any other
      # refusal is reported against its stage too (the check must not die on one stage).
      kind = 'does not fit' if 'RESOURCE_EXHAUSTED' in str(e) else 'does not compile'
      report[stage] = {'error': str(e).strip().splitlines()[0], 'kind': kind}
      continue
    stats = compiled.memory_analysis()
    memory = {
        'arguments': stats.argument_size_in_bytes,
        'outputs': stats.output_size_in_bytes,
        'aliased': stats.alias_size_in_bytes,
        'temporaries': stats.temp_size_in_bytes,
    }
    memory['total'] = (memory['arguments'] + memory['outputs'] - memory['aliased'] +
                       memory['temporaries'])
    if keep_hlo:
      memory['hlo'] = compiled.as_text()
    report[stage] = memory
  return report


def format_report(report, budget):
  gib = lambda b: f'{b / 2**30:.2f} GiB'
  lines = []
  for stage, m in report.items():
    if 'error' in m:
      lines.append(f'{stage}: {m.get("kind", "does not fit").upper()}: the compiler says '
                   f'{m["error"]}')
      continue
    verdict = ('fits' if m['total'] <= budget else
               f'DOES NOT FIT (short by {gib(m["total"] - budget)})')
    lines.append(f'{stage}: {gib(m["total"])} per device (arguments {gib(m["arguments"])}, outputs '
                 f'{gib(m["outputs"])}, donated {gib(m["aliased"])}, temporaries '
                 f'{gib(m["temporaries"])}) vs budget {gib(budget)}: {verdict}')
  return '\n'.join(lines)


def main(argv):
  del argv
  # Bad flags or a config that cannot be built (batch vs devices, unknown stage or kernels...)
  # end with their message, not a traceback.
  try:
    memory = FLAGS.device_memory or (FLAGS.topology.split(':')[0] if FLAGS.topology else 'h100')
    budget = parse_memory(memory) * FLAGS.headroom
    devices = tpu_devices(FLAGS.topology) if FLAGS.topology else None
    report = check(FLAGS.config, tuple(FLAGS.stages), devices)
  except Exception as e:  # pylint: disable=broad-except
    if not cli.is_user_error(e):
      raise
    print(cli.message('compile_check', e), file=sys.stderr)
    sys.exit(2)  # Not 1, which means "does not fit".
  target = (f'TPU {FLAGS.topology} ({len(devices)} chips, TPU compiler)' if devices else
            f'{FLAGS.devices} fake CPU devices (CPU compiler: an estimate)')
  print(f'{target}, mesh {FLAGS.config.mesh}, global batch '
        f'{FLAGS.config.batch_size}, compute dtype {FLAGS.config.compute_dtype}, remat '
        f'{FLAGS.config.get("remat", "none")}:')
  print(format_report(report, budget))
  if any('error' in m or m['total'] > budget for m in report.values()):
    sys.exit(1)


def _parse_flags(argv, fv=flags.FLAGS):
  """`cli.parse_flags` (one line per bad flag or unknown --config key), with exit status 2."""
  try:
    return cli.parse_flags(argv, fv)
  except SystemExit as e:
    print(f'compile_check: {e.code}', file=sys.stderr)
    sys.exit(2)


def _fake_devices(argv):
  """Sets up N CPU devices before JAX starts (it reads these once, at backend start-up)."""
  count = 8
  for i, a in enumerate(argv):
    value = (a.split('=', 1)[1] if a.startswith('--devices=') else
             argv[i + 1] if a == '--devices' and i + 1 < len(argv) else None)
    if value is not None and value.isdigit():  # Else the flag parser reports the bad value.
      count = int(value)
  os.environ['JAX_PLATFORMS'] = 'cpu'
  # libtpu's one-process lock guards TPU chips; an ahead-of-time compile touches none, so it may
  # run beside another libtpu process (e.g. a training job or a test runner).
  os.environ.setdefault('ALLOW_MULTIPLE_LIBTPU_LOAD', '1')
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             f' --xla_force_host_platform_device_count={count}').strip()


def _define_flags(fv=flags.FLAGS):
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file('config', None, 'Config name or file, e.g. animo:synthetic.',
                                  lock_config=True, flag_values=fv)
  flags.DEFINE_integer('devices', 8, 'Devices of the target topology (faked on the CPU).',
                       flag_values=fv)
  flags.DEFINE_string('device_memory', '',
                      f'Per-device memory: a size (16GiB, 80GB) or one of '
                      f'{sorted(DEVICE_MEMORY_GIB)}; default: the --topology generation, else '
                      'h100.', flag_values=fv)
  flags.DEFINE_string('topology', '',
                      'A TPU topology (v5e:4x4, v4:2x2x2, v5p:2x2x4): compile with the real TPU '
                      'compiler for its chips, on this CPU-only host (needs libtpu).',
                      flag_values=fv)
  flags.DEFINE_float('headroom', 0.9, 'Usable fraction of device memory (runtime, fragmentation).',
                     flag_values=fv)
  flags.DEFINE_list('stages', [], 'Train-step stages to compile (default: all of the family).',
                    flag_values=fv)
  flags.mark_flags_as_required(['config'], flag_values=fv)


FLAGS = flags.FLAGS

if __name__ == '__main__':
  _fake_devices(sys.argv)
  _define_flags()
  app.run(main, argv=launch.rewrite_argv(sys.argv), flags_parser=_parse_flags)

"""`config.kernels`: which implementation of the hand-written ops a traced program uses.

* 'auto' (default): the fastest one for the target: the Pallas Triton kernels on CUDA GPUs
  (`warp_triton`, `conv_triton`), the XLA formulations everywhere else (CPU, TPU, ROCm).
* 'xla': the portable XLA formulations everywhere (`warp_xla`, `lax.conv_general_dilated`), the
  reference the kernels are tested against.

The choice is read while a program is traced, so it must be fixed for the whole trace:
`traced_with(kernels, step)` wraps a step so that its trace runs under `use(kernels)`, which is
how the trainers' `Program`s build their jitted steps (and so the trainer, the benchmarks and the
compile check trace the same ops). An explicit `implementation=` argument of an op wins.
"""

import contextlib
import contextvars
import functools

import jax

CHOICES = ('auto', 'xla')

_CURRENT = contextvars.ContextVar('animojax_kernels', default='auto')
_MESH = contextvars.ContextVar('animojax_kernels_mesh', default=None)


def check(kernels: str) -> str:
  """Returns `kernels` if it is one of `CHOICES`; else a ValueError saying what to use."""
  if kernels not in CHOICES:
    raise ValueError(
        f"config.kernels={kernels!r} is not supported: use 'auto' (Pallas Triton kernels on CUDA "
        "GPUs, XLA elsewhere) or 'xla' (the portable XLA ops on every backend).")
  return kernels


def current() -> str:
  """The kernel choice of the trace in progress ('auto' outside `use`)."""
  return _CURRENT.get()


@contextlib.contextmanager
def use(kernels: str, mesh=None):
  """Ops traced inside this context use `kernels` ('auto' or 'xla'), for a program on `mesh`
  (the device mesh its jit shards over; None: read it from the operands where they carry it)."""
  tokens = _CURRENT.set(check(kernels)), _MESH.set(mesh)
  try:
    yield
  finally:
    _MESH.reset(tokens[1])
    _CURRENT.reset(tokens[0])


def traced_with(kernels: str, fn, mesh=None):
  """`fn` whose every call (and so every trace under `jax.jit`) runs under `use(kernels, mesh)`."""
  check(kernels)

  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with use(kernels, mesh):
      return fn(*args, **kwargs)

  return wrapped


def traced_mesh(x):
  """The (abstract) mesh the trace in progress runs on: `use`'s, else the one `x`'s type carries
  (jit arguments with a NamedSharding carry it, arrays jit shards by `in_shardings` do not), else
  None (no mesh: one device, or eager)."""
  mesh = _MESH.get()
  if mesh is None:
    mesh = getattr(getattr(jax.typeof(x), 'sharding', None), 'mesh', None)
  mesh = getattr(mesh, 'abstract_mesh', mesh)
  return None if mesh is None or mesh.empty else mesh


def targets_gpu(x) -> bool:
  """False when `x` is traced for a mesh of non-GPU devices (e.g. a TPU topology compiled on a
  GPU host); True otherwise, leaving the choice to the default backend."""
  mesh = traced_mesh(x)
  return mesh is None or mesh.abstract_device is None or mesh.abstract_device.platform in (
      'gpu', 'cuda')

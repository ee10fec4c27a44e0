"""The fast sampling path: one `jax.custom_vjp` over interchangeable backends.

`grid_sample` routes here unless asked for the reference (gathers + autodiff). The custom VJP saves
only the image and grid, recomputes pixel coordinates in the backward pass, and asks a backend for
the image gradient and the per-tap dot products from which `warp_coords.grid_gradient` builds the
grid gradient. Backends:

* 'xla': portable (CPU, TPU, any GPU); image gradient by XLA scatter-add, grid gradient by gathers.
* 'triton': Pallas Triton kernels (CUDA GPUs); scatter-free backward, see `warp_triton`.
* 'triton_atomic': the Triton forward with an atomic scatter backward (for benchmarks).
* 'triton_interpret': the 'triton' kernels run by the Pallas interpreter (CPU tests only).

Both passes are `batch_local`: on a batch-sharded mesh each device runs them on its own rows.

'auto' follows the traced program's `kernels` choice (`ops.kernels`, `config.kernels`): under
'auto' it picks 'triton' on CUDA GPUs for every shape the kernels take (they beat XLA and torch at
every size of benchmarks/RESULTS.md) and 'xla' elsewhere (CPU, TPU, ROCm, and a non-GPU mesh
traced on a GPU host); under 'xla' it always picks 'xla'.
"""

import functools

import jax

from animojax.ops import batch_local
from animojax.ops import kernels
from animojax.ops import warp_coords
from animojax.ops import warp_triton
from animojax.ops import warp_xla

IMPLEMENTATIONS = ('auto', 'reference', 'xla', 'triton', 'triton_atomic', 'triton_interpret')


@functools.cache
def _cuda_default_backend() -> bool:
  """True when the default JAX backend is an NVIDIA GPU (Triton kernels are only tested there)."""
  try:
    device = jax.devices()[0]
  except RuntimeError:
    return False
  return device.platform == 'gpu' and 'rocm' not in device.client.platform_version.lower()


def resolve(implementation: str | None, image, grid) -> str:
  """Returns the backend that runs a `grid_sample` of these arrays, validating `implementation`."""
  implementation = implementation or 'auto'
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(
        f'grid_sample: implementation={implementation!r} is not supported; expected one of '
        f'{IMPLEMENTATIONS}.')
  if implementation != 'auto':
    return implementation
  if (kernels.current() == 'auto' and _cuda_default_backend() and kernels.targets_gpu(image)
      and warp_triton.supports(image.shape, grid.shape)):
    return 'triton'
  return 'xla'


def _backward_fn(backend: str):
  if backend == 'xla':
    return warp_xla.backward
  if backend == 'triton_atomic':
    return warp_triton.backward_atomic
  return functools.partial(warp_triton.backward, interpret=backend == 'triton_interpret')


def _forward(image, grid, align_corners, padding_mode, backend):
  if backend == 'xla':
    _, height, width, _ = image.shape
    x, y = warp_coords.pixel_coords(grid, height, width, align_corners, padding_mode)
    return warp_xla.forward(image, x, y)
  return warp_triton.forward(image, grid, align_corners=align_corners, padding_mode=padding_mode,
                             interpret=backend == 'triton_interpret')


def _backward(image, grid, cotangent, align_corners, padding_mode, backend):
  _, height, width, _ = image.shape
  x, y, slope_x, slope_y = warp_coords.pixel_coords_and_slopes(grid, height, width, align_corners,
                                                               padding_mode)
  d_image, dots = _backward_fn(backend)(image, cotangent, x, y)
  d_grid = warp_coords.grid_gradient(dots, x, y, slope_x, slope_y, height, width)
  return d_image.astype(image.dtype), d_grid.astype(grid.dtype)


# Each sample depends on its own image and grid only: on a batch-sharded mesh both passes run on
# every device's rows (a Pallas kernel or a batch-indexed scatter would otherwise be gathered).
_forward_local = batch_local.batch_local(_forward, 'b h w c, b i j t -> b i j c', (2, 3, 4))
_backward_local = batch_local.batch_local(
    _backward, 'b h w c, b i j t, b i j c -> b h w c, b i j t', (3, 4, 5))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def sample(image: jax.Array, grid: jax.Array, align_corners: bool, padding_mode: str,
           backend: str) -> jax.Array:
  """Bilinear `grid_sample` of NHWC `image` at `grid` with a hand-written VJP (inputs checked)."""
  return _forward_local(image, grid, align_corners, padding_mode, backend)


def _sample_fwd(image, grid, align_corners, padding_mode, backend):
  return sample(image, grid, align_corners, padding_mode, backend), (image, grid)


def _sample_bwd(align_corners, padding_mode, backend, residuals, cotangent):
  image, grid = residuals
  return _backward_local(image, grid, cotangent, align_corners, padding_mode, backend)


sample.defvjp(_sample_fwd, _sample_bwd)

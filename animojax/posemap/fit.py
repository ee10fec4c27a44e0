"""T.2-T.3: fit Φ (17 × K) so that each semantic's expression reproduces its landmark edit.

For every semantic s with target landmarks T_s (T.1, `semantic_edits`), find expression
coefficients φ_s minimising

  mean_{views v} sum_{landmarks l} w_l ‖P_v(N + E φ_s)_l − P_v(T_s)_l‖² / iod²  +  reg ‖φ_s / σ‖²

where N is the neutral face, E the expression basis, σ the model's prior std per coefficient, P_v
the camera at view v, w_l the landmark validity and iod the projected outer-eye-corner distance
of the neutral face in the first view. This is a MAP estimate with a N(0, σ²) prior on φ and
landmark noise of std sqrt(reg) · iod per coordinate, so `reg` means the same for every model and
unit: the default 1e-4 trusts landmarks to about 1% of the inter-ocular distance. Φ's row s is φ_s.

All 17 semantics are solved in one jitted call. With a linear camera ('weak_perspective',
'landmarks3d') the residual is linear in φ and the solution is a closed-form ridge regression with
one Cholesky factorisation shared by all semantics. With Deep3DFaceRecon's perspective camera
that solution (one Gauss–Newton step from φ = 0) starts a fixed number of Levenberg–Marquardt
iterations, vmapped over semantics. Everything is differentiable (fixed iteration counts, no
data-dependent control flow), e.g. w.r.t. the targets or the basis.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from animojax.posemap import camera as camera_lib
from animojax.posemap import morphable
from animojax.posemap import semantic_edits

_EYE_CORNERS = morphable.OUTER_EYE_CORNERS


@dataclasses.dataclass(frozen=True)
class FitConfig:
  """How Φ is fitted.

  Attributes:
    camera: 'perspective' (Deep3DFaceRecon), 'weak_perspective' or 'landmarks3d'.
    reg: ℓ2 weight on φ / σ, relative to the summed squared landmark error in units of the
      inter-ocular distance (see the module docstring).
    views: head poses (pitch, yaw, roll in degrees) the landmarks are compared under; frontal
      only by default (depth edits are then only seen through perspective).
    iterations: Levenberg–Marquardt iterations after the Gauss–Newton start (perspective only).
  """
  camera: str = 'perspective'
  reg: float = 1e-4
  views: tuple[tuple[float, float, float], ...] = ((0.0, 0.0, 0.0),)
  iterations: int = 6

  def __post_init__(self):
    camera_lib.check_camera(self.camera)
    if self.reg < 0 or self.iterations < 0:
      raise ValueError(f'FitConfig: reg ({self.reg}) and iterations ({self.iterations}) must be '
                       '>= 0.')
    if not self.views or any(len(v) != 3 for v in self.views):
      raise ValueError(f'FitConfig.views must be (pitch, yaw, roll) triples, got {self.views}.')


@dataclasses.dataclass(frozen=True)
class FitResult:
  """Φ and what it does. Projected arrays are [..., V, 68, D] (D = 2, or 3 for 'landmarks3d')."""
  phi: np.ndarray  # [S, K]
  fitted: np.ndarray  # [S, 68, 3] landmarks of N + E φ_s.
  targets: np.ndarray  # [S, 68, 3]
  neutral_proj: np.ndarray  # [V, 68, D]
  target_proj: np.ndarray  # [S, V, 68, D]
  fitted_proj: np.ndarray  # [S, V, 68, D]
  rms_fit: np.ndarray  # [S] RMS landmark distance fitted vs target, / iod.
  rms_neutral: np.ndarray  # [S] the same for the neutral face (what doing nothing scores).
  iod: float
  config: FitConfig


def _project_views(points, rotations, camera):
  """points [..., 68, 3] -> [..., V, 68, D]."""
  return jax.vmap(lambda r: camera_lib.project(points, camera, r), out_axes=-3)(rotations)


@functools.partial(jax.jit, static_argnames=('camera', 'iterations'))
def solve_phi(neutral, exp_basis, exp_std, targets, weights, rotations, reg, *, camera,
              iterations):
  """Jitted, differentiable core: Φ [S, K] for targets [S, 68, 3].

  Args:
    neutral: [68, 3] neutral landmarks.
    exp_basis: [68, 3, K].
    exp_std: [K] prior std per coefficient.
    targets: [S, 68, 3] target landmarks.
    weights: [68] landmark weights (0 = ignore).
    rotations: [V, 3, 3] view rotations.
    reg: scalar ℓ2 weight.
    camera: one of `camera.CAMERAS` (static).
    iterations: LM iterations for the perspective camera (static).
  """
  # Normal equations square the Jacobian's condition number: GPUs' default float32 matmuls
  # (TF32, 10-bit mantissa) left Φ 2e-3 off where the exact solve is 7e-7 (measured on an H200).
  with jax.default_matmul_precision('highest'):
    return _solve_phi(neutral, exp_basis, exp_std, targets, weights, rotations, reg,
                      camera=camera, iterations=iterations)


def _solve_phi(neutral, exp_basis, exp_std, targets, weights, rotations, reg, *, camera,
               iterations):
  neutral_proj = _project_views(neutral, rotations, camera)
  iod = jnp.linalg.norm(neutral_proj[0, _EYE_CORNERS[1]] - neutral_proj[0, _EYE_CORNERS[0]])
  num_views = neutral_proj.shape[0]
  # sqrt of each residual's weight, so that ‖r‖² is the view-averaged squared error / iod².
  root_w = jnp.sqrt(weights / num_views)[:, None] / iod
  target_proj = _project_views(targets, rotations, camera)  # [S, V, 68, D]
  inv_var = 1.0 / jnp.square(exp_std)

  def residual(phi, target):
    points = neutral + jnp.einsum('lck,k->lc', exp_basis, phi)
    return ((_project_views(points, rotations, camera) - target) * root_w).reshape(-1)

  def cost(phi, target):
    return jnp.sum(jnp.square(residual(phi, target))) + reg * jnp.sum(jnp.square(phi) * inv_var)

  # Gauss–Newton from φ = 0 for all semantics at once: the Jacobian at 0 does not depend on the
  # target, so one factorisation serves every right-hand side (exact for linear cameras).
  num_exp = exp_basis.shape[-1]
  zero = jnp.zeros(num_exp, exp_basis.dtype)
  jac0 = jax.jacfwd(residual)(zero, target_proj[0])  # [M, K]
  r0 = jax.vmap(lambda t: residual(zero, t))(target_proj)  # [S, M]
  hessian0 = jac0.T @ jac0 + reg * jnp.diag(inv_var)
  factor = jax.scipy.linalg.cho_factor(hessian0)
  phi = -jax.scipy.linalg.cho_solve(factor, jac0.T @ r0.T).T  # [S, K]
  if camera != 'perspective' or iterations == 0:
    return phi

  def lm(phi, target):
    def step(_, state):
      phi, damping, value = state
      r = residual(phi, target)
      jac = jax.jacfwd(residual)(phi, target)
      grad = jac.T @ r + reg * inv_var * phi
      hessian = jac.T @ jac + reg * jnp.diag(inv_var)
      damped = hessian + damping * jnp.diag(jnp.diag(hessian))
      candidate = phi - jnp.linalg.solve(damped, grad)
      new_value = cost(candidate, target)
      better = new_value < value
      return (jnp.where(better, candidate, phi), jnp.where(better, damping * 0.3, damping * 10.0),
              jnp.where(better, new_value, value))

    init = (phi, jnp.asarray(1e-3, phi.dtype), cost(phi, target))
    return jax.lax.fori_loop(0, iterations, step, init)[0]

  return jax.vmap(lm)(phi, target_proj)


def _rms(a, b, weights):
  """Root mean square over views and valid landmarks of ‖a − b‖, [..., V, 68, D] -> [...].

  The root of the fit's data term (up to the landmark count): a ridge fit can only lower it.
  """
  sq = np.sum(np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64)), axis=-1)
  return np.sqrt((sq * weights).sum((-1, -2)) / (weights.sum() * sq.shape[-2]))


def fit_phi(model: morphable.MorphableModel, targets: np.ndarray | None = None,
            config: FitConfig = FitConfig()) -> FitResult:
  """Fits Φ (17 × K, or S × K for S given targets) for `model`; targets default to T.1's."""
  if targets is None:
    targets = semantic_edits.semantic_targets(model.mean)
  targets = np.asarray(targets, np.float32)
  if targets.ndim != 3 or targets.shape[1:] != (68, 3):
    raise ValueError(f'fit_phi: targets must be [S, 68, 3] landmarks, got {targets.shape}.')
  weights = model.landmark_valid.astype(np.float32)
  rotations = camera_lib.view_rotations(config.views)
  phi = solve_phi(model.mean, model.exp_basis, model.exp_std, targets, weights, rotations,
                  np.float32(config.reg), camera=config.camera, iterations=config.iterations)
  phi = np.asarray(phi)
  fitted = model.landmarks(exp_coeff=phi)
  project = lambda p: np.asarray(_project_views(jnp.asarray(p), rotations, config.camera))
  neutral_proj, target_proj, fitted_proj = project(model.mean), project(targets), project(fitted)
  iod = float(np.linalg.norm(neutral_proj[0, _EYE_CORNERS[1]] - neutral_proj[0, _EYE_CORNERS[0]]))
  return FitResult(
      phi=phi, fitted=fitted, targets=targets, neutral_proj=neutral_proj,
      target_proj=target_proj, fitted_proj=fitted_proj,
      rms_fit=_rms(fitted_proj, target_proj, weights) / iod,
      rms_neutral=_rms(neutral_proj[None], target_proj, weights) / iod, iod=iod, config=config)


def error_table(result: FitResult) -> str:
  """A markdown table of per-semantic RMS landmark errors (% of the inter-ocular distance)."""
  lines = ['| semantic | neutral vs target | fitted vs target | fitted / neutral |',
           '|---|---:|---:|---:|']
  for name, fit_err, neutral_err in zip(semantic_edits.SEMANTIC_NAMES, result.rms_fit,
                                        result.rms_neutral):
    lines.append(f'| {name} | {100 * neutral_err:.2f} | {100 * fit_err:.2f} | '
                 f'{fit_err / neutral_err:.3f} |')
  return '\n'.join(lines)

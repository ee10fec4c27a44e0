"""Failing fast, naming the step, when a loss turns NaN or Inf."""

from clu import metrics as clu_metrics
import flax
import jax.numpy as jnp
import numpy as np

_NONE = np.iinfo(np.int32).max


@flax.struct.dataclass
class FirstNonFinite(clu_metrics.Metric):
  """The first step whose loss was NaN/Inf (int32 max if none); merges by minimum."""
  step: jnp.ndarray

  @classmethod
  def from_model_output(cls, *, loss, step, **_):
    return cls(step=jnp.where(jnp.isfinite(loss), _NONE, step))

  def merge(self, other):
    return type(self)(step=jnp.minimum(self.step, other.step))

  def compute(self):
    return self.step


def pop_and_check(values, key='first_nonfinite_step'):
  """Removes the `FirstNonFinite` entry from computed metrics; raises if any step was bad."""
  first_bad = int(np.asarray(values.pop(key)))
  if first_bad != _NONE:
    raise FloatingPointError(
        f'Non-finite loss at step {first_bad}. Nothing after the last checkpoint was saved; '
        'lower the learning rate or check the inputs of that step.')
  return values

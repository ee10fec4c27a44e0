"""`config.kernels`: the choice is validated, traced into the steps, and 'xla' is the same maths."""

import pytest

from animojax.ops import kernels
from animojax.trainers.animo import program as animo_program
from tests.train_speed_test import program_config
from tests.train_speed_test import run_steps


def test_xla_and_auto_kernels_give_the_same_losses_on_cpu():
  auto, _, _ = run_steps(program_config(kernels='auto'), 'gen', 2)
  xla, _, _ = run_steps(program_config(kernels='xla'), 'gen', 2)
  assert auto == xla


def test_an_unknown_kernel_choice_is_named():
  with pytest.raises(ValueError, match=r"config.kernels='triton'.*'auto'.*'xla'"):
    animo_program.build(program_config(kernels='triton'))
  with pytest.raises(ValueError, match='config.kernels'):
    with kernels.use('cuda'):
      pass


def test_the_choice_holds_inside_the_traced_step_only():
  seen = []
  step = kernels.traced_with('xla', lambda: seen.append(kernels.current()))
  step()
  assert seen == ['xla'] and kernels.current() == 'auto'

"""`config.kernels`: the choice is validated and traced into the steps (on a CPU 'auto' is 'xla',
so their maths are compared where the kernels run: tests/warp_triton_test.py, tests/conv_test.py)."""

import pytest

from animojax.ops import kernels
from animojax.trainers.animo import program as animo_program
from tests.helpers import program_config


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

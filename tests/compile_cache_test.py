"""Programs lower to the same HLO in every build, so JAX's persistent compilation cache can hit.

A restarted or resumed training job (and every test run) reads its compiled steps from the
cache instead of recompiling them (minutes for the paper model on a GPU) only if tracing is
deterministic: no Python object ids in the HLO (custom_partitioning puts one in its custom
call's backend config, which is why `ops.batch_local` prefers shard_map where the mesh is known).
"""

import jax
import pytest

from animojax.trainers.animo import program as animo_program
from tests.helpers import program_config

pytestmark = pytest.mark.devices(8)


@pytest.mark.parametrize('stage', [
    # Slow: the same build and lowering code as 'gen', whose program contains the warp path.
    pytest.param('warp', marks=pytest.mark.slow), 'gen'])
def test_two_builds_of_a_sharded_step_lower_to_the_same_hlo(stage):
  config = program_config(sharding_rules=[('.*kernel', 'fsdp'), ('.*', 'replicate')])
  texts = []
  for _ in range(2):
    program = animo_program.build(config)
    texts.append(program.train_steps[stage].lower(*program.step_args[stage]).as_text())
  assert 'CustomSPMDPartitioning' not in texts[0]
  assert texts[0] == texts[1]

"""ToonTalker's reenactment in all four directions, scored like AniMo's (`trainers/animo`).

Image-driven: the source of one domain is driven by the driving *frame* of the other (or the
same) domain, with absolute transfer (eq. 3, the training-time reconstruction). Targets: the
driving frame within a domain; across domains, the synthetic benchmark's rendering of the source
identity at the driving frame's semantic state (`animo_eval.ground_truth`).
"""

import jax
import numpy as np

from animojax.trainers.animo import evaluation as animo_eval

DIRECTIONS = (('real', 'real'), ('cartoon', 'cartoon'), ('cartoon', 'real'), ('real', 'cartoon'))


def reenact(generate, params, batch, data_config):
  """Runs every direction; returns {direction: {source, driving, fake, target}}."""
  results = {}
  for source_domain, driving_domain in DIRECTIONS:
    src, drv = batch[source_domain], batch[driving_domain]
    out = generate(params, src['source'], drv['driving'], source_domain=source_domain,
                   driving_domain=driving_domain)
    results[animo_eval.direction_name(source_domain, driving_domain)] = {
        'source': np.asarray(src['source']), 'driving': np.asarray(drv['driving']),
        'fake': np.asarray(jax.device_get(out['fake_image'])),
        'target': animo_eval.ground_truth(data_config, batch, source_domain, driving_domain),
    }
  return results

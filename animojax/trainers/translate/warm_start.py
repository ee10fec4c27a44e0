"""Warm start of a translation run (`config.model_init`) from released or exported weights.

`config.model_init` is a comma-separated list of entries, each loaded partially as
`trainers/common/model_init.py` describes (what was loaded, skipped or missing goes to
`<workdir>/model_init.json`):

* `NET=PATH`: one network, e.g. official CycleGAN files
  `gen_to_real=latest_net_G_A.pth,gen_to_anime=latest_net_G_B.pth,disc_real=latest_net_D_A.pth,
  disc_anime=latest_net_D_B.pth` (A = anime; upstream's D_A judges domain B), read without torch
  by `convert/cyclegan_torch.py`, or an `.npz` of that network's own parameter paths;
* `PATH`: every network at once: a run's `params.npz` (`python -m animojax.export`), or a U-GAT-IT
  `*_params_*.pt` (`convert/ugatit_torch.py`; its spectral-norm vectors are not loaded: they are
  state, re-estimated by the power iteration within a few steps).
"""

import json
import os

from animojax.convert import cyclegan_torch
from animojax.convert import ugatit_torch
from animojax.trainers.common import model_init
from animojax.trainers.common import multihost


def _cyclegan_net(net):
  def convert(checkpoint, path, option):
    del option
    return cyclegan_torch.convert(checkpoint, path, 'G' if net.startswith('gen') else 'D')
  return convert


def entries(spec):
  """[(net or '', path)] of a `config.model_init` string."""
  out = []
  for entry in filter(None, (e.strip() for e in spec.split(','))):
    net, sep, path = entry.partition('=')
    out.append((net, path) if sep else ('', entry))
  return out


def load(config, params, workdir=None):
  """`params` (the state's global arrays) with the files' weights in place; a report per entry."""
  params = dict(params)
  reports = {}
  for net, path in entries(config.model_init):
    if net and net not in params:
      raise ValueError(f'config.model_init: {net!r} is not a network of {config.method!r}; it '
                       f'has {sorted(params)}.')
    reference = params[net] if net else params
    converter = _cyclegan_net(net) if net else ugatit_torch.convert
    loaded, report = model_init.load(path, reference, torch_converter=converter)
    report.log()
    merged = model_init.assign(reference, loaded, report.loaded)
    if net:
      params[net] = merged
    else:
      params = dict(merged)
    reports[f'{net}={path}' if net else path] = report.to_dict()
  if workdir and multihost.is_main():
    with open(os.path.join(workdir, model_init.REPORT_FILENAME), 'w') as f:
      json.dump(reports, f, indent=2)
  return params

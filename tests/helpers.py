"""Helpers shared by the test modules (tests never import each other; they import this)."""

from animojax.configs import animo as animo_config

# A very small AniMo (fewer layers: compile time grows with the graph, not the widths) so that
# compiling both stages stays cheap on 2 CPU cores. The flow stays at 1/4 resolution (3 - 1).
TINY_MODEL = dict(warp_ngf=4, warp_img_f=8, warp_encoder_layers=3, warp_decoder_layers=1,
                  edit_ngf=4, edit_img_f=8, edit_layers=2, edit_num_res_blocks=1,
                  descriptor_nc=16)


def tiny_config(data_dir, **overrides):
  """The demo config with TINY_MODEL, 6 steps (3 warp-only), logging/checkpoints every 2."""
  c = animo_config.get_config('demo')
  c.data.data_dir = data_dir
  c.data.num_threads = 1
  c.model.update(TINY_MODEL)
  c.batch_size = 8
  c.total_steps = 6
  c.warp_steps = 3
  c.log_every = 2
  c.checkpoint_every = 2
  c.sample_every = 3
  c.eval.num_pairs = 8
  c.eval.batch_size = 8
  for k, v in overrides.items():
    c[k] = v
  return c

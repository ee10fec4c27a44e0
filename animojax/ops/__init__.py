"""Numerical ops shared by the models (warping, resizing, few-channel convolutions)."""

from animojax.ops.warp import check_padding_mode
from animojax.ops.warp import flow_to_deformation
from animojax.ops.warp import grid_sample
from animojax.ops.warp import identity_grid
from animojax.ops.warp import PADDING_MODES
from animojax.ops.warp import resize_deformation
from animojax.ops.warp import warp_image

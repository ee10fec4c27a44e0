"""Pose mapping T: AnimeCeleb pose vectors -> 3DMM motion parameters (AnimeCeleb paper §3.1)."""

from animojax.posemap.mapping import ANIMO_ANGLE_PERMUTATION
from animojax.posemap.mapping import anime_pose_to_3dmm
from animojax.posemap.mapping import DEEP3D_SLICES
from animojax.posemap.mapping import deep3d_coeff_to_motion
from animojax.posemap.mapping import load_phi
from animojax.posemap.mapping import MOTION_DIM

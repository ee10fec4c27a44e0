"""Pose mapping T: AnimeCeleb pose vectors -> 3DMM motion parameters (AnimeCeleb paper §3.1).

`mapping` applies a Φ (the released one or a fitted one); `loaders`/`morphable` read morphable
models into one landmark-level interface; `semantic_edits` defines the 17 landmark edits (T.1);
`fit` solves for Φ (T.2-T.3); `edtn` is the learned alternative (DECA -> morphs). EDTN is not
imported here so that the data pipeline does not pull in Flax modules it does not need.
"""

from animojax.posemap.camera import CAMERAS
from animojax.posemap.camera import project
from animojax.posemap.fit import error_table
from animojax.posemap.fit import fit_phi
from animojax.posemap.fit import FitConfig
from animojax.posemap.fit import FitResult
from animojax.posemap.fit import solve_phi
from animojax.posemap.loaders import load_3ddfa
from animojax.posemap.loaders import load_bfm_front
from animojax.posemap.loaders import load_model
from animojax.posemap.loaders import load_sfm
from animojax.posemap.mapping import ANIMO_ANGLE_PERMUTATION
from animojax.posemap.mapping import anime_pose_to_3dmm
from animojax.posemap.mapping import DEEP3D_SLICES
from animojax.posemap.mapping import deep3d_coeff_to_motion
from animojax.posemap.mapping import load_phi
from animojax.posemap.mapping import MOTION_DIM
from animojax.posemap.morphable import embedded_model
from animojax.posemap.morphable import MorphableModel
from animojax.posemap.semantic_edits import semantic_targets
from animojax.posemap.semantic_edits import SEMANTIC_NAMES

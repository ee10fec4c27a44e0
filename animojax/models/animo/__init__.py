"""Flax NNX models: AniMo and its PIRenderer-style building blocks."""

from animojax.models.animo.animo import AniMo
from animojax.models.animo.animo import DOMAINS
from animojax.models.animo.animo import EDIT_PREFIXES
from animojax.models.animo.animo import edit_filter
from animojax.models.animo.animo import is_edit_path
from animojax.models.animo.animo import STAGES
from animojax.models.animo.animo import VARIANTS
from animojax.models.animo.animo import WARP_PREFIXES
from animojax.models.animo.editing import EditingNet
from animojax.models.animo.motion import MotionNet
from animojax.models.animo.warping import WarpingNet

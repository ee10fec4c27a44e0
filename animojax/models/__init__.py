"""Flax NNX models: AniMo and its PIRenderer-style building blocks."""

from animojax.models.animo import AniMo
from animojax.models.animo import DOMAINS
from animojax.models.animo import EDIT_PREFIXES
from animojax.models.animo import edit_filter
from animojax.models.animo import is_edit_path
from animojax.models.animo import STAGES
from animojax.models.animo import VARIANTS
from animojax.models.animo import WARP_PREFIXES
from animojax.models.editing import EditingNet
from animojax.models.motion import MotionNet
from animojax.models.warping import WarpingNet

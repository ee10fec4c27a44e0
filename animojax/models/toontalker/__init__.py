"""Flax NNX ToonTalker (ICCV 2023): per-domain LIA-style generators with transformer motion
alignment in a shared canonical motion space."""

from animojax.models.toontalker.toontalker import copy_real_into_cartoon
from animojax.models.toontalker.toontalker import DOMAINS
from animojax.models.toontalker.toontalker import Generator
from animojax.models.toontalker.toontalker import resolve_config
from animojax.models.toontalker.toontalker import ToonTalker
from animojax.models.toontalker.toontalker import VARIANTS

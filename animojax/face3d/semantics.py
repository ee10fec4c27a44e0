"""The 17 AnimeCeleb semantics (morphs) and the 20-D semantic / pose vectors built on them.

AnimeCeleb (Kim et al., "AnimeCeleb: Large-Scale Animation CelebHeads Dataset for Head
Reenactment", ECCV 2022, §3.1; kangyeolk/AnimeCeleb) poses each head with 17 morphs in [0, 1] --
three eye states and three brow states per side, five mouth vowels -- plus three head angles in
degrees. The names and their order here are this project's (state-major, the subject's own left
before right); the released CSV's column headers have not been checked against them, so a
dataset reader must map its columns explicitly.

A semantic vector is morphs 17 | pitch, yaw, roll (degrees, the 3DMM order of `rotations`).
AniMo's runner (kangyeolk/AnimeCeleb, Animo) reads the CSV's angle columns with the permutation
(0, 2, 1), so those columns hold (pitch, roll, yaw); the permutation is its own inverse.
"""

MORPH_NAMES = (
    'eye_closed_left',
    'eye_closed_right',
    'eye_unimpressed_left',
    'eye_unimpressed_right',
    'eye_surprised_left',
    'eye_surprised_right',
    'brow_angry_left',
    'brow_angry_right',
    'brow_raised_left',
    'brow_raised_right',
    'brow_lowered_left',
    'brow_lowered_right',
    'mouth_a',
    'mouth_i',
    'mouth_u',
    'mouth_e',
    'mouth_o',
)
ANGLE_NAMES = ('pitch', 'yaw', 'roll')
SEMANTIC_NAMES = MORPH_NAMES + ANGLE_NAMES
NUM_MORPHS = len(MORPH_NAMES)
NUM_SEMANTICS = len(SEMANTIC_NAMES)

# Index i of a pitch/yaw/roll triple takes column ANIMO_ANGLE_PERMUTATION[i] of pose[17:20].
ANIMO_ANGLE_PERMUTATION = (0, 2, 1)
# The angle columns of an AnimeCeleb-style pose that this permutation implies.
ANIME_ANGLE_COLUMNS = tuple(ANGLE_NAMES[i] for i in ANIMO_ANGLE_PERMUTATION)

# How the morphs are grouped (the renderers and edits index by these).
EYE_STATES = ('closed', 'unimpressed', 'surprised')
BROW_STATES = ('angry', 'raised', 'lowered')
VOWELS = ('a', 'i', 'u', 'e', 'o')
SIDES = ('left', 'right')
EYE_SLICE = slice(0, 6)
BROW_SLICE = slice(6, 12)
MOUTH_SLICE = slice(12, 17)
ANGLE_SLICE = slice(17, 20)


def morph_index(name: str) -> int:
  """Index of a morph (or angle) name in the semantic vector."""
  try:
    return SEMANTIC_NAMES.index(name)
  except ValueError:
    raise ValueError(f'Unknown semantic name {name!r}; expected one of {SEMANTIC_NAMES}.') from None

"""The iBUG-68 facial landmark scheme: named groups of the 68 points (0-based indices).

The 68-point markup of the 300-W / iBUG annotation (ibug.doc.ic.ac.uk, "Facial point
annotations"; the 1-based figure there is shifted to 0-based here), which Deep3DFaceRecon's
`keypoints`, 3DDFA's landmark bases and eos's `ibug_to_sfm.txt` all follow. "right" / "left" are
the subject's own sides: with the face toward the camera, the right eye is on the image's left.
"""

import numpy as np

NUM_LANDMARKS = 68
JAW = np.arange(0, 17)
BROW_RIGHT = np.arange(17, 22)
BROW_LEFT = np.arange(22, 27)
NOSE_BRIDGE = np.arange(27, 31)
NOSE_BASE = np.arange(31, 36)
EYE_RIGHT = np.arange(36, 42)
EYE_LEFT = np.arange(42, 48)
LIPS_OUTER = np.arange(48, 60)
LIPS_INNER = np.arange(60, 68)
CHIN = 8
# Outer eye corners, whose distance normalises landmark errors (NME).
OUTER_EYE_CORNERS = (36, 45)

"""Pure matting core: no I/O, no broker, no process set-up. See docs/matting.md for the method and
the canvas rules. The person model sits behind the :class:`PersonSegmenter` port (the service's is
MediaPipe, ``adapters/segmentation.py``); the numba cache and the allocator are set by the
package's ``bootstrap.py``.
"""

from .alpha import estimate_alpha_with_trimap
from .foreground import estimate_foreground
from .framing import CANVAS_SIZE, EYE_LINE, FACE_HEIGHT
from .kernels import warm_up
from .pipeline import CutOut, Matte, Method, cut_out, matte
from .png import encode_png
from .segmentation import PersonSegmenter

__all__ = [
    "CANVAS_SIZE",
    "EYE_LINE",
    "FACE_HEIGHT",
    "CutOut",
    "Matte",
    "Method",
    "PersonSegmenter",
    "cut_out",
    "encode_png",
    "estimate_alpha_with_trimap",
    "estimate_foreground",
    "matte",
    "warm_up",
]

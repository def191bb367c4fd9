"""Pure matting core: no I/O, no broker. See docs/matting.md for the method and the canvas rules."""

from .alpha import estimate_alpha_with_trimap
from .foreground import estimate_foreground
from .framing import CANVAS_SIZE, EYE_LINE, FACE_HEIGHT
from .jit import configure_numba_cache, warm_up
from .pipeline import CutOut, Matte, Method, cut_out, matte
from .png import encode_png
from .segmentation import Matter

__all__ = [
    "CANVAS_SIZE",
    "EYE_LINE",
    "FACE_HEIGHT",
    "CutOut",
    "Matte",
    "Matter",
    "Method",
    "configure_numba_cache",
    "cut_out",
    "encode_png",
    "estimate_alpha_with_trimap",
    "estimate_foreground",
    "matte",
    "warm_up",
]

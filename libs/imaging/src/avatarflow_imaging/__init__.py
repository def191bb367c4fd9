"""Safe image sniffing and decoding shared by ingest, validator and matting.

Everything an upload can be is either one of :data:`SUPPORTED_FORMATS` (decided by magic bytes,
never by file name or declared content type) or an :class:`ImageError` with a machine code.
"""

from __future__ import annotations

from .decode import DecodedImage, decode_image
from .errors import ImageError, ImageTooLarge, UnreadableImage, UnsupportedImage
from .header import ImageHeader, read_header
from .sniff import SUPPORTED_FORMATS, sniff_format

__all__ = [
    "SUPPORTED_FORMATS",
    "DecodedImage",
    "ImageError",
    "ImageHeader",
    "ImageTooLarge",
    "UnreadableImage",
    "UnsupportedImage",
    "decode_image",
    "read_header",
    "sniff_format",
]

"""Errors raised for images we cannot or will not decode. ``code`` is stable; messages are for humans."""

from __future__ import annotations


class ImageError(Exception):
    """Base class: the bytes are not an image we can use. ``str(exc)`` explains why."""

    code: str = "image_error"


class UnsupportedImage(ImageError):
    """Not JPEG, PNG, WebP or HEIF by its magic bytes (PDF, SVG, TIFF, HTML, text, random bytes...)."""

    code = "unsupported_image"


class ImageTooLarge(ImageError):
    """Dimensions beyond the pixel or side cap: a decompression bomb or an absurd header."""

    code = "image_too_large"


class UnreadableImage(ImageError):
    """A supported type whose header or data cannot be parsed or decoded (empty, truncated, bad CRC)."""

    code = "unreadable_image"

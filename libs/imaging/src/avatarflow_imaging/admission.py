"""Upload admission: decide from the bytes alone (no full decode) whether an image may enter.

Shared by ingest (uploads) and the validator's synchronous pre-check, so both apply the same
size, type and dimension limits and answer with the same HTTP status codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ImageTooLarge, UnreadableImage, UnsupportedImage
from .header import ImageHeader, read_header
from .sniff import SUPPORTED_FORMATS, sniff_format


@dataclass(frozen=True)
class Refusal(Exception):
    status_code: int
    code: str
    message: str


@dataclass(frozen=True)
class AdmittedImage:
    header: ImageHeader
    content_type: str


def admit(data: bytes, *, max_bytes: int, max_pixels: int, max_side: int) -> AdmittedImage:
    """Check size, type (magic bytes) and header dimensions without decoding the image."""
    if not data:
        raise Refusal(400, "empty_file", "The uploaded file is empty.")
    if len(data) > max_bytes:
        raise Refusal(413, "file_too_large", f"The file is larger than the {max_bytes // (1024 * 1024)} MB limit.")
    if sniff_format(data) is None:
        raise Refusal(415, "unsupported_type", "Only JPEG, PNG, WebP and HEIC/HEIF images are supported.")
    try:
        header = read_header(data, max_pixels=max_pixels, max_side=max_side)
    except UnsupportedImage as exc:
        raise Refusal(415, "unsupported_type", str(exc)) from exc
    except ImageTooLarge as exc:
        raise Refusal(413, "image_dimensions_too_large", str(exc)) from exc
    except UnreadableImage as exc:
        raise Refusal(422, "unreadable_image", str(exc)) from exc
    return AdmittedImage(header=header, content_type=SUPPORTED_FORMATS[header.format])

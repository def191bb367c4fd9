"""Pure upload admission: decide from the bytes alone whether an upload may enter the pipeline."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from avatarflow_imaging import (
    SUPPORTED_FORMATS,
    ImageHeader,
    ImageTooLarge,
    UnreadableImage,
    UnsupportedImage,
    read_header,
    sniff_format,
)


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


_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heif": "heic"}


def original_key(upload_id: uuid.UUID, content_type: str) -> str:
    """Storage key of an original: random, never derived from anything the user typed."""
    return f"originals/{upload_id}/{secrets.token_urlsafe(18)}.{_EXTENSIONS.get(content_type, 'bin')}"

"""Header-only inspection: type, upright size and frame count, without decoding pixels."""

from __future__ import annotations

from dataclasses import dataclass

from ._pillow import DEFAULT_MAX_SIDE, exif_orientation, open_checked, reraise_as_image_error, upright_size


@dataclass(frozen=True)
class ImageHeader:
    format: str  # key of SUPPORTED_FORMATS
    width: int  # upright (after EXIF orientation)
    height: int
    frame_count: int | None  # 1 for stills; None when the container does not say


def read_header(data: bytes, *, max_pixels: int, max_side: int = DEFAULT_MAX_SIDE) -> ImageHeader:
    """Parse the header only. Raises UnreadableImage, UnsupportedImage or ImageTooLarge."""
    fmt, image = open_checked(data, max_pixels=max_pixels, max_side=max_side)
    try:
        with image:
            width, height = upright_size(image.size, exif_orientation(image, header_only=True))
            frames = getattr(image, "n_frames", 1)
            frame_count = int(frames) if isinstance(frames, int) else None
    except Exception as exc:
        raise reraise_as_image_error(
            exc, f"the {fmt.upper()} header could not be parsed", max_pixels=max_pixels
        ) from exc
    return ImageHeader(format=fmt, width=width, height=height, frame_count=frame_count)

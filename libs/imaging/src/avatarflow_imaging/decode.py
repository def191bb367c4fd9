"""Full decode to an upright 8-bit RGB array, optionally reduced in size while decoding."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile

from ._pillow import (
    DEFAULT_MAX_SIDE,
    EXIF_TRANSPOSE,
    exif_orientation,
    open_checked,
    reraise_as_image_error,
    upright_size,
)

# Transparent pixels are composited over white: transparent uploads are almost always cut-outs,
# which editors see on a light page, and white is the "plain, light-coloured background" the
# product recommends, so a cut-out validates (and mattes) like a studio photo instead of gaining a
# grey halo or a dark background that would skew the exposure checks near the hair line.
ALPHA_BACKGROUND = (255, 255, 255)

# ImageFile.LOAD_TRUNCATED_IMAGES is process-global. Truncated files must raise, never come back
# padded with grey, so every decode runs with it False; the lock keeps concurrent decodes in this
# process from restoring a caller's True in the middle of another decode.
_TRUNCATION_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class DecodedImage:
    rgb: npt.NDArray[np.uint8]  # H x W x 3 uint8, upright after EXIF orientation
    format: str  # key of SUPPORTED_FORMATS
    original_width: int  # upright size of the full-resolution image
    original_height: int
    scale: float  # rgb width / original width (< 1 when decoded reduced)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode_image(data: bytes, *, max_pixels: int = 50_000_000, max_long_side: int | None = None) -> DecodedImage:
    """Decode the first frame to upright RGB; at most ``max_long_side`` on its long side if given.

    JPEGs are decoded directly at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling via ``draft``) when
    that still leaves at least ``max_long_side`` pixels, which is what makes a 12 MP photo cheap;
    the rest of the way down is an area-averaging resize (Pillow's BOX filter, equivalent to
    OpenCV's INTER_AREA). Raises UnreadableImage, UnsupportedImage or ImageTooLarge, nothing else.
    """
    if max_long_side is not None and max_long_side < 1:
        raise ValueError("max_long_side must be positive")
    fmt, image = open_checked(data, max_pixels=max_pixels, max_side=DEFAULT_MAX_SIDE)
    try:
        with image, _TRUNCATION_LOCK:
            previous = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = False
            try:
                return _decode_open_image(image, fmt, max_long_side)
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous
    except Exception as exc:
        what = f"the {fmt.upper()} image data could not be decoded"
        raise reraise_as_image_error(exc, what, max_pixels=max_pixels) from exc


def _decode_open_image(image: Image.Image, fmt: str, max_long_side: int | None) -> DecodedImage:
    orientation = exif_orientation(image)
    original_width, original_height = upright_size(image.size, orientation)
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    if fmt == "jpeg" and max_long_side is not None:
        long_side = max(image.size)
        if long_side > max_long_side:
            ratio = max_long_side / long_side
            wanted = (max(1, int(image.size[0] * ratio)), max(1, int(image.size[1] * ratio)))
            image.draft(None, wanted)  # keeps the mode: CMYK stays CMYK, converted below
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image.load()
    rgb_image = _to_rgb(image)
    for step in EXIF_TRANSPOSE.get(orientation, []):
        rgb_image = rgb_image.transpose(step)
    if max_long_side is not None and max(rgb_image.size) > max_long_side:
        ratio = max_long_side / max(rgb_image.size)
        size = (
            max(1, round(rgb_image.size[0] * ratio)),
            max(1, round(rgb_image.size[1] * ratio)),
        )
        rgb_image = rgb_image.resize(size, Image.Resampling.BOX)
    rgb = np.ascontiguousarray(np.asarray(rgb_image, dtype=np.uint8))
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ValueError(f"unexpected decoded shape {rgb.shape}")
    rgb.setflags(write=False)
    return DecodedImage(
        rgb=rgb,
        format=fmt,
        original_width=original_width,
        original_height=original_height,
        scale=rgb.shape[1] / original_width,
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB with the colours a viewer would show."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P" and "transparency" in image.info:
        return _composite(image.convert("RGBA"))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _composite(image.convert("RGBA"))
    if mode.startswith("I") or mode == "F":
        return _high_bit_depth_grey_to_rgb(image)
    # L, 1, P (opaque), CMYK (Pillow undoes Adobe's inverted CMYK), YCbCr, LAB, HSV.
    return image.convert("RGB")


def _composite(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _high_bit_depth_grey_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit (I;16, I;16B, I) and float greys: map the full range to 0..255 instead of clipping.

    Pillow's own convert("RGB") clips a 16-bit image at 255, which turns nearly every pixel white.
    """
    values = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        peak = 1.0 if values.size and float(np.nanmax(values)) <= 1.0 else 255.0
    elif image.mode.startswith("I;16") or (values.size and float(values.max()) > 255):
        peak = 65535.0
    else:
        peak = 255.0
    grey = np.clip(np.nan_to_num(values) * (255.0 / peak), 0, 255).round().astype(np.uint8)
    return Image.fromarray(np.dstack([grey, grey, grey]), "RGB")

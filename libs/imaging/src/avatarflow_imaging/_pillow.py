"""Opening bytes with Pillow under our own guards (shared by header parsing and decoding)."""

from __future__ import annotations

import io
import re
import warnings

import pillow_heif
from PIL import Image

from .errors import ImageError, ImageTooLarge, UnreadableImage, UnsupportedImage
from .sniff import sniff_format

pillow_heif.register_heif_opener()

# Pillow's plugin name for each supported format: Image.open is restricted to the one plugin the
# magic bytes chose, so Pillow never falls back to parsing the bytes as TIFF, ICO, EPS...
PILLOW_FORMATS: dict[str, str] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heif": "HEIF"}

# Beyond this a single side is absurd for a portrait whatever the pixel budget.
DEFAULT_MAX_SIDE = 20_000

# EXIF orientations 5..8 store the picture transposed: the upright width is the stored height.
_SWAPS_AXES = frozenset({5, 6, 7, 8})
EXIF_TRANSPOSE: dict[int, list[Image.Transpose]] = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}


def open_checked(data: bytes, *, max_pixels: int, max_side: int) -> tuple[str, Image.Image]:
    """Sniff, open (header only, nothing decoded yet) and enforce the size caps.

    Pillow's own ``MAX_IMAGE_PIXELS`` check stays in place as a backstop (it is process-global, so
    we do not change it); its warning is silenced here because our explicit cap decides, and its
    error becomes :class:`ImageTooLarge` instead of escaping.
    """
    if not data:
        raise UnreadableImage("the file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImage("not a JPEG, PNG, WebP or HEIF image (checked by its content)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[fmt]])
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(bomb_message(exc, max_pixels)) from exc
    except Exception as exc:  # Pillow raises many types for malformed headers.
        raise UnreadableImage(
            f"the {fmt.upper()} header could not be parsed: the file is damaged or truncated ({_describe(exc)})"
        ) from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise UnreadableImage(f"the {fmt.upper()} header declares an empty image ({width}x{height})")
    if width > max_side or height > max_side:
        raise ImageTooLarge(f"the image is {width}x{height}; no side may exceed {max_side} pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    return fmt, image


def exif_orientation(image: Image.Image, *, header_only: bool = False) -> int:
    """EXIF orientation 1..8 (1 when absent or unreadable: a broken EXIF block is not fatal).

    ``header_only``: never decode pixels to find it. Pillow's PNG ``getexif()`` decodes the whole
    image when no eXIf chunk came before the image data (a 36 MP PNG: about a second of CPU, on the
    caller's thread: the event loop, for an upload's admission check); then 1 is assumed here and the
    full decode, which loads the image anyway, reads the real value."""
    if header_only and image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        value = image.getexif().get(0x0112, 1)
        value = int(value)
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    width, height = size
    return (height, width) if orientation in _SWAPS_AXES else (width, height)


def bomb_message(exc: BaseException, max_pixels: int | None) -> str:
    """Our words and our cap for Pillow's decompression-bomb refusal (its text names its own global
    limit, not the one this service is configured with)."""
    declared = _BOMB_SIZE.search(str(exc))
    size = f" declares {int(declared.group(1)):,} pixels;" if declared else " is too large to decode safely;"
    cap = f" the limit is {max_pixels:,} pixels ({max_pixels / 1e6:g} MP)" if max_pixels else ""
    return f"the image{size}{cap}".rstrip(";") + " (a possible decompression bomb)"


def reraise_as_image_error(exc: BaseException, what: str, *, max_pixels: int | None = None) -> ImageError:
    if isinstance(exc, ImageError):
        return exc
    if isinstance(exc, Image.DecompressionBombError):
        return ImageTooLarge(f"{what}: {bomb_message(exc, max_pixels)}")
    if isinstance(exc, MemoryError):
        return ImageTooLarge(f"{what}: the image is too large to decode in memory")
    return UnreadableImage(f"{what}: {_describe(exc)}")


_BOMB_SIZE = re.compile(r"Image size \((\d+) pixels\)")


def _describe(exc: BaseException) -> str:
    # Pillow's "cannot identify image file <_io.BytesIO object at 0x...>" names a memory address.
    text = str(exc).split(" <_io.", 1)[0].strip() or type(exc).__name__
    return text[:200]

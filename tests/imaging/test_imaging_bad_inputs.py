"""Every file in shared/bad-inputs through sniff_format, read_header and decode_image."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pytest
from avatarflow_imaging import (
    SUPPORTED_FORMATS,
    ImageError,
    ImageTooLarge,
    UnreadableImage,
    UnsupportedImage,
    decode_image,
    read_header,
    sniff_format,
)
from PIL import Image

SHARED = Path(os.environ.get("AVATARFLOW_SHARED_DIR", Path(__file__).resolve().parents[2] / ".." / "shared"))
BAD = SHARED / "bad-inputs"
MAX_PIXELS = 50_000_000

# What each hostile file must raise (header and full decode alike).
RAISES: dict[str, type[ImageError]] = {
    "zero-byte.jpg": UnreadableImage,
    "random-bytes.jpg": UnsupportedImage,
    "plain-text.jpg": UnsupportedImage,
    "html-page.png": UnsupportedImage,
    "svg-face.svg": UnsupportedImage,
    "document.pdf": UnsupportedImage,
    "portrait.tif": UnsupportedImage,
    "truncated-header.png": UnreadableImage,
    "bad-crc.png": UnreadableImage,
    "decompression-bomb.png": ImageTooLarge,
    "claims-65000x65000.jpg": ImageTooLarge,
}
# Valid portraits in unusual encodings: they decode to the same upright picture.
PORTRAITS = [
    "cmyk.jpg",
    "progressive.jpg",
    "grey-16bit.png",
    "palette.png",
    "rgba.png",
    "exif-rotated.jpg",
    "polyglot-trailing-zip.jpg",
    "portrait.webp",
    "portrait.heic",
    "animated.webp",
    "animated.png",
]


def _read(name: str) -> bytes:
    return (BAD / name).read_bytes()


def _expected_rows() -> list[dict[str, str]]:
    with (BAD / "expected.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def reference_rgb() -> np.ndarray:
    """The plain baseline JPEG decoded by Pillow directly: what every re-encoding should look like."""
    with Image.open(BAD / "progressive.jpg") as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def test_every_listed_file_is_covered() -> None:
    names = {row["file"] for row in _expected_rows()}
    covered = (
        set(RAISES)
        | set(PORTRAITS)
        | {
            "truncated-40pct.jpg",
            "extreme-aspect.png",
            "one-pixel.png",
            "thumbnail-48px.jpg",
            "large-12mp.jpg",
        }
    )
    assert names == covered


def test_ingest_refusals_raise_an_image_error_at_header_or_decode() -> None:
    for row in _expected_rows():
        if row["ingest"] != "4xx":
            continue
        with pytest.raises(ImageError):
            read_header(_read(row["file"]), max_pixels=MAX_PIXELS)
            decode_image(_read(row["file"]))


@pytest.mark.parametrize(("name", "error"), sorted(RAISES.items()))
def test_hostile_files_raise_the_right_error(name: str, error: type[ImageError]) -> None:
    data = _read(name)
    with pytest.raises(error) as header_exc:
        read_header(data, max_pixels=MAX_PIXELS)
    with pytest.raises(error) as decode_exc:
        decode_image(data, max_long_side=1024)
    for exc in (header_exc.value, decode_exc.value):
        assert exc.code == error.code
        assert str(exc) and "0x" not in str(exc)


def test_sniffing_is_by_content_not_name() -> None:
    assert sniff_format(_read("portrait.heic")) == "heif"
    assert sniff_format(_read("portrait.webp")) == "webp"
    assert sniff_format(_read("rgba.png")) == "png"
    assert sniff_format(_read("cmyk.jpg")) == "jpeg"
    for name in ("portrait.tif", "document.pdf", "svg-face.svg", "html-page.png", "plain-text.jpg"):
        assert sniff_format(_read(name)) is None
    assert set(SUPPORTED_FORMATS) == {"jpeg", "png", "webp", "heif"}


def test_avif_is_not_heif() -> None:
    avif = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    generic = b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic"
    assert sniff_format(avif) is None
    assert sniff_format(heic) == "heif"
    assert sniff_format(generic) == "heif"


def test_truncated_jpeg_header_reads_but_decode_raises() -> None:
    data = _read("truncated-40pct.jpg")
    assert read_header(data, max_pixels=MAX_PIXELS).width == 512
    with pytest.raises(UnreadableImage, match="truncated"):
        decode_image(data)
    with pytest.raises(UnreadableImage):
        decode_image(data, max_long_side=128)  # the reduced (draft) decode must not hide it either


def test_truncation_guard_survives_a_global_override() -> None:
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(UnreadableImage):
            decode_image(_read("truncated-40pct.jpg"))
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for the caller who set it
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


@pytest.mark.parametrize("name", PORTRAITS)
def test_unusual_encodings_decode_to_the_upright_portrait(name: str, reference_rgb: np.ndarray) -> None:
    decoded = decode_image(_read(name))
    assert decoded.rgb.dtype == np.uint8
    assert decoded.rgb.shape == (512, 512, 3)
    assert decoded.scale == 1.0
    assert (decoded.original_width, decoded.original_height) == (512, 512)
    if name == "grey-16bit.png":
        grey = reference_rgb.mean(axis=2)
        ours = decoded.rgb[..., 0].astype(np.float64)
        assert 40 < ours.mean() < 215  # neither clipped white nor black
        assert ours.std() > 20
        assert np.corrcoef(grey.ravel(), ours.ravel())[0, 1] > 0.95
        return
    error = np.abs(decoded.rgb.astype(np.float64) - reference_rgb).mean()
    assert error < 6.0, f"{name} differs from the reference portrait by {error:.1f} levels"


def test_exif_rotation_is_applied() -> None:
    data = _read("exif-rotated.jpg")
    with Image.open(io.BytesIO(data)) as image:
        stored = np.asarray(image.convert("RGB"), dtype=np.float64)
        assert image.getexif().get(0x0112) == 6
    upright = decode_image(data).rgb.astype(np.float64)
    reference = decode_image(_read("progressive.jpg")).rgb.astype(np.float64)
    assert np.abs(upright - reference).mean() < 6.0
    assert np.abs(stored - reference).mean() > 20.0  # the stored pixels really are sideways


def test_exif_orientation_swaps_header_size() -> None:
    image = Image.new("RGB", (300, 200), (120, 90, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    header = read_header(buffer.getvalue(), max_pixels=MAX_PIXELS)
    assert (header.width, header.height) == (200, 300)
    decoded = decode_image(buffer.getvalue())
    assert decoded.rgb.shape[:2] == (300, 200)
    assert (decoded.original_width, decoded.original_height) == (200, 300)


def test_cmyk_colours_are_sane(reference_rgb: np.ndarray) -> None:
    rgb = decode_image(_read("cmyk.jpg")).rgb.astype(np.float64)
    # Skin-dominated portrait: red channel brightest on average, like the RGB original.
    assert rgb[..., 0].mean() > rgb[..., 2].mean()
    assert np.abs(rgb.mean(axis=(0, 1)) - reference_rgb.mean(axis=(0, 1))).max() < 8


def test_large_jpeg_decodes_reduced_with_scale() -> None:
    data = _read("large-12mp.jpg")
    header = read_header(data, max_pixels=MAX_PIXELS)
    decoded = decode_image(data, max_long_side=1000)
    assert max(decoded.rgb.shape[:2]) == 1000
    assert (decoded.original_width, decoded.original_height) == (header.width, header.height)
    assert decoded.scale == pytest.approx(1000 / header.width)


def test_pixel_cap_is_enforced() -> None:
    data = _read("large-12mp.jpg")
    with pytest.raises(ImageTooLarge):
        read_header(data, max_pixels=1_000_000)
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=1_000_000)
    with pytest.raises(ImageTooLarge):
        read_header(data, max_pixels=MAX_PIXELS, max_side=2000)


def test_small_and_odd_shapes_decode() -> None:
    assert decode_image(_read("one-pixel.png")).rgb.shape == (1, 1, 3)
    assert decode_image(_read("thumbnail-48px.jpg")).rgb.shape == (48, 48, 3)
    wide = decode_image(_read("extreme-aspect.png"), max_long_side=1024)
    assert wide.rgb.shape[1] == 1024 and wide.rgb.shape[0] >= 1


@pytest.mark.parametrize("mode", ["LA", "RGBA", "P-transparent", "1", "I;16B", "L"])
def test_modes_convert_to_rgb(mode: str) -> None:
    gradient = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    if mode == "LA":
        image = Image.fromarray(np.dstack([gradient, np.full_like(gradient, 0)]), "LA")
    elif mode == "RGBA":
        alpha = np.zeros_like(gradient)
        alpha[:, 32:] = 255
        image = Image.fromarray(np.dstack([gradient, gradient, gradient, alpha]), "RGBA")
    elif mode == "P-transparent":
        image = Image.fromarray(gradient, "L").convert("P")
        image.info["transparency"] = 0
    elif mode == "1":
        image = Image.fromarray(gradient, "L").convert("1")
    elif mode == "I;16B":
        wide = (gradient.astype(np.uint16) * 257).astype(">u2")
        image = Image.frombytes("I;16B", (64, 64), wide.tobytes())
    else:
        image = Image.fromarray(gradient, "L")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **({"transparency": 0} if mode == "P-transparent" else {}))
    rgb = decode_image(buffer.getvalue()).rgb
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    if mode == "LA":
        assert (rgb == 255).all()  # fully transparent -> the white background
    elif mode == "RGBA":
        assert (rgb[:, :32] == 255).all()
        assert abs(int(rgb[0, 63, 0]) - 255) <= 1 and int(rgb[0, 33, 0]) < 255
    elif mode == "I;16B":
        assert abs(int(rgb[0, 0, 0]) - 0) <= 1 and abs(int(rgb[0, 63, 0]) - 255) <= 1
        assert 100 < rgb.mean() < 155
    else:
        assert rgb.min() < 30 and rgb.max() > 225


@pytest.mark.parametrize("max_pixels", [12_000_000, 40_000_000])
def test_a_decompression_bomb_is_refused_with_the_configured_cap(max_pixels: int) -> None:
    """Issue 19: the refusal quoted Pillow's own wording and its global limit, not the service's cap."""
    with pytest.raises(ImageTooLarge) as header_error:
        read_header(_read("decompression-bomb.png"), max_pixels=max_pixels)
    with pytest.raises(ImageTooLarge) as decode_error:
        decode_image(_read("decompression-bomb.png"), max_pixels=max_pixels)
    for message in (str(header_error.value), str(decode_error.value)):
        assert f"{max_pixels:,} pixels" in message, message
        assert "DOS attack" not in message and str(Image.MAX_IMAGE_PIXELS) not in message.replace(",", "")


def test_reading_a_png_header_decodes_no_pixels() -> None:
    """Issue 19 item 3: Pillow's PNG getexif() decoded whole 36 MP images inside the header check,
    on the event loop of ingest and of the validator's pre-check."""
    side = 6000
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (90, 120, 150)).save(buffer, format="PNG", compress_level=1)
    loads: list[str] = []
    original_load = Image.Image.load

    def counting_load(self: Image.Image):  # type: ignore[no-untyped-def]
        loads.append(self.format or "?")
        return original_load(self)

    Image.Image.load = counting_load  # type: ignore[method-assign]
    try:
        header = read_header(buffer.getvalue(), max_pixels=40_000_000)
    finally:
        Image.Image.load = original_load  # type: ignore[method-assign]
    assert (header.width, header.height, header.format) == (side, side, "png")
    assert loads == []

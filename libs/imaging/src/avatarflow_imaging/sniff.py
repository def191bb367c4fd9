"""Recognise the supported image types by their magic bytes only."""

from __future__ import annotations

SUPPORTED_FORMATS: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "heif": "image/heif",
}

# ISO-BMFF ``ftyp`` brands of the HEIF family (HEVC-coded stills and sequences, and the generic
# MIAF/HEIF structural brands). AVIF (``avif``/``avis``) shares the container but is a different
# codec we do not accept, so an ``avif`` major brand wins over a ``mif1`` compatible brand.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_HEIF_GENERIC_BRANDS = frozenset({b"mif1", b"msf1", b"miaf"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def _sniff_heif(data: bytes) -> bool:
    if len(data) < 12 or data[4:8] != b"ftyp":
        return False
    box_size = int.from_bytes(data[0:4], "big")
    major = data[8:12]
    if major in _AVIF_BRANDS:
        return False
    if major in _HEIF_BRANDS:
        return True
    # Compatible brands follow the 4-byte minor version, up to the end of the ftyp box.
    end = min(box_size if box_size >= 16 else 16, len(data), 256)
    compatible = {data[i : i + 4] for i in range(16, end - 3, 4)}
    if compatible & _AVIF_BRANDS:
        return False
    return major in _HEIF_GENERIC_BRANDS or bool(compatible & _HEIF_BRANDS)


def sniff_format(data: bytes) -> str | None:
    """The key of :data:`SUPPORTED_FORMATS` that ``data`` starts like, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if _sniff_heif(data):
        return "heif"
    return None

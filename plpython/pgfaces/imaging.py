"""Turning untrusted image bytes into upright BGR pixels, with limits checked before any pixel is decoded."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from . import complete
from .errors import ImageError, LimitError, reason_of
from .metadata import read_orientation
from .records import Limits

REDUCE_FACTORS = (1, 2, 4, 8)

# Formats we can decode (cv2 first, Pillow as fallback).
DECODABLE = {"jpeg", "png", "webp", "gif", "bmp", "tiff"}

_JPEG_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def sniff_format(data: bytes) -> str:
    """Name the format from magic bytes: jpeg, png, webp, gif, bmp, tiff, heic, avif, svg, html, text, unknown."""
    if not data:
        return "empty"
    head = bytes(data[:64])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM":
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "avif"
        if brand in _HEIF_BRANDS:
            return "heic"
        return "unknown"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "html"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in bytes(data[:4096]).lower()):
        return "svg"
    if text.startswith(b"<?xml"):
        return "text"
    if head and all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return "text"
    return "unknown"


def _refuse_format(fmt: str, data: bytes) -> None:
    """Raise ImageError for formats we recognise but cannot or will not decode."""
    if fmt in DECODABLE:
        return
    if fmt in ("heic", "avif"):
        raise ImageError(f"{fmt.upper()} images are not supported (convert to JPEG or PNG)")
    if fmt in ("html", "svg", "text"):
        raise ImageError(f"not a supported image (looks like {fmt.upper() if fmt != 'text' else 'text'})")
    raise ImageError(f"not a supported image (unknown format, starts with {bytes(data[:8]).hex()})")


def check_length(length: int, limits: Limits) -> None:
    """Refuse more bytes than the limit (the loaders ask before they read a file)."""
    if length > limits.max_bytes:
        raise LimitError(f"image is {length} bytes, more than the limit of {limits.max_bytes} bytes")


def check_bytes(data: bytes | None, limits: Limits) -> str:
    """Check emptiness, size and format; return the format name."""
    if data is None or len(data) == 0:
        raise ImageError("empty image")
    check_length(len(data), limits)
    fmt = sniff_format(data)
    _refuse_format(fmt, data)
    return fmt


def open_lazily(data: bytes, fmt: str) -> Image.Image:
    """Pillow image with only the header parsed (no pixels decoded)."""
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageError(f"corrupt {fmt.upper()} (the header cannot be read)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow signals corrupt headers with these; the chained exception keeps the detail.
        raise ImageError(f"corrupt {fmt.upper()} (the header cannot be read: {reason_of(exc)})") from exc


def _check_size(fmt: str, im: Image.Image, limits: Limits) -> tuple[int, int]:
    width, height = im.size
    if width <= 0 or height <= 0:
        raise ImageError(f"corrupt {fmt.upper()} (header says {width}x{height})")
    pixels = width * height
    if pixels > limits.max_pixels:
        raise LimitError(
            f"image is {width}x{height} = {pixels} pixels, more than the limit of {limits.max_pixels} pixels"
        )
    return width, height


def read_header(data: bytes, limits: Limits = Limits()) -> tuple[str, int, int]:
    """(format, stored width, stored height) from the header only; refuses images over the limits."""
    fmt = check_bytes(data, limits)
    with open_lazily(data, fmt) as im:
        width, height = _check_size(fmt, im, limits)
    return fmt, width, height


def verify(data: bytes, limits: Limits = Limits()) -> tuple[str, int, int]:
    """read_header, and the file holds all the data its header declares (pgfaces.complete): what every path checks
    before the first decode. Bounded: a walk of the file and, for PNG, an inflate that keeps nothing."""
    fmt = check_bytes(data, limits)
    with open_lazily(data, fmt) as im:
        width, height = _check_size(fmt, im, limits)
        complete.check(data, fmt, im)
    if fmt == "jpeg" and not _has_end_marker(data, b"\xff\xd9"):
        # Some valid files carry a trailer (e.g. motion photos); a cheap DCT-scaled Pillow decode decides.
        _verify_with_pillow(data, fmt, "truncated JPEG (no end-of-image marker)")
    return fmt, width, height


def reduce_factor_for(width: int, height: int, max_side: int | None) -> int:
    """Largest JPEG DCT reduction (1, 2, 4, 8) that keeps the longest side >= max_side.

    The reduced image is then at most 2x larger than wanted, and a small resize finishes the job.
    """
    if not max_side:
        return 1
    longest = max(width, height)
    best = 1
    for factor in REDUCE_FACTORS:
        if -(-longest // factor) >= max_side:
            best = factor
    return best


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright according to the EXIF Orientation tag (1..8)."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(image), -1)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def _has_end_marker(data: bytes, marker: bytes) -> bool:
    # Cameras and editors sometimes pad files with NULs or whitespace after the end marker.
    return data[-4096:].rstrip(b"\x00\r\n \t").endswith(marker)


def _verify_with_pillow(data: bytes, fmt: str, reason: str) -> None:
    with open_lazily(data, fmt) as im:
        try:
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))  # 1/64 of the pixels
            im.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"{reason}: {reason_of(exc)}") from exc


def _decode_with_cv2(data: bytes, fmt: str, reduce: int) -> np.ndarray | None:
    buf = np.frombuffer(data, np.uint8)
    # Orientation is applied by us for every format, from the tag read_metadata parsed.
    flags = _JPEG_REDUCED_FLAGS[reduce] | cv2.IMREAD_IGNORE_ORIENTATION
    return cv2.imdecode(buf, flags)


def _decode_with_pillow(data: bytes, fmt: str, reduce: int) -> np.ndarray:
    with open_lazily(data, fmt) as im:
        try:
            im.seek(0)  # first frame of an animation
            if fmt == "jpeg" and reduce > 1:
                im.draft("RGB", (-(-im.width // reduce), -(-im.height // reduce)))
            im.load()
            if im.mode not in ("RGB", "L"):
                if "A" in im.getbands() or im.mode == "P" and "transparency" in im.info:
                    im = im.convert("RGBA")
                    background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                    im = Image.alpha_composite(background, im)
                im = im.convert("RGB")
            if reduce > 1 and fmt != "jpeg":
                im = im.reduce(reduce)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"corrupt {fmt.upper()} ({reason_of(exc)})") from exc
        array = np.asarray(im)
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(array, cv2.COLOR_RGB2BGR)


def decode_upright(
    data: bytes, limits: Limits = Limits(), reduce: int = 1, orientation: int | None = None, verified: bool = False
) -> np.ndarray:
    """Decode to an upright BGR uint8 array, `reduce` times smaller (1, 2, 4 or 8) on each side.

    `orientation` is the EXIF tag if the caller already read it (read_metadata); otherwise it is read here.
    `verified`: the caller passed the bytes through verify() already (the pipeline does, once per image).
    """
    if reduce not in REDUCE_FACTORS:
        raise ValueError(f"reduce must be one of {REDUCE_FACTORS}, not {reduce!r}")
    fmt, _, _ = read_header(data, limits) if verified else verify(data, limits)
    if fmt != "jpeg":
        # Only JPEG decodes smaller for less work (DCT scaling); other formats would be decoded whole and then
        # shrunk by the decoder, which rounds a thin side down to 0 px. The caller shrinks (shrink_to) instead.
        reduce = 1
    # cv2 reads GIF poorly across builds (and not at all in some); Pillow gives the first frame reliably.
    image = None if fmt == "gif" else _decode_with_cv2(data, fmt, reduce)
    if image is None:
        image = _decode_with_pillow(data, fmt, reduce)
    if orientation is None:
        orientation = read_orientation(data)
    return apply_orientation(image, orientation)


def shrink_to(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Resize so the longest side is <= max_side; return (image, scale from returned to given coords)."""
    height, width = image.shape[:2]
    longest = max(height, width)
    if not max_side or longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), longest / max_side

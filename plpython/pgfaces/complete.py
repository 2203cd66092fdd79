"""Does a file hold all the data its header declares? Cheap checks, one per format, made before any decoder sees
the pixels: decoders pad what is missing (cv2 fills a truncated PNG, JPEG or compressed TIFF with grey), so a file
of a hundred bytes declaring 10000x10000 pixels would otherwise cost 300 MB and seconds of decoding.

PNG: the chunks are walked and the compressed pixel data is inflated in small pieces (nothing kept) until it holds
every row the header declares. JPEG: entropy-coded data of at least one bit per 8x8 block (no Huffman-coded image
has less). TIFF: every strip or tile lies inside the file, and expands at most as far as its compression can.
WebP: the RIFF container is whole. GIF and BMP: their decoders refuse missing data themselves
(tests/unit/test_complete.py).
"""

from __future__ import annotations

import struct
import zlib

from .errors import ImageError
from .interrupts import checkpoint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
DEFLATE_MAX_RATIO = 1033  # no deflate stream expands more than ~1032 times
INFLATE_IN = 1 << 16  # compressed bytes fed to zlib at a time
INFLATE_OUT = 1 << 20  # at most this many bytes inflated at a time (then dropped)

# How far a TIFF strip may expand, by compression tag: the codec's own limit (PackBits 128 bytes from 2, deflate
# ~1032, LZW's 12-bit codes, JPEG one bit per 8x8 block of up to 4 samples); others (fax, LZMA, ...) 4096.
_TIFF_MAX_RATIO = {1: 1, 32773: 64, 8: DEFLATE_MAX_RATIO, 32946: DEFLATE_MAX_RATIO, 5: 4096, 7: 2048, 6: 2048}
TIFF_OTHER_MAX_RATIO = 4096


def check(data: bytes, fmt: str, image) -> None:
    """Raises ImageError when the file lacks data its header declares; `image` is Pillow's lazily opened image
    (its header parsed, no pixel decoded)."""
    if fmt == "png":
        _check_png(data)
    elif fmt == "jpeg":
        _check_jpeg(data)
    elif fmt == "webp":
        _check_riff(data)
    elif fmt == "tiff":
        _check_tiff(image, len(data))


# --- PNG -----------------------------------------------------------------------------------------------------------


def png_chunks(data: bytes):
    """(type, data) of each chunk, in order, up to IEND; a chunk cut by the end of the file is given as far as it
    goes, and ends the walk."""
    view, pos = memoryview(data), len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", view[pos:pos + 8])
        start = pos + 8
        yield kind, view[start:start + length]
        if kind == b"IEND":
            return
        pos = start + length + 4  # and the CRC


def png_exif(data: bytes) -> bytes | None:
    """The payload of the eXIf chunk, wherever it lies (Pillow would decode every pixel to find one after IDAT)."""
    for kind, body in png_chunks(data):
        if kind == b"eXIf":
            return bytes(body)
    return None


def _png_raw_size(width: int, height: int, depth: int, colour: int, interlace: int) -> int | None:
    """Bytes of filtered scanlines the header declares (None: a colour type no decoder reads)."""
    channels = _PNG_CHANNELS.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        return None

    def rows(w: int, h: int) -> int:
        return h * (1 + (w * channels * depth + 7) // 8) if w > 0 and h > 0 else 0

    if not interlace:
        return rows(width, height)
    return sum(rows(-(-(width - x0) // dx), -(-(height - y0) // dy)) for x0, y0, dx, dy in _ADAM7)


def _check_png(data: bytes) -> None:
    header, idat = None, []
    for kind, body in png_chunks(data):
        if kind == b"IHDR" and len(body) >= 13:
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            idat.append(body)
    if header is None:
        raise ImageError("corrupt PNG (no IHDR chunk)")
    width, height, depth, colour, _, _, interlace = header
    expected = _png_raw_size(width, height, depth, colour, interlace)
    if expected is None:
        return  # the decoders refuse it by name
    compressed = sum(len(part) for part in idat)
    if not compressed:
        raise ImageError("truncated PNG (no pixel data)")
    if expected > compressed * DEFLATE_MAX_RATIO + 64:
        raise ImageError(f"truncated PNG ({compressed} bytes of pixel data cannot hold {width}x{height} pixels)")
    got = _inflated_length(idat, expected)
    if got < expected:
        raise ImageError(f"truncated PNG (its pixel data ends at {100 * got // expected}% of the image)")


def _inflated_length(parts: list[memoryview], wanted: int) -> int:
    """How many bytes the zlib stream in `parts` inflates to, counted up to `wanted`, a piece at a time."""
    stream, got = zlib.decompressobj(), 0
    try:
        for part in parts:
            for start in range(0, len(part), INFLATE_IN):
                piece = part[start:start + INFLATE_IN]
                while piece:
                    got += len(stream.decompress(piece, INFLATE_OUT))
                    if got >= wanted or stream.eof:
                        return got
                    piece = stream.unconsumed_tail
                    checkpoint()  # a cancel stops a long check (in the backend's own thread)
    except zlib.error as exc:
        raise ImageError("corrupt PNG (its compressed pixel data is damaged)") from exc
    return got


# --- JPEG ----------------------------------------------------------------------------------------------------------

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_ARITHMETIC = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _check_jpeg(data: bytes) -> None:
    """A frame header and entropy-coded data after it, at least one bit per 8x8 block where Huffman-coded."""
    pos, frame, n = 2, None, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:  # stray bytes between segments: decoders skip to the next marker, and so do we
            pos = data.find(b"\xff", pos)
            if pos < 0:
                break
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == 0xD9:
            break
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in _SOF and length >= 8 and pos + 9 <= n:
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            frame = (marker, width, height)
        if marker == 0xDA:
            if frame is None:
                raise ImageError("corrupt JPEG (image data before its frame header)")
            marker, width, height = frame
            scan = n - (pos + 2 + length)
            blocks = -(-width // 8) * -(-height // 8)
            if scan <= 0 or (marker not in _ARITHMETIC and scan * 8 < blocks):
                raise ImageError(f"truncated JPEG ({max(0, scan)} bytes of image data cannot hold "
                                 f"{width}x{height} pixels)")
            return
        pos += 2 + length
    raise ImageError("truncated JPEG (no image data)")


# --- WebP ----------------------------------------------------------------------------------------------------------


def _check_riff(data: bytes) -> None:
    declared = struct.unpack("<I", data[4:8])[0] + 8
    if len(data) < declared:
        raise ImageError(f"truncated WEBP ({len(data)} of its {declared} bytes)")


# --- TIFF ----------------------------------------------------------------------------------------------------------


def _check_tiff(image, size: int) -> None:
    """Pillow's lazily opened TIFF (its first directory parsed): every strip or tile lies inside the `size` bytes of
    the file, and the data can expand to the pixels declared."""
    tags = image.tag_v2
    offsets, counts = tags.get(273), tags.get(279)
    if offsets is None:
        offsets, counts = tags.get(324), tags.get(325)
    offsets = offsets if isinstance(offsets, tuple) else (offsets,) if offsets is not None else ()
    counts = counts if isinstance(counts, tuple) else (counts,) if counts is not None else ()
    if not offsets or len(counts) != len(offsets):
        raise ImageError("corrupt TIFF (no strip or tile of image data is listed)")
    if any(o + c > size for o, c in zip(offsets, counts)):
        raise ImageError("truncated TIFF (its image data runs past the end of the file)")
    per_sample = tags.get(258, 1)
    per_sample = per_sample if isinstance(per_sample, tuple) else (per_sample,)
    bits = sum(per_sample) if len(per_sample) > 1 else per_sample[0] * tags.get(277, 1)
    declared = image.width * image.height * bits // 8
    ratio = _TIFF_MAX_RATIO.get(tags.get(259, 1), TIFF_OTHER_MAX_RATIO)
    if sum(counts) * ratio < declared:
        raise ImageError(f"truncated TIFF ({sum(counts)} bytes of image data cannot hold "
                         f"{image.width}x{image.height} pixels)")

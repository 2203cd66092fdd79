"""Images that attack what decodes bytes (issue 20): files that declare more than they hold, damaged codec streams,
text bombs, EXIF where a careless reader decodes every pixel to find it. Drawn as tests/images.py draws the rest."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from images import ORIENTATION, _png_chunk, encode, gradient, png, png_declaring



def png_one_row(width: int = 10_000, height: int = 10_000) -> bytes:
    """A PNG declaring width x height RGB pixels whose data holds one row (109 bytes at 10000x10000); IEND present."""
    return png_declaring(width, height, idat=zlib.compress(bytes(1 + width * 3), 9))


def with_tiff_size(tiff: bytes, width: int, height: int) -> bytes:
    """A little-endian TIFF (as Pillow writes them) with ImageWidth, ImageLength and RowsPerStrip rewritten."""
    data = bytearray(tiff)
    ifd = struct.unpack("<I", data[4:8])[0]
    for k in range(struct.unpack("<H", data[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * k
        tag, kind = struct.unpack("<HH", data[entry:entry + 4])
        value = {256: width, 257: height, 278: height}.get(tag)
        if value is not None:
            data[entry + 8:entry + 12] = struct.pack("<H", value).ljust(4, b"\0") if kind == 3 else struct.pack("<I", value)
    return bytes(data)


def tiff_declaring(width: int, height: int, compression: str = "tiff_deflate") -> bytes:
    """A real 64x64 compressed TIFF whose header claims width x height: its one strip holds 64x64 pixels' worth."""
    return with_tiff_size(encode(Image.fromarray(gradient(64, 64)), "TIFF", compression=compression), width, height)


def tiff_damaged(compression: str = "tiff_deflate") -> bytes:
    """A 64x64 compressed TIFF whose strip is the right size but not a stream of its codec."""
    data = bytearray(encode(Image.fromarray(gradient(64, 64)), "TIFF", compression=compression))
    image = Image.open(io.BytesIO(bytes(data)))
    offset, count = image.tag_v2[273][0], image.tag_v2[279][0]
    data[offset:offset + count] = bytes((i * 37 + 11) % 256 for i in range(count))
    return bytes(data)


def png_with_text_bomb(megabytes: int = 2) -> bytes:
    """A small valid PNG with a zTXt chunk that inflates to `megabytes` MiB of text (Pillow stops at 1 MiB)."""
    text = b"Comment\0\0" + zlib.compress(b" " * (megabytes << 20), 9)
    plain = png()
    return plain[:33] + _png_chunk(b"zTXt", text) + plain[33:]


def png_exif_after_pixels(orientation: int = 6, width: int = 64, height: int = 48) -> bytes:
    """A PNG whose eXIf chunk (Orientation) comes after its image data, as some editors write it."""
    plain = png(Image.fromarray(gradient(width, height)))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return plain[:-12] + _png_chunk(b"eXIf", exif.tobytes()[6:]) + plain[-12:]

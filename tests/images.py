"""Synthetic test images, drawn by the tests themselves: awkward formats, broken files, crafted headers.

Every function returns bytes. Nothing here allocates the pixels of the huge images: their headers are written by
hand (PNG chunks, JPEG markers) so that only the server's header check ever sees the declared size.
"""

from __future__ import annotations

import functools
import io
import pathlib
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

# --- pixels ---------------------------------------------------------------------------------------------------------


def gradient(width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """An RGB uint8 picture with no face in it (smooth colours plus a little noise, so it is not trivial)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) * 127 // max(1, width + height)], -1)
    rgb = rgb + rng.integers(0, 16, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def jpeg(rgb: np.ndarray | Image.Image | None = None, exif: Image.Exif | bytes | None = None, mode: str = "RGB",
         quality: int = 90) -> bytes:
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(gradient() if rgb is None else rgb)
    image = image.convert(mode)
    params = {"quality": quality}
    if exif is not None:
        params["exif"] = exif if isinstance(exif, bytes) else exif.tobytes()
    return encode(image, "JPEG", **params)


def png(image: Image.Image | None = None, **params) -> bytes:
    return encode(image if image is not None else Image.fromarray(gradient()), "PNG", **params)


def png16() -> bytes:
    """A 16-bit-per-channel colour PNG (Pillow cannot write one; OpenCV can)."""
    array = gradient().astype(np.uint16) * 257
    ok, buf = cv2.imencode(".png", array[:, :, ::-1])
    assert ok
    return buf.tobytes()


def animated_gif(frames: int = 3) -> bytes:
    images = [Image.fromarray(gradient(seed=i)).convert("P") for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)


def webp() -> bytes:
    return encode(Image.fromarray(gradient()), "WEBP", quality=80)


# --- EXIF -----------------------------------------------------------------------------------------------------------

ORIENTATION = 0x0112
MAKE, MODEL = 0x010F, 0x0110
GPS_IFD = 0x8825

# The Pillow transpose that turns an upright picture into what a camera stores with this orientation tag
# (the inverse of imaging.apply_orientation).
_STORED_FROM_UPRIGHT = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # stored rotated counter-clockwise; the viewer turns it clockwise
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def oriented_jpeg(upright: Image.Image, orientation: int) -> bytes:
    """A JPEG whose pixels are stored as a camera with this orientation would store them; upright is `upright`."""
    step = _STORED_FROM_UPRIGHT[orientation]
    stored = upright if step is None else upright.transpose(step)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return jpeg(stored, exif=exif)


def gps_exif(latitude: tuple, lat_ref: str, longitude: tuple, lon_ref: str) -> Image.Exif:
    exif = Image.Exif()
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: lat_ref, 2: latitude, 3: lon_ref, 4: longitude})
    return exif


def _app1(payload: bytes) -> bytes:
    assert len(payload) + 2 <= 0xFFFF
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_app1(jpeg_bytes: bytes, payload: bytes) -> bytes:
    """The JPEG with an APP1 segment holding `payload` right after SOI (any EXIF Pillow wrote is kept after it)."""
    assert jpeg_bytes[:2] == b"\xff\xd8"
    return jpeg_bytes[:2] + _app1(payload) + jpeg_bytes[2:]


def tiff_ifd(entries: list[tuple[int, int, int, bytes]], big_endian: bool = False) -> bytes:
    """A raw TIFF header + one IFD; entries are (tag, type, count, 4-byte value or offset field)."""
    e = ">" if big_endian else "<"
    out = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "I", 8) + struct.pack(e + "H", len(entries))
    for tag, typ, count, value in entries:
        out += struct.pack(e + "HHI", tag, typ, count) + value.ljust(4, b"\x00")[:4]
    return out + struct.pack(e + "I", 0)


def broken_exif_payloads() -> dict[str, bytes]:
    """APP1 payloads a careless reader trips over."""
    huge_count = tiff_ifd([(MAKE, 2, 0x7FFFFFFF, struct.pack("<I", 8)), (ORIENTATION, 3, 1, struct.pack("<H", 6))])
    loop = tiff_ifd([(0x8769, 4, 1, struct.pack("<I", 8))])  # the Exif IFD points back at IFD0
    many = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0xFFFF) + bytes(8000)
    return {
        "garbage": b"Exif\x00\x00" + bytes(range(256)) * 4,
        "bad-byte-order": b"Exif\x00\x00XX*\x00" + bytes(64),
        "ifd-offset-past-end": b"Exif\x00\x00II*\x00" + struct.pack("<I", 0x7FFFFFF0),
        "huge-count": b"Exif\x00\x00" + huge_count,
        "ifd-loop": b"Exif\x00\x00" + loop,
        "65k-entries-claimed": b"Exif\x00\x00" + many,
        "max-size-block": b"Exif\x00\x00" + tiff_ifd([(ORIENTATION, 3, 1, struct.pack("<H", 3))]) + b"\xab" * 65000,
        "bad-orientation-type": b"Exif\x00\x00" + tiff_ifd([(ORIENTATION, 2, 4, b"six\x00")]),
        "orientation-99": b"Exif\x00\x00" + tiff_ifd([(ORIENTATION, 3, 1, struct.pack("<H", 99))]),
    }


def non_utf8_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE] = b"Can\xffon \xfe\x80\x00 \xc3"
    exif[MODEL] = "Mod\u00e9l \udcff".encode("utf-8", "surrogateescape")
    exif[0x010E] = b"\x80\x81\x82 description \xe9\xe8"  # ImageDescription, Latin-1
    exif[0x0132] = b"2021:13:45 99:99:99"  # DateTime that is not a date
    return exif


# --- crafted headers: huge declared sizes, nothing allocated ---------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int, bit_depth: int = 8, colour: int = 2, idat: bytes | None = None) -> bytes:
    """A PNG with a valid IHDR of width x height, a tiny IDAT and IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    idat = idat if idat is not None else zlib.compress(bytes(1024))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF0 frame header is rewritten to claim width x height (up to 65535)."""
    data = bytearray(jpeg(gradient(16, 16)))
    sof = jpeg_segments(bytes(data))[0xC0]
    assert sof > 0
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@functools.lru_cache(maxsize=None)
def png_bomb(side: int = 50_000) -> bytes:
    """A genuine decompression bomb: a side x side 1-bit greyscale PNG of zeros (~300 kB; 7.5 GB as RGB)."""
    row = bytes(1 + -(-side // 8))  # filter byte + packed bits
    z = zlib.compressobj(9)
    parts = []
    block = row * 1000
    for _ in range(side // 1000):
        parts.append(z.compress(block))
    parts.append(z.compress(row * (side % 1000)))
    parts.append(z.flush())
    return png_declaring(side, side, bit_depth=1, colour=0, idat=b"".join(parts))


def heic_header() -> bytes:
    """The start of an HEIC file: an ftyp box with brand heic (all we need to be recognised)."""
    ftyp = b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    return struct.pack(">I", len(ftyp) + 4) + ftyp + bytes(64)


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><circle cx="50" cy="50" r="40"/></svg>\n'
HTML = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not found</body></html>\n"
TEXT = b"This is not an image, it is a plain text file.\n" * 3


# --- variations of real bytes ----------------------------------------------------------------------------------------


def truncations(data: bytes, fractions=(0.02, 0.3, 0.7, 0.98)) -> dict[str, bytes]:
    out = {f"{int(f * 100)}pct": data[:max(1, int(len(data) * f))] for f in fractions}
    out["minus-2-bytes"] = data[:-2]
    return out


def jpeg_segments(data: bytes) -> dict[int, int]:
    """Offset of the first segment of each marker of the main image (walking the segments, so that the EXIF
    thumbnail's markers inside APP1 are skipped), up to and including SOS."""
    offsets, i = {}, 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        offsets.setdefault(marker, i)
        if marker == 0xDA:
            break
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return offsets


def corrupt_jpeg_markers(data: bytes) -> dict[str, bytes]:
    """JPEGs with one marker segment of the main image damaged."""
    out = {}
    seg = jpeg_segments(data)
    sof = seg[0xC0] if 0xC0 in seg else seg[0xC2]
    d = bytearray(data)
    d[sof + 5:sof + 9] = b"\x00\x00\x00\x00"  # 0x0 frame
    out["sof-zero-size"] = bytes(d)
    d = bytearray(data)
    d[sof + 9] = 0  # zero components
    out["sof-zero-components"] = bytes(d)
    dht = seg[0xC4]
    d = bytearray(data)
    d[dht + 2:dht + 4] = b"\xff\xff"  # segment length running past the end
    out["dht-length-too-long"] = bytes(d)
    d = bytearray(data)
    d[dht + 5:dht + 21] = b"\xff" * 16  # impossible Huffman code counts
    out["dht-bad-counts"] = bytes(d)
    sos = seg[0xDA]
    middle = sos + (len(data) - sos) // 2
    out["eoi-in-scan"] = data[:middle] + b"\xff\xd9" + data[middle + 2:]
    out["rst-markers-in-scan"] = data[:middle] + b"\xff\xd3\xff\xd5" * 8 + data[middle + 16:]
    dqt = seg[0xDB]
    d = bytearray(data)
    d[dqt + 5:dqt + 69] = bytes(64)  # all-zero quantisation table
    out["dqt-zeros"] = bytes(d)
    out["no-sos"] = data[:sos] + b"\xff\xd9"
    out["double-soi"] = b"\xff\xd8" + data
    return out


def face_grid(face: Image.Image, columns: int, rows: int, side: int = 150) -> bytes:
    """A JPEG of the same face tiled columns x rows times, each tile side x side."""
    tile = face.convert("RGB").resize((side, side))
    sheet = Image.new("RGB", (columns * side, rows * side), (255, 255, 255))
    for r in range(rows):
        for c in range(columns):
            sheet.paste(tile, (c * side, r * side))
    return jpeg(sheet, quality=85)


def face_crop(path: pathlib.Path, margin: float = 0.5) -> Image.Image:
    """The largest face of a photo (OpenCV's Haar cascade, found here), with some margin, as a Pillow image."""
    image = Image.open(path).convert("RGB")
    grey = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    boxes = cascade.detectMultiScale(grey, 1.1, 5, minSize=(40, 40))
    if len(boxes) == 0:
        return image
    x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
    mx, my = int(w * margin), int(h * margin)
    return image.crop((max(0, x - mx), max(0, y - my), min(image.width, x + w + mx), min(image.height, y + h + my)))

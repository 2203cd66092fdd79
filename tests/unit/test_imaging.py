"""Format sniffing, limits before decoding, upright decoding, broken input."""

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from pgfaces import imaging
from pgfaces.errors import ImageError, LimitError
from pgfaces.metadata import read_metadata
from pgfaces.records import Limits


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def gradient(width=64, height=48) -> Image.Image:
    """An asymmetric picture, so every rotation and flip looks different."""
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.dstack([x, y, 255 - x]))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height; its pixel data would never be read."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + png_chunk(b"IEND", b""))


@pytest.mark.parametrize("data, fmt", [
    (b"\xff\xd8\xff\xe0", "jpeg"), (b"\x89PNG\r\n\x1a\nxxxx", "png"), (b"GIF89a..", "gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"), (b"BM\x00\x00", "bmp"), (b"II*\x00", "tiff"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00", "heic"), (b"\x00\x00\x00\x18ftypavif\x00\x00", "avif"),
    (b"<!DOCTYPE html><html>", "html"), (b'<?xml version="1.0"?><svg xmlns=', "svg"), (b"hello\n", "text"),
    (b"\x00\x01\x02\x03", "unknown"),
])
def test_sniff_format(data, fmt):
    assert imaging.sniff_format(data) == fmt


@pytest.mark.parametrize("data, reason", [
    (b"", "empty image"), (None, "empty image"), (b"<html><body>404</body></html>", "looks like HTML"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC images are not supported"),
])
def test_refused_before_decoding(data, reason):
    with pytest.raises(ImageError, match=reason):
        imaging.read_header(data)


def test_decompression_bomb_is_refused_from_the_header():
    data = bomb_png(50_000, 50_000)
    with pytest.raises(LimitError, match=r"2500000000 pixels.*limit of 100000000"):
        imaging.read_header(data)
    with pytest.raises(LimitError):
        imaging.decode_upright(data)


def test_byte_limit():
    with pytest.raises(LimitError, match="limit of 100 bytes"):
        imaging.read_header(encode(gradient(), "PNG"), Limits(max_bytes=100))


def test_truncated_jpeg_and_png():
    jpeg = encode(gradient(256, 256), "JPEG")
    with pytest.raises(ImageError, match="truncated JPEG"):
        imaging.decode_upright(jpeg[: len(jpeg) // 2])
    png = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), np.uint8)), "PNG")
    with pytest.raises(ImageError, match="PNG"):
        imaging.decode_upright(png[: len(png) // 2])


def test_jpeg_with_padding_after_end_marker_is_fine():
    jpeg = encode(gradient(), "JPEG") + b"\x00" * 100
    assert imaging.decode_upright(jpeg).shape == (48, 64, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(orientation):
    picture = gradient()
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(picture, "PNG", exif=exif)  # lossless, so pixels compare exactly
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))[:, :, ::-1]
    upright = imaging.decode_upright(data)
    assert upright.shape == expected.shape
    assert np.array_equal(upright, expected)


@pytest.mark.parametrize("mode, fmt", [
    ("L", "PNG"), ("RGBA", "PNG"), ("I;16", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("RGB", "TIFF"),
    ("RGB", "BMP"), ("RGB", "WEBP"), ("P", "GIF"),
])
def test_modes_and_formats_decode_to_bgr(mode, fmt):
    picture = gradient()
    picture = picture.convert("I;16") if mode == "I;16" else picture.convert(mode)
    upright = imaging.decode_upright(encode(picture, fmt))
    assert upright.shape == (48, 64, 3) and upright.dtype == np.uint8


def test_animated_gif_gives_first_frame():
    red, blue = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue], duration=100)
    pixel = imaging.decode_upright(data)[16, 16]
    assert pixel[2] > 200 and pixel[0] < 50  # BGR: red


@pytest.mark.parametrize("reduce", [1, 2, 4, 8])
def test_reduced_jpeg_decode(reduce):
    data = encode(gradient(800, 600), "JPEG")
    assert imaging.decode_upright(data, reduce=reduce).shape == (600 // reduce, 800 // reduce, 3)


def test_reduce_factor_keeps_the_longest_side_above_the_target():
    assert imaging.reduce_factor_for(4000, 3000, 1600) == 2
    assert imaging.reduce_factor_for(4000, 3000, 600) == 4
    assert imaging.reduce_factor_for(4000, 3000, None) == 1
    assert imaging.reduce_factor_for(1000, 800, 1600) == 1


def test_broken_files_raise_image_error_with_reason(faces_dir):
    reasons = {"empty.png": "looks like text", "truncated.jpg": "truncated JPEG", "corrupted.png": "corrupt PNG"}
    files = sorted((faces_dir / "party" / "broken").iterdir())
    assert files
    for path in files:
        with pytest.raises(ImageError) as caught:
            imaging.decode_upright(path.read_bytes())
        expected = next(r for suffix, r in reasons.items() if path.name.endswith(suffix))
        assert expected in str(caught.value)


def test_party_photo_with_orientation_6_decodes_upright(faces_dir, party_manifest):
    path = faces_dir / "party" / "parties" / "party_000.jpg"
    assert party_manifest["parties/party_000.jpg"]["exif_orientation"] == "6"
    data = path.read_bytes()
    fmt, stored_w, stored_h = imaging.read_header(data)
    meta = read_metadata(data)
    assert (meta.width, meta.height) == (stored_h, stored_w)
    small = imaging.decode_upright(data, reduce=8)
    assert small.shape[:2] == (-(-meta.height // 8), -(-meta.width // 8))
    # cv2 would apply the orientation itself if we let it; the result must match Pillow's reading.
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_COLOR_8)
    assert np.array_equal(small, expected)

"""pgfaces.complete: a file that declares more than it holds is refused before any decode; every legitimate encoding
of a picture passes (issue 20, N6 and N12)."""

from __future__ import annotations

import io
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import attack_images as ai  # noqa: E402
import images as im  # noqa: E402

from pgfaces import imaging, metadata  # noqa: E402
from pgfaces.errors import ImageError, reason_of  # noqa: E402


def picture(width=300, height=200) -> Image.Image:
    rgb = im.gradient(width, height)
    rgb[:, : width // 2] = 128  # half flat: compresses far, as skies and walls do
    return Image.fromarray(rgb)


def never_decoded(monkeypatch):
    """Fails the test if any decoder is asked for pixels."""
    def refuse(*args, **kwargs):
        raise AssertionError("a decoder was reached")
    monkeypatch.setattr(imaging, "_decode_with_cv2", refuse)
    monkeypatch.setattr(imaging, "_decode_with_pillow", refuse)
    monkeypatch.setattr(Image.Image, "load", refuse)


AMPLIFIERS = {
    "png-one-row": (ai.png_one_row(), "truncated PNG (52 bytes of pixel data cannot hold 10000x10000 pixels)"),
    "png-half-rows": (im.png_declaring(300, 300, idat=zlib.compress(np.random.default_rng(1).bytes(150 * 901))),
                      "truncated PNG (its pixel data ends at 50% of the image)"),
    "png-no-pixel-data": (im.png_declaring(100, 100, idat=b""), "truncated PNG (no pixel data)"),
    "jpeg-tiny-scan": (im.jpeg_declaring(10000, 10000), "truncated JPEG"),
    "jpeg-no-scan": (im.corrupt_jpeg_markers(im.jpeg())["no-sos"], "truncated JPEG (no image data)"),
    "tiff-deflate": (ai.tiff_declaring(10000, 10000), "truncated TIFF"),
    "tiff-lzw": (ai.tiff_declaring(10000, 10000, "tiff_lzw"), "truncated TIFF"),
    "tiff-packbits": (ai.tiff_declaring(10000, 10000, "packbits"), "truncated TIFF"),
}


@pytest.mark.parametrize("name", sorted(AMPLIFIERS))
def test_a_file_declaring_more_than_it_holds_is_refused_before_decoding(monkeypatch, name):
    data, reason = AMPLIFIERS[name]
    never_decoded(monkeypatch)
    with pytest.raises(ImageError) as failure:
        imaging.verify(data)
    assert str(failure.value).startswith(reason), failure.value
    with pytest.raises(ImageError):
        imaging.decode_upright(data)


def test_the_png_check_inflates_in_bounded_pieces(monkeypatch):
    """A genuine bomb within the pixel limit is inflated a MiB at a time and nothing is kept."""
    sizes = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self):
            self.inner = real()

        def decompress(self, data, max_length=0):
            assert max_length, "inflated without a bound"
            out = self.inner.decompress(data, max_length)
            sizes.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    imaging.verify(im.png_bomb(9000))  # 9000x9000 1-bit zeros: ~10 MB of rows from ~10 kB
    assert max(sizes) <= 1 << 20 and sum(sizes) >= 9000 * (1 + 9000 // 8)


ENCODINGS = {
    "png": {}, "png-interlaced": {"interlace": 1}, "png-palette": {"mode": "P"}, "png-1-bit": {"mode": "1"},
    "png-grey-alpha": {"mode": "LA"}, "png-rgba": {"mode": "RGBA"},
    "jpeg": {}, "jpeg-progressive": {"progressive": True}, "jpeg-grey": {"mode": "L"}, "jpeg-cmyk": {"mode": "CMYK"},
    "jpeg-optimized": {"optimize": True, "quality": 5},
    "tiff": {}, "tiff-deflate": {"compression": "tiff_deflate"}, "tiff-lzw": {"compression": "tiff_lzw"},
    "tiff-packbits": {"compression": "packbits"}, "tiff-jpeg": {"compression": "jpeg"},
    "webp": {"quality": 80}, "webp-lossless": {"lossless": True}, "gif": {"mode": "P"}, "bmp": {},
}


@pytest.mark.parametrize("name", sorted(ENCODINGS))
@pytest.mark.parametrize("flat", [False, True], ids=["photo", "one-colour"])
def test_every_complete_encoding_passes(name, flat):
    params = dict(ENCODINGS[name])
    mode = params.pop("mode", "RGB")
    pic = Image.new("RGB", (1200, 900), (90, 140, 200)) if flat else picture(1200, 900)
    data = im.encode(pic.convert(mode), name.split("-")[0].upper(), **params)
    fmt, width, height = imaging.verify(data)
    assert (width, height) == (1200, 900)
    assert imaging.decode_upright(data, verified=True).shape == (900, 1200, 3)


def test_png_exif_after_the_pixels_is_read_without_decoding_them(monkeypatch):
    data = ai.png_exif_after_pixels(orientation=6)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("the pixels were decoded for EXIF"))
    meta = metadata.read_metadata(data)
    assert (meta.orientation, meta.width, meta.height) == (6, 48, 64)


def test_a_truncated_png_s_exif_is_read_without_a_traceback(caplog, capsys):
    meta = metadata.read_metadata(im.png(picture())[:5000])
    assert (meta.width, meta.height) == (300, 200)
    assert "Traceback" not in caplog.text + capsys.readouterr().err


@pytest.mark.parametrize("data, reason", [
    (ai.png_with_text_bomb(), "a compressed text chunk expands to more than 1 MiB"),
    (ai.tiff_damaged("jpeg"), "corrupt TIFF (its image data is damaged)"),
])
def test_library_messages_become_plain_reasons(data, reason):
    with pytest.raises(ImageError) as failure:
        imaging.decode_upright(data)
    assert reason in str(failure.value)
    assert "PngImagePlugin" not in str(failure.value) and "decoder error" not in str(failure.value)


@pytest.mark.parametrize("text, reason", [
    ("Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK",
     "a compressed text chunk expands to more than 1 MiB"),
    ("decoder error -2", "its image data is damaged"),
    ("An error happened: LocalEntryNotFoundError", "its data is damaged"),
    ("cannot identify image file <_io.BytesIO object at 0x7f00>", "its data is damaged"),
    ("image has 3 channels", "image has 3 channels"),
])
def test_reason_of(text, reason):
    assert reason_of(OSError(text)) == reason


def test_a_legitimate_bomb_within_the_limit_still_decodes():
    data = im.png_bomb(2000)
    assert imaging.decode_upright(data).shape == (2000, 2000, 3)
    assert np.asarray(Image.open(io.BytesIO(data))).sum() == 0


@pytest.mark.parametrize("fmt", ["GIF", "BMP"])
def test_gif_and_bmp_decoders_refuse_missing_data_themselves(fmt):
    pic = picture(2000, 1500)
    data = im.encode(pic.convert("P") if fmt == "GIF" else pic, fmt)
    with pytest.raises(ImageError, match="the file ends before its image data does"):
        imaging.decode_upright(data[: len(data) // 3])

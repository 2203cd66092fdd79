"""EXIF read best effort: the right values from a well-formed file, nothing raised from a broken one."""

import datetime as dt
import io
import json

from PIL import Image, TiffImagePlugin

from pgfaces.metadata import camera_of, read_metadata


def jpeg_with_exif(exif: Image.Exif, size=(80, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def rational(value) -> TiffImagePlugin.IFDRational:
    return TiffImagePlugin.IFDRational(value)


def test_exif_fields_come_back():
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS 5D Mark IV"
    exif[0x0112] = 6
    exif[0x0132] = "2020:01:01 00:00:00"
    exif.get_ifd(0x8769)[0x9003] = "2024:03:18 17:33:27"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (rational(40), rational(41), rational(58.02))
    gps[3], gps[4] = "W", (rational(74), rational(0), rational(19.9))
    meta = read_metadata(jpeg_with_exif(exif))
    assert (meta.width, meta.height) == (40, 80)  # orientation 6: upright is the stored picture turned
    assert meta.orientation == 6
    assert meta.taken_at == dt.datetime(2024, 3, 18, 17, 33, 27)
    assert abs(meta.latitude - 40.699450) < 1e-5
    assert abs(meta.longitude - -74.005528) < 1e-5
    assert meta.camera == "Canon EOS 5D Mark IV"
    assert meta.exif["Make"] == "Canon" and meta.exif["GPSInfo"]["GPSLatitudeRef"] == "N"
    json.dumps(meta.exif)


def test_datetime_fallback_bad_values_and_binary_tags():
    exif = Image.Exif()
    exif[0x0132] = "2019:05:06 07:08:09"
    exif[0x0112] = 42  # not an orientation
    exif[0x010F] = b"Ma\xffker\x00\x00"  # not UTF-8, NUL padded
    exif.get_ifd(0x8769)[0x927C] = bytes(range(256)) * 8  # MakerNote
    exif.get_ifd(0x8769)[0x9003] = "not a date"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (rational(140), rational(0), rational(0))  # latitude out of range
    gps[3], gps[4] = "E", (rational(10), rational(0), rational(0))
    meta = read_metadata(jpeg_with_exif(exif))
    assert meta.orientation == 1 and (meta.width, meta.height) == (80, 40)
    assert meta.taken_at == dt.datetime(2019, 5, 6, 7, 8, 9)
    assert meta.latitude is None and meta.longitude is None
    # Pillow reads ASCII tags as Latin-1, our own bytes path replaces bad UTF-8: either way no NULs, no error.
    assert meta.camera in ("Ma\ufffdker", "Ma\xffker")
    assert "MakerNote" not in meta.exif
    json.dumps(meta.exif)


def test_corrupt_exif_block_does_not_raise():
    good = jpeg_with_exif(Image.Exif())
    # An APP1 Exif segment whose TIFF header points far outside the block.
    payload = b"Exif\x00\x00" + b"II*\x00" + b"\xff\xff\xff\x7f" + b"\x00" * 32
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    data = good[:2] + app1 + good[2:]
    meta = read_metadata(data)
    assert (meta.width, meta.height) == (80, 40)
    assert meta.taken_at is None and meta.orientation == 1


def test_no_exif():
    out = io.BytesIO()
    Image.new("L", (5, 7)).save(out, "PNG")
    meta = read_metadata(out.getvalue())
    assert (meta.width, meta.height, meta.exif, meta.camera) == (5, 7, {}, None)


def test_camera_names():
    assert camera_of("Canon", "Canon EOS R5") == "Canon EOS R5"
    assert camera_of("NIKON CORPORATION", "NIKON D850") == "NIKON D850"
    assert camera_of("Apple", "iPhone 12") == "Apple iPhone 12"
    assert camera_of(None, " X100V ") == "X100V"


def test_party_photo_metadata_matches_manifest(faces_dir, party_manifest):
    for name in ("parties/party_000.jpg", "parties/party_024.jpg"):
        row = party_manifest[name]
        meta = read_metadata((faces_dir / "party" / name).read_bytes())
        assert meta.taken_at == dt.datetime.fromisoformat(row["taken_at"])
        assert abs(meta.latitude - float(row["latitude"])) < 1e-4
        assert abs(meta.longitude - float(row["longitude"])) < 1e-4
        assert meta.orientation == int(row["exif_orientation"])

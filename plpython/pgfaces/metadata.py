"""What a photo says about itself (EXIF), read best effort: broken metadata never fails an upload."""

from __future__ import annotations

import datetime as dt
import io
import logging
import math

from PIL import ExifTags, Image, UnidentifiedImageError

from .complete import png_exif
from .errors import ImageError, reason_of
from .records import PhotoMeta

log = logging.getLogger(__name__)

# We check the pixel count ourselves (imaging.read_header, against Limits.max_pixels) before decoding. Pillow's own
# guard would raise its own error at an unrelated threshold, and its check happens in Image.open too.
Image.MAX_IMAGE_PIXELS = None

MAX_STRING = 256  # characters kept of any EXIF string
MAX_BLOB = 64  # bytes values longer than this that are not text are dropped
MAX_TAGS = 200  # per IFD
MAX_LIST = 32  # items kept of any EXIF array

# Binary or bulky tags with nothing a user searches for.
DROPPED_TAGS = {
    "MakerNote", "PrintImageMatching", "ComponentsConfiguration", "JPEGTables", "StripOffsets",
    "StripByteCounts", "TileOffsets", "TileByteCounts", "XMLPacket", "ImageResources", "IPTCNAA",
    "InterColorProfile", "ICCProfile", "ExifOffset", "GPSInfo", "InteropOffset", "CFAPattern",
    "SpatialFrequencyResponse", "OECF", "DeviceSettingDescription", "ExifInteroperabilityOffset",
}

_TAG = {name: code for code, name in ExifTags.TAGS.items()}
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
# Errors Pillow's EXIF reader raises on malformed data. Anything else is a bug and propagates.
_EXIF_ERRORS = (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, ZeroDivisionError,
                OverflowError, AttributeError, EOFError)
_EXIF_ERRORS = _EXIF_ERRORS + (__import__("struct").error,)


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"not a readable image ({reason_of(exc)})") from exc


def _exif(im: Image.Image, data: bytes) -> Image.Exif | None:
    try:
        if im.format == "PNG" and "exif" not in im.info:
            # Pillow's PNG getexif decodes every pixel to look for an eXIf chunk after the image data: walk the
            # chunks instead (a truncated or huge PNG is never decoded here).
            found = png_exif(data)
            if found is not None:
                im.info["exif"] = b"Exif\x00\x00" + found
            return Image.Image.getexif(im)
        return im.getexif()
    except _EXIF_ERRORS as exc:
        log.debug("unreadable EXIF block ignored: %s", reason_of(exc))  # best effort: never a traceback
        return None


def _ifd(exif: Image.Exif, tag: int) -> dict:
    try:
        return dict(exif.get_ifd(tag))
    except _EXIF_ERRORS as exc:
        log.debug("unreadable EXIF IFD %#x ignored: %s", tag, reason_of(exc))
        return {}


def orientation_of(value) -> int:
    """The Orientation tag's value when it is a number of 1..8, else 1. A tag of another type (ASCII "6", a
    rational) is ignored, as Pillow's own exif_transpose ignores it: only a numeric tag turns the picture."""
    if type(value) is not int or not 1 <= value <= 8:
        return 1
    return value


def read_orientation(data: bytes) -> int:
    """The EXIF Orientation tag (1..8; 1 when missing or invalid)."""
    with _open(data) as im:
        exif = _exif(im, data)
        return orientation_of(exif.get(_TAG["Orientation"])) if exif is not None else 1


def text_of(value) -> str | None:
    """Lenient text: bytes are decoded as UTF-8 with replacement, NULs and padding stripped, length capped."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value[:MAX_STRING] or None


def json_safe(value):
    """A JSON-representable version of an EXIF value, or None to drop it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return text_of(value)
    if isinstance(value, bytes):
        # Short byte strings are often text (versions, refs); long ones are blobs (thumbnails, maker data).
        printable = sum(32 <= b < 127 or b in (9, 10, 13, 0) for b in value)
        if len(value) > MAX_BLOB and printable < 0.9 * len(value):
            return None
        return text_of(value)
    if isinstance(value, (tuple, list)):
        items = [json_safe(v) for v in value[:MAX_LIST]]
        return [v for v in items if v is not None] or None
    if isinstance(value, dict):
        return None  # nested IFDs are added explicitly by name
    # IFDRational and other number-likes
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _named(tags: dict, names: dict) -> dict:
    out = {}
    for code, value in list(tags.items())[:MAX_TAGS]:
        name = names.get(code, f"Tag{code:#06x}")
        if name in DROPPED_TAGS:
            continue
        safe = json_safe(value)
        if safe is not None:
            out[name] = safe
    return out


def parse_datetime(value) -> dt.datetime | None:
    text = text_of(value)
    if not text:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return dt.datetime.strptime(text[:19], fmt)
        except ValueError:
            continue
    return None


def _degrees(value, ref, positive: str, negative: str, limit: float) -> float | None:
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    degrees = d + m / 60 + s / 3600
    ref = text_of(ref)
    if ref:
        ref = ref.upper()[:1]
        if ref == negative:
            degrees = -degrees
        elif ref != positive:
            return None
    if not math.isfinite(degrees) or abs(degrees) > limit:
        return None
    return round(degrees, 7)


def camera_of(make, model) -> str | None:
    make, model = text_of(make), text_of(model)
    if make and model:
        # Many cameras repeat the maker in the model ("Canon" + "Canon EOS 5D").
        if model.lower().startswith(make.lower()) or make.lower().split()[0] in model.lower().split():
            return model
        return f"{make} {model}"
    return make or model


def read_metadata(data: bytes) -> PhotoMeta:
    """Size of the upright picture plus what EXIF says. Raises ImageError only when there is no image."""
    with _open(data) as im:
        width, height = im.size
        exif = _exif(im, data)
    if exif is None:
        return PhotoMeta(width=width, height=height)

    base = dict(exif.items())
    exif_ifd = _ifd(exif, EXIF_IFD)
    gps = _ifd(exif, GPS_IFD)

    orientation = orientation_of(base.get(_TAG["Orientation"]))
    if orientation >= 5:
        width, height = height, width

    taken_at = parse_datetime(exif_ifd.get(_TAG["DateTimeOriginal"])) or parse_datetime(
        base.get(_TAG["DateTime"])
    )
    latitude = longitude = None
    if gps:
        latitude = _degrees(gps.get(2), gps.get(1), "N", "S", 90)
        longitude = _degrees(gps.get(4), gps.get(3), "E", "W", 180)
        if latitude is None or longitude is None:
            latitude = longitude = None

    tags = _named(base, ExifTags.TAGS)
    tags.update(_named(exif_ifd, ExifTags.TAGS))
    gps_tags = _named(gps, ExifTags.GPSTAGS)
    if gps_tags:
        tags["GPSInfo"] = gps_tags

    return PhotoMeta(
        width=width,
        height=height,
        taken_at=taken_at,
        latitude=latitude,
        longitude=longitude,
        camera=camera_of(base.get(_TAG["Make"]), base.get(_TAG["Model"])),
        orientation=orientation,
        exif=tags,
    )

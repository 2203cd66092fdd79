"""Errors raised on purpose, and the SQLSTATE each one reaches the user with. Their text is the SQL error message.

A message about a photo starts with the photo's name: `with_subject` is the one place that adds it. What a library
says goes through `reason_of`, the one place that turns it into a user's words.
"""

import re


class PgfacesError(Exception):
    """Base class: a problem with the input or the setup that the user can act on."""

    sqlstate = "22000"  # data_exception


class ImageError(PgfacesError):
    """The bytes are not an image we can read (empty, truncated, unknown format, corrupt)."""


class LimitError(PgfacesError):
    """The input is readable but exceeds a configured limit (bytes, pixels, faces)."""


class NoFaceError(PgfacesError, ValueError):
    """A search reference in which no face was found."""


class ModelError(PgfacesError):
    """A model cannot be loaded or run (missing file, no network for a hub model)."""

    sqlstate = "58000"  # system_error: the server's setup, not the user's input


class ProfileError(PgfacesError):
    """A profile names an unknown detector or embedder, or has bad parameters."""

    sqlstate = "22023"  # invalid_parameter_value


class SettingError(PgfacesError):
    """A pgfaces.* setting holds a value that is not allowed."""

    sqlstate = "22023"


def with_subject(subject: str, error: PgfacesError) -> PgfacesError:
    """The same error, its message prefixed with what it is about ("party.jpg: ..."), once."""
    message = str(error)
    if message.startswith(f"{subject}: "):
        return error
    renamed = type(error)(f"{subject}: {message}")
    renamed.__cause__ = error
    return renamed


# What image libraries say, in the user's words: (a piece of the library's message, the reason we give).
_LIBRARY_REASONS = (
    ("MAX_TEXT_CHUNK", "a compressed text chunk expands to more than 1 MiB"),
    ("MAX_TEXT_MEMORY", "its text chunks expand to more than 64 MiB"),
    ("Too much memory used in text chunks", "its text chunks expand to more than 64 MiB"),
    ("image file is truncated", "the file ends before its image data does"),
    ("decoder error", "its image data is damaged"),
    ("broken data stream", "its image data is damaged"),
    ("buffer overrun", "its image data is damaged"),
    ("unrecognized data stream", "its image data is damaged"),
    ("codec configuration", "its image data is damaged"),
    ("out of memory", "it needs more memory than the server gives a decoder"),
)
# A message that names code (a class, a module's constant, a file, an object's address) is not for a user.
_CODE_WORDS = re.compile(r"[A-Za-z]+(Error|Exception)\b|\.py\b|\bat 0x|[A-Z][A-Za-z]+\.[A-Z_]{3,}|Traceback")


def reason_of(exc: BaseException, otherwise: str = "its data is damaged") -> str:
    """A library's exception (Pillow, OpenCV, zlib, huggingface_hub, ...) as a plain one-line reason: known
    messages mapped to plain words, any other that names code replaced by `otherwise`."""
    text = " ".join(str(exc).split())
    for piece, reason in _LIBRARY_REASONS:
        if piece.lower() in text.lower():
            return reason
    if not text or _CODE_WORDS.search(text):
        return otherwise
    return text[:200]


class OriginalError(PgfacesError):
    """A photo's original, kept outside the database (photos.uri), cannot be used: its message names the file."""

    sqlstate = "58030"  # io_error: the file is there but cannot be read


class OriginalMissing(OriginalError):
    """The file (or URL) a photo's uri names is gone."""

    sqlstate = "58P01"  # undefined_file


class OriginalChanged(OriginalError):
    """The file a photo's uri names holds other bytes than those its faces were found in (sha256 differs)."""

    sqlstate = "22000"


class OriginalRefused(OriginalError):
    """A uri outside what the administrator allows (pgfaces.originals_dirs, pgfaces.originals_urls)."""

    sqlstate = "42501"  # insufficient_privilege


class UriError(OriginalError):
    """A uri that is not an absolute path, file://, http(s):// or s3:// URI."""

    sqlstate = "22023"  # invalid_parameter_value


class NeedsClientWorker(OriginalError):
    """A URL original, which the server never fetches: client workers do."""

    sqlstate = "0A000"  # feature_not_supported

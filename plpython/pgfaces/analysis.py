"""The two jobs every path shares: image bytes -> a photo's row and faces, and reference image -> the face to search
with. The INSERT trigger (pgfaces.server), the client-side loader (pgfaces.client) and the queue's workers call
these, and keep only their own I/O; errors are pgfaces.errors types whose message names the file.
"""

from __future__ import annotations

import hashlib

from . import imaging, pipeline
from .errors import ImageError, NoFaceError, PgfacesError, with_subject
from .metadata import read_metadata
from .records import FaceRow, Limits, PhotoAnalysis, PhotoRow, Reference

REFERENCE = "reference image"


def _check_present(data: bytes | None) -> None:
    if data is None:
        raise ImageError("image is NULL")
    if not data:
        raise ImageError("image is empty (0 bytes)")


def sha256(data: bytes) -> str:
    """The photo's identity: the same bytes are stored once (photos.sha256 is unique)."""
    return hashlib.sha256(data).hexdigest()


def analyse_photo(data: bytes | None, filename: str, profiles: list[dict], limits: Limits = Limits(),
                  digest: str | None = None) -> PhotoAnalysis:
    """The photo's row (hash, upright size, EXIF) and its faces for each of `profiles` (none: metadata only).

    `digest` is the bytes' sha256 where the caller has it already (it checked for duplicates first)."""
    try:
        _check_present(data)
        imaging.verify(data, limits)  # every byte the header declares is there, before anything decodes
        meta = read_metadata(data)
        faces = [FaceRow(profile["name"], face) for profile in profiles
                 for face in pipeline.detect_and_embed(data, profile, limits, meta=meta)]
    except PgfacesError as exc:
        raise with_subject(filename, exc) from exc
    return PhotoAnalysis(filename, PhotoRow(digest or sha256(data), meta), faces)


def reference(data: bytes | None, profile: dict, limits: Limits = Limits()) -> Reference:
    """The largest face of a search reference, embedded; NoFaceError when it has none."""
    try:
        _check_present(data)
        imaging.verify(data, limits)  # before any model is loaded for it
        found = pipeline.reference_face(data, profile, limits, read_metadata(data))
    except PgfacesError as exc:
        raise with_subject(REFERENCE, exc) from exc
    if found is None:
        raise NoFaceError(f"no face found in the {REFERENCE}")
    return found

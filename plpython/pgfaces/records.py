"""Plain data that crosses the boundary between the analysis and the database: what a photo is, what was found."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np

from .quality import Quality


@dataclasses.dataclass(frozen=True)
class Limits:
    """Input bounds, checked before any native decoder sees the pixels (see pgfaces.settings)."""

    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 100_000_000
    max_faces: int = 500


@dataclasses.dataclass
class PhotoMeta:
    """What the photo says about itself. Width and height are of the upright picture."""

    width: int
    height: int
    taken_at: dt.datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    camera: str | None = None
    orientation: int = 1
    exif: dict = dataclasses.field(default_factory=dict)  # JSON-safe: str/int/float/list/dict only


@dataclasses.dataclass
class Face:
    """One detected face. The box is in upright, full-resolution pixel coordinates."""

    x: int
    y: int
    width: int
    height: int
    score: float | None
    embedding: np.ndarray  # float32, shape (dimensions,)
    thumbnail: bytes = b""  # small JPEG of the face
    quality: "Quality | None" = None  # how good the face is for telling who it is (pgfaces.quality)

    @property
    def area(self) -> int:
        return self.width * self.height


def vector_text(embedding) -> str:
    """pgvector's text form of a vector: '[0.1,-0.2,...]'."""
    return "[" + ",".join(repr(float(v)) for v in embedding) + "]"


# The columns of `faces` that an analysis fills, in the order FaceRow.values() gives them.
FACE_COLUMNS = ("profile", "x", "y", "width", "height", "score", "embedding", "thumbnail", "sharpness", "brightness",
                "yaw")
# The columns of `photos` derived from the bytes; the user's own values of the last five win (see PhotoRow).
PHOTO_COLUMNS = ("sha256", "width", "height", "taken_at", "latitude", "longitude", "camera", "exif")


@dataclasses.dataclass
class FaceRow:
    """A face as the `faces` table stores it: the profile that found it and the face."""

    profile: str
    face: Face

    def values(self) -> tuple:
        f, q = self.face, self.face.quality
        return (self.profile, int(f.x), int(f.y), int(f.width), int(f.height),
                None if f.score is None else float(f.score), vector_text(f.embedding), f.thumbnail or None,
                *((None, None, None) if q is None else (q.sharpness, q.brightness, q.yaw)))


@dataclasses.dataclass
class PhotoRow:
    """What `photos` stores about a photo beyond its name and bytes."""

    sha256: str
    meta: PhotoMeta

    def values(self) -> dict:
        m = self.meta
        return {
            "sha256": self.sha256,
            "width": m.width,
            "height": m.height,
            "taken_at": m.taken_at.isoformat() if m.taken_at else None,
            "latitude": m.latitude,
            "longitude": m.longitude,
            "camera": m.camera,
            "exif": json.dumps(m.exif) if m.exif else None,
        }


@dataclasses.dataclass
class PhotoAnalysis:
    """One photo analysed: its row and, for every profile it was analysed with, the faces found."""

    filename: str
    photo: PhotoRow
    faces: list[FaceRow]


@dataclasses.dataclass
class Reference:
    """The face a search starts from: the largest face of a reference image, and how many faces it has."""

    face: Face
    found: int

    def notice(self) -> str | None:
        """What to tell the user when the reference held more than one face."""
        if self.found <= 1:
            return None
        f = self.face
        return (f"{self.found} faces found in the reference image; using the largest "
                f"({f.width}x{f.height} at {f.x},{f.y})")

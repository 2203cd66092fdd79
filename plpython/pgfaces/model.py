"""Plain data that crosses the boundary between the pipeline and SQL."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np


@dataclasses.dataclass(frozen=True)
class Limits:
    """Input bounds, checked before any native decoder sees the pixels."""

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

    @property
    def area(self) -> int:
        return self.width * self.height


@dataclasses.dataclass
class Analysis:
    meta: PhotoMeta
    faces: list[Face]

"""How good a detected face is for telling who it is: measured once, when the face is found, from the picture.

A face recognition network returns a vector for anything it is shown; for a blurred, dark, tiny or turned face that
vector says little about the person, and such vectors lie near each other whoever they belong to. Grouping faces
into people (pgfaces.clustering) forms people only from faces good enough to be told apart; the others stay
searchable and may join a person they clearly belong to (README, "People", "Which faces are grouped").

Every measure is of the upright, full-resolution picture, so the same face gives the same values in every path.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from .boxes import Box

# The face region is looked at on a square of this many pixels: a large face is shrunk to it, a small one enlarged
# (and so blurred): sharpness then measures the detail the face really has, whatever its size.
SIDE = 64


@dataclasses.dataclass(frozen=True)
class Quality:
    """size: the box's shorter side in pixels; sharpness: detail in the face (variance of the Laplacian of the face
    at SIDE px over its contrast, 0 for a flat patch); brightness: the face's mean grey level (0-1); yaw: how far the
    nose sits beside the middle of the eyes, in eye distances (0 frontal, about 0.5 for a face turned sideways);
    score: the detector's confidence (None where it gives none)."""

    size: int
    sharpness: float
    brightness: float
    yaw: float | None
    score: float | None


def _region(image_bgr: np.ndarray, box: Box) -> np.ndarray:
    height, width = image_bgr.shape[:2]
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(width, box.x + box.w), min(height, box.y + box.h)
    crop = image_bgr[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    shrink = grey.shape[0] > SIDE and grey.shape[1] > SIDE
    return cv2.resize(grey, (SIDE, SIDE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _yaw(landmarks) -> float | None:
    """Nose offset from the eyes' middle along the eye line, in eye distances (5 landmarks: eyes, nose, mouth)."""
    if landmarks is None or len(landmarks) < 3:
        return None
    points = np.asarray(landmarks, dtype=np.float64)
    eye_a, eye_b, nose = points[0], points[1], points[2]
    axis = eye_b - eye_a
    distance = float(np.hypot(*axis))
    if distance <= 0:
        return None
    return abs(float((nose - (eye_a + eye_b) / 2) @ (axis / distance)) / distance)


def assess(image_bgr: np.ndarray, box: Box) -> Quality:
    """The quality of the face in `box` of the upright picture `image_bgr` (the picture the face is embedded from,
    with the box in its coordinates)."""
    region = _region(image_bgr, box).astype(np.float32)
    contrast = float(region.var())
    detail = float(cv2.Laplacian(region, cv2.CV_32F, ksize=3).var())
    sharpness = detail / contrast if contrast > 1.0 else 0.0
    return Quality(size=int(min(box.w, box.h)), sharpness=round(sharpness, 4),
                   brightness=round(float(region.mean()) / 255.0, 4), yaw=_yaw(box.landmarks),
                   score=None if box.score is None else float(box.score))

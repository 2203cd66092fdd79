"""A face box in the coordinates of some image, with the five landmarks when the detector gives them."""

from __future__ import annotations

import dataclasses

Point = tuple[float, float]


@dataclasses.dataclass
class Box:
    """A face box. Landmarks, when the detector gives them: left eye, right eye, nose, mouth left, mouth right."""

    x: int
    y: int
    w: int
    h: int
    score: float | None = None
    landmarks: tuple[Point, ...] | None = None

    @property
    def area(self) -> int:
        return self.w * self.h

    def scaled(self, factor: float) -> "Box":
        landmarks = None
        if self.landmarks is not None:
            landmarks = tuple((px * factor, py * factor) for px, py in self.landmarks)
        return Box(
            round(self.x * factor), round(self.y * factor), round(self.w * factor), round(self.h * factor),
            self.score, landmarks,
        )

    def shifted(self, dx: int, dy: int) -> "Box":
        landmarks = None
        if self.landmarks is not None:
            landmarks = tuple((px + dx, py + dy) for px, py in self.landmarks)
        return Box(self.x + dx, self.y + dy, self.w, self.h, self.score, landmarks)

    def clipped(self, width: int, height: int) -> "Box | None":
        """The part inside a width x height image, or None if nothing is left."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        if x1 <= x0 or y1 <= y0:
            return None
        return Box(x0, y0, x1 - x0, y1 - y0, self.score, self.landmarks)

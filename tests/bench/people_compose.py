"""Party photos composed here from the labelled faces of ../shared/faces/photos, for choosing and checking the
grouping's quality bar beyond the one party benchmark we have (tests/bench/people_bar.py). Written to a folder of
the caller's (never into the repository: the faces belong to their photographers), with a FACES.tsv in
party/README.md's format.

Like the benchmark's party photos: 40 pictures 2400-4000 px wide, 3-7 people each and sometimes a stranger; half
are hard, where most faces are 25-90 px and some are turned, blurred or dim.
"""

from __future__ import annotations

import pathlib

import cv2
import numpy as np


def compose(faces, out: pathlib.Path, seed: int, photos: int = 40, backgrounds: list[pathlib.Path] = ()) -> int:
    """faces: (image path, box (x, y, w, h), identity or '' for a stranger) of single faces to paste. Returns how
    many faces were pasted."""
    rng = np.random.default_rng(seed)
    (out / "parties").mkdir(parents=True, exist_ok=True)
    known = sorted({f[2] for f in faces if f[2]})
    by_person = {p: [f for f in faces if f[2] == p] for p in known}
    strangers = [f for f in faces if not f[2]]
    rows, cache = [], {}
    for n in range(photos):
        width = int(rng.integers(2400, 4000))
        height = int(width * rng.uniform(0.6, 0.8))
        canvas = _background(rng, width, height, backgrounds)
        hard = rng.random() < 0.5
        chosen = [by_person[p][int(rng.integers(len(by_person[p])))]
                  for p in rng.choice(known, size=min(int(rng.integers(3, 8)), len(known)), replace=False)]
        if strangers and rng.random() < 0.5:
            chosen.append(strangers[int(rng.integers(len(strangers)))])
        placed = []
        for path, (x, y, w, h), who in chosen:
            image = cache.setdefault(path, cv2.imread(str(path), cv2.IMREAD_COLOR))
            if image is None:
                continue
            m = int(0.6 * max(w, h))
            x0, y0 = max(0, x - m), max(0, y - m)
            crop = image[y0:min(image.shape[0], y + h + m), x0:min(image.shape[1], x + w + m)]
            scale = (rng.uniform(25, 90) if hard and rng.random() < 0.6 else rng.uniform(80, 450)) / max(w, h)
            crop = cv2.resize(crop, (max(2, int(crop.shape[1] * scale)), max(2, int(crop.shape[0] * scale))),
                              interpolation=cv2.INTER_AREA)
            if hard:
                crop = _spoil(rng, crop)
            spot = _free_spot(rng, placed, crop.shape[1], crop.shape[0], width, height)
            if spot is None:
                continue
            px, py = spot
            placed.append((px, py, crop.shape[1], crop.shape[0]))
            canvas[py:py + crop.shape[0], px:px + crop.shape[1]] = crop
            fx, fy, fw, fh = (x - x0) * scale, (y - y0) * scale, w * scale, h * scale
            rows.append((f"parties/composed_{n:03d}.jpg", who, int(px + fx - fw * 0.2), int(py + fy - fh * 0.2),
                         int(fw * 1.4), int(fh * 1.4)))
        cv2.imwrite(str(out / "parties" / f"composed_{n:03d}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    with open(out / "FACES.tsv", "w") as f:
        f.write("file\tidentity\tx\ty\twidth\theight\n")
        f.writelines("\t".join(map(str, r)) + "\n" for r in rows)
    return len(rows)


def _background(rng, width, height, backgrounds):
    if backgrounds and rng.random() < 0.5:
        image = cv2.imread(str(backgrounds[int(rng.integers(len(backgrounds)))]), cv2.IMREAD_COLOR)
        if image is not None and min(image.shape[:2]) > 50:
            return cv2.resize(image, (width, height))
    c0, c1 = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
    t = np.linspace(0, 1, width)[None, :, None]
    canvas = (c0 * (1 - t) + c1 * t).astype(np.uint8).repeat(height, 0)
    return np.ascontiguousarray(canvas + rng.integers(0, 20, canvas.shape, dtype=np.uint8))


def _spoil(rng, crop):
    """Turned (rolled), blurred or dimmed, each half the time."""
    if rng.random() < 0.5:
        turn = cv2.getRotationMatrix2D((crop.shape[1] / 2, crop.shape[0] / 2), rng.uniform(-35, 35), 1)
        crop = cv2.warpAffine(crop, turn, (crop.shape[1], crop.shape[0]), borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(1, 4) * max(1, crop.shape[1] / 200))
    if rng.random() < 0.5:
        crop = np.clip(crop.astype(np.float32) * rng.uniform(0.25, 0.6), 0, 255).astype(np.uint8)
    return crop


def _free_spot(rng, placed, w, h, width, height):
    for _ in range(50):
        px, py = int(rng.integers(0, max(1, width - w))), int(rng.integers(0, max(1, height - h)))
        if all(px + w < a or a + c < px or py + h < b or b + d < py for a, b, c, d in placed):
            return px, py
    return None

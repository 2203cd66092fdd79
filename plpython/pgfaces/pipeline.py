"""One image and one profile in, faces out: reduced decode for detection, full decode for embedding.

pgfaces.analysis builds on this: a photo's row and faces for every ingest profile, and a search reference.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import imaging, quality
from .boxes import Box
from .interrupts import call, checkpoint
from .detectors import get_detector
from .embedders import get_embedder
from .errors import LimitError, ProfileError
from .metadata import read_metadata
from .records import Face, Limits, PhotoMeta, Reference

THUMBNAIL_SIDE = 96
THUMBNAIL_MARGIN = 0.15
THUMBNAIL_QUALITY = 85


def _profile_part(profile: dict, key: str):
    value = profile.get(key)
    if not value or not isinstance(value, str):
        raise ProfileError(f"profile {profile.get('name', '?')!r} has no {key}")
    params = profile.get(f"{key}_params") or {}
    if not isinstance(params, dict):
        raise ProfileError(f"profile {profile.get('name', '?')!r}: {key}_params must be an object")
    return value, params


def thumbnail(image_bgr: np.ndarray, box: Box, side: int = THUMBNAIL_SIDE) -> bytes:
    """A small JPEG of the face with a little margin, longest side `side`."""
    height, width = image_bgr.shape[:2]
    mx, my = int(box.w * THUMBNAIL_MARGIN), int(box.h * THUMBNAIL_MARGIN)
    x0, y0 = max(0, box.x - mx), max(0, box.y - my)
    crop = image_bgr[y0:min(height, box.y + box.h + my), x0:min(width, box.x + box.w + mx)]
    ch, cw = crop.shape[:2]
    scale = side / max(ch, cw)
    if scale < 1:
        crop = cv2.resize(crop, (max(1, round(cw * scale)), max(1, round(ch * scale))), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY])
    if not ok:
        raise RuntimeError("cv2.imencode failed to write a face thumbnail")
    return encoded.tobytes()


# Longest side of the first, cheap detection pass on a search reference (the full pass follows if it finds none).
REFERENCE_MAX_SIDE = 320
# Of the longest side, added on every side when nothing was found at first (see _detect_with_border_retry).
RETRY_BORDER = 0.25
# A frame a face could fill: no longer than this times its width (or height). Thinner pictures get no retry.
RETRY_MAX_ASPECT = 3.0
# The smallest side in which any detector can see a face (MTCNN's smallest window is 12 px; the others' are larger).
# A thinner picture holds no face: it is stored with none, and no detector runs on it.
MIN_SIDE = 12


def _detect_with_border_retry(detector, image: np.ndarray, smallest: float | None = None) -> list[Box]:
    """The detector's boxes; when it finds nothing, its boxes on a copy with a black border.

    Detectors look for a face with some background around it: a face that fills the whole frame (a cropped
    profile picture, the usual search reference) is often missed, and found once the frame has a margin.
    `smallest`: only faces of about that many px and larger are wanted (Detector.large_faces).
    """
    def detect(picture):
        return detector(picture) if smallest is None else detector.large_faces(picture, smallest)

    boxes = detect(image)
    height, width = image.shape[:2]
    if boxes or max(height, width) > RETRY_MAX_ASPECT * min(height, width):
        return boxes
    checkpoint()
    border = max(1, round(max(height, width) * RETRY_BORDER))
    framed = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=0)
    return [box.shifted(-border, -border) for box in detect(framed)]


def _detect(
    data: bytes, meta: PhotoMeta, detector, limits: Limits, max_side: int | None = None,
    smallest: int | None = None, decoded: dict | None = None,
) -> tuple[list[Box], np.ndarray, float, np.ndarray | None]:
    """Boxes in full-resolution upright coordinates, the detection image, its scale to full-res, and the
    full-resolution picture where this decoded it anyway (None where it decoded a reduced one).

    Detection runs on a copy at most `max_side` (default: the detector's) pixels long. `smallest`: only faces of
    at least about that many full-resolution px are wanted. `decoded`: decodes by reduction factor, kept between
    calls on one image.
    """
    max_side = max_side or detector.max_side
    reduce = imaging.reduce_factor_for(meta.width, meta.height, max_side)
    decoded = {} if decoded is None else decoded
    if reduce not in decoded:
        decoded[reduce] = call(imaging.decode_upright, data, limits, reduce, meta.orientation, True)
    small, extra = imaging.shrink_to(decoded[reduce], max_side)
    # The reduced decode rounds sizes up, so measure the real scale rather than trusting `reduce`.
    scale = meta.width / small.shape[1]
    checkpoint()
    boxes = []
    hint = None if smallest is None else smallest / scale
    for box in call(_detect_with_border_retry, detector, small, hint):
        box = box.scaled(scale).clipped(meta.width, meta.height)
        if box is not None and min(box.w, box.h) >= detector.min_face:
            boxes.append(box)
    return boxes, small, scale, decoded[reduce] if reduce == 1 else None


def detect_and_embed(data: bytes, profile: dict, limits: Limits = Limits(), meta: PhotoMeta | None = None
                     ) -> list[Face]:
    """The faces of one photo, largest first, each with an embedding and a thumbnail. `meta`: read_metadata of
    bytes that imaging.verify passed (without it, both are done here)."""
    faces, _ = _detect_and_embed(data, profile, limits, meta, largest_only=False)
    return faces


def reference_face(data: bytes, profile: dict, limits: Limits = Limits(), meta: PhotoMeta | None = None
                   ) -> Reference | None:
    """The largest face of a reference image, embedded, and how many faces the image has; None without a face.
    `meta` as for detect_and_embed."""
    faces, found = _detect_and_embed(data, profile, limits, meta, largest_only=True)
    return Reference(faces[0], found) if faces else None


def _faces_at(data, meta, detector, embedder, limits, decoded: dict, max_side: int | None = None,
              smallest: int | None = None) -> tuple[list, np.ndarray | None]:
    """The plausible aligned faces that _detect finds, and the picture they were aligned on."""
    boxes, small, scale, _ = _detect(data, meta, detector, limits, max_side, smallest, decoded)
    checkpoint()
    if not boxes:
        return [], None
    full = small
    if embedder.needs_full_resolution and scale != 1.0:
        # A picture under twice the detector's size was decoded whole and then shrunk: not decoded again.
        if 1 not in decoded:
            decoded[1] = call(imaging.decode_upright, data, limits, 1, meta.orientation, True)
        full = decoded[1]
    return [face for face in embedder.align(full, boxes) if face.plausible], full


def _reference_faces(data, meta, detector, embedder, limits, decoded: dict) -> tuple[list, np.ndarray | None, int]:
    """A search reference's faces, the picture they were aligned on, and how many faces it shows.

    Its largest face is big and all that is wanted: it is looked for on a small copy first. Its box there is a few
    pixels off the one detect_and_embed finds on the detector's own copy, and the box decides the alignment (a
    stored photo searched with its own bytes came back at 0.13, not 0): so the face is then found again on the
    detector's copy, as a photo's faces are, skipping the search for small faces where the detector can
    (Detector.large_faces). Without a face on the small copy, the detector's copy is searched whole.
    """
    if detector.max_side and detector.max_side > REFERENCE_MAX_SIDE:
        first, first_full = _faces_at(data, meta, detector, embedder, limits, decoded, REFERENCE_MAX_SIDE)
        if first:
            largest = max(first, key=lambda face: face.box.area)
            again, full = _faces_at(data, meta, detector, embedder, limits, decoded, None,
                                    min(largest.box.w, largest.box.h))
            if again:
                return again, full, len(first)
            return first, first_full, len(first)
    aligned, full = _faces_at(data, meta, detector, embedder, limits, decoded)
    return aligned, full, len(aligned)


def _detect_and_embed(data, profile, limits, meta, largest_only) -> tuple[list[Face], int]:
    detector_name, detector_params = _profile_part(profile, "detector")
    embedder_name, embedder_params = _profile_part(profile, "embedder")
    detector = get_detector(detector_name, detector_params)
    embedder = get_embedder(embedder_name, embedder_params)
    expected = profile.get("dimensions")
    if expected is not None and int(expected) != embedder.dimensions:
        raise ProfileError(
            f"profile {profile.get('name', '?')!r} says {expected} dimensions but embedder "
            f"{embedder_name!r} gives {embedder.dimensions}"
        )
    if meta is None:
        imaging.verify(data, limits)
        meta = read_metadata(data)

    if min(meta.width, meta.height) < MIN_SIDE:
        return [], 0
    decoded: dict = {}
    if largest_only:
        aligned, full, found = _reference_faces(data, meta, detector, embedder, limits, decoded)
    else:
        aligned, full = _faces_at(data, meta, detector, embedder, limits, decoded)
    if not aligned:
        return [], 0
    aligned.sort(key=lambda face: face.box.area, reverse=True)
    if len(aligned) > limits.max_faces:
        raise LimitError(f"photo has {len(aligned)} faces, more than the limit of {limits.max_faces} faces")
    if largest_only:
        found, aligned = max(found, len(aligned)), aligned[:1]
    else:
        found = len(aligned)
    embeddings = embedder.embed_aligned(full, aligned)
    faces = [Face(a.box.x, a.box.y, a.box.w, a.box.h, a.box.score, embeddings[i], thumbnail(full, a.box),
                  quality.assess(full, a.box))
             for i, a in enumerate(aligned)]
    return faces, found

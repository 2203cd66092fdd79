"""Face embedders behind one interface: embedder.align(image_bgr, boxes), then embed_aligned(image_bgr, aligned).

One small class per model over the `Embedder` base (CLIP lives in pgfaces.clip); `get_embedder` builds each
(name, params) once per process (pgfaces.models.Registry), and the model files are shared through pgfaces.models.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import cv2
import numpy as np

from . import models
from .boxes import Box
from .interrupts import checkpoint


@dataclasses.dataclass
class Aligned:
    """A detected face made ready for its embedder: whether it looks like a face, and what embedding it needs."""

    box: Box
    plausible: bool = True
    prepared: object = None  # embedder-specific (dlib: the crop and its landmarks)


class Embedder:
    name = "?"
    dimensions = 0
    # Whether embedding wants the full-resolution picture (else a detection-sized copy will do).
    needs_full_resolution = True

    def __init__(self, params: dict):
        self.params = dict(params)

    def align(self, image_bgr: np.ndarray, boxes: list[Box]) -> list[Aligned]:
        """Each box made ready for embedding, with whether it looks like a real face. Default: all, as they are."""
        return [Aligned(box) for box in boxes]

    def embed_aligned(self, image_bgr: np.ndarray, faces: list[Aligned]) -> np.ndarray:
        """(len(faces), dimensions) float32 for faces from align(), so alignment is not done twice."""
        raise NotImplementedError

    def embed(self, image_bgr: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """(len(boxes), dimensions) float32: align and embed in one call, implausible faces included."""
        return self.embed_aligned(image_bgr, self.align(image_bgr, boxes))


def _dlib_rect(box: Box):
    import dlib

    return dlib.rectangle(box.x, box.y, box.x + box.w, box.y + box.h)


def landmarks_plausible(points: np.ndarray, box: Box) -> bool:
    """Do dlib's 5 points (two corners per eye, then the nose base) sit where a face's features would?

    The shape predictor always returns 5 points, even on a clock face; on a real face the eyes are a sensible
    distance apart for the box and the nose lies below the line between them, not beside or above it.
    """
    eye_a = (points[0] + points[1]) / 2
    eye_b = (points[2] + points[3]) / 2
    nose = points[4]
    axis = eye_b - eye_a
    eye_distance = float(np.hypot(*axis))
    width = max(box.w, 1)
    if not 0.2 * width <= eye_distance <= 0.75 * width:
        return False
    along = axis / eye_distance
    down = np.array([-along[1], along[0]])
    if down[1] < 0:  # pick the perpendicular that points down the image (faces rolled less than 90 degrees)
        down = -down
    offset = nose - (eye_a + eye_b) / 2
    drop = float(offset @ down) / eye_distance
    sideways = float(offset @ along) / eye_distance
    return 0.1 <= drop <= 1.2 and abs(sideways) <= 0.6


CROP_MARGIN = 0.5  # of the box side, around each face crop: room for rotated alignment and chip padding
CROP_FACE_WIDTH = 200  # faces wider than 1.5x this are shrunk to it before alignment


class DlibEmbedder(Embedder):
    """dlib's ResNet (face_recognition's model): 5-point alignment on the full-res picture, 128-d descriptor."""

    name = "dlib"
    dimensions = 128
    BATCH = 16  # faces per descriptor call (~5 ms each)

    def __init__(self, params: dict):
        super().__init__(params)
        import dlib
        import face_recognition_models

        self.dlib = dlib
        shape_file = face_recognition_models.pose_predictor_five_point_model_location()
        self.network_file = face_recognition_models.face_recognition_model_location()
        self.shape_predictor = models.shared(("dlib-shape", shape_file), lambda: dlib.shape_predictor(shape_file))
        self.num_jitters = int(params.get("num_jitters", 0))
        self.padding = float(params.get("padding", 0.25))
        # The descriptor network runs in onnxruntime: pgfaces.dlib_onnx reads it from dlib's own file, and the
        # descriptors equal dlib's to 1e-6 at a twelfth of the dlib-bin wheel's CPU time. The ONNX file is made
        # here (in the postmaster, when preloading), the session on first use: onnxruntime starts a thread, which a
        # forked backend would not inherit. dlib itself runs the network only for jittered descriptors.
        models.dlib_resnet_onnx(self.network_file)

    def _face_crops(self, image_bgr: np.ndarray, boxes: list[Box]):
        """Per box: an RGB crop around the face (with room for alignment) and the box in crop coordinates.

        dlib copies the whole numpy image on every call; crops keep that copy small. Crops of big faces are
        shrunk (INTER_AREA) to about CROP_FACE_WIDTH, since the network sees a 150 px chip anyway.
        """
        height, width = image_bgr.shape[:2]
        for box in boxes:
            m = int(max(box.w, box.h) * CROP_MARGIN)
            x0, y0 = max(0, box.x - m), max(0, box.y - m)
            x1, y1 = min(width, box.x + box.w + m), min(height, box.y + box.h + m)
            crop = image_bgr[y0:y1, x0:x1]
            local = Box(box.x - x0, box.y - y0, box.w, box.h, box.score)
            if box.w > CROP_FACE_WIDTH * 1.5:
                factor = CROP_FACE_WIDTH / box.w
                crop = cv2.resize(crop, (max(1, round(crop.shape[1] * factor)), max(1, round(crop.shape[0] * factor))),
                                  interpolation=cv2.INTER_AREA)
                local = local.scaled(factor)
            yield cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), local

    def align(self, image_bgr, boxes):
        faces = []
        for box, (crop, local) in zip(boxes, self._face_crops(image_bgr, boxes)):
            checkpoint()
            shape = self.shape_predictor(crop, _dlib_rect(local))
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            faces.append(Aligned(box, landmarks_plausible(points, local), (crop, shape)))
        return faces

    def embed_aligned(self, image_bgr, faces):
        if not faces:
            return np.empty((0, self.dimensions), np.float32)
        # The aligned 150x150 chips that compute_face_descriptor(img, shapes) would cut, then one batched call.
        chips = [self.dlib.get_face_chip(crop, shape, size=150, padding=self.padding)
                 for crop, shape in (face.prepared for face in faces)]
        if self.num_jitters:
            network = models.shared(("dlib-resnet", self.network_file),
                                    lambda: self.dlib.face_recognition_model_v1(self.network_file))
            vectors = np.array([np.array(v) for v in network.compute_face_descriptor(chips, self.num_jitters)])
        else:
            session = models.onnx_session(models.dlib_resnet_onnx(self.network_file))
            vectors = []
            for start in range(0, len(chips), self.BATCH):  # a checkpoint every batch: a cancel waits ~0.1 s at most
                checkpoint()
                batch = np.asarray(chips[start:start + self.BATCH], np.float32)
                vectors.extend(session.run(None, {session.get_inputs()[0].name: batch})[0])
        return np.asarray(vectors, dtype=np.float32).reshape(len(faces), self.dimensions)


def _clip(params: dict) -> Embedder:
    from .clip import ClipEmbedder  # imports onnxruntime (and transformers for the hub): only when asked for

    return ClipEmbedder(params)


EMBEDDERS: dict[str, Callable[[dict], Embedder]] = {
    "dlib": DlibEmbedder,
    "clip": _clip,
}

_registry = models.Registry("embedder", EMBEDDERS)


def get_embedder(name: str, params: dict | None = None) -> Embedder:
    """The embedder `name` configured by `params`, built once per process."""
    return _registry.get(name, params)

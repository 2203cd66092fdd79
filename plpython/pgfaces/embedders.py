"""Face embedders behind one interface: embedder.align(image_bgr, boxes), then embed_aligned(); embed() does both.

Models load once per process: get_embedder caches instances by (name, params).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .detectors import Box, _onnx_session, configured, shared_model
from .errors import ModelError


@dataclasses.dataclass
class Aligned:
    """A detected face made ready for its embedder: whether it looks like a face, and what embedding it needs."""

    box: Box
    plausible: bool = True
    prepared: object = None  # embedder-specific (dlib: the crop and its landmarks)


class Embedder:
    name = "?"
    dimensions = 0
    # Whether embed() wants the full-resolution picture (else a detection-sized copy will do).
    needs_full_resolution = True

    def __init__(self, params: dict):
        self.params = dict(params)

    def align(self, image_bgr: np.ndarray, boxes: list[Box]) -> list[Aligned]:
        """Each box made ready for embedding, with whether it looks like a real face. Default: all, as they are."""
        return [Aligned(box) for box in boxes]

    def embed_aligned(self, image_bgr: np.ndarray, faces: list[Aligned]) -> np.ndarray:
        """(len(faces), dimensions) float32 for faces from align(), so alignment is not done twice."""
        return self.embed(image_bgr, [face.box for face in faces])

    def embed(self, image_bgr: np.ndarray, boxes: list[Box]) -> np.ndarray:
        raise NotImplementedError


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

    def __init__(self, params: dict):
        super().__init__(params)
        import dlib
        import face_recognition_models as models

        self.dlib = dlib
        shape_file = models.pose_predictor_five_point_model_location()
        encoder_file = models.face_recognition_model_location()
        self.shape_predictor = shared_model(("dlib-shape", shape_file), lambda: dlib.shape_predictor(shape_file))
        self.encoder = shared_model(("dlib-resnet", encoder_file), lambda: dlib.face_recognition_model_v1(encoder_file))
        self.num_jitters = int(params.get("num_jitters", 0))
        self.padding = float(params.get("padding", 0.25))

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
        vectors = self.encoder.compute_face_descriptor(chips, self.num_jitters)
        return np.array([np.array(v) for v in vectors], dtype=np.float32).reshape(len(faces), self.dimensions)

    def embed(self, image_bgr, boxes):
        return self.embed_aligned(image_bgr, self.align(image_bgr, boxes))


# CLIP's preprocessing (openai/clip-vit-base-patch32 preprocessor_config.json), for local models.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_SIZE = 224
IMGBEDDINGS_REPO = "minimaxir/imgbeddings"


def _find_onnx(model_path: str) -> tuple[Path, Path | None]:
    """(the .onnx file, the directory that may hold preprocessor_config.json)."""
    path = Path(model_path)
    if path.is_file():
        return path, path.parent
    if path.is_dir():
        candidates = sorted(path.glob("*.onnx"))
        if len(candidates) == 1:
            return candidates[0], path
        if not candidates:
            raise ModelError(f"no .onnx file in the CLIP model directory {path}")
        raise ModelError(f"several .onnx files in {path}; set model_path to one of {[c.name for c in candidates]}")
    raise ModelError(f"CLIP model_path does not exist: {path}")


class ClipEmbedder(Embedder):
    """imgbeddings' CLIP vision ONNX model (768-d), the talk's whole-picture embedder applied to face crops.

    Without model_path it does what imgbeddings does: fetch patch{N}_v{V}.onnx and the CLIP processor from the
    Hugging Face hub. A database server usually cannot reach the hub, so model_path (a local .onnx file or a
    directory holding one) is the normal setup; preprocessing is then done here (square pad, resize to 224,
    CLIP mean/std), from the directory's preprocessor_config.json when present.
    """

    name = "clip"
    needs_full_resolution = True  # crops come from the full picture; a detection copy would blur small faces

    def __init__(self, params: dict):
        super().__init__(params)
        self.patch_size = int(params.get("patch_size", 32))
        self.version = int(params.get("version", 1))
        self.margin = float(params.get("margin", 0.2))
        model_path = params.get("model_path")
        self.mean, self.std, self.size = CLIP_MEAN, CLIP_STD, CLIP_SIZE
        if model_path:
            onnx_file, directory = _find_onnx(str(model_path))
            self._read_preprocessor_config(directory)
            self.processor = None
        else:
            onnx_file, self.processor = self._from_hub()
        self.session = _onnx_session(Path(onnx_file))
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        if "pixel_values" not in inputs or "embeddings" not in outputs:
            raise ModelError(
                f"{onnx_file} is not an imgbeddings model: it needs input 'pixel_values' and output 'embeddings' "
                f"(it has inputs {sorted(inputs)}, outputs {sorted(outputs)})"
            )
        declared = outputs["embeddings"][-1]
        self.dimensions = declared if isinstance(declared, int) else int(params.get("dimensions", 768))

    def _read_preprocessor_config(self, directory: Path | None) -> None:
        config_file = directory / "preprocessor_config.json" if directory else None
        if config_file is None or not config_file.is_file():
            return
        config = json.loads(config_file.read_text())
        self.mean = tuple(config.get("image_mean", self.mean))
        self.std = tuple(config.get("image_std", self.std))
        size = config.get("size", self.size)
        self.size = int(size.get("shortest_edge", CLIP_SIZE) if isinstance(size, dict) else size)

    def _from_hub(self):
        """imgbeddings' own loading: the ONNX file from its hub repo and the CLIP processor from OpenAI's."""
        filename = f"patch{self.patch_size}_v{self.version}.onnx"
        try:
            from huggingface_hub import hf_hub_download
            from transformers import CLIPProcessor

            onnx_file = hf_hub_download(repo_id=IMGBEDDINGS_REPO, filename=filename)
            processor = CLIPProcessor.from_pretrained(f"openai/clip-vit-base-patch{self.patch_size}")
        except (OSError, ImportError, ValueError) as exc:
            # huggingface_hub's offline / connection / not-found errors all derive from OSError or ValueError.
            raise ModelError(
                f"cannot get the CLIP model {IMGBEDDINGS_REPO}/{filename} from the Hugging Face hub "
                f"(no hub is reachable from here: {type(exc).__name__}). Put the .onnx file on the server and set "
                f"the profile's embedder_params.model_path to it (or to its directory)"
            ) from exc
        # imgbeddings: "for embeddings consistency, do not center crop"
        processor.image_processor.do_center_crop = False
        return onnx_file, processor

    def _crop(self, image_bgr: np.ndarray, box: Box) -> np.ndarray:
        height, width = image_bgr.shape[:2]
        mx, my = int(box.w * self.margin), int(box.h * self.margin)
        x0, y0 = max(0, box.x - mx), max(0, box.y - my)
        x1, y1 = min(width, box.x + box.w + mx), min(height, box.y + box.h + my)
        return cv2.cvtColor(image_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)

    def _square_pad(self, rgb: np.ndarray) -> np.ndarray:
        # imgbeddings pads to a square with black before CLIP's resize, so faces are not stretched.
        h, w = rgb.shape[:2]
        side = max(h, w)
        out = np.zeros((side, side, 3), np.uint8)
        out[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = rgb
        return out

    def pixel_values(self, crops_rgb: list[np.ndarray]) -> np.ndarray:
        squares = [self._square_pad(c) for c in crops_rgb]
        if self.processor is not None:
            from PIL import Image

            images = [Image.fromarray(s) for s in squares]
            return self.processor(images=images, return_tensors="np")["pixel_values"].astype(np.float32)
        batch = np.stack([
            cv2.resize(s, (self.size, self.size), interpolation=cv2.INTER_CUBIC) for s in squares
        ]).astype(np.float32) / 255.0
        batch = (batch - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)

    def embed(self, image_bgr, boxes):
        if not boxes:
            return np.empty((0, self.dimensions), np.float32)
        pixels = self.pixel_values([self._crop(image_bgr, b) for b in boxes])
        (embeddings,) = self.session.run(["embeddings"], {"pixel_values": pixels})
        return np.asarray(embeddings, dtype=np.float32).reshape(len(boxes), -1)


EMBEDDERS: dict[str, Callable[[dict], Embedder]] = {
    "dlib": DlibEmbedder,
    "clip": ClipEmbedder,
}

_cache: dict[tuple, Embedder] = {}


RETRY_FAILED_LOAD_AFTER = 300.0
_failures: dict = {}


def get_embedder(name: str, params: dict | None = None) -> Embedder:
    """The embedder `name` configured by `params`, built once per process."""
    return configured("embedder", EMBEDDERS, _cache, name, params, _build_remembering_failure)


def _build_remembering_failure(key: tuple, factory, params: dict) -> Embedder:
    # A model that failed to load (a hub out of reach takes ~25 s of retries) fails fast for a while rather than
    # making every row of a bulk INSERT wait again.
    failed_at, error = _failures.get(key, (None, None))
    if failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_LOAD_AFTER:
        raise ModelError(f"{error} (cached failure; retried {RETRY_FAILED_LOAD_AFTER:.0f} s after the last try)")
    try:
        embedder = factory(params)
    except ModelError as exc:
        _failures[key] = (time.monotonic(), exc)
        raise
    _failures.pop(key, None)
    return embedder

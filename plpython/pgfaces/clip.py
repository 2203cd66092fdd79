"""imgbeddings' CLIP vision model (the talk's embedder) as a face embedder: its real loading code, from the hub or
from a local .onnx file (a database server usually cannot reach the hub)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from . import interrupts, models
from .boxes import Box
from .embedders import Embedder
from .errors import ModelError, reason_of

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
        self.session = models.onnx_session(Path(onnx_file))
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
        """imgbeddings' own loading: the ONNX file from its hub repo and the CLIP processor from OpenAI's. Files
        fetched once are used with no network; otherwise the hub is looked at first (models.hub_unreachable), so
        that a server with no way out fails at once instead of retrying for half a minute."""
        filename = f"patch{self.patch_size}_v{self.version}.onnx"
        try:
            from huggingface_hub import constants, try_to_load_from_cache
        except ImportError as exc:
            raise ModelError(self._not_available(filename, "huggingface_hub is not installed")) from exc
        fetched = all(isinstance(try_to_load_from_cache(repo, name), str) for repo, name in (
            (IMGBEDDINGS_REPO, filename), (self._processor_repo, "preprocessor_config.json")))
        why = None if fetched else models.hub_unreachable(constants.ENDPOINT, constants.HF_HUB_OFFLINE)
        if why:
            raise ModelError(self._not_available(filename, why))
        try:
            onnx_file, processor = interrupts.call(self._hub_files, filename, fetched)  # a cancel stops waiting
        except (OSError, ImportError, ValueError) as exc:
            # huggingface_hub's offline / connection / not-found errors all derive from OSError or ValueError.
            raise ModelError(self._not_available(filename, reason_of(exc, "the download failed"))) from exc
        # imgbeddings: "for embeddings consistency, do not center crop"
        processor.image_processor.do_center_crop = False
        return onnx_file, processor

    @property
    def _processor_repo(self) -> str:
        return f"openai/clip-vit-base-patch{self.patch_size}"

    def _hub_files(self, filename: str, local_only: bool):
        from huggingface_hub import hf_hub_download
        from transformers import CLIPProcessor

        onnx_file = hf_hub_download(repo_id=IMGBEDDINGS_REPO, filename=filename, local_files_only=local_only)
        processor = CLIPProcessor.from_pretrained(self._processor_repo, local_files_only=local_only)
        return onnx_file, processor

    def _not_available(self, filename: str, why: str) -> str:
        return (f"the CLIP model {IMGBEDDINGS_REPO}/{filename} is not available offline ({why}): put the .onnx "
                f"file on the server and point the profile at it, with embedder_params model_path (the file or "
                f"its directory), e.g. update profiles set embedder_params = embedder_params || "
                f"'{{\"model_path\": \"/models/{filename}\"}}' where embedder = 'clip'")

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

    def embed_aligned(self, image_bgr, faces):
        if not faces:
            return np.empty((0, self.dimensions), np.float32)
        pixels = self.pixel_values([self._crop(image_bgr, face.box) for face in faces])
        (embeddings,) = self.session.run(["embeddings"], {"pixel_values": pixels})
        return np.asarray(embeddings, dtype=np.float32).reshape(len(faces), -1)

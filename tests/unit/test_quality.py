"""How good a face is for telling who it is (pgfaces.quality): measured from the picture, the same in every path."""

import cv2
import numpy as np

from pgfaces import pipeline, quality
from pgfaces.boxes import Box

MTCNN = {"name": "mtcnn", "detector": "mtcnn", "detector_params": {"max_side": 1280, "min_face": 16, "min_face_size": 12},
         "embedder": "dlib", "embedder_params": {}, "dimensions": 128}
REFERENCE = "party/references/obama.jpg"


def encode(image) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def test_detail_is_measured_whatever_the_size_and_contrast():
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    box = Box(0, 0, 200, 200)
    sharp = quality.assess(texture, box).sharpness
    assert quality.assess(cv2.GaussianBlur(texture, (0, 0), 4), box).sharpness < sharp / 5
    dim = (texture * 0.3).astype(np.uint8)  # the same detail, darker: sharpness does not change much
    assert abs(quality.assess(dim, box).sharpness - sharp) < sharp * 0.2
    assert quality.assess(dim, box).brightness < quality.assess(texture, box).brightness
    flat = np.full((50, 50, 3), 128, np.uint8)
    assert quality.assess(flat, Box(0, 0, 50, 50)).sharpness == 0.0


def test_yaw_from_the_landmarks():
    frontal = ((30, 40), (70, 40), (50, 60), (35, 80), (65, 80))
    turned = ((30, 40), (70, 40), (68, 60), (35, 80), (65, 80))
    image = np.zeros((100, 100, 3), np.uint8)
    assert quality.assess(image, Box(10, 10, 80, 80, 0.99, frontal)).yaw == 0.0
    assert quality.assess(image, Box(10, 10, 80, 80, 0.99, turned)).yaw > 0.4
    assert quality.assess(image, Box(10, 10, 80, 80)).yaw is None  # a detector without landmarks


def test_a_blurred_face_is_judged_poorer(faces_dir):
    data = (faces_dir / REFERENCE).read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    clear = pipeline.detect_and_embed(encode(image), MTCNN)[0]
    assert clear.quality.size == min(clear.width, clear.height)
    assert 0.9 <= clear.quality.score <= 1 and clear.quality.yaw < 0.3
    # blurred as a face across the room is: its detail at 64 px is gone (sharpness measures what the face holds)
    blurred = pipeline.detect_and_embed(encode(cv2.GaussianBlur(image, (0, 0), clear.width / 12)), MTCNN)
    assert blurred, "the blurred copy still holds a face"
    assert blurred[0].quality.sharpness < 0.3 <= clear.quality.sharpness  # the mtcnn profile's bar, min_sharpness


def test_every_face_carries_its_quality(faces_dir):
    faces = pipeline.detect_and_embed((faces_dir / "party/parties/party_000.jpg").read_bytes(), MTCNN)
    assert len(faces) >= 3
    assert all(f.quality is not None and f.quality.size == min(f.width, f.height) for f in faces)

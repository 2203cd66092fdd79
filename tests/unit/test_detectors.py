"""Each detector finds the faces of a real photo, in the coordinates of the image it was given."""

import numpy as np
import pytest

from pgfaces import imaging
from pgfaces.boxes import Box
from pgfaces.detectors import get_detector
from pgfaces.embedders import landmarks_plausible
from pgfaces.errors import ProfileError


@pytest.fixture(scope="module")
def party_small(faces_dir):
    """party_003 (4 faces, upright) at ~1/4 size."""
    data = (faces_dir / "party" / "parties" / "party_003.jpg").read_bytes()
    image = imaging.decode_upright(data, reduce=2)
    return imaging.shrink_to(image, 1024)[0]


@pytest.mark.parametrize("name, params", [
    ("hog", {"upsample": 0}),
    ("mtcnn", {"min_face_size": 40}),
    ("haar", {"scale_factor": 1.1, "min_neighbors": 5, "min_size": [40, 40]}),
    ("blazeface", {}),
])
def test_detector_finds_faces(party_small, name, params):
    boxes = get_detector(name, params)(party_small)
    height, width = party_small.shape[:2]
    assert 3 <= len(boxes) <= 6, boxes
    for box in boxes:
        assert box.w > 20 and box.h > 20
        assert -box.w < box.x < width and -box.h < box.y < height


def test_mtcnn_gives_plausible_landmarks(party_small):
    boxes = get_detector("mtcnn", {"min_face_size": 40})(party_small)
    for box in boxes:
        assert len(box.landmarks) == 5
        left_eye, right_eye, nose = map(np.array, box.landmarks[:3])
        assert nose[1] > min(left_eye[1], right_eye[1])


def test_detectors_are_cached():
    assert get_detector("hog", {"upsample": 0, "max_side": 100}) is get_detector("hog", {"max_side": 100, "upsample": 0})
    with pytest.raises(ProfileError):
        get_detector("yolo", {})


def test_landmark_plausibility():
    box = Box(0, 0, 100, 100)
    face = np.array([[30, 40], [40, 40], [70, 40], [60, 40], [50, 65]], float)
    assert landmarks_plausible(face, box)
    nose_above = face.copy()
    nose_above[4] = [50, 20]
    assert not landmarks_plausible(nose_above, box)
    squashed = face.copy()
    squashed[:4, 0] = [48, 49, 51, 52]
    assert not landmarks_plausible(squashed, box)
    tilted = np.array([[30, 30], [40, 35], [70, 50], [60, 45], [45, 65]], float)  # rolled ~27 degrees
    assert landmarks_plausible(tilted, box)
    beside = face.copy()
    beside[4] = [95, 42]
    assert not landmarks_plausible(beside, box)

"""The whole pipeline on real photos: faces found, embeddings that tell people apart, errors that say why."""

import numpy as np
import pytest

import types

from pgfaces import analysis, imaging, pipeline
from pgfaces.errors import ImageError, LimitError, ProfileError
from pgfaces.records import Limits


def analyse(data: bytes, profile: dict, limits: Limits = Limits(), filename: str = "photo"):
    """analysis.analyse_photo with one profile, seen as the photo's metadata and its faces."""
    result = analysis.analyse_photo(data, filename, [profile], limits)
    return types.SimpleNamespace(meta=result.photo.meta, faces=[row.face for row in result.faces])


def read(faces_dir, relative: str) -> bytes:
    return (faces_dir / relative).read_bytes()


def only_face(faces_dir, relative, profile):
    faces = pipeline.detect_and_embed(read(faces_dir, relative), profile)
    assert len(faces) == 1, f"{relative}: {len(faces)} faces"
    return faces[0]


def test_slack_picture_has_one_face_of_128_floats(faces_dir, default_profile):
    analysis = analyse(
        read(faces_dir, "photos/seed/find-faces-talk/slides/images/slack-picture.jpg"), default_profile
    )
    assert len(analysis.faces) == 1
    face = analysis.faces[0]
    assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
    assert face.thumbnail.startswith(b"\xff\xd8") and len(face.thumbnail) < 20_000
    assert 0 <= face.x < face.x + face.width <= analysis.meta.width


def test_same_person_is_closer_than_another(faces_dir, default_profile):
    biden = only_face(faces_dir, "party/references/biden.jpg", default_profile).embedding
    biden_again = only_face(faces_dir, "party/real/face_recognition__examples__biden.jpg", default_profile).embedding
    obama = only_face(faces_dir, "party/references/obama.jpg", default_profile).embedding
    same = np.linalg.norm(biden - biden_again)
    other = np.linalg.norm(biden - obama)
    assert same < 0.6 < other, (same, other)


def test_rotated_party_photo_gives_upright_size_and_boxes(faces_dir, party_manifest, default_profile):
    row = party_manifest["parties/party_000.jpg"]
    assert row["exif_orientation"] == "6"
    data = read(faces_dir, "party/parties/party_000.jpg")
    _, stored_width, stored_height = imaging.read_header(data)
    analysis = analyse(data, default_profile)
    meta = analysis.meta
    assert (meta.width, meta.height) == (stored_height, stored_width)
    assert len(analysis.faces) >= 3
    for face in analysis.faces:
        assert 0 <= face.x and face.x + face.width <= meta.width
        assert 0 <= face.y and face.y + face.height <= meta.height
    areas = [f.area for f in analysis.faces]
    assert areas == sorted(areas, reverse=True)


def test_negative_image_has_no_face(faces_dir, default_profile):
    path = "party/negatives/seed__find-faces-talk__slides__images__white.jpg"
    assert analyse(read(faces_dir, path), default_profile).faces == []


def test_broken_file_error_names_file_and_reason(faces_dir, default_profile):
    name = "compreface__embedding-calculator__src__services__imgtools__test__files__truncated.jpg"
    with pytest.raises(ImageError, match=rf"^{name}: truncated JPEG"):
        analyse(read(faces_dir, f"party/broken/{name}"), default_profile, filename=name)


def test_face_limit(faces_dir, default_profile):
    with pytest.raises(LimitError, match=r"limit of 2 faces"):
        analyse(read(faces_dir, "party/parties/party_002.jpg"), default_profile, Limits(max_faces=2))


def test_profile_errors(faces_dir, default_profile):
    data = read(faces_dir, "photos/seed/find-faces-talk/slides/images/slack-picture.jpg")
    with pytest.raises(ProfileError, match="unknown detector"):
        analyse(data, {**default_profile, "detector": "nope"})
    with pytest.raises(ProfileError, match="says 512 dimensions"):
        analyse(data, {**default_profile, "dimensions": 512})


MTCNN_FROM_16 = {
    "name": "mtcnn16", "detector": "mtcnn", "detector_params": {"max_side": 1024, "min_face_size": 16},
    "embedder": "dlib", "embedder_params": {}, "dimensions": 128,
}


def test_face_filling_the_frame_is_found_with_a_border(faces_dir):
    """A tight 150x150 face crop: MTCNN alone misses it; the retry on a framed copy finds it, in image coords."""
    from pgfaces.detectors import get_detector

    data = read(faces_dir, "party/references/stuart.png")
    image = imaging.decode_upright(data, Limits())
    assert get_detector("mtcnn", MTCNN_FROM_16["detector_params"])(image) == []
    faces = pipeline.detect_and_embed(data, MTCNN_FROM_16)
    assert len(faces) == 1
    face = faces[0]
    assert face.x >= 0 and face.y >= 0 and face.x + face.width <= 150 and face.y + face.height <= 150
    assert face.width * face.height > 0.5 * 150 * 150


MTCNN_SHIPPED = dict(MTCNN_FROM_16, detector_params={"max_side": 1280, "min_face_size": 12, "min_face": 16})


def test_reference_is_found_on_a_small_copy_first(faces_dir, monkeypatch):
    """The largest face of a 1 MP reference is looked for on a small copy, then found again on the detector's own
    copy (skipping the small faces): the same box and embedding as the full pass's."""
    data = read(faces_dir, "party/references/obama.jpg")
    sides = []
    detect = pipeline._detect
    monkeypatch.setattr(pipeline, "_detect", lambda *a: sides.append(a[4:6]) or detect(*a))
    reference = analysis.reference(data, MTCNN_SHIPPED).face
    assert sides[0] == (pipeline.REFERENCE_MAX_SIDE, None)
    assert sides[1][0] is None and sides[1][1] > 100  # the detector's copy, faces from about the one found
    full = pipeline.detect_and_embed(data, MTCNN_SHIPPED)[0]
    assert (reference.x, reference.y, reference.width, reference.height) == (full.x, full.y, full.width, full.height)
    assert np.array_equal(reference.embedding, full.embedding)


@pytest.mark.parametrize("relative", ["photos/seed/image-recognition/solo-image.png",
                                      "party/references/biden.jpg",
                                      "party/real/face_recognition__examples__biden.jpg",
                                      "party/parties/party_003.jpg"])
def test_a_stored_photo_searched_with_its_own_bytes_is_at_distance_0(faces_dir, relative):
    """One image, one embedding: the search path's face is the ingest path's largest face (solo-image.png, 1006x1024,
    was at 0.130 when the reference kept the small copy's box)."""
    data = read(faces_dir, relative)
    stored = pipeline.detect_and_embed(data, MTCNN_SHIPPED)
    reference = pipeline.reference_face(data, MTCNN_SHIPPED).face
    assert min(np.linalg.norm(f.embedding - reference.embedding) for f in stored) <= 1e-6
    assert np.array_equal(stored[0].embedding, reference.embedding)  # and it is the largest face


def test_mtcnn_skipping_small_faces_finds_the_large_ones_as_before(faces_dir):
    """Detector.large_faces: MTCNN without the pyramid levels of small faces gives the same boxes and landmarks for
    the faces from the size asked for."""
    from pgfaces.detectors import get_detector

    detector = get_detector("mtcnn", MTCNN_SHIPPED["detector_params"])
    image = imaging.decode_upright(read(faces_dir, "party/parties/party_003.jpg"), Limits(), 4)
    every = detector(image)
    sizes = sorted(min(b.w, b.h) for b in every)
    smallest = sizes[len(sizes) // 2]
    large = detector.large_faces(image, smallest)
    assert len(every) >= 4
    wanted = [b for b in every if min(b.w, b.h) >= smallest]
    assert wanted and all(b in large for b in wanted), (wanted, large)


def test_reference_falls_back_to_the_full_pass(faces_dir, monkeypatch):
    """When the small pass finds nothing, the reference is looked for at the profile's own size."""
    profile = dict(MTCNN_FROM_16, detector_params={"max_side": 1280, "min_face_size": 12, "min_face": 16})
    data = read(faces_dir, "party/references/obama.jpg")
    sides = []
    detect = pipeline._detect

    def small_pass_finds_nothing(*args):
        sides.append(args[4])
        boxes, *rest = detect(*args)
        return ([] if args[4] else boxes), *rest

    monkeypatch.setattr(pipeline, "_detect", small_pass_finds_nothing)
    result = analysis.reference(data, profile)
    reference, found = result.face, result.found
    assert sides == [pipeline.REFERENCE_MAX_SIDE, None]
    assert reference is not None and found >= 1


def test_a_picture_under_twice_the_detection_size_is_decoded_once(faces_dir, default_profile, monkeypatch):
    """The whole-picture decode made for detection (no reduced JPEG decode fits) serves the embedding too."""
    import cv2

    image = cv2.imread(str(faces_dir / "party/references/obama.jpg"))
    # Long side between the detector's 1280 px and twice that: detected on a shrunk full decode.
    image = cv2.resize(image, (2000, round(image.shape[0] * 2000 / image.shape[1])))
    data = cv2.imencode(".jpg", image)[1].tobytes()
    decodes = []
    decode = imaging.decode_upright

    def counted(*args, **kwargs):
        decodes.append(kwargs.get("reduce", 1))
        return decode(*args, **kwargs)

    monkeypatch.setattr(imaging, "decode_upright", counted)
    faces = pipeline.detect_and_embed(data, default_profile)
    assert len(faces) == 1 and decodes == [1]
    # the same descriptor as when the embedding decoded the picture again
    detect = pipeline._detect
    monkeypatch.setattr(pipeline, "_detect", lambda *args: (*detect(*args[:6])[:3], None))  # no shared decodes
    decoded_again = pipeline.detect_and_embed(data, default_profile)
    assert decodes == [1, 1, 1] and np.array_equal(faces[0].embedding, decoded_again[0].embedding)

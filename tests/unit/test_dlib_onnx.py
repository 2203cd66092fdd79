"""dlib_onnx: dlib's face ResNet read from its .dat and run by onnxruntime gives dlib's own descriptors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

dlib = pytest.importorskip("dlib")
models = pytest.importorskip("face_recognition_models")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

from pgfaces import dlib_onnx  # noqa: E402

DETECT_SIDE = 1000  # photos are shrunk to this for detection: the chips only need to be faces, not the best ones


@pytest.fixture(scope="module")
def dat():
    return models.face_recognition_model_location()


@pytest.fixture(scope="module")
def session(dat, tmp_path_factory):
    path = dlib_onnx.onnx_model_file(dat, tmp_path_factory.mktemp("onnx-cache"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(session, chips) -> np.ndarray:
    return session.run([dlib_onnx.OUTPUT_NAME], {dlib_onnx.INPUT_NAME: np.asarray(chips, np.float32)})[0]


@pytest.fixture(scope="module")
def chips(faces_dir) -> list[np.ndarray]:
    """150 px chips of every face dlib's HOG detector finds in party/real and party/parties (about 170)."""
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    chips = []
    for folder in ("real", "parties"):
        for file in sorted((faces_dir / "party" / folder).glob("*.jpg")):
            image = cv2.imread(str(file), cv2.IMREAD_REDUCED_COLOR_2 if folder == "parties" else cv2.IMREAD_COLOR)
            if image is None:
                continue
            scale = DETECT_SIDE / max(image.shape[:2])
            if scale < 1:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            for rect in detector(rgb, 0):
                chips.append(dlib.get_face_chip(rgb, shapes(rgb, rect), size=150, padding=0.25))
    assert len(chips) >= 50, f"only {len(chips)} faces found under {faces_dir / 'party'}"
    return chips


def rankings(descriptors: np.ndarray) -> np.ndarray:
    """For each face, the other faces from nearest to farthest (L2)."""
    d = descriptors.astype(np.float64)
    distances = np.sqrt(((d[:, None, :] - d[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(distances, np.inf)
    return np.argsort(distances, axis=1, kind="stable")[:, :-1]


def test_descriptors_equal_dlibs_on_real_faces(chips, session, dat):
    encoder = dlib.face_recognition_model_v1(dat)
    expected = np.array([np.array(v) for v in encoder.compute_face_descriptor(chips, 0)], np.float32)
    got = run(session, chips)
    assert got.shape == expected.shape == (len(chips), 128) and got.dtype == np.float32
    difference = float(np.abs(got - expected).max())
    print(f"{len(chips)} faces: max |onnxruntime - dlib| = {difference:.2e}")
    assert difference <= 1e-4
    assert np.array_equal(rankings(got), rankings(expected))


def test_batch_size_does_not_change_descriptors(chips, session):
    alone = np.concatenate([run(session, [chip]) for chip in chips[:5]])
    assert np.abs(alone - run(session, chips[:5])).max() <= 1e-5


def test_model_takes_nhwc_rgb_chips_as_dlib_returns_them(chips, session):
    assert chips[0].dtype == np.uint8 and chips[0].shape == (150, 150, 3)
    (given,), (returned,) = session.get_inputs(), session.get_outputs()
    assert (given.name, given.type, given.shape[1:]) == (dlib_onnx.INPUT_NAME, "tensor(float)", [150, 150, 3])
    assert (returned.name, returned.type, returned.shape[1:]) == (dlib_onnx.OUTPUT_NAME, "tensor(float)", [128])


def test_reads_the_network(dat):
    net = dlib_onnx.read_dlib_resnet(dat)
    kinds = [layer["kind"] for layer in net["layers"]]
    assert net["size"] == 150 and np.allclose(net["mean"], (122.782, 117.001, 104.298))
    assert kinds.count("con") == kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert net["layers"][0]["weights"].shape == (32, 3, 7, 7) and net["layers"][-1]["weights"].shape == (256, 128)


def test_model_file_is_built_once_and_named_by_the_dat(dat, tmp_path):
    first = dlib_onnx.onnx_model_file(dat, tmp_path / "cache")
    stamp = first.stat().st_mtime_ns
    second = dlib_onnx.onnx_model_file(dat, tmp_path / "cache")
    assert second == first and second.stat().st_mtime_ns == stamp
    assert hashlib.sha256(open(dat, "rb").read()).hexdigest()[:24] in first.name
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncated", "other dlib model", "not dlib"])
def test_other_files_are_refused_naming_the_file(dat, tmp_path, damage):
    data = open(dat, "rb").read()
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "other dlib model":
        data = open(models.pose_predictor_five_point_model_location(), "rb").read()
    else:
        data = b"\x89PNG\r\n\x1a\n" + bytes(100)
    bad = tmp_path / "bad.dat"
    bad.write_bytes(data)
    with pytest.raises(ValueError, match="bad.dat"):
        dlib_onnx.read_dlib_resnet(bad)
    with pytest.raises(ValueError, match="bad.dat"):
        dlib_onnx.onnx_model_file(bad, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())

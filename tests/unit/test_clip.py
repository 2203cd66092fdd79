"""The CLIP (imgbeddings) embedder with a small stand-in ONNX model: no hub, no 80 MB download."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package builds the stand-in model (requirements/dev.lock)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from pgfaces.boxes import Box  # noqa: E402
from pgfaces.embedders import get_embedder  # noqa: E402
from pgfaces.errors import ModelError  # noqa: E402

DIMENSIONS = 768


def build_stand_in(path, dimensions=DIMENSIONS):
    """pixel_values (N, 3, 224, 224) -> embeddings (N, dimensions), the names and shapes imgbeddings uses.

    8x8 average pooling then a fixed random projection: different pictures give different vectors.
    """
    weights = np.random.default_rng(7).standard_normal((3 * 28 * 28, dimensions)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["pixel_values"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "weights"], ["embeddings"]),
        ],
        "imgbeddings_stand_in",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", dimensions])],
        [numpy_helper.from_array(weights, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8  # readable by older onnxruntime releases too
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "patch32_v1.onnx"
    build_stand_in(path)
    return path


def picture(seed):
    return np.random.default_rng(seed).integers(0, 255, (300, 400, 3), np.uint8)


def test_embeddings_have_the_right_size_and_are_deterministic(stand_in):
    embedder = get_embedder("clip", {"model_path": str(stand_in)})
    assert embedder.dimensions == DIMENSIONS
    boxes = [Box(10, 10, 120, 150), Box(200, 50, 100, 100)]
    first = embedder.embed(picture(1), boxes)
    assert first.shape == (2, DIMENSIONS) and first.dtype == np.float32
    assert np.array_equal(first, embedder.embed(picture(1), boxes))
    assert not np.allclose(first[0], first[1])
    assert not np.allclose(first, embedder.embed(picture(2), boxes))


def test_model_path_may_be_the_directory(stand_in):
    embedder = get_embedder("clip", {"model_path": str(stand_in.parent)})
    assert embedder.embed(picture(1), [Box(0, 0, 50, 50)]).shape == (1, DIMENSIONS)


def test_missing_model_path(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        get_embedder("clip", {"model_path": str(tmp_path / "nope.onnx")})


def test_without_model_path_the_hub_is_needed(monkeypatch):
    # Offline mode makes huggingface_hub fail at once instead of retrying the network for ~25 s.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="not available offline.*model_path"):
        get_embedder("clip", {"patch_size": 32, "version": 1, "test": "offline"})


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """A hub that cannot be reached, nothing fetched from it before, and an empty model cache (issue 20, N3)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("PGFACES_MODEL_CACHE", str(tmp_path / "models"))
    return constants


def hub_error(params) -> str:
    from pgfaces.clip import ClipEmbedder

    with pytest.raises(ModelError) as failure:
        ClipEmbedder(params)  # not through the registry: no failure cached in this process
    message = str(failure.value)
    assert "\n" not in message and "Error" not in message, message
    assert "not available offline" in message and "embedder_params model_path" in message, message
    return message


def test_an_unreachable_hub_is_looked_at_once_and_remembered(no_hub, monkeypatch, tmp_path):
    import socket

    monkeypatch.setattr(no_hub, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    assert "127.0.0.1 cannot be reached" in hub_error({})
    assert (tmp_path / "models" / "unreachable-127.0.0.1-9").is_file()  # every backend of the server sees it

    def no_network(*args, **kwargs):
        raise AssertionError("the hub was looked at again")

    monkeypatch.setattr(socket, "create_connection", no_network)
    assert "s ago" in hub_error({"version": 1})


def test_a_hub_that_does_not_answer_is_given_up_on_at_once(no_hub, monkeypatch):
    import socket
    import threading

    hanging = threading.Event()

    def silent(*args, **kwargs):  # a firewall that drops packets, or a name server that never replies
        hanging.wait(30)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    try:
        assert "huggingface.co did not answer within 0.3 s" in hub_error({})
    finally:
        hanging.set()

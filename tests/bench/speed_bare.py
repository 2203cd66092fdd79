"""The bare loop of `invoke bench`: the server's detection + embedding over files, no database.

Run as a subprocess (one thread per process, as the server's backends): prints one JSON object.

  speed_bare.py throughput PROFILE_JSON PROCESSES FILE...   photos/s and faces/s over the files
  speed_bare.py breakdown  PROFILE_JSON FILE...             seconds per stage, per photo and per face

Models are loaded (and one photo analysed) in every process before the clock starts: this is the steady state
the database's pipeline is compared with.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pathlib
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

_profile: dict = {}


def _init(profile: dict, warm_file: str) -> None:
    global _profile
    import cv2

    cv2.setNumThreads(1)
    _profile = profile
    _analyse(warm_file, profile)


def _analyse(path: str, profile: dict) -> int | None:
    """Faces found, or None for a file the server would refuse (it refuses the row and goes on, as here)."""
    from pgfaces import analysis
    from pgfaces.errors import ImageError, LimitError

    try:
        return len(analysis.analyse_photo(pathlib.Path(path).read_bytes(), path, [profile]).faces)
    except (ImageError, LimitError):
        return None


def _one(path: str) -> int | None:
    return _analyse(path, _profile)


def throughput(profile: dict, processes: int, files: list[str]) -> dict:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes, initializer=_init, initargs=(profile, files[0])) as pool:
        # Make sure every worker has run its initializer (models loaded) before timing.
        pool.map(time.sleep, [0.2] * processes, chunksize=1)
        started = time.perf_counter()
        found = [n for n in pool.imap_unordered(_one, files, chunksize=1) if n is not None]
        seconds = time.perf_counter() - started
    faces = sum(found)
    return {"processes": processes, "photos": len(found), "refused": len(files) - len(found), "faces": faces,
            "seconds": seconds, "photos_per_s": len(found) / seconds, "faces_per_s": faces / seconds}


class _Clock:
    """Exclusive times: a timed call inside another (read_header inside decode_upright) counts once."""

    def __init__(self):
        self.totals: dict[str, float] = {}
        self.stack: list[str] = []

    def wrap(self, stage: str, fn):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            self.stack.append(stage)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
                elapsed = time.perf_counter() - started
                self.totals[stage] = self.totals.get(stage, 0.0) + elapsed
                if self.stack:
                    self.totals[self.stack[-1]] = self.totals.get(self.stack[-1], 0.0) - elapsed
        return timed


def breakdown(profile: dict, files: list[str]) -> dict:
    """Wraps the functions the pipeline calls with timers, so the split follows whatever pipeline.py does."""
    started = time.perf_counter()
    import cv2

    cv2.setNumThreads(1)
    from pgfaces import analysis, detectors, embedders, imaging, pipeline
    import dlib  # noqa: F401  (imported by the default embedder: part of the first call)

    imports = time.perf_counter() - started
    started = time.perf_counter()
    detector = detectors.get_detector(profile["detector"], profile.get("detector_params") or {})
    embedder = embedders.get_embedder(profile["embedder"], profile.get("embedder_params") or {})
    models = time.perf_counter() - started
    _analyse(files[0], profile)  # warm

    clock = _Clock()
    originals = []

    def patch(owner, attr, stage):
        originals.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, clock.wrap(stage, getattr(owner, attr)))

    patch(imaging, "read_header", "header")
    patch(analysis, "read_metadata", "exif")
    patch(imaging, "decode_upright", "decode")
    patch(imaging, "shrink_to", "decode")
    patch(type(detector), "__call__", "detect")
    patch(type(embedder), "align", "align_embed")
    patch(type(embedder), "embed_aligned", "align_embed")
    patch(pipeline, "thumbnail", "thumbnail")
    faces = 0
    started = time.perf_counter()
    try:
        for path in files:
            faces += _analyse(path, profile) or 0
    finally:
        for owner, attr, fn in reversed(originals):
            setattr(owner, attr, fn)
    total = time.perf_counter() - started
    n = len(files)
    per_photo = {stage: seconds / n for stage, seconds in clock.totals.items()}
    per_photo["total"] = total / n
    per_photo["other"] = per_photo["total"] - sum(v for k, v in per_photo.items() if k != "total")
    return {"photos": n, "faces": faces, "per_photo_s": per_photo,
            "align_embed_per_face_s": clock.totals.get("align_embed", 0.0) / max(faces, 1),
            "imports_s": imports, "model_load_s": models}


def main(argv: list[str]) -> None:
    mode, profile = argv[0], json.loads(argv[1])
    if mode == "throughput":
        result = throughput(profile, int(argv[2]), argv[3:])
    elif mode == "breakdown":
        result = breakdown(profile, argv[2:])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

"""The bare pgfaces pipeline of `invoke bench`: the server's detection + embedding over files, no database.

Run as a subprocess with the server's Python; prints one JSON object. The first argument is a JSON object:

  {"mode": "throughput", "profile": {...}, "processes": N, "threads": T}  FILE...
      photos/s and faces/s of N processes over the files, each with T intra-op threads per ONNX session
  {"mode": "breakdown", "profile": {...}}  FILE...
      seconds per stage (wall and CPU) in one process, and the floor: the ONNX networks' forward passes

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


def _setup(threads: int) -> None:
    import cv2

    from pgfaces import models

    cv2.setNumThreads(1)
    models.ONNX_THREADS = threads  # before any session is made


def _init(profile: dict, warm_file: str, threads: int) -> None:
    global _profile
    _setup(threads)
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


def _one(path: str) -> tuple[int | None, float]:
    started = time.process_time()
    faces = _analyse(path, _profile)
    return faces, time.process_time() - started


def throughput(profile: dict, processes: int, threads: int, files: list[str]) -> dict:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes, initializer=_init, initargs=(profile, files[0], threads)) as pool:
        # Make sure every worker has run its initializer (models loaded) before timing.
        pool.map(time.sleep, [0.2] * processes, chunksize=1)
        started = time.perf_counter()
        results = list(pool.imap_unordered(_one, files, chunksize=1))
        seconds = time.perf_counter() - started
    found = [n for n, _ in results if n is not None]
    faces = sum(found)
    return {"processes": processes, "threads": threads, "photos": len(found), "refused": len(files) - len(found),
            "faces": faces, "seconds": seconds, "photos_per_s": len(found) / seconds,
            "faces_per_s": faces / seconds, "cpu_s_per_photo": sum(cpu for _, cpu in results) / len(found)}


class _Clock:
    """Exclusive wall and CPU times per stage: a timed call inside another (a network run inside detect) counts
    for its own stage only."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.stack: list[str] = []

    def _add(self, stage: str, wall: float, cpu: float) -> None:
        self.wall[stage] = self.wall.get(stage, 0.0) + wall
        self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu

    def timed(self, stage: str, fn, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        self.stack.append(stage)
        try:
            return fn(*args, **kwargs)
        finally:
            self.stack.pop()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            self._add(stage, wall, cpu)
            if self.stack:
                self._add(self.stack[-1], -wall, -cpu)

    def wrap(self, stage: str, fn):
        return lambda *args, **kwargs: self.timed(stage, fn, *args, **kwargs)


class _Networks:
    """Wraps onnxruntime's InferenceSession.run: each run is timed as its network's stage in the pipeline, and its
    inputs kept so that replay() can run them again alone, back to back (the floor: the forward passes by
    themselves, with nothing of the pipeline between them)."""

    def __init__(self, clock: _Clock, descriptor_file: str):
        import onnxruntime

        self.cls, self.original = onnxruntime.InferenceSession, onnxruntime.InferenceSession.run
        self.clock, self.descriptor_file = clock, descriptor_file
        self.pending: list[tuple] = []
        self.alone_wall: dict[str, float] = {}
        self.alone_cpu: dict[str, float] = {}
        self.runs: dict[str, int] = {}

    def stage(self, session) -> str:
        return "descriptor network" if session._model_path == self.descriptor_file else "detector network"

    def __enter__(self):
        original, clock, pending = self.original, self.clock, self.pending

        def run(session, output_names, input_feed, run_options=None):
            pending.append((session, output_names, input_feed))
            return clock.timed(self.stage(session), original, session, output_names, input_feed, run_options)

        self.cls.run = run
        return self

    def __exit__(self, *exc):
        self.cls.run = self.original

    def replay(self) -> None:
        for session, output_names, input_feed in self.pending:
            stage = self.stage(session)
            wall, cpu = time.perf_counter(), time.process_time()
            self.original(session, output_names, input_feed)
            self.alone_wall[stage] = self.alone_wall.get(stage, 0.0) + time.perf_counter() - wall
            self.alone_cpu[stage] = self.alone_cpu.get(stage, 0.0) + time.process_time() - cpu
            self.runs[stage] = self.runs.get(stage, 0) + 1
        self.pending.clear()


def breakdown(profile: dict, files: list[str]) -> dict:
    """Wraps the functions the pipeline calls with timers, so the split follows whatever pipeline.py does."""
    started = time.perf_counter()
    _setup(1)
    from pgfaces import analysis, detectors, embedders, imaging, models, pipeline

    imports = time.perf_counter() - started
    started = time.perf_counter()
    detector = detectors.get_detector(profile["detector"], profile.get("detector_params") or {})
    embedder = embedders.get_embedder(profile["embedder"], profile.get("embedder_params") or {})
    models_s = time.perf_counter() - started
    descriptor_file = str(models.dlib_resnet_onnx(embedder.network_file)) if hasattr(embedder, "network_file") else ""
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
    patch(type(detector), "__call__", "detect (outside the network)")
    patch(type(embedder), "align", "align")
    patch(type(embedder), "embed_aligned", "descriptor chips")
    patch(pipeline, "thumbnail", "thumbnail")
    patch(pipeline.quality, "assess", "quality")
    faces, photos = 0, 0
    wall, cpu = time.perf_counter(), time.process_time()
    pipeline_wall = pipeline_cpu = 0.0
    try:
        with _Networks(clock, descriptor_file) as networks:
            for path in files:
                found = _analyse(path, profile)
                faces += found or 0
                photos += found is not None
                pipeline_wall += time.perf_counter() - wall
                pipeline_cpu += time.process_time() - cpu
                networks.replay()  # outside the pipeline's clock
                wall, cpu = time.perf_counter(), time.process_time()
    finally:
        for owner, attr, fn in reversed(originals):
            setattr(owner, attr, fn)
    n = len(files)
    per_photo = {stage: seconds / n for stage, seconds in clock.wall.items()}
    per_photo_cpu = {stage: seconds / n for stage, seconds in clock.cpu.items()}
    for table, total in ((per_photo, pipeline_wall), (per_photo_cpu, pipeline_cpu)):
        table["other"] = total / n - sum(table.values())
        table["total"] = total / n
    return {"photos": n, "read": photos, "faces": faces, "per_photo_s": per_photo, "per_photo_cpu_s": per_photo_cpu,
            "floor_per_photo_s": {k: v / n for k, v in networks.alone_wall.items()},
            "floor_per_photo_cpu_s": {k: v / n for k, v in networks.alone_cpu.items()},
            "network_runs_per_photo": {k: v / n for k, v in networks.runs.items()},
            "imports_s": imports, "model_load_s": models_s}


def main(argv: list[str]) -> None:
    job, files = json.loads(argv[0]), argv[1:]
    if job["mode"] == "throughput":
        result = throughput(job["profile"], job.get("processes", 1), job.get("threads", 1), files)
    elif job["mode"] == "breakdown":
        result = breakdown(job["profile"], files)
    else:
        raise SystemExit(f"unknown mode {job['mode']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

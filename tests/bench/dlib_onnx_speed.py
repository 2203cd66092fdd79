"""CPU time per face of dlib's face descriptor: dlib-bin's compute_face_descriptor vs onnxruntime (dlib_onnx).

  python tests/bench/dlib_onnx_speed.py [PHOTO_DIR] [REPEATS]

Chips come from the photos (HOG detector, 5-point shape, get_face_chip 150 px, padding 0.25). Times are CPU
seconds of this process (time.process_time), the best of REPEATS interleaved rounds, so a busy machine inflates
them less than wall time; with 2 intra-op threads CPU time adds up both threads: see the wall time. Prints a
table and the max |onnxruntime - dlib|.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
REPO = pathlib.Path(__file__).resolve().parents[2]

import cv2  # noqa: E402
import dlib  # noqa: E402
import face_recognition_models as models  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from pgfaces import dlib_onnx  # noqa: E402


def chips_from(directory: pathlib.Path, limit: int = 24) -> list[np.ndarray]:
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    chips = []
    for file in sorted(directory.glob("*.jpg")):
        image = cv2.imread(str(file))
        if image is None:
            continue
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        for rect in detector(rgb, 0):
            chips.append(dlib.get_face_chip(rgb, shapes(rgb, rect), size=150, padding=0.25))
        if len(chips) >= limit:
            break
    return chips[:limit]


def measure(calls: dict, repeats: int) -> dict:
    """{name: (CPU s, wall s)} per call, each the minimum over repeats; rounds interleave the calls (after a warm-up
    call each), so a machine that gets busier part way through slows all of them alike."""
    for call in calls.values():
        call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            c, w = time.process_time(), time.perf_counter()
            call()
            times[name].append((time.process_time() - c, time.perf_counter() - w))
    return {name: (min(t[0] for t in ts), min(t[1] for t in ts)) for name, ts in times.items()}


def session(blob: bytes, level, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    return ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])


def main() -> None:
    given = sys.argv[1] if len(sys.argv) > 1 else ""
    directory = pathlib.Path(given) if given else REPO.parent / "shared/faces/party/real"
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    dat = models.face_recognition_model_location()
    chips = chips_from(directory)
    if len(chips) < 8:
        sys.exit(f"only {len(chips)} faces found in {directory}: need 8")
    batch = np.asarray(chips, np.float32)
    print(f"{len(chips)} chips from {directory}; load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")

    t = time.process_time()
    blob = dlib_onnx.build_onnx(dat)
    print(f"build_onnx: {time.process_time() - t:.2f} s CPU, {len(blob) / 1e6:.1f} MB")

    encoder = dlib.face_recognition_model_v1(dat)
    reference = np.array([np.array(v) for v in encoder.compute_face_descriptor(chips, 0)], np.float32)
    levels = [("DISABLE_ALL", ort.GraphOptimizationLevel.ORT_DISABLE_ALL, 1),
              ("BASIC", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, 1),
              ("EXTENDED", ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, 1),
              ("ALL (NCHWc layout)", ort.GraphOptimizationLevel.ORT_ENABLE_ALL, 1),
              ("ALL, 2 intra-op threads", ort.GraphOptimizationLevel.ORT_ENABLE_ALL, 2)]
    calls, worst = {}, 0.0
    for size in (1, 4, 8):
        calls["dlib-bin compute_face_descriptor", size] = lambda n=size: encoder.compute_face_descriptor(chips[:n], 0)
    for name, level, threads in levels:
        run = session(blob, level, threads)
        worst = max(worst, float(np.abs(run.run(None, {dlib_onnx.INPUT_NAME: batch})[0] - reference).max()))
        for size in (1, 4, 8):
            calls["onnxruntime " + name, size] = lambda n=size, r=run: r.run(None, {dlib_onnx.INPUT_NAME: batch[:n]})
    rows = [(name, size, cpu / size, wall / size) for (name, size), (cpu, wall) in measure(calls, repeats).items()]

    print(f"max |onnxruntime - dlib| over {len(chips)} faces, all variants: {worst:.2e}")
    print(f"{'variant':45} {'batch':>5} {'CPU ms/face':>12} {'wall ms/face':>13}")
    for name, size, cpu, wall in rows:
        print(f"{name:45} {size:5d} {cpu * 1e3:12.1f} {wall * 1e3:13.1f}")


if __name__ == "__main__":
    main()

"""Speed and memory of pgfaces: `invoke bench [--faces 1000000] [--folder DIR] [--rounds 2] [--threads 2]`.

Prints tables (tests/bench/speed_report.py) and writes bench-results/speed.json. Everything runs in databases of its
own on the project's server (pgfaces_speed_*), never the user's. Figures are printed, never asserted; each table
says the load average it was measured at, and the ratios are of things measured side by side in one run.

- Ingest (tests/bench/speed_ingest.py): the public party bench (133 photos) or `--folder`, through INSERT (pgfaces'
  trigger, 1 and N connections) against the talk's naive client loop (tests/bench/naive.py) and the bare pipeline
  (tests/bench/speed_bare.py), 1 and N processes; the floor (the networks' forward passes alone) and where a
  photo's time goes; with `--threads T`, one process with T intra-op threads per ONNX session against 1; a new
  backend's first call and its memory (tests/bench/speed_backend.py).
- Search (tests/bench/speed_search.py): find_faces_near at 10k, 100k and 1M faces up to `--faces`, per
  hnsw.ef_search, against exact search; with `--search-options`, pgvector 0.8's other options
  (tests/bench/speed_search_options.py); the image searches of a 1 MP reference.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

from . import databases, speed_ingest, speed_report, speed_search, synthetic
from .measure import load_average
from .speed_photos import photo_files

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "speed.json"


def server_dlib(server_python: str) -> str:
    return subprocess.run([server_python, "-c", "import dlib; print(dlib.__version__, 'BLAS' if dlib.DLIB_USE_BLAS"
                           " else 'no BLAS', 'AVX' if dlib.USE_AVX_INSTRUCTIONS else 'no AVX')"],
                          capture_output=True, text=True).stdout.strip()


def run(admin_url: str, *, profiles: list[str] | None = None, folder: pathlib.Path | None = None, photos: int = 0,
        workers: int = 0, rounds: int = 2, threads: int = 1, faces: int = 100_000, queries: int = 200,
        ef_search: str = "40,100,150", hnsw_grid: str = "", full_precision: bool = False,
        search_options: bool = False, synthetic_model: str = "people", skip_ingest: bool = False,
        skip_search: bool = False, reuse_search: bool = False, server_python: str = sys.executable) -> dict:
    """The whole benchmark; prints its tables and writes bench-results/speed.json."""
    profiles = profiles or ["mtcnn"]
    workers = workers or os.cpu_count() or 2
    args = {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in locals().items() if k != "admin_url"}
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_start": load_average(),
              "server_dlib": server_dlib(server_python), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "args": args,
              "ingest": []}
    if not skip_ingest:
        files = photo_files(folder, photos)
        for profile in profiles:
            report["ingest"].append(speed_ingest.bench_ingest(admin_url, profile, files, workers, rounds, threads,
                                                              server_python))
    if not skip_search:
        sizes = [s for s in (10_000, 100_000, 1_000_000) if s <= faces] or [faces]
        grid = [tuple(int(v) for v in pair.split(":")) for pair in hnsw_grid.split(",") if pair]
        report["search"] = speed_search.bench_search(
            admin_url, databases.database_url(admin_url, f"pgfaces_speed_{profiles[0]}"), profiles[0], sizes, queries,
            [int(v) for v in ef_search.split(",")], synthetic_model, search_options, full_precision, grid,
            reuse_search)
    report["load_end"] = load_average()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str))
    speed_report.print_tables(report)
    print(f"\nwritten: {RESULTS}")
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--profile", dest="profiles", action="append", default=[], help="ingest profiles (default mtcnn)")
    parser.add_argument("--folder", type=pathlib.Path, help="photos to ingest (default: the party bench's 133)")
    parser.add_argument("--photos", type=int, default=0, help="only the first N photos")
    parser.add_argument("--workers", type=int, default=0, help="connections / processes of the parallel runs")
    parser.add_argument("--rounds", type=int, default=2, help="side-by-side ingest rounds, alternating order")
    parser.add_argument("--threads", type=int, default=1, help="also one process with this many ONNX threads")
    parser.add_argument("--faces", type=int, default=100_000, help="largest search size (10k, 100k, 1M up to it)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", default="40,100,150", help="hnsw.ef_search values to measure")
    parser.add_argument("--hnsw-grid", default="", help="m:ef_construction pairs to build besides the shipped one")
    parser.add_argument("--full-precision", action="store_true", help="also a full-precision (vector) HNSW index")
    parser.add_argument("--search-options", action="store_true", help="also pgvector's other options")
    parser.add_argument("--synthetic", dest="synthetic_model", choices=synthetic.MODELS, default="people",
                        help="how the synthetic vectors are drawn (see tests/bench/synthetic.py)")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--reuse-search", action="store_true", help="keep an earlier run's search database")
    parser.add_argument("--server-python", default=sys.executable,
                        help="python of the server's venv, for the bare and naive loops (same dlib, OpenCV, onnxruntime)")
    options = vars(parser.parse_args(argv))
    return run(options.pop("admin_url"), **options)


if __name__ == "__main__":
    main()

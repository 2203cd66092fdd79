"""Ingest speed for `invoke bench`, side by side in one run: pgfaces (INSERT through the trigger, pgfaces.loader.load
over 1 and N connections), the talk's naive client loop (tests/bench/naive.py, 1 and N processes) and the bare
pgfaces pipeline with no database (tests/bench/speed_bare.py, 1 and N processes), round after round so that a
machine getting busier slows them alike. Then, in one process: where a photo's time goes, and the floor (the ONNX
networks' forward passes alone) that the INSERT's time is a multiple of.

CPU seconds per photo are those of the processes doing the work: the server backends for pgfaces (sampled from
/proc while they run), the client processes for the naive loop (its backends only store rows) and the bare loop.
"""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import subprocess
import time

from . import databases, speed_backend
from .measure import BackendCpu, backend_cpu_seconds, load_average, log
from .speed_photos import group, labelled_faces

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NAIVE_DB = "pgfaces_speed_naive"


def _python(server_python: str, script: str, args: list[str], files: list[pathlib.Path]) -> dict:
    """Runs a benchmark program with the server's Python and this checkout's package, one thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT / "plpython")}
    out = subprocess.run([server_python, str(HERE / script), *args, *(str(f) for f in files)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bare(server_python: str, job: dict, files: list[pathlib.Path]) -> dict:
    return _python(server_python, "speed_bare.py", [json.dumps(job)], files)


def naive(server_python: str, url: str, processes: int, files: list[pathlib.Path]) -> dict:
    return _python(server_python, "naive.py", [url, str(processes)], files)


def pgfaces_load(url: str, files: list[pathlib.Path], connections: int) -> dict:
    """`invoke load`'s loader into an empty photos table: new connections, so backends start as a user's would."""
    import psycopg

    from pgfaces.loader import load

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate photos cascade")
    with BackendCpu(url) as cpu:
        report = load(url, [str(f) for f in files], workers=connections, progress=False)
    if report.failed:
        log(f"  {len(report.failed)} failed: {report.failed[:3]}")
    return {"connections": connections, "photos": report.loaded, "faces": report.faces, "seconds": report.seconds,
            "photos_per_s": report.loaded / report.seconds, "faces_per_s": report.faces / report.seconds,
            "cpu_s_per_photo": cpu.seconds / max(report.loaded, 1)}


def faces_by_group(url: str, photos_table: str, faces_table: str) -> dict[str, int]:
    import psycopg

    counts: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        for filename, faces in conn.execute(
                f"select p.filename, count(f.id) from {photos_table} p left join {faces_table} f on f.photo_id = p.id"
                " group by p.filename"):
            counts[group(filename)] = counts.get(group(filename), 0) + faces
    return counts


def insert_without_analysis(url: str, files: list[pathlib.Path]) -> dict:
    """An INSERT with no profile ingesting, per photo: hash, EXIF, the row and its out-of-line bytes."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate photos cascade")
        profiles = [r[0] for r in conn.execute("select name from profiles where ingest")]
        conn.execute("update profiles set ingest = false")
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]
        cpu, started = backend_cpu_seconds(pid), time.perf_counter()
        for f in files:  # as `invoke load` does: the same bytes once, an unreadable file refused and passed over
            try:
                conn.execute("insert into photos (filename, image) values (%s, %s) on conflict (sha256) do nothing",
                             (str(f), f.read_bytes()))
            except psycopg.errors.DataException:
                pass
        seconds, cpu = time.perf_counter() - started, backend_cpu_seconds(pid) - cpu
        conn.execute("update profiles set ingest = (name = any(%s))", (profiles,))
    return {"wall_s": seconds / len(files), "cpu_s": cpu / len(files)}


def side_by_side(url: str, naive_url: str, profile: dict, files: list[pathlib.Path], counts: list[int],
                 rounds: int, server_python: str) -> list[dict]:
    """Every contender once per round and process count; even rounds go in the reverse order, so that a machine
    getting busier or quieter during the run weighs on every contender alike."""
    contenders = [("pgfaces", "pgfaces INSERT", lambda n: pgfaces_load(url, files, n)),
                  ("naive", "naive client loop", lambda n: naive(server_python, naive_url, n, files)),
                  ("bare", "bare pipeline", lambda n: bare(server_python, {"mode": "throughput", "profile": profile,
                                                                           "processes": n}, files))]
    runs = []
    for r in range(rounds):
        for n in counts:
            run = {"round": r + 1, "n": n, "load_before": load_average()}
            for key, label, measure in (contenders if r % 2 == 0 else contenders[::-1]):
                log(f"ingest round {r + 1}/{rounds}: {label}, {n} connection(s) / process(es)")
                run[key] = measure(n)
            run["load_after"] = load_average()
            runs.append(run)
    return runs


def threads_compare(profile: dict, files: list[pathlib.Path], threads: int, rounds: int, server_python: str) -> list:
    """The bare pipeline in one process with 1 and with `threads` intra-op threads per ONNX session, alternating."""
    runs = []
    for r in range(rounds):
        for t in ((1, threads) if r % 2 == 0 else (threads, 1)):
            log(f"threads round {r + 1}/{rounds}: bare pipeline, 1 process, {t} intra-op thread(s)")
            runs.append({"round": r + 1, "load_before": load_average(),
                         **bare(server_python, {"mode": "throughput", "profile": profile, "threads": t}, files)})
    return runs


def summary(runs: list[dict], counts: list[int]) -> dict:
    """Medians over the rounds: pgfaces/naive and pgfaces/bare photos/s, and naive/pgfaces CPU s per photo."""
    out = {}
    for n in counts:
        mine = [r for r in runs if r["n"] == n]
        out[n] = {
            "pgfaces_over_naive": statistics.median(r["pgfaces"]["photos_per_s"] / r["naive"]["photos_per_s"] for r in mine),
            "pgfaces_over_bare": statistics.median(r["pgfaces"]["photos_per_s"] / r["bare"]["photos_per_s"] for r in mine),
            "naive_cpu_over_pgfaces_cpu": statistics.median(
                r["naive"]["client_cpu_s_per_photo"] / r["pgfaces"]["cpu_s_per_photo"] for r in mine),
        }
    return out


def floor(breakdown: dict, runs: list[dict]) -> dict:
    """The INSERT's seconds per photo (1 connection) as a multiple of the networks' forward passes timed alone."""
    one = [r for r in runs if r["n"] == 1]
    insert_cpu = statistics.median(r["pgfaces"]["cpu_s_per_photo"] for r in one)
    insert_wall = statistics.median(1 / r["pgfaces"]["photos_per_s"] for r in one)
    bare_cpu = statistics.median(r["bare"]["cpu_s_per_photo"] for r in one)
    floor_cpu = sum(breakdown["floor_per_photo_cpu_s"].values())
    floor_wall = sum(breakdown["floor_per_photo_s"].values())
    # What the database adds to a photo: the backend's CPU per photo beyond the bare pipeline's, round by round.
    db_write = [r["pgfaces"]["cpu_s_per_photo"] - r["bare"]["cpu_s_per_photo"] for r in one]
    return {"floor_cpu_s": floor_cpu, "floor_wall_s": floor_wall, "insert_cpu_s": insert_cpu,
            "insert_wall_s": insert_wall, "bare_cpu_s": bare_cpu,
            "insert_over_floor_cpu": insert_cpu / floor_cpu, "insert_over_floor_wall": insert_wall / floor_wall,
            "bare_over_floor_cpu": bare_cpu / floor_cpu,
            "db_write_cpu_s": statistics.median(db_write), "db_write_cpu_s_rounds": db_write}


def bench_ingest(admin_url: str, profile: str, files: list[pathlib.Path], workers: int, rounds: int, threads: int,
                 server_python: str) -> dict:
    log(f"ingest {profile}: fresh databases")
    url = databases.fresh_database(admin_url, f"pgfaces_speed_{profile}")
    databases.only_profile(url, profile)
    prof = databases.profile_dict(url, profile)
    naive_url = databases.empty_database(admin_url, NAIVE_DB)
    counts = sorted({1, workers})
    result: dict = {"profile": profile, "photos": len(files), "folders": sorted({str(f.parent) for f in files}),
                    "workers": workers, "rounds": rounds, "load_before": load_average()}

    log(f"ingest {profile}: INSERT with no profile ingesting (row write only)")
    result["insert_without_analysis"] = insert_without_analysis(url, files)
    result["runs"] = side_by_side(url, naive_url, prof, files, counts, rounds, server_python)
    result["summary"] = summary(result["runs"], counts)
    result["labelled_faces"] = labelled_faces(files)
    result["faces_found"] = {"pgfaces": faces_by_group(url, "photos", "faces"),
                             "naive": faces_by_group(naive_url, "naive_photos", "naive_faces")}

    log(f"ingest {profile}: per-stage breakdown and the networks' floor (bare, 1 process)")
    result["breakdown"] = bare(server_python, {"mode": "breakdown", "profile": prof}, files)
    result["floor"] = floor(result["breakdown"], result["runs"])
    if threads > 1:
        result["threads"] = threads_compare(prof, files, threads, rounds, server_python)

    result["first_call"] = speed_backend.first_call(url, profile)
    result["memory_50mp"] = speed_backend.memory_50mp(url, profile)
    result["load_after"] = load_average()
    return result

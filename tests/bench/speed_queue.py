"""Deferred analysis and read replicas, measured: `invoke bench-queue` (README, "Deferred analysis" and "Scale").

In a database of its own on the project's server (pgfaces_bench_queue), on the party photos by default:
- INSERT cost: a deferred INSERT into `photos` against a plain INSERT of the same bytes into a table with one bytea
  column and no trigger, photo by photo, interleaved, in warm backends; per round the mean ms per photo; several
  rounds, their medians compared.
- Draining: photos/s of 2 in-server workers (`./pgfaces work --workers 2`) on the deferred photos against the
  immediate path with 2 connections (`./pgfaces load --workers 2`), alternated, each run twice.
- Client workers: photos/s of N processes `python -m pgfaces.client work` for N = 1, 2 (wall time, so each
  process's model loading counts; and steady, between the first and the last photo finished), and their CPU s per
  photo: where that stays flat, throughput grows with workers as long as there are idle cores.
- Replica: a hot standby of the server (`./pgfaces up --replica-of`, in a temporary folder on a free port),
  find_photos_like p50 of a ~1 MP reference on each, queries alternated.
A benchmark that prints figures, not a test with thresholds. The machine is shared: the load average is printed.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from . import databases
from .measure import load_average, log
from .speed_backend import reference_1mp

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "queue.json"
DB = "pgfaces_bench_queue"
DEFERRED = "-c pgfaces.analyse=deferred"


def insert_cost(url: str, files: list[pathlib.Path], rounds: int) -> dict:
    import psycopg

    data = [f.read_bytes() for f in files]
    with psycopg.connect(url, autocommit=True) as plain, psycopg.connect(url, autocommit=True, options=DEFERRED) as dfr:
        plain.execute("drop table if exists bench_plain; create table bench_plain (image bytea)")
        dfr.execute("insert into photos (filename, image) values ('warm.jpg', %s)", (data[0],))  # imports, plans
        plain.execute("insert into bench_plain values (%s)", (data[0],))
        per_round = []
        for r in range(rounds):
            plain.execute("truncate bench_plain")
            dfr.execute("truncate photos cascade")
            times = {"plain": [], "deferred": []}
            for i, d in enumerate(data):
                for kind, conn, sql, args in (("plain", plain, "insert into bench_plain values (%s)", (d,)),
                                              ("deferred", dfr, "insert into photos (filename, image) values (%s, %s)",
                                               (f"{r}-{i}.jpg", d)))[:: 1 if i % 2 else -1]:
                    started = time.perf_counter()
                    conn.execute(sql, args)
                    times[kind].append(time.perf_counter() - started)
            per_round.append({k: 1000 * statistics.mean(v) for k, v in times.items()})
            log(f"insert round {r + 1}: plain {per_round[-1]['plain']:.1f} ms, deferred {per_round[-1]['deferred']:.1f} ms")
        plain.execute("drop table bench_plain")
        queued = dfr.execute("select count(*) from analysis_queue where state = 'queued'").fetchone()[0]
    plain_ms = statistics.median(r["plain"] for r in per_round)
    deferred_ms = statistics.median(r["deferred"] for r in per_round)
    return {"rounds": per_round, "plain_ms": plain_ms, "deferred_ms": deferred_ms, "ratio": deferred_ms / plain_ms,
            "queued": queued, "bytes_mean": statistics.mean(map(len, data))}


def drain_vs_immediate(url: str, files: list[pathlib.Path], repeats: int) -> dict:
    import psycopg

    from pgfaces import loader
    from pgfaces.client import worker

    immediate, drained = [], []
    for r in range(repeats):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("truncate photos cascade")
        report = loader.load(url, [str(f) for f in files], workers=2, progress=False)
        immediate.append(report.loaded / report.seconds)
        log(f"immediate, 2 connections: {immediate[-1]:.2f} photos/s")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("truncate photos cascade")
        loader.load(url, [str(f) for f in files], workers=2, progress=False, deferred=True)
        done = worker.work(url, 2, True, worker.Options(until_empty=True, poll=0.1))
        drained.append(done.done / done.seconds)
        log(f"drain, 2 in-server workers: {drained[-1]:.2f} photos/s ({done.done} photos)")
    best_i, best_d = statistics.median(immediate), statistics.median(drained)
    return {"immediate_2_connections": immediate, "drain_2_workers": drained, "immediate_photos_s": best_i,
            "drain_photos_s": best_d, "ratio": best_d / best_i}


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def client_workers(url: str, counts=(1, 2)) -> dict:
    import psycopg

    out = {}
    for n in counts:
        with psycopg.connect(url, autocommit=True) as conn:
            jobs = conn.execute("select pgfaces_queue(null, 'mtcnn')").fetchone()[0]
        # N processes of one loop each, as on N machines: each in a session of its own, so that Linux's autogroup
        # scheduling gives each its own share of a busy machine's cores (in one session they share one). Their CPU
        # time is counted as our children's.
        started, cpu = time.monotonic(), _children_cpu()
        workers = [subprocess.Popen([sys.executable, "-m", "pgfaces.client", "work", "--dsn", url, "--workers", "1",
                                     "--until-empty"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
                   for _ in range(n)]
        assert all(w.wait() == 0 for w in workers)
        wall, cpu = time.monotonic() - started, _children_cpu() - cpu
        with psycopg.connect(url) as conn:
            done, span = conn.execute("select count(*), extract(epoch from max(finished_at) - min(finished_at))"
                                      " from analysis_queue where state = 'done'").fetchone()
        out[n] = {"photos": done, "wall_photos_s": done / wall, "steady_photos_s": (done - 1) / float(span),
                  "cpu_s_per_photo": cpu / done, "load": load_average()}
        log(f"client workers {n}: {out[n]['wall_photos_s']:.2f} photos/s wall, {out[n]['steady_photos_s']:.2f} steady,"
            f" {out[n]['cpu_s_per_photo']:.2f} CPU s/photo ({done}/{jobs} done; load {out[n]['load']})")
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replica_search(admin_url: str, url: str, queries: int) -> dict:
    import psycopg

    base = tempfile.mkdtemp(prefix="pgfaces-bench-replica-", dir="/tmp")
    os.chmod(base, 0o755)
    env = {**os.environ, "PGFACES_HOME": base, "PGFACES_PORT": str(_free_port())}

    def pgfaces(*args: str) -> str:
        done = subprocess.run(["./pgfaces", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip().splitlines()[-1]

    reference = reference_1mp()
    sql = "select * from find_photos_like(%s, 10)"
    try:
        replica_admin = pgfaces("up", "--replica-of", admin_url)
        replica = databases.database_url(replica_admin, DB)
        with psycopg.connect(url, autocommit=True) as p, psycopg.connect(replica, autocommit=True) as r:
            lsn = p.execute("select pg_current_wal_lsn()").fetchone()[0]
            while not r.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                time.sleep(0.2)
            assert p.execute(sql, (reference,)).fetchall() == r.execute(sql, (reference,)).fetchall()
            times = {"primary": [], "replica": []}
            for _ in range(3):  # warm both
                p.execute(sql, (reference,)).fetchall()
                r.execute(sql, (reference,)).fetchall()
            for i in range(queries):
                for name, conn in ((("primary", p), ("replica", r)) if i % 2 else (("replica", r), ("primary", p))):
                    started = time.perf_counter()
                    conn.execute(sql, (reference,)).fetchall()
                    times[name].append(1000 * (time.perf_counter() - started))
            faces = p.execute("select count(*) from faces").fetchone()[0]
    finally:
        subprocess.run(["./pgfaces", "down"], cwd=ROOT, env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    fastest = {k: min(v) for k, v in times.items()}
    log(f"find_photos_like p50: primary {p50['primary']:.1f} ms, replica {p50['replica']:.1f} ms; fastest "
        f"{fastest['primary']:.1f} / {fastest['replica']:.1f} ms ({faces} faces)")
    return {"faces": faces, "p50_ms": p50, "min_ms": fastest, "ratio": p50["replica"] / p50["primary"],
            "queries": queries}


def run(admin_url: str, folder: pathlib.Path, rounds: int = 3, repeats: int = 2, queries: int = 30,
        skip_replica: bool = False) -> dict:
    files = sorted(folder.glob("*.jpg"))
    log(f"{len(files)} photos from {folder}; load average {load_average()}")
    url = databases.fresh_database(admin_url, DB)
    result = {"photos": len(files), "folder": str(folder), "load_before": load_average(),
              "insert": insert_cost(url, files, rounds), "drain": drain_vs_immediate(url, files, repeats),
              "client_workers": client_workers(url)}
    if not skip_replica:
        result["replica"] = replica_search(admin_url, url, queries)
    result["load_after"] = load_average()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str))
    print(report(result))
    return result


def report(r: dict) -> str:
    i, d, c = r["insert"], r["drain"], r["client_workers"]
    lines = [f"queue benchmark: {r['photos']} photos of {r['folder']} (mean {i['bytes_mean'] / 1e3:.0f} kB); load "
             f"average {r['load_before']} before, {r['load_after']} after",
             "| measure | value |", "|---|---|",
             f"| plain INSERT (one bytea column, no trigger) | {i['plain_ms']:.1f} ms |",
             f"| deferred INSERT into photos (metadata + queue) | {i['deferred_ms']:.1f} ms |",
             f"| ratio deferred / plain (target <= 1.3) | {i['ratio']:.2f} |",
             f"| immediate, 2 connections | {d['immediate_photos_s']:.2f} photos/s |",
             f"| drain, 2 in-server workers | {d['drain_photos_s']:.2f} photos/s |",
             f"| ratio drain / immediate (target >= 0.95) | {d['ratio']:.2f} |"]
    lines += [f"| client workers, {n} | {v['wall_photos_s']:.2f} photos/s wall, {v['steady_photos_s']:.2f} steady, "
              f"{v['cpu_s_per_photo']:.2f} CPU s/photo |" for n, v in c.items()]
    if "replica" in r:
        p = r["replica"]
        lines += [f"| find_photos_like p50, primary / replica ({p['faces']} faces) | {p['p50_ms']['primary']:.1f} /"
                  f" {p['p50_ms']['replica']:.1f} ms (fastest {p['min_ms']['primary']:.1f} /"
                  f" {p['min_ms']['replica']:.1f}) |",
                  f"| ratio replica / primary (target <= 1.10) | {p['ratio']:.2f} |"]
    return "\n".join(lines)

"""`./pgfaces bench-shards`: search on one node against 2 and 3 shards holding the same synthetic faces, and ingest
through an entry node against one node (README, "Shards"). Prints figures, asserts none.

The shard setups are made by `./pgfaces up --shards N` in a temporary folder on free ports and stopped at the end;
the single node is a database of the project's server (pgfaces_bench_shards_*, dropped at the end). The faces are
tests/bench/synthetic.py's people fitted to the real faces of the party photos, written with binary COPY (triggers
off: nothing analysed) straight into each shard, a photo and its 8 faces on the shard its number falls to.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

from . import speed_photos, speed_search_data as data
from .measure import log, pct



def _free_base(count: int) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        ok = True
        for i in range(count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", base + i))
                except OSError:
                    ok = False
        if ok and base + count < 65536:
            return base
    raise RuntimeError("no free ports")


def start_setup(repo, base: str, shards: int) -> tuple[str, list[str], dict]:
    """`./pgfaces up --shards N` in base/; returns the entry's URL, the shards' own URLs, and its environment."""
    port = _free_base(shards + 1)
    env = {**os.environ, "PGFACES_HOME": os.path.join(base, f"entry{shards}"), "PGFACES_PORT": str(port)}
    done = subprocess.run([str(repo / "pgfaces"), "up", "--shards", str(shards)], cwd=repo, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    entry = done.stdout.strip().splitlines()[-1]
    urls = []
    for k in range(1, shards + 1):
        password = open(os.path.join(env["PGFACES_HOME"], "shards", str(k), "superuser-password")).read().strip()
        urls.append(f"postgresql://postgres:{password}@127.0.0.1:{port + k}/pgfaces")
    return entry, urls, env


def latencies(url: str, sql: str, queries: list[str], rows: int = 10) -> tuple[list[float], list[list[float]]]:
    import psycopg

    times, results = [], []
    with psycopg.connect(url, autocommit=True) as conn:
        for q in queries[:5]:  # warm: connections to the shards, plans, index pages
            conn.execute(sql, (q, rows)).fetchall()
        for q in queries:
            started = time.perf_counter()
            got = conn.execute(sql, (q, rows)).fetchall()
            times.append((time.perf_counter() - started) * 1000)
            results.append([round(r[-1], 9) for r in got])
    return times, results


def recall(results: list[list[float]], exact: list[list[float]]) -> float:
    return sum(len(set(r) & set(e)) for r, e in zip(results, exact)) / sum(len(e) for e in exact)


def run(admin_url: str, repo, faces: int = 100_000, queries: int = 200, setups=(2, 3), ingest_photos: int = 24) -> None:
    import psycopg

    from pgfaces import loader
    from pgfaces.migrate import migrate

    profile = "mtcnn"
    base_url = admin_url.rsplit("/", 1)[0]
    names = ["pgfaces_bench_shards_fit", "pgfaces_bench_shards_single"]
    tmp = tempfile.mkdtemp(prefix="pgfaces-bench-shards-", dir="/tmp")
    os.chmod(tmp, 0o755)
    envs = []
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for name in names:
                conn.execute(f'drop database if exists "{name}" with (force)')
                conn.execute(f'create database "{name}"')
        fit, single = (f"{base_url}/{n}" for n in names)
        for url in (fit, single):
            with psycopg.connect(url) as conn:
                migrate(conn, repo / "sql", log=lambda *_: None)
        parties = sorted((speed_photos.PARTY / "parties").glob("*.jpg"))[:ingest_photos]
        log(f"ingest: {len(parties)} party photos into one node, 2 connections")
        one = loader.load(fit, [str(p) for p in parties], workers=2, progress=False)
        real, photo_ids = data.real_embeddings(fit, profile)
        model, _ = data.synthetic_model(fit, profile, "people", real, photo_ids)
        vectors = model.draw(faces)
        literals = [data.vector_literal(q) for q in model.queries(queries)]
        log(f"search: {faces} synthetic faces into one node")
        data.copy_synthetic(single, profile, vectors, first_photo=1)
        sql = "select * from find_faces_near(%s::vector, %s)"
        with psycopg.connect(single, autocommit=True) as conn:
            conn.execute("vacuum analyze faces")
            conn.execute("set enable_indexscan = off")
            conn.execute("set enable_bitmapscan = off")
            exact = [[round(r[-1], 9) for r in conn.execute(
                "select (embedding::vector(128) <-> %s::vector(128))::float8 from faces order by 1 limit 10",
                (q,))] for q in literals]
        times, got = latencies(single, sql, literals)
        table = [("one node", pct(times, 0.5), pct(times, 0.95), recall(got, exact), one.photos_per_second)]
        photos_of = (len(vectors) + 7) // 8
        for shards in setups:
            log(f"search: {shards} shards (./pgfaces up --shards {shards}), the same {faces} faces")
            entry, urls, env = start_setup(repo, tmp, shards)
            envs.append(env)
            for k, url in enumerate(urls, 1):
                mine = [p for p in range(photos_of) if p % shards == k - 1]
                rows = [i for p in mine for i in range(p * 8, min(p * 8 + 8, len(vectors)))]
                data.copy_synthetic(url, profile, vectors[rows], first_photo=k * 10**12 + 1)
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("vacuum analyze faces")
            times, got = latencies(entry, sql, literals)
            log(f"ingest: the same party photos through the entry node of {shards} shards, 2 connections")
            through = loader.load(entry, [str(p) for p in parties], workers=2, progress=False)
            table.append((f"{shards} shards", pct(times, 0.5), pct(times, 0.95), recall(got, exact),
                          through.photos_per_second))
        print(f"\nfind_faces_near(vector, 10) at {faces} faces, {queries} queries (hnsw.ef_search 100), "
              f"recall@10 against the exact search; ingest of {len(parties)} party photos, 2 connections\n")
        print("| setup | p50 | p95 | recall@10 | ingest photos/s |")
        print("|---|---|---|---|---|")
        for name, p50, p95, rec, ingest in table:
            print(f"| {name} | {p50:.1f} ms | {p95:.1f} ms | {rec:.3f} | {ingest:.2f} |")
    finally:
        for env in envs:
            subprocess.run([str(repo / "pgfaces"), "down"], cwd=repo, env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for name in names:
                conn.execute(f'drop database if exists "{name}" with (force)')

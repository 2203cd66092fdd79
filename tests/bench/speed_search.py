"""Search speed for `invoke bench`, in a database of its own (pgfaces_speed_search): the ingest run's real faces plus
synthetic ones (tests/bench/speed_search_data.py) at 10k, 100k and 1M faces up to `--faces`. At each size: the exact
10 nearest faces of every query (index scans off), then the vector searches of tests/bench/speed_search_options.py
against them, and the image searches of a ~1 MP reference in one warm backend.

Queries are not in the table: half are real faces moved by 5% of their spread, half new faces of synthetic people
already in it. `--reuse-search` keeps the database of an earlier run that reached the same size with the same
queries (its vectors, exact neighbours and indexes), so that options can be measured again at 1M faces without
writing and building everything again.
"""

from __future__ import annotations

import json
import statistics
import time

from . import databases, speed_search_data as data, speed_search_options as options
from .measure import load_average, log, pct
from .speed_backend import reference_1mp

SEARCH_DB = "pgfaces_speed_search"


def _state(conn) -> dict | None:
    """What an earlier run left in the database: its size, queries and their exact neighbours."""
    if not conn.execute("select to_regclass('bench_search_state') is not null").fetchone()[0]:
        return None
    row = conn.execute("select state from bench_search_state").fetchone()
    return row[0] if row else None


def _save_state(conn, state: dict) -> None:
    conn.execute("create table if not exists bench_search_state (state jsonb)")
    conn.execute("truncate bench_search_state")
    conn.execute("insert into bench_search_state values (%s)", (json.dumps(state),))


def exact_neighbours(conn, profile: str, literals: list[str]) -> list[list[int]]:
    with conn.transaction():
        conn.execute("set local enable_indexscan = off")
        conn.execute("set local enable_bitmapscan = off")
        return [[r[0] for r in conn.execute(
            "select id from faces where profile = %s order by embedding::vector(128) <-> %s::vector(128), id limit 10",
            (profile, q))] for q in literals]


def reusable(admin_url: str, profile: str, size: int, queries: int, model: str) -> tuple[str, dict] | None:
    """The search database of an earlier run at this size, queries and model, if there is one."""
    import psycopg

    if not databases.exists(admin_url, SEARCH_DB):
        return None
    url = databases.database_url(admin_url, SEARCH_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        state = _state(conn)
    wanted = {"faces": size, "queries": queries, "model": model, "profile": profile}
    if state and all(state.get(k) == v for k, v in wanted.items()):
        return url, state
    return None


def bench_search(admin_url: str, ingest_url: str, profile: str, sizes: list[int], queries: int, ef_values: list[int],
                 model: str = "people", search_options: bool = False, full_precision: bool = False,
                 hnsw_grid: list[tuple[int, int]] = (), reuse: bool = False) -> dict:
    import numpy as np
    import psycopg

    earlier = reusable(admin_url, profile, sizes[-1], queries, model) if reuse else None
    if earlier:
        url, state = earlier
        log(f"search: reusing {SEARCH_DB} ({state['faces']} faces, its queries and exact neighbours)")
        sizes, literals = [sizes[-1]], state["literals"]
        real_count, describe, fit = state["real_faces"], state["synthetic"], state["fit"]
        synth = pending = None
    else:
        log("search: fresh database, real faces copied from the ingest run")
        url = databases.fresh_database(admin_url, SEARCH_DB)
        databases.only_profile(url, profile)
        real_count = data.copy_real(ingest_url, url, profile)
        real, photo_ids = data.real_embeddings(url, profile)
        synth, fit = data.synthetic_model(url, profile, model, real, photo_ids)
        describe = synth.describe()
        # The first size's synthetic faces are drawn before the queries, so that queries can be new faces of people
        # in the library at every size.
        pending = synth.draw(sizes[0] - real_count) if sizes[0] > real_count else None
        rng = np.random.default_rng(11)
        spread = float(np.linalg.norm(real - real.mean(axis=0), axis=1).mean())
        picks = real[rng.integers(0, len(real), queries // 2)]
        query_vectors = np.vstack([picks + rng.standard_normal(picks.shape).astype(np.float32) * spread * 0.05,
                                   synth.queries(queries - queries // 2)])
        literals = [data.vector_literal(v) for v in query_vectors]
    results = {"profile": profile, "real_faces": real_count, "queries": queries, "synthetic_fit": fit, "levels": []}
    reference = reference_1mp()
    have, next_photo = (sizes[0] if earlier else real_count), 10_000_000
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set maintenance_work_mem = '2GB'")
        conn.execute("set max_parallel_maintenance_workers = 1")
        for size in sizes:
            if size > have:
                log(f"search: writing {size - have} synthetic vectors")
                for index in ("hnsw", "bq", "hnsw_full"):  # rebuilt below; inserting into HNSW is slow
                    conn.execute(f"drop index if exists faces_{index}_{profile}")
                vectors = pending if pending is not None else synth.draw(size - have)
                pending = None
                data.copy_synthetic(url, profile, vectors, next_photo)
                next_photo += size  # room for the photo ids of this batch
                have = size
                conn.execute("vacuum analyze faces")
                conn.execute("vacuum analyze photos")
                describe = synth.describe()
            if earlier:
                exact = state["exact"]
            else:
                log(f"search @ {have}: exact neighbours of {queries} queries")
                exact = exact_neighbours(conn, profile, literals)
                _save_state(conn, {"faces": have, "queries": queries, "model": model, "profile": profile,
                                   "literals": literals, "exact": exact, "real_faces": real_count,
                                   "synthetic": describe, "fit": fit})
            level: dict = {"faces": have, "load": load_average()}
            log(f"search @ {have}: find_faces_near on the shipped index")
            level["rows"] = options.shipped(conn, profile, literals, exact, ef_values)
            if hnsw_grid:
                level["rows"] += options.hnsw_grid(conn, profile, literals, exact, ef_values, list(hnsw_grid))
            if search_options:
                log(f"search @ {have}: pgvector's other options")
                level["rows"] += options.options(conn, profile, literals, exact, ef_values, have)
            if full_precision:
                level["rows"] += options.full_precision(conn, profile, literals, exact, ef_values)
            conn.execute("reset hnsw.ef_search")
            level["image_search"] = image_search(conn, profile, reference)
            level["load_after"] = load_average()
            results["levels"].append(level)
            log(f"search @ {have}: done")
    results["synthetic"] = describe
    return results


def image_search(conn, profile: str, reference: bytes, runs: int = 21) -> dict:
    calls = {"detect_and_embed": "select count(*) from detect_and_embed(%s, %s)",
             "face_embedding": "select face_embedding(%s, %s) is not null",
             "find_photos_like": "select count(*) from find_photos_like(%s, 10, null, %s)"}
    for sql in calls.values():
        conn.execute(sql, (reference, profile)).fetchall()
    # Interleaved, so that a slower stretch of the machine weighs on every call alike (the overhead below is a
    # difference of two calls 30 times longer than it).
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, sql in calls.items():
            started = time.perf_counter()
            conn.execute(sql, (reference, profile)).fetchall()
            times[name].append(time.perf_counter() - started)
    out = {name: {"p50_ms": pct(t, 0.5) * 1000, "p95_ms": pct(t, 0.95) * 1000} for name, t in times.items()}
    embedding = conn.execute("select face_embedding(%s, %s)::text", (reference, profile)).fetchone()[0]
    for name, sql in (("find_photos_near", "select count(*) from find_photos_near(%s::vector, 10, null, %s)"),
                      ("find_faces_near", "select count(*) from find_faces_near(%s::vector, 10, %s)")):
        conn.execute(sql, (embedding, profile)).fetchall()
        samples = []
        for _ in range(runs * 4):
            started = time.perf_counter()
            conn.execute(sql, (embedding, profile)).fetchall()
            samples.append(time.perf_counter() - started)
        out[name] = {"p50_ms": pct(samples, 0.5) * 1000, "p95_ms": pct(samples, 0.95) * 1000}
    # find_photos_like embeds the reference's largest face (face_embedding); detect_and_embed does every face.
    # The overhead is the median of the differences of calls made back to back, steadier than a difference of p50s.
    out["overhead_p50_ms"] = statistics.median(
        like - embed for like, embed in zip(times["find_photos_like"], times["face_embedding"])) * 1000
    return out

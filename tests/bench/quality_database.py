"""The quality benchmark's database side, all through SQL: a fresh pgfaces_bench_<profile> database with one profile
ingesting, the photos INSERTed over a few connections (latency, wall and backend CPU time), the faces found per
photo, and find_photos_like's ranking for a query's reference.
"""

from __future__ import annotations

import concurrent.futures
import pathlib
import threading
import time

from . import databases
from .measure import backend_cpu_seconds

WORKERS = 2
# The talk's detector with the dlib embedder, measured when the talk's CLIP model cannot be loaded.
TUTORIAL_DLIB = "tutorial_dlib"
PROBE_REFERENCE = "references/obama.jpg"


def fresh_database(admin_url: str, profile: str) -> str:
    """Drops and recreates pgfaces_bench_<profile>, migrates it, and makes `profile` the only one ingesting."""
    import psycopg

    url = databases.fresh_database(admin_url, f"pgfaces_bench_{profile}")
    with psycopg.connect(url) as conn:
        if profile == TUTORIAL_DLIB:
            conn.execute(
                "insert into profiles (name, detector, detector_params, embedder, embedder_params, dimensions, metric,"
                " description) select %s, detector, detector_params, 'dlib', '{}', 128, 'l2',"
                " 'The talk''s Haar detector (1.05 / 2 / 250x250, full size) + dlib ResNet 128-d'"
                " from profiles where name = 'tutorial'", (TUTORIAL_DLIB,))
        if not conn.execute("select 1 from profiles where name = %s", (profile,)).fetchone():
            known = [r[0] for r in conn.execute("select name from profiles order by name")]
            raise SystemExit(f"unknown profile {profile!r}; known: {', '.join(known)}")
        conn.execute("update profiles set ingest = (name = %s)", (profile,))
        conn.commit()
    return url


def profile_row(url: str, profile: str) -> dict:
    import psycopg
    from psycopg.rows import dict_row

    from pgfaces.profiles import COLUMNS

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(f"select {COLUMNS}, description from profiles where name = %s", (profile,)).fetchone()


def probe(url: str, profile: str, party: pathlib.Path) -> str | None:
    """None if the profile runs here, else the error (a model that cannot be loaded, say)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("select count(*) from detect_and_embed(%s, %s)",
                         ((party / PROBE_REFERENCE).read_bytes(), profile)).fetchone()
        except psycopg.Error as e:
            return e.diag.message_primary or str(e)
    return None


def load(url: str, files: list[pathlib.Path], workers: int = WORKERS) -> dict:
    """INSERTs every file over `workers` connections; per-photo latency, wall time, and what was rejected."""
    import psycopg

    latencies, rejected = [], {}
    lock = threading.Lock()
    local = threading.local()
    connections = []
    backends: dict[int, float | None] = {}  # backend pid -> its CPU seconds when we started using it

    def insert(path: pathlib.Path):
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed:
            conn = local.conn = psycopg.connect(url, autocommit=True)
            pid = conn.execute("select pg_backend_pid()").fetchone()[0]
            with lock:
                connections.append(conn)
                backends[pid] = backend_cpu_seconds(pid)
        data = path.read_bytes()
        started = time.monotonic()
        try:
            conn.execute("insert into photos (filename, image) values (%s, %s)", (str(path), data))
        except psycopg.Error as e:
            with lock:
                rejected[str(path)] = e.diag.message_primary or str(e)
            return
        with lock:
            latencies.append(time.monotonic() - started)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(insert, files))
    wall = time.monotonic() - started
    cpu = None
    if backends and all(v is not None for v in backends.values()):
        now = {pid: backend_cpu_seconds(pid) for pid in backends}
        if all(v is not None for v in now.values()):
            cpu = sum(now[pid] - backends[pid] for pid in backends)
    for conn in connections:
        conn.close()
    return {"wall": wall, "latencies": latencies, "rejected": rejected, "cpu": cpu}


def faces_per_file(url: str, profile: str, party: pathlib.Path) -> dict[str, int]:
    import psycopg

    prefix = str(party) + "/"
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select p.filename, count(f.id) from photos p left join faces f on f.photo_id = p.id and f.profile = %s"
            " group by p.filename", (profile,)).fetchall()
    return {name.removeprefix(prefix): count for name, count in rows}


def rank(url: str, profile: str, reference: pathlib.Path, n: int, party: pathlib.Path) -> tuple[list[tuple[str, float]], str | None]:
    import psycopg

    prefix = str(party) + "/"
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            rows = conn.execute(
                "select filename, distance from find_photos_like(%s, n => %s, profile => %s)",
                (reference.read_bytes(), n, profile)).fetchall()
        except psycopg.Error as e:
            return [], e.diag.message_primary or str(e)
    return [(name.removeprefix(prefix), distance) for name, distance in rows], None


def existing_database(admin_url: str, profile: str) -> str | None:
    import psycopg

    name = f"pgfaces_bench_{profile}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        found = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
    return databases.database_url(admin_url, name) if found else None


def default_profiles(admin_url: str) -> list[str]:
    """The shipped profiles, read from a migrated scratch database."""
    import psycopg

    url = fresh_database(admin_url, "tutorial")
    try:
        with psycopg.connect(url) as conn:
            return [r[0] for r in conn.execute("select name from profiles order by name")]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute('drop database if exists "pgfaces_bench_tutorial" with (force)')

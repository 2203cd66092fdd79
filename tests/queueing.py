"""Helpers of the queue's tests (test_queue.py, test_queue_faults.py): deferred connections, draining, comparing."""

from __future__ import annotations

import psycopg

from pgfaces.client import worker

DEFERRED = "-c pgfaces.analyse=deferred"
INSERT = "insert into photos (filename, image) values (%s, %s) on conflict (sha256) do nothing returning id"


def deferred(url: str):
    """A connection whose INSERTs store and queue (SET pgfaces."analyse" = 'deferred', given at connection)."""
    return psycopg.connect(url, autocommit=True, options=DEFERRED)


def insert_all(url: str, paths, defer: bool = True) -> None:
    with (deferred(url) if defer else psycopg.connect(url, autocommit=True)) as conn:
        for p in paths:
            conn.execute(INSERT, (p.name, p.read_bytes()))


def drain(url: str, in_server: bool, name: str = "test-worker", **options) -> worker.WorkReport:
    """One worker, in this process, until nothing is queued or running."""
    options = {"until_empty": True, "poll": 0.2, **options}
    return worker.run_loop(url, name, in_server, worker.Options(**options))


def faces(url: str) -> dict[str, list[tuple]]:
    """Every face, by photo file name: what the trigger (or a worker) wrote, to the bit."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select p.filename, f.profile, f.x, f.y, f.width, f.height, f.score, f.embedding::text, md5(f.thumbnail)"
            " from faces f join photos p on p.id = f.photo_id order by p.filename, f.profile, f.x, f.y").fetchall()
    by_file: dict[str, list[tuple]] = {}
    for r in rows:
        by_file.setdefault(r[0], []).append(r[1:])
    return by_file


def photos(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select filename, sha256, width, height, taken_at, latitude, longitude, camera, exif"
                            " from photos").fetchall()
    return {r[0]: r[1:] for r in rows}


def states(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("select state, count(*) from analysis_queue group by state").fetchall())


def duplicates(url: str) -> int:
    """Faces stored twice (same photo, profile and box)."""
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*) - count(distinct (photo_id, profile, x, y, width, height)) from faces"
                            ).fetchone()[0]

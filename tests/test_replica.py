"""Read replicas: `./pgfaces up --replica-of URL` makes a hot standby of a primary by streaming replication, and the
searches run there with the same results as on the primary, writing nothing (on a standby any write fails).

A primary and a replica of its own, in a temporary folder on free ports (never the developers' clusters), made and
stopped with ./pgfaces itself; removed at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import psycopg
import pytest

from conftest import ROOT

PHOTOS = ["party/parties/party_000.jpg", "party/real/face_recognition__examples__biden.jpg",
          "party/real/face_recognition__examples__knn_examples__test__obama1.jpg",
          "party/real/face_recognition__examples__knn_examples__test__obama_and_biden.jpg",
          "party/real/compreface__embedding-calculator__sample_images__000_5.jpg"]
BIDEN = "party/references/biden.jpg"
CROWD = "party/parties/party_001.jpg"  # a reference with several faces: a NOTICE says which one is used


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def clusters(shared_faces):
    base = tempfile.mkdtemp(prefix="pgfaces-replica-test-", dir="/tmp")
    os.chmod(base, 0o755)  # the server's user must reach its data
    env = {name: {**os.environ, "PGFACES_HOME": os.path.join(base, name), "PGFACES_PORT": str(free_port())}
           for name in ("primary", "replica")}

    def pgfaces(name: str, *args: str) -> str:
        done = subprocess.run(["./pgfaces", *args], cwd=ROOT, env=env[name], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"./pgfaces {' '.join(args)} ({name}):\n{done.stderr[-3000:]}"
        return done.stdout.strip().splitlines()[-1]

    try:
        primary = pgfaces("primary", "up")
        with psycopg.connect(primary, autocommit=True) as conn:  # some photos before the copy, some after it
            for p in PHOTOS[:3]:
                conn.execute("insert into photos (filename, image) values (%s, %s)",
                             (p, (shared_faces / p).read_bytes()))
        replica = pgfaces("replica", "up", "--replica-of", primary)
        with psycopg.connect(primary, autocommit=True) as conn:
            for p in PHOTOS[3:]:
                conn.execute("insert into photos (filename, image) values (%s, %s)",
                             (p, (shared_faces / p).read_bytes()))
            conn.execute("select remember_face('biden', %s)", ((shared_faces / BIDEN).read_bytes(),))
            lsn = conn.execute("select pg_current_wal_lsn()").fetchone()[0]
        with psycopg.connect(replica, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while not conn.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                assert time.monotonic() < deadline, "the replica does not catch up"
                time.sleep(0.1)
        yield primary, replica
    finally:
        for name in ("replica", "primary"):
            if os.path.exists(os.path.join(env[name]["PGFACES_HOME"], "data", "PG_VERSION")):
                subprocess.run(["./pgfaces", "down"], cwd=ROOT, env=env[name], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def _ask(url: str, sql: str, args=()) -> tuple[list[tuple], list[str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        return conn.execute(sql, args).fetchall(), notices


def test_replica_is_a_read_only_standby(clusters):
    primary, replica = clusters
    assert _ask(replica, "select pg_is_in_recovery()")[0] == [(True,)]
    assert _ask(primary, "select pg_is_in_recovery()")[0] == [(False,)]
    with psycopg.connect(replica, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("insert into photos (filename, image) values ('x.jpg', '\\xffd8')")


def test_searches_on_the_replica_equal_the_primarys(clusters, shared_faces):
    primary, replica = clusters
    biden, crowd = (shared_faces / BIDEN).read_bytes(), (shared_faces / CROWD).read_bytes()
    queries = [
        ("select * from find_photos_like(%s, 5)", (biden,)),
        ("select * from find_photos_like(%s, 5, max_distance => 'auto')", (biden,)),
        ("select * from find_faces_like(%s, 5)", (crowd,)),
        ("select * from find_photos_of('biden', 5)", ()),
        ("select face_embedding(%s)::text", (biden,)),
        ("select count(*) from detect_and_embed(%s)", (crowd,)),
    ]
    for sql, args in queries:
        on_primary, on_replica = _ask(primary, sql, args), _ask(replica, sql, args)
        assert on_replica == on_primary, sql
        assert on_replica[0], sql
    # the several-faces NOTICE is sent on the replica too (a message, not a write)
    assert any("faces found in the reference image" in n for n in _ask(replica, queries[2][0], queries[2][1])[1])
    # read-only transactions on the primary pass as well: the search functions write nothing
    with psycopg.connect(primary, autocommit=True) as conn:
        conn.execute("set default_transaction_read_only = on")
        for sql, args in queries:
            assert conn.execute(sql, args).fetchall() == _ask(primary, sql, args)[0], sql

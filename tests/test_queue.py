"""Deferred analysis: an INSERT under pgfaces.analyse = 'deferred' stores the photo with its metadata and queues it;
workers in the server and in a client write exactly the faces the trigger writes; reprocess goes through the queue;
failures are retried, parked with their one-line error, and retried again by retry_failed(); the progress view; the
client-side mode; the pgfaces_worker role."""

from __future__ import annotations

import io
import secrets
import urllib.parse
import uuid

import psycopg
import pytest

import images as im
from pgfaces import client
from pgfaces.client import progress
from queueing import INSERT, deferred, drain, duplicates, faces, insert_all, photos, states

# Three real photos and a party photo stored sideways (EXIF orientation 6): metadata, boxes and embeddings.
PHOTOS = [
    "party/real/compreface__embedding-calculator__sample_images__000_5.jpg",
    "party/real/compreface__embedding-calculator__sample_images__007_B.jpg",
    "party/real/face_recognition__examples__biden.jpg",
    "party/parties/party_000.jpg",
]


@pytest.fixture(scope="module")
def paths(shared_faces):
    return [shared_faces / p for p in PHOTOS]


@pytest.fixture(scope="module")
def immediate(make_database, paths):
    """The same photos through today's trigger: the reference."""
    url = make_database()
    insert_all(url, paths, defer=False)
    return url


def test_deferred_insert_stores_the_metadata_and_queues_each_ingest_profile(make_database, immediate, paths):
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("update profiles set ingest = true where name = 'hog'")
    with deferred(url) as conn:
        assert conn.execute('show pgfaces."analyse"').fetchone()[0] == "deferred"
        for p in paths:
            conn.execute(INSERT, (p.name, p.read_bytes()))
        # the same bytes again: refused before anything is queued, or skipped
        assert conn.execute(INSERT, (paths[0].name, paths[0].read_bytes())).fetchone() is None
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("insert into photos (filename, image) values ('again.jpg', %s)", (paths[0].read_bytes(),))
        # values given in the INSERT win over EXIF, as in immediate mode
        conn.execute("insert into photos (filename, image, camera) values ('given.jpg', %s, 'mine')",
                     (im.jpeg(im.gradient(90, 60, seed=3)),))
        assert conn.execute("select camera, width from photos where filename = 'given.jpg'").fetchone() == ("mine", 90)
        conn.execute("delete from photos where filename = 'given.jpg'")
    assert photos(url) == photos(immediate)  # hash, upright size, EXIF, place, camera: all there at once
    assert faces(url) == {}
    with psycopg.connect(url) as conn:
        jobs = conn.execute("select p.filename, q.profile, q.state, q.attempts, q.worker, q.error"
                            " from analysis_queue q join photos p on p.id = q.photo_id order by 1, 2").fetchall()
        assert jobs == sorted((p.name, profile, "queued", 0, None, None) for p in paths for profile in ("hog", "mtcnn"))
        progress_rows = conn.execute("select profile, queued, running, done, failed from analysis_progress"
                                     " order by profile").fetchall()
        assert progress_rows == [("hog", 4, 0, 0, 0), ("mtcnn", 4, 0, 0, 0)]


def test_deferred_insert_of_a_bad_file_fails_plainly(conn):
    conn.execute("set pgfaces.\"analyse\" = 'deferred'")
    with pytest.raises(psycopg.errors.DataException) as e:
        conn.execute("insert into photos (filename, image) values ('notes.jpg', 'hello, world'::bytea)")
    assert e.value.diag.message_primary.startswith("notes.jpg: ")
    assert "plpy" not in e.value.diag.message_primary and "Traceback" not in str(e.value)
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("set pgfaces.\"analyse\" = 'later'")


@pytest.mark.parametrize("in_server", [True, False], ids=["in-server", "client"])
def test_workers_write_exactly_what_the_trigger_writes(make_database, immediate, paths, in_server):
    url = make_database()
    insert_all(url, paths)
    report = drain(url, in_server)
    assert (report.done, report.failed, report.lost, report.retried) == (len(paths), [], 0, 0), report.summary()
    assert faces(url) == faces(immediate)  # same rows, boxes, scores, embeddings and thumbnails
    assert photos(url) == photos(immediate)
    assert states(url) == {"done": len(paths)}
    assert report.faces == sum(len(v) for v in faces(immediate).values())
    with psycopg.connect(url) as conn:
        row = conn.execute("select bool_and(worker = 'test-worker'), bool_and(finished_at >= started_at),"
                           " bool_and(lease_until is null and error is null), max(attempts) from analysis_queue"
                           ).fetchone()
        assert row == (True, True, True, 1)


def test_reprocess_when_deferred_goes_through_the_queue(make_database, immediate, paths):
    url = make_database()
    insert_all(url, paths, defer=False)
    before = faces(url)
    with deferred(url) as conn:
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        assert conn.execute("select reprocess('mtcnn')").fetchone()[0] == len(paths)  # photos queued
        assert any("queued 4 photo(s) for profile mtcnn" in n for n in notices)
    assert states(url) == {"queued": len(paths)}
    assert faces(url) == before  # the old faces answer searches until a worker replaces them
    drain(url, in_server=True)
    assert faces(url) == before and duplicates(url) == 0
    with deferred(url) as conn:
        conn.execute("select reprocess('hog')")
        assert conn.execute("select count(*) from analysis_queue where profile = 'hog' and state = 'queued'"
                            ).fetchone()[0] == len(paths)


def test_a_failing_photo_is_retried_parked_with_its_error_and_retried_again(make_database, paths, admin_url):
    url = make_database()
    name = urllib.parse.urlsplit(url).path[1:]
    truncated = paths[-1].read_bytes()[: 60_000]  # a header and EXIF, then nothing: an INSERT refuses it, but an older
    with psycopg.connect(url, autocommit=True) as conn:  # release stored it: it fails in every worker
        conn.execute("set session_replication_role = replica")  # no triggers, as then: stored unchecked, queued
        conn.execute("insert into photos (filename, image, sha256) values ('cut.jpg', %s, 'cut')", (truncated,))
        conn.execute("reset session_replication_role")
        conn.execute("insert into analysis_queue (photo_id, profile) select id, 'mtcnn' from photos")
    with deferred(url) as conn:
        conn.execute(INSERT, (paths[-1].name, paths[-1].read_bytes()))  # 6 faces
    with psycopg.connect(admin_url, autocommit=True) as admin:  # the worker's sessions get it: a failure we can fix
        admin.execute(f'alter database "{name}" set pgfaces.max_faces = 2')
    first = drain(url, in_server=True, max_attempts=2)
    assert first.done == 0 and first.retried == 2 and len(first.failed) == 2, first.summary()
    with psycopg.connect(url) as conn:
        failed = {r[0]: r[1:] for r in conn.execute(
            "select p.filename, q.attempts, q.error from analysis_queue q join photos p on p.id = q.photo_id"
            " where q.state = 'failed'")}
    cut = "cut.jpg: truncated JPEG (no end-of-image marker)"
    assert failed["cut.jpg"][0] == 2 and failed["cut.jpg"][1].startswith(cut)
    attempts, error = failed[paths[-1].name]
    assert attempts == 2 and error.startswith(f"{paths[-1].name}: ") and "faces" in error
    assert all("plpy" not in e and "\n" not in e for _, e in failed.values())
    assert "FAILED cut.jpg: truncated JPEG" in first.summary()

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'alter database "{name}" reset pgfaces.max_faces')
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select retry_failed('mtcnn')").fetchone()[0] == 2
        assert conn.execute("select count(*) from analysis_queue where state = 'queued' and attempts = 0"
                            ).fetchone()[0] == 2
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("select retry_failed('nope')")
    again = drain(url, in_server=False, max_attempts=1)  # the client's path parks the same error
    assert again.done == 1 and [f for f, _ in again.failed] == ["cut.jpg"], again.summary()
    assert again.failed[0][1] == failed["cut.jpg"][1]
    assert states(url) == {"done": 1, "failed": 1}


def test_progress_view_and_bar(make_database, paths):
    url = make_database()
    insert_all(url, paths[:2])
    with psycopg.connect(url, autocommit=True) as conn:
        out = io.StringIO()
        assert progress.follow(conn, interval=0.1, out=out, idle=0.3)[:4] == (2, 0, 0, 0)  # no worker: it says so
        assert "no worker has analysed anything" in out.getvalue() and "./pgfaces work" in out.getvalue()
        conn.execute("select * from pgfaces_claim_job('bar-test')")
        row = conn.execute("select queued, running, done, failed, photos_per_second, time_left"
                           " from analysis_progress").fetchone()
        assert row[:5] == (1, 1, 0, 0, 0)
    drain(url, in_server=True, name="bar-test-2")
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select queued, running, done, photos_per_second from analysis_progress").fetchone()
        assert row[:3] == (0, 0, 2) and row[3] > 0  # the claimed job was retaken: its backend is gone
        out = io.StringIO()
        totals = progress.follow(conn, interval=0.1, out=out)
    assert totals[:4] == (0, 0, 2, 0)
    assert "[" + "#" * 30 + "] 2/2 jobs" in out.getvalue()


def test_client_side_database_queues_and_client_workers_drain(make_database, paths):
    url, reference = make_database(client_side=True), make_database(client_side=True)
    files = [str(p) for p in paths[:2]]
    assert client.load(reference, files, workers=1).loaded == 2
    report = client.load(url, files, workers=1, deferred=True)
    assert report.loaded == 2 and report.faces == 0
    assert photos(url) == photos(reference) and faces(url) == {}
    assert states(url) == {"queued": 2}
    with psycopg.connect(url, autocommit=True) as conn:  # no PL/Python: the in-server worker cannot run here
        assert conn.execute("select to_regproc('pgfaces_run_job')").fetchone()[0] is None
    assert drain(url, in_server=False).done == 2
    assert faces(url) == faces(reference)


def _login(admin_url: str, url: str, role: str):
    name, password = f"pgfaces_test_{role}_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"create role {name} login password '{password}' in role pgfaces_{role}")
    parts = urllib.parse.urlsplit(url)
    return name, urllib.parse.urlunsplit(parts._replace(netloc=f"{name}:{password}@{parts.netloc.rpartition('@')[2]}"))


def test_roles_worker_drains_and_nothing_more(make_database, admin_url, paths):
    url = make_database()
    insert_all(url, paths[:2])
    logins = {role: _login(admin_url, url, role) for role in ("worker", "writer", "reader")}
    try:
        for role in ("reader", "writer"):
            with psycopg.connect(logins[role][1], autocommit=True) as conn:
                assert conn.execute("select sum(queued) from analysis_progress").fetchone()[0] == 2
                for sql in ("select * from pgfaces_claim_job('x')", "select retry_failed()",
                            "select pgfaces_fail_job(1, 'mtcnn', 'x', 'e')",
                            "update analysis_queue set state = 'done'"):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        conn.execute(sql)
        with psycopg.connect(logins["worker"][1], autocommit=True) as conn:
            for sql in ("insert into photos (filename, image) values ('w.jpg', '\\xffd8')", "delete from faces",
                        "insert into faces (photo_id, profile, x, y, width, height, embedding)"
                        " select id, 'mtcnn', 0, 0, 1, 1, '[1,2]' from photos limit 1",
                        "update analysis_queue set state = 'done'", "delete from analysis_queue",
                        "select reprocess('mtcnn')", "select pgfaces_queue(null, 'hog')",
                        "select * from pgfaces_py_run_job(1, null)"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql)
            assert conn.execute("select retry_failed()").fetchone()[0] == 0
        assert drain(logins["worker"][1], in_server=True, name="w-server").done == 2
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("update analysis_queue set state = 'queued'")
            conn.execute("delete from faces")
        assert drain(logins["worker"][1], in_server=False, name="w-client").done == 2
        assert duplicates(url) == 0 and states(url) == {"done": 2}
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"drop database if exists \"{urllib.parse.urlsplit(url).path[1:]}\" with (force)")
            for name, _ in logins.values():
                admin.execute(f"drop role if exists {name}")

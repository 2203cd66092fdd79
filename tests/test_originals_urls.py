"""Originals outside the database, as URLs: the server never fetches one; the INSERT stores the URL and queues the
photo, a client worker fetches it (here from python's http.server on localhost), analyses it and describes it; the
in-server workers leave such jobs alone. Forged descriptions and URLs outside the allowed prefixes are refused."""

from __future__ import annotations

import hashlib
import json
import shutil

import psycopg
import pytest
from PIL import Image

import images as im
import outside as o
import queueing as q
from conftest import plain
from pgfaces import originals


@pytest.fixture(scope="module")
def web(make_database, admin_url, login_as):
    """A folder served over HTTP, a database whose URLs may start with its address, a writer and a worker."""
    if not o.AMY[0].exists():
        pytest.skip(f"the test photos are not here: {o.AMY[0]}")
    folder = o.library()
    url = make_database()
    with o.http_folder(folder) as base:
        o.allow(admin_url, url, urls=base)
        yield folder, base, url, login_as(url, "writer"), login_as(url, "worker")
    shutil.rmtree(folder, ignore_errors=True)


def insert(writer: str, name: str, uri: str) -> int:
    with psycopg.connect(writer, autocommit=True) as conn:
        return conn.execute("insert into photos (filename, uri) values (%s, %s) returning id", (name, uri)).fetchone()[0]


def test_a_url_is_left_to_client_workers_and_analysed_by_one(web):
    folder, base, url, writer, worker_url = web
    path = o.put(folder, o.AMY[1], "amy-web.png")
    photo_id = insert(writer, "amy-web.png", base + "amy-web.png")  # not deferred: a URL is queued all the same
    with psycopg.connect(url) as conn:
        assert conn.execute("select sha256, preview, width from photos where id = %s", (photo_id,)).fetchone() == \
            (None, None, None)
    assert o.jobs(url)["amy-web.png"] == ("queued", None)
    assert q.drain(worker_url, in_server=True).done == 0  # the server never fetches it
    assert o.jobs(url)["amy-web.png"] == ("queued", None)
    report = q.drain(worker_url, in_server=False)
    assert (report.done, report.failed) == (1, [])
    with psycopg.connect(url) as conn:
        sha, size, preview, size_wh = conn.execute(
            "select sha256, size_bytes, preview, array[width, height] from photos where id = %s",
            (photo_id,)).fetchone()
        assert sha == hashlib.sha256(path.read_bytes()).hexdigest() and size == path.stat().st_size
        assert originals.is_preview(bytes(preview)) and tuple(size_wh) == Image.open(path).size
        ref = im.jpeg(Image.open(o.AMY[0]), quality=70)
        assert (photo_id,) in conn.execute("select photo_id from find_photos_like(%s, 5)", (ref,)).fetchall()
    # Queued again (reprocess through the queue), the fetch must bring the same bytes.
    o.put(folder, o.BERNADETTE, "amy-web.png")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set pgfaces.\"analyse\" = 'deferred'")
        conn.execute("select reprocess('mtcnn')")
    report = q.drain(worker_url, in_server=False, max_attempts=1)
    assert report.done == 0
    state, error = o.jobs(url)["amy-web.png"]
    assert state == "failed" and error.startswith(f"{base}amy-web.png: the original changed since it was loaded")


def test_a_missing_url_fails_its_job_by_name(web):
    _, base, url, writer, worker_url = web
    insert(writer, "nowhere.png", base + "nowhere.png")
    q.drain(worker_url, in_server=False, max_attempts=1)
    assert o.jobs(url)["nowhere.png"] == ("failed", f"{base}nowhere.png: the original is missing (HTTP 404)")


def test_a_redirect_out_of_the_allowed_prefixes_is_not_followed(web):
    folder, base, url, writer, worker_url = web
    o.put(folder, o.AMY[3], "target.png")
    insert(writer, "inside.png", base + "redirect?" + base + "target.png")
    insert(writer, "outside.png", base + "redirect?http://localhost:1/x.png")
    q.drain(worker_url, in_server=False, max_attempts=1)
    jobs = o.jobs(url)
    assert jobs["inside.png"] == ("done", None)
    assert jobs["outside.png"] == ("failed", f"{base}redirect?http://localhost:1/x.png: redirected to "
                                             "http://localhost:1/x.png, outside the URL prefixes the administrator "
                                             f"allows (pgfaces.originals_urls: {base})")


def test_the_same_bytes_at_two_urls_are_stored_once(web):
    folder, base, url, writer, worker_url = web
    o.put(folder, o.AMY[2], "first.png")
    shutil.copyfile(folder / "first.png", folder / "second.png")
    insert(writer, "first.png", base + "first.png")
    insert(writer, "second.png", base + "second.png")
    q.drain(worker_url, in_server=False, max_attempts=1)
    jobs = o.jobs(url)
    assert jobs["first.png"] == ("done", None)
    assert jobs["second.png"][0] == "failed" and "the same bytes as photo" in jobs["second.png"][1]


@pytest.mark.parametrize("uri", ["https://elsewhere.example/x.jpg", "http://127.0.0.1:1/x.jpg", "s3://bucket/x.jpg"])
def test_urls_outside_the_allowed_prefixes_are_refused(web, uri):
    _, _, _, writer, _ = web
    with psycopg.connect(writer, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
            conn.execute("insert into photos (filename, uri) values ('x.jpg', %s)", (uri,))
        assert plain(e.value).startswith(f"{uri}: not under a URL prefix the administrator allows")


def claim(worker_url: str) -> tuple:
    """A URL photo queued and claimed by the worker: (connection, photo_id, profile, the claim's token)."""
    conn = psycopg.connect(worker_url, autocommit=True)
    photo_id, profile, _, _, token = conn.execute("select * from pgfaces_claim_job('forger')").fetchone()
    return conn, photo_id, profile, token


GOOD = {"sha256": "ab" * 32, "width": 10, "height": 10}
FORGED = [
    ({**GOOD, "sha256": "not-a-hash"}, 100, None, "22023"),
    (GOOD, 2**40, None, "22023"),
    (GOOD, None, None, "22023"),
    (None, 100, None, "22023"),
    ({**GOOD, "width": 10**9, "height": 10**9}, 100, None, "22023"),
    ({**GOOD, "width": "x"}, 100, None, "22023"),
    (GOOD, 100, b"<html>", "22023"),
    (GOOD, 100, b"RIFF\0\0\0\0WEBP" + b"0" * 2_000_000, "22023"),
    (GOOD, 100, b"\xff\xd8\xff" + b"0" * 100, "22023"),
    ({**GOOD, "latitude": 1000}, 100, None, "23514"),
]


def test_forged_descriptions_are_refused_with_one_line(web):
    _, base, url, writer, worker_url = web
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("update analysis_queue set state = 'done' where state <> 'done'")  # this test's job alone
    photo_id = insert(writer, "forged.png", base + "forged.png")
    conn, *job = claim(worker_url)
    with conn:
        assert job[0] == photo_id
        for photo, size, preview, state in FORGED:
            with pytest.raises(psycopg.Error) as e:
                conn.execute("select pgfaces_original_fetched(%s, %s, %s, %s::jsonb, %s, %s)",
                             (*job, None if photo is None else json.dumps(photo), size, preview))
            assert e.value.diag.sqlstate == state, plain(e.value)
            plain(e.value)
        # Not this worker's job (a forged token): nothing is written.
        other = (job[0], job[1], "forged-token")
        assert conn.execute("select pgfaces_original_fetched(%s, %s, %s, %s::jsonb, 100, null)",
                            (*other, json.dumps(GOOD))).fetchone()[0] == "lost"
        assert conn.execute("select sha256 from photos where id = %s", (photo_id,)).fetchone()[0] is None


def test_only_workers_describe_originals(web):
    _, _, url, writer, _ = web
    with psycopg.connect(writer, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select pgfaces_original_fetched(1, 'mtcnn', 't', '{}'::jsonb, 1, null)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("update photos set uri = '/etc/shadow'")

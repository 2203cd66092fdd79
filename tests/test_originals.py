"""Originals outside the database, as paths: a photo row holds the file's path and a preview instead of the bytes;
search finds it, reprocess and the workers read the file again, and a missing or changed file is reported by
name, never analysed silently. Only the folders the administrator allows are read (README, "Originals outside the
database")."""

from __future__ import annotations

import hashlib
import os
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
def lib(make_database, admin_url, login_as):
    """A library folder with three photos of Amy, a database allowed to read it, and a writer's URL."""
    if not o.AMY[0].exists():
        pytest.skip(f"the test photos are not here: {o.AMY[0]}")
    folder = o.library()
    url = make_database()
    o.allow(admin_url, url, dirs=str(folder))
    yield folder, url, login_as(url, "writer")
    shutil.rmtree(folder, ignore_errors=True)


def reference() -> bytes:
    return im.jpeg(Image.open(o.AMY[0]), quality=70)


def insert(url: str, name: str, uri: str, **connect):
    with psycopg.connect(url, autocommit=True, **connect) as conn:
        return conn.execute("insert into photos (filename, uri) values (%s, %s) returning id", (name, uri)).fetchone()[0]


def test_a_photo_kept_outside_is_stored_without_its_bytes_and_found(lib):
    folder, url, writer = lib
    path = o.put(folder, o.AMY[1], "found.png")
    photo_id = insert(writer, "found.png", f"file://{path}")
    with psycopg.connect(url) as conn:
        image, uri, sha, size, preview, width, height = conn.execute(
            "select image, uri, sha256, size_bytes, preview, width, height from photos where id = %s",
            (photo_id,)).fetchone()
        assert image is None and uri == str(path)  # file:// is stored as its path
        assert sha == hashlib.sha256(path.read_bytes()).hexdigest() and size == path.stat().st_size
        assert originals.is_preview(bytes(preview)) and len(preview) < size
        assert (width, height) == Image.open(path).size
        assert conn.execute("select count(*) from faces where photo_id = %s", (photo_id,)).fetchone()[0] >= 1
        found = conn.execute("select photo_id from find_photos_like(%s, 5)", (reference(),)).fetchall()
        assert (photo_id,) in found
        # The contact sheet draws it from the preview.
        from pgfaces import search as s
        matches = s.search(conn, reference(), n=5)
        assert "data:image/jpeg;base64," in s.contact_sheet(conn, [m for m in matches if m.photo_id == photo_id], "t")


def test_reprocess_reads_the_file_and_reports_a_missing_or_changed_one(lib):
    folder, url, writer = lib
    kept = o.put(folder, o.AMY[2], "kept.png")
    gone = o.put(folder, o.AMY[3], "gone.png")
    changed = o.put(folder, o.AMY[0], "changed.png")
    ids = {p.name: insert(writer, p.name, str(p)) for p in (kept, gone, changed)}
    with psycopg.connect(url, autocommit=True) as conn:
        def faces():
            return {name: conn.execute("select array_agg(id order by id) from faces where photo_id = %s",
                                       (i,)).fetchone()[0] for name, i in ids.items()}
        before = faces()
        gone.unlink()
        o.put(folder, o.BERNADETTE, changed.name)
        _, said = o.warnings_of(conn, "select reprocess('mtcnn')")
        after = faces()
    assert after["kept.png"] and not set(after["kept.png"]) & set(before["kept.png"])  # read again: new faces
    assert after["gone.png"] == before["gone.png"] and after["changed.png"] == before["changed.png"]  # kept
    assert any(f"{gone}: the original is missing" in w for w in said), said
    assert any(f"{changed}: the original changed since it was loaded" in w for w in said), said
    assert any("photo(s) not analysed again" in w for w in said), said


@pytest.mark.parametrize("in_server", [True, False], ids=["in-server", "client"])
def test_a_queued_job_fails_naming_its_missing_or_changed_file(lib, in_server, login_as):
    folder, url, writer = lib
    tag = "server" if in_server else "client"
    gone = o.put(folder, o.AMY[1], f"job-gone-{tag}.png")
    changed = o.put(folder, o.AMY[2], f"job-changed-{tag}.png")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from photos where filename like 'job-%'")
    for p in (gone, changed):
        insert(writer, p.name, str(p), options=q.DEFERRED)
    gone.unlink()
    o.put(folder, o.BERNADETTE, changed.name)
    report = q.drain(login_as(url, "worker"), in_server, max_attempts=1)
    assert report.done == 0 and len(report.failed) == 2
    jobs = o.jobs(url)
    assert jobs[gone.name] == ("failed", f"{gone}: the original is missing (no such file)")
    assert jobs[changed.name][0] == "failed"
    assert jobs[changed.name][1].startswith(f"{changed}: the original changed since it was loaded (sha256 ")
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from faces f join photos p on p.id = f.photo_id"
                            " where p.filename like 'job-%%'").fetchone()[0] == 0


def test_only_the_allowed_folders_are_read(lib, admin_url):
    folder, url, writer = lib
    (folder / "shadow.png").symlink_to("/etc/shadow")
    inside = o.put(folder, o.AMY[1], "inside.png")
    with psycopg.connect(url) as conn:
        data_dir = conn.execute("show data_directory").fetchone()[0]
    refused = ["/etc/shadow", f"{folder}/../../etc/passwd", str(folder / "shadow.png"), f"{data_dir}/PG_VERSION",
               f"{folder}-other/x.png", "/"]
    with psycopg.connect(writer, autocommit=True) as conn:
        for uri in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
                conn.execute("insert into photos (filename, uri) values ('x.png', %s)", (uri,))
            message = plain(e.value, ("42",))
            assert message.startswith(f"{uri}: ") and ("allow" in message or "never read" in message), message
        # The allow-list is the administrator's: a writer can neither set it nor give it to itself.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("set pgfaces.originals_dirs = '/'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("alter role current_user set pgfaces.originals_dirs = '/'")
        assert conn.execute("select count(*) from photos where filename = 'x.png'").fetchone()[0] == 0
    # Even where the administrator allows everything, the server's own folders stay closed.
    o.allow(admin_url, url, dirs="/")
    try:
        with psycopg.connect(writer, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="server's own folders"):
                conn.execute("insert into photos (filename, uri) values ('conf', %s)", (f"{data_dir}/PG_VERSION",))
    finally:
        o.allow(admin_url, url, dirs=str(folder))
    assert insert(writer, "inside.png", str(inside))


def test_a_fifo_or_a_file_over_the_limit_is_refused_by_name(lib, admin_url):
    folder, url, writer = lib
    fifo, big = folder / "fifo.jpg", folder / "big.jpg"
    os.mkfifo(fifo)  # opened without blocking, then refused: the backend never waits for a writer
    with open(big, "wb") as f:
        f.truncate(70 * 2**20)  # sparse: over pgfaces.max_image_bytes (64 MiB) without the disk
    big.chmod(0o644)
    with psycopg.connect(writer, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match=f"{fifo}: not a regular file") as e:
            conn.execute("insert into photos (filename, uri) values ('fifo.jpg', %s)", (str(fifo),))
        plain(e.value)
        with pytest.raises(psycopg.Error, match=f"{big}: image is 73400320 bytes, more than the limit") as e:
            conn.execute("insert into photos (filename, uri) values ('big.jpg', %s)", (str(big),))
        plain(e.value, ("22",))


@pytest.mark.parametrize("uri, state", [
    (None, "23502"), ("", "22023"), ("photos/party.jpg", "22023"), ("ftp://host/x.jpg", "22023"),
    ("file://otherhost/x.jpg", "22023"), ("/photos/a\nb.jpg", "22023"), ("/" + "x" * 5000, "22023"),
    ("https://user:pw@host/x.jpg", "22023"), ("https://host/a/../b.jpg", "22023"),
])
def test_bad_uris_are_refused_with_one_line(lib, uri, state):
    _, url, writer = lib
    with psycopg.connect(writer, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as e:
            conn.execute("insert into photos (filename, uri) values ('bad.jpg', %s)", (uri,))
        assert e.value.diag.sqlstate == state, plain(e.value)
        plain(e.value)


def test_bytes_and_uri_together_are_refused(lib):
    folder, _, writer = lib
    path = o.put(folder, o.AMY[1], "both.png")
    with psycopg.connect(writer, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="both.png: give the photo's bytes"):
            conn.execute("insert into photos (filename, image, uri) values ('both.png', %s, %s)",
                         (path.read_bytes(), str(path)))


def test_a_reader_may_not_insert_a_uri(lib, login_as):
    folder, url, _ = lib
    path = o.put(folder, o.AMY[1], "reader.png")
    with psycopg.connect(login_as(url, "reader"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("insert into photos (filename, uri) values ('reader.png', %s)", (str(path),))

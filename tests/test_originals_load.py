"""Loading a folder with its originals kept outside: `./pgfaces load DIR --keep-originals-outside` and
`python -m pgfaces.client load ... --keep-originals-outside` store each file's absolute path (and a preview), the
server's trigger or the client analysing them; the client workers then read the files there."""

from __future__ import annotations

import os
import shutil

import psycopg
import pytest

import outside as o
import queueing as q
from pgfaces.client import cli


@pytest.fixture
def folder():
    if not o.AMY[0].exists():
        pytest.skip(f"the test photos are not here: {o.AMY[0]}")
    lib = o.library()
    for i, source in enumerate(o.AMY[1:]):
        o.put(lib, source, f"amy-{i}.png")
    yield lib
    shutil.rmtree(lib, ignore_errors=True)


def rows(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "select filename, image is null, uri, length(preview) > 0, size_bytes,"
            " (select count(*) from faces f where f.photo_id = p.id) from photos p")}


def test_the_command_line_loads_paths_into_a_server_database(make_database, admin_url, folder, monkeypatch,
                                                             login_as):
    url = make_database()
    o.allow(admin_url, url, dirs=str(folder))
    monkeypatch.chdir(folder.parent)  # a relative folder: the uri is still the absolute path
    writer = login_as(url, "writer")
    assert cli.main(["--dsn", writer, "load", folder.name, "--keep-originals-outside", "--quiet"]) == 0
    loaded = rows(url)
    assert len(loaded) == 3
    for name, (no_image, uri, preview, size, faces) in loaded.items():
        path = folder / os.path.basename(name)
        assert no_image and uri == str(path) and preview and size == path.stat().st_size and faces >= 1
    assert cli.main(["--dsn", writer, "load", str(folder), "--keep-originals-outside", "--quiet"]) == 0
    assert len(rows(url)) == 3  # loaded again: skipped by their hash


def test_a_folder_outside_the_allowed_ones_is_refused_file_by_file(make_database, folder, capsys):
    url = make_database()  # originals_dirs not set: nothing may be read
    assert cli.main(["--dsn", url, "load", str(folder), "--keep-originals-outside", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"FAILED {folder}/amy-0.png: outside the folders the administrator allows" in out
    assert rows(url) == {}


def test_client_side_loads_paths_and_client_workers_read_them(make_database, admin_url, folder, login_as):
    url = make_database(client_side=True)
    o.allow(admin_url, url, dirs=str(folder))
    writer = login_as(url, "writer")
    assert cli.main(["--dsn", writer, "load", str(folder / "amy-0.png"), "--keep-originals-outside", "--quiet",
                     "--workers", "1"]) == 0
    assert cli.main(["--dsn", writer, "load", str(folder / "amy-1.png"), str(folder / "amy-2.png"),
                     "--keep-originals-outside", "--deferred", "--quiet", "--workers", "1"]) == 0
    before = rows(url)
    assert [v[0] and v[2] for v in before.values()] == [True] * 3
    assert sorted(v[4] > 0 for v in before.values()) == [False, False, True]  # two wait for a worker
    os.remove(folder / "amy-2.png")
    report = q.drain(login_as(url, "worker"), in_server=False, max_attempts=1)
    assert report.done == 1
    assert report.failed == [(str(folder / "amy-2.png"),
                              f"{folder}/amy-2.png: the original is missing (no such file)")]
    assert rows(url)[str(folder / "amy-1.png")][4] >= 1


def test_client_side_a_uri_that_is_no_path_or_url_is_refused(make_database, login_as):
    url = make_database(client_side=True)
    with psycopg.connect(login_as(url, "writer"), autocommit=True) as conn:
        for uri in ("photos/a.jpg", "ftp://h/a.jpg", "/a\nb.jpg", "/" + "a" * 5000):
            with pytest.raises(psycopg.errors.CheckViolation, match="photos_uri_form"):
                conn.execute("insert into photos (filename, uri, sha256) values ('a.jpg', %s, %s)", (uri, "0" * 64))

"""What `invoke load` and `invoke search` do, through the functions behind them, on a throwaway database."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import psycopg
import pytest

from pgfaces import loader, search

SEED = "photos/seed/find-faces-talk/slides/images"


@pytest.fixture(scope="module")
def party(make_database, shared_faces, tmp_path_factory):
    """Two real photos and the benchmark's broken files, in one folder, loaded once."""
    folder = tmp_path_factory.mktemp("party")
    for name in ("face-api.js__examples__images__amy__amy1.png", "face_recognition__examples__biden.jpg"):
        (folder / name).write_bytes((shared_faces / "party" / "real" / name).read_bytes())
    for broken in (shared_faces / "party" / "broken").iterdir():
        (folder / broken.name).write_bytes(broken.read_bytes())
    (folder / "notes.txt").write_text("not a photo, and not an image suffix: a folder load leaves it alone")
    url = make_database()
    first = loader.load(url, [str(folder)], workers=2, progress=False)
    return url, folder, first


def test_load_reports_loaded_faces_and_every_failure(party, shared_faces):
    url, folder, report = party
    assert report.loaded == 2 and report.faces == 2
    failed = dict(report.failed)
    assert {name.rsplit("/", 1)[-1] for name in failed} == {p.name for p in (shared_faces / "party" / "broken").iterdir()}
    assert all(reason.startswith(name + ": ") for name, reason in failed.items()), failed
    assert "FAILED" in report.summary() and "loaded 2 photo(s) with 2 face(s)" in report.summary()


def test_load_again_skips_by_hash(party):
    url, folder, _ = party
    again = loader.load(url, [str(folder / "*.png"), str(folder / "*.jpg")], workers=2, progress=False)
    assert again.loaded == 0 and again.skipped == 2
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from photos").fetchone()[0] == 2


def test_load_names_a_missing_path(party):
    url, _, _ = party
    report = loader.load(url, ["/nonexistent/folder", "/nonexistent/*.jpg"], progress=False)
    assert report.loaded == 0
    assert [r for _, r in report.failed] == ["no such file or folder", "no file matches this pattern"]


def test_search_prints_ranked_photos_and_writes_a_contact_sheet(party, shared_faces):
    url, _, _ = party
    reference = (shared_faces / "party" / "references" / "biden.jpg").read_bytes()
    with psycopg.connect(url, autocommit=True) as conn:
        matches = search.search(conn, image=reference, n=10)
        assert [m.filename.rsplit("/", 1)[-1] for m in matches][0] == "face_recognition__examples__biden.jpg"
        table = search.format_table(matches)
        assert table.splitlines()[1].split()[0] == "1" and "biden" in table.splitlines()[1]
        page = search.contact_sheet(conn, matches, "Photos like biden.jpg")
    assert page.count("<figure>") == len(matches) == 2
    assert f"distance {matches[0].distance:.4f}" in page
    # The matched face is boxed in green on the thumbnail.
    jpeg = base64.b64decode(re.search(r'src="data:image/jpeg;base64,([^"]+)"', page).group(1))
    thumb = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    green = (thumb[:, :, 1] > 180) & (thumb[:, :, 0] < 80) & (thumb[:, :, 2] < 80)
    assert green.sum() > 50


def test_search_with_filters_uses_the_photos_metadata(party, shared_faces):
    url, _, _ = party
    reference = (shared_faces / "party" / "references" / "biden.jpg").read_bytes()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("update photos set taken_at = '2023-04-10', latitude = 38.72, longitude = -9.14"
                     " where filename like '%biden%'")
        lisbon_april = search.Filters(since="2023-04-01", until="2023-05-01", near=search.parse_near("38.7,-9.1,50"))
        assert [m.filename.rsplit("/", 1)[-1] for m in search.search(conn, image=reference, filters=lisbon_april)] == [
            "face_recognition__examples__biden.jpg"]
        may = search.Filters(since="2023-05-01")
        assert search.search(conn, image=reference, filters=may) == []
    with pytest.raises(ValueError, match="LAT,LON,KM"):
        search.parse_near("lisbon")


def test_the_command_line_loads_and_searches(make_database, shared_faces, tmp_path):
    """`invoke load PATH --also PATH` and `invoke search IMAGE`, as a person types them (PGFACES_DB picks the
    throwaway database)."""
    import os
    import pathlib
    import subprocess

    root = pathlib.Path(__file__).resolve().parents[1]
    name = make_database().rsplit("/", 1)[1]
    env = {**os.environ, "PGFACES_DB": name}

    def run(*args):
        return subprocess.run([str(root / "pgfaces"), *args], cwd=root, env=env, capture_output=True, text=True,
                              timeout=600)

    real = shared_faces / "party" / "real"
    loaded = run("load", str(real / "face_recognition__examples__biden.jpg"),
                 "--also", str(real / "face-api.js__examples__images__amy__amy*.png"), "--quiet")
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 5 photo(s)" in loaded.stdout, loaded.stdout
    found = run("search", str(shared_faces / "party" / "references" / "amy.png"), "-n", "2",
                "--html", str(tmp_path / "sheet.html"))
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert lines[0].split() == ["rank", "distance", "photo", "taken", "file"]
    assert "amy" in lines[1] and "amy" in lines[2]
    assert (tmp_path / "sheet.html").read_text().count("<figure>") == 2
    missing = run("search", str(tmp_path / "nobody.jpg"))
    assert missing.returncode != 0 and "no such file" in missing.stderr + missing.stdout

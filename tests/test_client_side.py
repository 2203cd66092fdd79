"""Client-side mode (no plpython3u): the schema installs without it, and photos analysed in the client land in the
database exactly as the server's trigger would have written them."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import psycopg
import pytest

from pgfaces import client, loader
from pgfaces.client import pool
from pgfaces.migrate import migrate

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Four real photos and two party photos; party_000 and party_001 carry EXIF orientation 6 (see MANIFEST.tsv).
PHOTOS = [
    "party/real/compreface__embedding-calculator__sample_images__000_5.jpg",
    "party/real/compreface__embedding-calculator__sample_images__007_B.jpg",
    "party/real/compreface__embedding-calculator__sample_images__009_C.jpg",
    "party/real/compreface__embedding-calculator__src__services__imgtools__test__files__einstein.jpeg",
    "party/parties/party_000.jpg",
    "party/parties/party_001.jpg",
]
REFERENCE = "party/references/biden.jpg"  # biden is in party_000


def _vector(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.strip("[]").split(",")], dtype=np.float64)


def _faces(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select p.filename, f.profile, f.face_key, f.x, f.y, f.width, f.height, f.score, f.embedding::text,"
            " md5(f.thumbnail) from faces f join photos p on p.id = f.photo_id order by p.filename, f.x, f.y").fetchall()
    by_file: dict[str, list[tuple]] = {}
    for r in rows:
        by_file.setdefault(r[0], []).append(r[1:])
    return by_file


def _photos(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select filename, sha256, taken_at, latitude, longitude, camera, width, height, exif from photos").fetchall()
    return {r[0]: r[1:] for r in rows}


@pytest.fixture(scope="module")
def photo_paths(shared_faces) -> list[str]:
    return [str(shared_faces / p) for p in PHOTOS]


@pytest.fixture(scope="module")
def loaded(make_database, photo_paths):
    """The same photos loaded server-side (trigger) into one database and client-side into another."""
    server_url, client_url = make_database(), make_database(client_side=True)
    server_report = loader.load(server_url, photo_paths, workers=2, progress=False)
    client_report = client.load(client_url, photo_paths, workers=2)
    assert not server_report.failed, server_report.summary()
    assert not client_report.failed, client_report.summary()
    assert client_report.loaded == len(photo_paths)
    return server_url, client_url, server_report, client_report


def test_client_side_database_has_no_plpython_and_says_why(make_database):
    url = make_database(client_side=True)
    with psycopg.connect(url, autocommit=True) as conn:
        extensions = {r[0] for r in conn.execute("select extname from pg_extension")}
        assert "vector" in extensions and "plpython3u" not in extensions
        triggers = {r[0] for r in conn.execute("select tgname from pg_trigger where tgrelid = 'photos'::regclass")}
        assert "photos_analyse" not in triggers and "photos_write_faces" not in triggers
        for table in ("photos", "faces", "profiles", "people", "person_references"):
            assert conn.execute("select to_regclass(%s)", (table,)).fetchone()[0] is not None
        for fn in ("find_faces_near", "find_photos_near", "find_photos_of"):
            assert conn.execute("select count(*) from pg_proc where proname = %s", (fn,)).fetchone()[0] >= 1
        with pytest.raises(psycopg.errors.FeatureNotSupported,
                           match=r"find_photos_like\(\) needs plpython3u, which this database does not have "
                                 r"\(client-side install\): compute the embedding in the client \(pgfaces.client\) "
                                 r"and call find_photos_near\(embedding, \.\.\.\)"):
            conn.execute("select * from find_photos_like('\\x00'::bytea, 5)")
        for call in ("select face_embedding('\\x00'::bytea)", "select remember_face('x', '\\x00'::bytea)",
                     "select reprocess('hog')", "select * from detect_and_embed('\\x00'::bytea)",
                     "select * from find_faces_like('\\x00'::bytea)"):
            with pytest.raises(psycopg.errors.FeatureNotSupported, match="needs plpython3u"):
                conn.execute(call)


def test_server_side_migrate_replaces_the_stubs_and_client_side_never_clobbers(make_database):
    url = make_database(client_side=True)
    with psycopg.connect(url) as conn:
        assert migrate(conn, ROOT / "sql", log=lambda *_: None) == ["incremental/002-plpython.sql"]
        migrate(conn, ROOT / "sql", client_side=True, log=lambda *_: None)  # must not put the stubs back over the real functions
        stubs = conn.execute(
            "select array_agg(proname order by proname) from pg_proc where prosrc like '%needs plpython3u%'").fetchone()[0]
        assert stubs is None, f"client-side stubs left in a server-side database: {stubs}"
        assert conn.execute("select count(*) from pg_trigger where tgname = 'photos_analyse'").fetchone()[0] == 1


def test_client_side_load_matches_the_server_trigger(loaded, shared_faces):
    server_url, client_url, _, _ = loaded
    server_photos, client_photos = _photos(server_url), _photos(client_url)
    assert client_photos == server_photos  # sha256, taken_at, latitude, longitude, camera, width, height, exif
    server_faces, client_faces = _faces(server_url), _faces(client_url)
    assert set(client_faces) == set(server_faces) and sum(map(len, client_faces.values())) > 6
    for filename, faces in server_faces.items():
        theirs = client_faces[filename]
        assert [f[:6] for f in theirs] == [f[:6] for f in faces], filename  # profile, key, identical boxes
        for mine, server in zip(theirs, faces):
            assert mine[6] == pytest.approx(server[6], abs=1e-5)  # score
            np.testing.assert_allclose(_vector(mine[7]), _vector(server[7]), atol=1e-4, rtol=0)
            assert mine[8] == server[8], f"{filename}: thumbnails differ"

    # The same reference, searched in both: the same photos in the same order at the same distances.
    with client.connect(client_url) as conn:
        embedding = client.reference_embedder(conn)((shared_faces / REFERENCE).read_bytes())
    ranked = {}
    for url in (server_url, client_url):
        with psycopg.connect(url) as conn:
            ranked[url] = conn.execute(
                "select filename, distance from find_photos_near(%s::vector, 10)", (embedding,)).fetchall()
    assert [r[0] for r in ranked[client_url]] == [r[0] for r in ranked[server_url]]
    assert [r[1] for r in ranked[client_url]] == pytest.approx([r[1] for r in ranked[server_url]], abs=1e-4)
    assert ranked[client_url][0][0].endswith("party_000.jpg")


def test_client_search_matches_server_search(loaded, shared_faces):
    server_url, client_url, _, _ = loaded
    reference = (shared_faces / REFERENCE).read_bytes()
    with psycopg.connect(server_url, autocommit=True) as conn:
        server_rows = conn.execute("select filename, distance from find_photos_like(%s, 5)", (reference,)).fetchall()
        conn.execute("select remember_face('biden', %s)", (reference,))
        server_person = conn.execute("select filename, distance from find_photos_of('biden', 5)").fetchall()
    with client.connect(client_url) as conn:
        rows = client.search(conn, image=shared_faces / REFERENCE, n=5)
        client.remember_face(conn, "biden", reference)
        person_rows = client.search(conn, person="biden", n=5)
        with pytest.raises(ValueError, match="no face found in the reference image"):
            client.search(conn, image=shared_faces / "party/negatives/seed__find-faces-talk__slides__images__white.jpg")
    assert rows and set(rows[0]) >= {"photo_id", "filename", "face_id", "distance", "x", "y", "width", "height"}
    for mine, theirs in ((rows, server_rows), (person_rows, server_person)):
        assert [r["filename"] for r in mine] == [r[0] for r in theirs]
        assert [r["distance"] for r in mine] == pytest.approx([r[1] for r in theirs], abs=1e-4)


def test_loading_twice_skips_by_hash(loaded, photo_paths):
    _, client_url, _, _ = loaded
    with client.connect(client_url) as conn:
        before = conn.execute("select count(*) from faces").fetchone()[0]
        report = client.load(conn, photo_paths, workers=2)
        assert (report.loaded, report.skipped, report.failed) == (0, len(photo_paths), [])
        assert conn.execute("select count(*) from faces").fetchone()[0] == before


def test_broken_file_fails_with_its_name_and_the_rest_load(make_database, shared_faces, tmp_path):
    url = make_database(client_side=True)
    broken = sorted((shared_faces / "party" / "broken").iterdir())
    good = shared_faces / PHOTOS[1]
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    report = client.load(url, [str(p) for p in broken] + [str(good), str(empty)], workers=2)
    assert report.loaded == 1, report.summary()
    failed = dict(report.failed)
    assert set(failed) == {str(p) for p in broken} | {str(empty)}
    for name, reason in failed.items():
        assert pathlib.Path(name).name in reason
    assert "empty (0 bytes)" in failed[str(empty)]
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from photos").fetchone()[0] == 1
        # No face rows without their photo: every face belongs to the one photo that loaded.
        assert conn.execute("select count(distinct photo_id) from faces").fetchone()[0] == 1


def test_client_load_refuses_a_database_whose_trigger_analyses(loaded, photo_paths):
    server_url, _, _, _ = loaded
    with pytest.raises(RuntimeError, match="analyses photos itself"):
        client.load(server_url, photo_paths[:1])


def _crash_on_request(filename, profile_dicts, lim):
    if pathlib.Path(filename).stem == "crash":
        os._exit(3)  # what a segfault in a native decoder looks like to the pool
    return pool.Analysed(filename, error=f"{filename}: analysed")


def test_a_crashing_worker_fails_only_its_file(monkeypatch, tmp_path):
    monkeypatch.setattr(pool, "analyse_file", _crash_on_request)
    files = [tmp_path / f"{name}.jpg" for name in ("a", "b", "crash", "c", "d", "e")]
    results = {r.filename: r.error for r in pool.analyse_all(files, [], None, workers=2)}
    assert set(results) == {str(f) for f in files}
    assert "died" in results[str(tmp_path / "crash.jpg")]
    assert all(results[str(f)].endswith("analysed") for f in files if f.stem != "crash"), results

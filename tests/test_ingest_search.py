"""The SQL contract on real photos: INSERT INTO photos finds faces; one call finds the photos of a person."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import pathlib

import psycopg
import pytest

SEED = pathlib.PurePath("photos/seed/find-faces-talk/slides/images")
SPEAKER_PHOTOS = [SEED / "AIVEN2751.png", SEED / "AIVEN3933.png", SEED / "AIVEN3739-cropped.jpg",
                  pathlib.PurePath("photos/seed/image-recognition/test-image.png")]
OTHER_PEOPLE = ["party/real/face-api.js__examples__images__amy__amy1.png",
                "party/real/face-api.js__examples__images__howard__howard1.png",
                "party/real/face-api.js__examples__images__leonard__leonard1.png",
                "party/real/face_recognition__examples__biden.jpg",
                "party/real/compreface__embedding-calculator__sample_images__002_A.jpg"]
ROTATED = "party/parties/party_000.jpg"  # stored with EXIF orientation 6
NEGATIVE = "party/negatives/seed__find-faces-talk__slides__images__HNSW.jpeg"


def manifest(shared: pathlib.Path) -> dict[str, dict]:
    with open(shared / "party" / "MANIFEST.tsv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


def insert(conn, shared: pathlib.Path, relative) -> int:
    data = (shared / relative).read_bytes()
    return conn.execute("insert into photos (filename, image) values (%s, %s) returning id",
                        (str(relative), data)).fetchone()[0]


@pytest.fixture(scope="module")
def loaded(make_database, shared_faces):
    """A database holding the talk's photos of its speaker, five other people, a rotated party and a negative."""
    url = make_database()
    ids = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for relative in [*SPEAKER_PHOTOS, *OTHER_PEOPLE, ROTATED, NEGATIVE]:
            ids[str(relative)] = insert(conn, shared_faces, relative)
    return url, ids


@pytest.fixture
def db(loaded):
    with psycopg.connect(loaded[0], autocommit=True) as conn:
        yield conn


def reference(shared: pathlib.Path) -> bytes:
    return (shared / SEED / "slack-picture.jpg").read_bytes()


def test_insert_writes_one_row_per_face(db, loaded, shared_faces):
    _, ids = loaded
    photo = ids["party/real/face_recognition__examples__biden.jpg"]
    rows = db.execute(
        "select faces.face_key, x, y, width, height, vector_dims(embedding), profile, substring(thumbnail from 1 for 2),"
        " score from faces where photo_id = %s", (photo,)).fetchall()
    assert len(rows) == 1
    key, x, y, w, h, dims, profile, jpeg_magic, score = rows[0]
    assert key == f"face_recognition__examples__biden-{x}-{y}-{w}-{h}"
    assert dims == 128 and profile == db.execute("select name from profiles where is_default").fetchone()[0]
    assert jpeg_magic == b"\xff\xd8"
    assert w > 50 and h > 50
    sha = db.execute("select sha256 from photos where id = %s", (photo,)).fetchone()[0]
    assert sha == hashlib.sha256((shared_faces / "party/real/face_recognition__examples__biden.jpg").read_bytes()).hexdigest()


def test_negative_image_has_no_faces_but_is_stored(db, loaded):
    photo = loaded[1][NEGATIVE]
    assert db.execute("select count(*) from faces where photo_id = %s", (photo,)).fetchone()[0] == 0
    assert db.execute("select width > 0 from photos where id = %s", (photo,)).fetchone()[0]


def test_exif_rotated_party_is_upright_with_metadata(db, loaded, shared_faces):
    row = manifest(shared_faces)[ROTATED.removeprefix("party/")]
    assert row["exif_orientation"] == "6"
    photo = loaded[1][ROTATED]
    width, height, taken_at, lat, lon = db.execute(
        "select width, height, taken_at at time zone current_setting('TimeZone'), latitude, longitude"
        " from photos where id = %s", (photo,)).fetchone()
    from PIL import Image

    stored_w, stored_h = Image.open(shared_faces / ROTATED).size
    assert (width, height) == (stored_h, stored_w)  # orientation 6 turns the stored picture a quarter
    assert taken_at == dt.datetime.fromisoformat(row["taken_at"])
    assert lat == pytest.approx(float(row["latitude"]), abs=1e-4)
    assert lon == pytest.approx(float(row["longitude"]), abs=1e-4)
    boxes = db.execute("select x, y, width, height from faces where photo_id = %s", (photo,)).fetchall()
    assert len(boxes) >= int(row["faces"]) // 2  # hard party faces: small, blurred; some are missed
    for x, y, w, h in boxes:
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        assert 0.6 < w / h < 1.6  # upright faces; on the stored (sideways) picture detectors find few or none


def test_talks_case_ranks_the_speakers_photos_first(db, loaded, shared_faces):
    rows = db.execute("select filename, distance from find_photos_like(%s, 10)", (reference(shared_faces),)).fetchall()
    speaker = {str(p) for p in SPEAKER_PHOTOS}
    top = [name for name, _ in rows[:len(speaker)]]
    assert set(top) == speaker, rows
    distances = [d for _, d in rows]
    assert distances == sorted(distances)


def test_find_faces_like_orders_faces_by_distance(db, shared_faces):
    rows = db.execute("select face_id, photo_id, filename, x, y, width, height, distance"
                      " from find_faces_like(%s, 5)", (reference(shared_faces),)).fetchall()
    assert len(rows) == 5
    assert [r[7] for r in rows] == sorted(r[7] for r in rows)
    assert str(rows[0][2]) in {str(p) for p in SPEAKER_PHOTOS}


def test_max_distance_keeps_only_close_photos(db, shared_faces):
    rows = db.execute("select filename, distance from find_photos_like(%s, 10, 0.6)", (reference(shared_faces),)).fetchall()
    assert rows and all(d <= 0.6 for _, d in rows)
    assert {name for name, _ in rows} <= {str(p) for p in SPEAKER_PHOTOS}


def test_one_row_per_photo_even_with_several_close_faces(db, shared_faces):
    rows = db.execute("select photo_id from find_photos_like(%s, 20)", (reference(shared_faces),)).fetchall()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))


def test_reference_without_face_is_a_clear_error(db, shared_faces):
    with pytest.raises(psycopg.errors.DataException, match="no face found in the reference image"):
        db.execute("select * from find_photos_like(%s)", ((shared_faces / NEGATIVE).read_bytes(),))


def test_reference_with_several_faces_uses_the_largest_and_says_so(db, shared_faces):
    notices = []
    db.add_notice_handler(lambda d: notices.append(d.message_primary))
    rows = db.execute("select * from find_photos_like(%s, 3)", ((shared_faces / ROTATED).read_bytes(),)).fetchall()
    assert rows
    assert any("faces found in the reference image; using the largest" in n for n in notices), notices


@pytest.mark.parametrize("call, message", [
    ("select * from find_photos_like(%(img)s, 0)", "n must be between 1 and"),
    ("select * from find_photos_like(%(img)s, 100001)", "n must be between 1 and"),
    ("select * from find_photos_like(%(img)s, 10, profile => 'nope')", 'unknown profile "nope"'),
    ("select * from find_photos_of('nobody at all')", 'unknown person "nobody at all"'),
    ("select * from find_photos_like(%(img)s, 10, -1)", "max_distance must be positive"),
])
def test_bad_arguments_are_clear_errors(db, shared_faces, call, message):
    with pytest.raises(psycopg.Error, match=message):
        db.execute(call, {"img": reference(shared_faces)})


def test_detect_and_embed_works_on_its_own(db, shared_faces):
    rows = db.execute("select x, y, width, height, score, vector_dims(embedding) from detect_and_embed(%s)",
                      ((shared_faces / OTHER_PEOPLE[0]).read_bytes(),)).fetchall()
    assert len(rows) == 1 and rows[0][5] == 128


def test_find_faces_near_with_a_vector(db, shared_faces):
    embedding = db.execute("select face_embedding(%s)::text", (reference(shared_faces),)).fetchone()[0]
    rows = db.execute("select filename, distance from find_photos_near(%s::vector, 4)", (embedding,)).fetchall()
    assert {r[0] for r in rows} == {str(p) for p in SPEAKER_PHOTOS}


def test_people_remember_and_find(db, shared_faces):
    db.execute("select remember_face('tibs', %s)", (reference(shared_faces),))
    db.execute("select remember_face('tibs', %s)", ((shared_faces / "photos/seed/image-recognition/solo-image.png").read_bytes(),))
    assert db.execute("select count(*) from person_references r join people p on p.id = r.person_id"
                      " where p.name = 'tibs'").fetchone()[0] == 2
    rows = db.execute("select filename from find_photos_of('tibs', 4)").fetchall()
    assert {r[0] for r in rows} == {str(p) for p in SPEAKER_PHOTOS}


def test_same_bytes_twice(db, shared_faces):
    data = (shared_faces / OTHER_PEOPLE[1]).read_bytes()
    faces_before = db.execute("select count(*) from faces").fetchone()[0]
    with pytest.raises(psycopg.errors.UniqueViolation, match="photos_sha256_key"):
        db.execute("insert into photos (filename, image) values ('again.png', %s)", (data,))
    cur = db.execute("insert into photos (filename, image) values ('again.png', %s) on conflict (sha256) do nothing", (data,))
    assert cur.rowcount == 0
    assert db.execute("select count(*) from faces").fetchone()[0] == faces_before


@pytest.mark.parametrize("name, data, reason", [
    ("notes.txt", b"just some text, not a picture\n", "not"),
    ("page.html", b"<!doctype html><html><body>hi</body></html>", "HTML"),
    ("empty.jpg", b"", "empty"),
])
def test_bad_bytes_fail_with_file_name_and_lose_nothing(db, name, data, reason):
    before = db.execute("select (select count(*) from photos), (select count(*) from faces)").fetchone()
    with pytest.raises(psycopg.Error) as failure:
        db.execute("insert into photos (filename, image) values (%s, %s)", (name, data))
    message = failure.value.diag.message_primary
    assert message.startswith(f"{name}:") and reason.lower() in message.lower(), message
    assert db.execute("select (select count(*) from photos), (select count(*) from faces)").fetchone() == before


def test_null_image_names_the_file(db):
    with pytest.raises(psycopg.Error, match="nothing.jpg: image is NULL"):
        db.execute("insert into photos (filename, image) values ('nothing.jpg', null)")


def test_broken_files_of_the_benchmark_are_refused(db, shared_faces):
    for path in sorted((shared_faces / "party" / "broken").iterdir()):
        with pytest.raises(psycopg.Error) as failure:
            db.execute("insert into photos (filename, image) values (%s, %s)", (path.name, path.read_bytes()))
        assert failure.value.diag.message_primary.startswith(f"{path.name}: ")


def test_reprocess_computes_another_profile_from_stored_bytes(db):
    photos = db.execute("select count(*) from photos").fetchone()[0]
    added = db.execute("select reprocess('haar')").fetchone()[0]
    assert added == db.execute("select count(*) from faces where profile = 'haar'").fetchone()[0]
    assert added >= photos // 2
    assert db.execute("select reprocess('haar')").fetchone()[0] == added  # idempotent: replaces, never duplicates


def test_auto_max_distance_keeps_the_profiles_matches_only(db, shared_faces):
    threshold = db.execute("select match_threshold from profiles where is_default").fetchone()[0]
    assert threshold is not None
    rows = db.execute("select filename, distance from find_photos_like(%s, 10, max_distance => 'auto')",
                      (reference(shared_faces),)).fetchall()
    assert rows and all(d <= threshold for _, d in rows)
    # The threshold is set for precision (fewest wrong pairs): only the speaker's photos, most of them.
    matched = {name for name, _ in rows}
    assert matched <= {str(p) for p in SPEAKER_PHOTOS} and len(matched) >= 3, rows
    everything = db.execute("select count(*) from find_photos_like(%s, 10)", (reference(shared_faces),)).fetchone()[0]
    assert everything > len(rows)
    with pytest.raises(psycopg.Error, match="max_distance must be a number or 'auto'"):
        db.execute("select * from find_photos_like(%s, 10, 'bogus')", (reference(shared_faces),))

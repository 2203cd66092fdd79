"""The hostile user's findings (issue "Hold under attack"), one test each, and the classes of bug behind them:
n limits and internal over-fetching, thin images, limits a role could lift, cancel and timeouts, stale derived
data, forged ids and times, error messages, hint text, EXIF orientation of the wrong type."""

from __future__ import annotations

import io
import struct

import psycopg
import pytest
from PIL import Image

import images as im
from conftest import SHARED_FACES, plain

FACE = SHARED_FACES / "party" / "real" / "face-api.js__examples__images__amy__amy1.png"
@pytest.fixture(scope="module")
def url(make_database):
    if not FACE.exists():
        pytest.skip(f"the test photos are not here: {FACE}")
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        for i, angle in enumerate((0, 4, -4)):
            conn.execute("insert into photos (filename, image) values (%s, %s)",
                         (f"amy-{i}.jpg", im.jpeg(Image.open(FACE).convert("RGB").rotate(angle))))
        conn.execute("select remember_face('amy', %s)", (im.jpeg(Image.open(FACE), quality=70),))
    return url


@pytest.fixture
def db(url):
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def vector(db) -> str:
    return db.execute("select embedding::text from faces limit 1").fetchone()[0]


# 1. n limits: every n the README allows works, whatever the internal over-fetching; the setting is bounded.

@pytest.mark.parametrize("call", [
    "select count(*) from find_photos_near(%(e)s::vector, %(n)s)",
    "select count(*) from find_photos_near(%(e)s::vector, %(n)s, 'auto')",
    "select count(*) from find_faces_near(%(e)s::vector, %(n)s)",
    "select count(*) from find_photos_of('amy', %(n)s)",
])
def test_the_largest_n_allowed_works(db, call):
    largest = db.execute("select max_results from pgfaces_limits()").fetchone()[0]
    everything = db.execute("select count(*) from faces").fetchone()[0]  # one face in each of the photos
    assert everything == 3
    for n in (2491, largest):
        assert db.execute(call, {"e": vector(db), "n": n}).fetchone()[0] == everything
    db.execute("set pgfaces.max_results = 1000000")  # the setting's upper bound, as an administrator may set it
    try:
        assert db.execute(call, {"e": vector(db), "n": 1000000}).fetchone()[0] == everything
    finally:
        db.execute("reset pgfaces.max_results")


def test_max_results_is_bounded(db):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as failure:
        db.execute("set pgfaces.max_results = 2147483647")
    assert "outside the valid range" in plain(failure.value)


# 2. Thin images: too thin to hold a face, stored with none; never a cv2 error.

THIN = [(1, 100000), (100000, 1), (1, 2559), (3000, 1), (5, 20000), (11, 40)]


def png_of(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 60)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("width, height", THIN)
def test_thin_images_are_stored_without_faces(db, width, height):
    data = png_of(width, height)
    photo = db.execute("insert into photos (filename, image) values (%s, %s) returning id, width, height",
                       (f"thin-{width}x{height}.png", data)).fetchone()
    assert photo[1:] == (width, height)
    assert db.execute("select count(*) from faces where photo_id = %s", (photo[0],)).fetchone()[0] == 0
    assert db.execute("select count(*) from detect_and_embed(%s)", (data,)).fetchone()[0] == 0
    with pytest.raises(psycopg.errors.DataException) as failure:
        db.execute("select * from find_photos_like(%s, 3)", (data,))
    assert plain(failure.value) == "no face found in the reference image"


# 3. Limits no log-in role can lift (they are superuser-only settings of the server library).

@pytest.mark.parametrize("role", ["reader", "writer"])
@pytest.mark.parametrize("statement", [
    "set pgfaces.max_pixels = 1000000000",
    "set pgfaces.max_image_bytes = 1000000000",
    "set pgfaces.max_faces = 100000",
    "set pgfaces.max_results = 1000000",
    "alter role current_user set pgfaces.max_pixels = 1000000000",
    "select set_config('pgfaces.max_pixels', '1000000000', false)",
])
def test_no_role_can_lift_a_limit(url, login_as, role, statement):
    with psycopg.connect(login_as(url, role), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as failure:
            conn.execute(statement)
        plain(failure.value)
        assert conn.execute("select max_pixels from pgfaces_limits()").fetchone()[0] == 100000000


# 5. Derived data never goes stale: the image of a stored photo cannot change; the name can, and its key follows.

def test_update_of_the_image_is_refused_and_nothing_changes(db):
    before = db.execute("select id, sha256, width, height from photos where filename = 'amy-1.jpg'").fetchone()
    other = im.jpeg(im.gradient(90, 70, seed=3))
    for statement, args in (("update photos set image = %s where id = %s", (other, before[0])),
                            ("update photos set sha256 = 'x', width = 1 where id = %s", (before[0],)),
                            ("update photos set added_at = now() - interval '1 year' where id = %s", (before[0],))):
        with pytest.raises(psycopg.errors.FeatureNotSupported) as failure:
            db.execute(statement, args)
        assert plain(failure.value).startswith(f"photo {before[0]}: ")
    assert db.execute("select id, sha256, width, height from photos where id = %s", (before[0],)).fetchone() == before
    db.execute("insert into photos (filename, image) values ('other.jpg', %s)", (other,))  # the new bytes: new photo
    db.execute("update photos set filename = 'renamed/amy-one.jpg' where id = %s", (before[0],))
    keys = {k for (k,) in db.execute("select f.face_key from faces f where f.photo_id = %s", (before[0],))}
    assert keys and all(k.startswith("amy-one-") for k in keys)
    db.execute("update photos set filename = 'amy-1.jpg' where id = %s", (before[0],))


# 6. Writers cannot forge ids, times or what the bytes say.

@pytest.mark.parametrize("statement", [
    "insert into photos (id, filename, image) overriding system value values (98, 'f.jpg', %(img)s)",
    "insert into photos (filename, image, added_at) values ('f.jpg', %(img)s, '2001-01-01')",
    "insert into photos (filename, image, sha256) values ('f.jpg', %(img)s, 'forged')",
    "insert into photos (filename, image, width, height) values ('f.jpg', %(img)s, 1, 1)",
])
def test_writers_cannot_forge(url, login_as, statement):
    with psycopg.connect(login_as(url, "writer"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement, {"img": im.jpeg(im.gradient(50, 40, seed=9))})
        photo = conn.execute("insert into photos (filename, image) values ('f.jpg', %s) returning id",
                             (im.jpeg(im.gradient(50, 40, seed=9)),)).fetchone()[0]
        assert photo != 98
        conn.execute("delete from photos where id = %s", (photo,))


# 7 and 8. Errors a user can cause: the right SQLSTATE, one plain line; hints that read well.

@pytest.mark.parametrize("call, state, message", [
    ("select face_embedding(%(img)s, 'nope')", "22023", 'unknown profile "nope"'),
    ("select reprocess(NULL)", "22004", "reprocess needs a profile name"),
    ("select * from find_photos_like(%(img)s, 3, 'NaN')", "22023", "max_distance must be a number or 'auto'"),
    ("select * from find_photos_near(%(e)s::vector, 3, 'NaN'::float8)", "22023", "max_distance must be positive"),
    ("select * from find_photos_near('[1,2,3]'::vector, 3)", "22023", 'profile "mtcnn" has 128 dimensions'),
    ("select * from find_photos_near(NULL::vector, 3)", "22023", "embedding is NULL"),
    ("select * from detect_and_embed('\\x00'::bytea)", "22000", "image: not a supported image"),
    ("select remember_face('', %(img)s)", "22023", "a person needs a name"),
])
def test_errors_are_plain(db, call, state, message):
    with pytest.raises(psycopg.Error) as failure:
        db.execute(call, {"img": im.jpeg(Image.open(FACE)), "e": vector(db)})
    assert failure.value.diag.sqlstate == state, (failure.value.diag.sqlstate, failure.value.diag.message_primary)
    assert plain(failure.value).startswith(message)


def test_hint_names_the_profile_quoted(db):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as failure:
        db.execute("select * from find_photos_of('amy', 3, profile => 'hog')")
    assert plain(failure.value) == 'person "amy" has no reference face for profile "hog"'
    assert failure.value.diag.message_hint == "run remember_face or reprocess('hog')"


# 9. EXIF orientation: only a numeric tag turns the picture, as Pillow's exif_transpose does.

def test_an_ascii_orientation_tag_is_ignored(db):
    face = Image.open(FACE).convert("RGB").resize((300, 200))
    ascii_six = b"Exif\x00\x00" + im.tiff_ifd([(im.ORIENTATION, 2, 2, b"6\x00")])
    row = db.execute("insert into photos (filename, image) values ('ascii-six.jpg', %s) returning id, width, height",
                     (im.with_app1(im.jpeg(face), ascii_six),)).fetchone()
    assert row[1:] == (300, 200)
    short_six = b"Exif\x00\x00" + im.tiff_ifd([(im.ORIENTATION, 3, 1, struct.pack("<H", 6))])
    row = db.execute("insert into photos (filename, image) values ('short-six.jpg', %s) returning id, width, height",
                     (im.with_app1(im.jpeg(face.rotate(1)), short_six),)).fetchone()
    assert row[1:] == (200, 300)

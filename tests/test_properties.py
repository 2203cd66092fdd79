"""Property-based attacks (hypothesis): any image shape and size, any arguments to every search function, any value
of every setting. Each one either works or fails with a plain error of the right class (one line, no Python class
or traceback), and the connection goes on. PGFACES_PROPERTY_EXAMPLES raises the number of examples (default 30)."""

from __future__ import annotations

import io
import os

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

import images as im
from conftest import SHARED_FACES, plain

FACE = SHARED_FACES / "party" / "real" / "face-api.js__examples__images__amy__amy1.png"
EXAMPLES = int(os.environ.get("PGFACES_PROPERTY_EXAMPLES", "30"))
run = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))


def check_plain(e: psycopg.Error, classes: tuple[str, ...]) -> None:
    plain(e, classes)


@pytest.fixture(scope="module")
def db(make_database):
    if not FACE.exists():
        pytest.skip(f"the test photos are not here: {FACE}")
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into photos (filename, image) values ('amy.jpg', %s)", (im.jpeg(Image.open(FACE)),))
        conn.execute("select remember_face('amy', %s)", (im.jpeg(Image.open(FACE), quality=70),))
        yield conn


FORMATS = {"PNG": 65535, "JPEG": 65500, "BMP": 30000, "GIF": 65535, "WEBP": 16383, "TIFF": 65535}


@st.composite
def pictures(draw):
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    side = st.one_of(st.integers(1, 40), st.integers(1, 3000), st.integers(1, min(FORMATS[fmt], 70000)))
    width, height = draw(side), draw(side)
    if width * height > 4_000_000:  # keep each example quick to encode and analyse
        height = max(1, 4_000_000 // width)
    noise = draw(st.booleans())
    return fmt, width, height, noise


def encode(fmt: str, width: int, height: int, noise: bool) -> bytes:
    if noise:
        pixels = np.random.default_rng(width * 7 + height).integers(0, 255, (height, width, 3), np.uint8)
        image = Image.fromarray(pixels)
    else:
        image = Image.new("RGB", (width, height), (200, 120, 90))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def test_any_image_shape_is_stored_or_refused_plainly(db):
    @run
    @given(pictures())
    def case(picture):
        fmt, width, height, noise = picture
        name = f"p-{fmt}-{width}x{height}.img"
        data = encode(*picture)
        try:
            row = db.execute("insert into photos (filename, image) values (%s, %s) on conflict (sha256) do nothing"
                             " returning width, height", (name, data)).fetchone()
        except psycopg.Error as e:
            check_plain(e, ("22", "23"))
            assert e.diag.message_primary.startswith(f"{name}: ")
        else:
            assert row is None or row == (width, height)
        try:
            db.execute("select count(*) from find_photos_like(%s, 3)", (data,)).fetchone()
        except psycopg.Error as e:
            check_plain(e, ("22",))

    case()
    assert db.execute("select 1").fetchone() == (1,)


def _vectors(db):
    good = db.execute("select embedding::text from faces limit 1").fetchone()[0]
    return st.one_of(st.just(good), st.none(), st.just("[1,2,3]"), st.just("[" + ",".join(["1e30"] * 128) + "]"),
                     st.just("[" + ",".join(["0"] * 128) + "]"))


ints = st.one_of(st.none(), st.integers(-2**31, 2**31 - 1), st.sampled_from([0, 1, 10, 10000, 10001]))
floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 0.6]))
texts = st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["auto", " AUTO ", "0.5", "1e-3", "-1", "nan"]))
profiles = st.one_of(st.none(), st.sampled_from(["mtcnn", "hog", "tutorial", "nope", ""]), st.text(max_size=12))
names = st.one_of(st.none(), st.sampled_from(["amy", "nobody", ""]), st.text(max_size=12))


def test_any_search_arguments_work_or_fail_plainly(db):
    @run
    @given(st.data())
    def case(data):
        e = data.draw(_vectors(db))
        n, profile = data.draw(ints), data.draw(profiles)
        calls = [
            ("select count(*) from find_faces_near(%s::vector, %s, %s)", (e, n, profile)),
            ("select count(*) from find_photos_near(%s::vector, %s, %s::float8, %s)", (e, n, data.draw(floats), profile)),
            ("select count(*) from find_photos_near(%s::vector, %s, %s::text, %s)", (e, n, data.draw(texts), profile)),
            ("select count(*) from find_photos_of(%s, %s, %s::float8, %s)", (data.draw(names), n, data.draw(floats), profile)),
        ]
        for sql, args in calls:
            try:
                db.execute(sql, args).fetchone()
            except psycopg.errors.UntranslatableCharacter:
                pass  # a NUL in a text argument: PostgreSQL refuses it before any pgfaces code runs
            except psycopg.Error as e:
                check_plain(e, ("22",))

    case()


LIMITS = ["pgfaces.max_image_bytes", "pgfaces.max_pixels", "pgfaces.max_faces", "pgfaces.max_results"]


def test_any_setting_value_is_taken_or_refused_plainly(db):
    @run
    @given(st.sampled_from(LIMITS + ["pgfaces.analyse", "pgfaces.defer"]),
           st.one_of(st.integers(-2**40, 2**40), st.text(max_size=12), st.sampled_from(["", "deferred", "1e9"])))
    def case(name, value):
        try:
            db.execute("select set_config(%s, %s, false)", (name, str(value)))
        except psycopg.errors.UntranslatableCharacter:
            return
        except psycopg.Error as e:
            check_plain(e, ("22",))
        try:
            limits = db.execute("select * from pgfaces_limits()").fetchone()
            assert all(v >= 1 for v in limits)
            db.execute("select count(*) from find_photos_of('amy', 3)").fetchone()
        finally:
            db.execute(f'reset "{name}"')  # quoted: ANALYSE is a reserved word

    case()

"""The face-api.js photos the people tests group (eight people, alone and together), and helpers to ask who is
where; the fixtures give each test a collection clustered afresh."""

from __future__ import annotations

import psycopg
import pytest

from conftest import SHARED_FACES

REAL = SHARED_FACES / "party" / "real"
PEOPLE = ["amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart"]


def faceapi_photos() -> list:
    if not REAL.is_dir():
        pytest.skip(f"the test photos are not here: {REAL}")
    return sorted(p for p in REAL.iterdir() if p.name.startswith("face-api.js__examples__images__"))


def who(filename: str) -> str | None:
    """The person of a one-person face-api.js photo (face-api.js__examples__images__amy__amy1.png), else None."""
    parts = filename.split("__")
    return parts[3] if len(parts) == 5 and parts[3] in PEOPLE else None


def state(conn) -> dict[int, tuple]:
    return {r[0]: r[1:] for r in conn.execute("select f.id, fp.person_id, fp.assigned_by from faces f"
                                              " left join face_people fp on fp.face_id = f.id order by f.id")}


def same_photo_violations(conn) -> int:
    return conn.execute("select count(*) from (select f.person_id, f.photo_id from faces f where f.person_id is not null"
                        " group by 1, 2 having count(*) > 1) v").fetchone()[0]


def first_photo(person: str) -> str:
    return next(p.name for p in faceapi_photos() if who(p.name) == person)


def person_of(conn, filename: str) -> int | None:
    return conn.execute("select f.person_id from faces f join photos p on p.id = f.photo_id"
                        " where p.filename = %s or p.filename like '%%/' || %s"  # loaded by path or by name
                        " order by f.width * f.height desc limit 1", (filename, filename)).fetchone()[0]


@pytest.fixture(scope="module")
def url(make_database):
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        for path in faceapi_photos():
            conn.execute("insert into photos (filename, image) values (%s, %s)", (path.name, path.read_bytes()))
    return url


@pytest.fixture
def db(url):
    """A connection to the collection, freshly clustered with nothing decided by hand."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from face_people")
        conn.execute("delete from people")
        conn.execute("select cluster_faces()")
        yield conn

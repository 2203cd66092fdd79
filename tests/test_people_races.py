"""People under attack, round 3 (issue 20): the rules about people hold when two transactions race (N1, N8), a run
never ends in an internal error (N1), and named people survive the loss of every photo (N7). Each race opens two
connections whose calls overlap inside their transactions (tests/races.py)."""

from __future__ import annotations

import psycopg
import pytest

from conftest import plain
from people_photos import person_of, same_photo_violations
from people_photos import db, url  # noqa: F401 (fixtures: each test module gets its own collection)
from races import call, errors, race


def two_faces_of_one_photo(db) -> tuple[int, int]:
    return db.execute("select min(f.id), max(f.id) from faces f join photos p on p.id = f.photo_id"
                      " where p.filename like '%%bbt%%' group by p.id having count(*) >= 2 order by p.id limit 1"
                      ).fetchone()


def a_person_not_in(db, photo_faces) -> int:
    return db.execute("select pe.id from people pe where not exists (select from face_people fp join faces f"
                      " on f.id = fp.face_id where fp.person_id = pe.id and f.photo_id ="
                      " (select photo_id from faces where id = %s)) order by pe.id limit 1", (photo_faces[0],)
                      ).fetchone()[0]


def ghosts(db) -> int:
    return db.execute("select count(*) from people pe where pe.name is null"
                      " and not exists (select from face_people fp where fp.person_id = pe.id)"
                      " and not exists (select from person_references r where r.person_id = pe.id)").fetchone()[0]


# N1: two faces of one photo are never one person, even when two transactions assign them at once.

def test_two_faces_of_one_photo_assigned_at_once_to_one_person(db, url):
    a, b = two_faces_of_one_photo(db)
    person = a_person_not_in(db, (a, b))
    results = race(url, call("select assign_face(%s, %s)", a, person), call("select assign_face(%s, %s)", b, person))
    assert same_photo_violations(db) == 0
    [lost] = errors(results)  # one wins, the other is told why
    assert lost.diag.sqlstate == "23000" and "two faces of one photo are never one person" in plain(lost)
    db.execute("select cluster_faces()")  # and a run afterwards works


def test_a_merge_racing_an_assignment_into_a_shared_photo(db, url):
    a, b = two_faces_of_one_photo(db)
    keep, other = a_person_not_in(db, (a, b)), None
    db.execute("select assign_face(%s, %s)", (a, keep))
    other = db.execute("select pe.id from people pe where pe.id <> %s and not exists (select from face_people fp"
                       " join faces f on f.id = fp.face_id where fp.person_id = pe.id and f.photo_id ="
                       " (select photo_id from faces where id = %s)) order by pe.id limit 1", (keep, a)).fetchone()[0]
    results = race(url, call("select merge_people(%s, %s)", keep, other), call("select assign_face(%s, %s)", b, other))
    assert same_photo_violations(db) == 0
    for e in errors(results):
        assert e.diag.sqlstate == "23000", (e.diag.sqlstate, plain(e))


def test_a_run_whose_result_breaks_the_rule_keeps_one_face_and_never_fails(db):
    """A run's result that puts two faces of one photo in one person (the state changed since it read it) is
    written without the second face, which waits for the next run: never an internal error."""
    a, b = two_faces_of_one_photo(db)
    person = a_person_not_in(db, (a, b))
    faces = db.execute("select count(*) from face_people where person_id = %s", (person,)).fetchone()[0]
    assert db.execute("select pgfaces_cluster_apply('mtcnn', %s, %s)", ([a, b], [person, person])).fetchone()[0] == 2
    assert same_photo_violations(db) == 0
    assert db.execute("select face_id from face_people where person_id = %s and face_id in (%s, %s)",
                      (person, a, b)).fetchall() == [(a,)]
    assert db.execute("select count(*) from face_people where person_id = %s", (person,)).fetchone()[0] == faces + 1
    db.execute("select cluster_faces()")
    assert same_photo_violations(db) == 0


# N8: the loser of a race over a person is told "unknown person", never a foreign-key message.

@pytest.mark.parametrize("first, second", [
    ("select merge_people(%(p)s, %(q)s)", "select merge_people(%(r)s, %(q)s)"),
    ("select merge_people(%(p)s, %(q)s)", "select merge_people(%(q)s, %(p)s)"),
    ("select forget_person(%(q)s::bigint)", "select assign_face(%(f)s, %(q)s)"),
    ("select assign_face(%(f)s, %(q)s)", "select forget_person(%(q)s::bigint)"),
    ("select merge_people(%(p)s, %(q)s)", "select assign_face(%(f)s, %(q)s)"),
    ("select forget_person(%(q)s::bigint)", "select name_person(%(q)s, 'Racer')"),
])
def test_the_loser_of_a_race_over_a_person_is_told_unknown_person(db, url, first, second):
    p, q, r = db.execute(  # three people who share no photo: any two may be merged
        "with photos_of as (select fp.person_id, array_agg(f.photo_id) as photos from face_people fp"
        " join faces f on f.id = fp.face_id where fp.person_id is not null group by fp.person_id)"
        " select a.person_id, b.person_id, c.person_id from photos_of a, photos_of b, photos_of c"
        " where a.person_id < b.person_id and b.person_id < c.person_id and not a.photos && b.photos"
        " and not a.photos && c.photos and not b.photos && c.photos order by 1, 2, 3 limit 1").fetchone()
    face = db.execute("select f.id from faces f where not exists (select from faces g join face_people fp"
                      " on fp.face_id = g.id where g.photo_id = f.photo_id and fp.person_id = %s)"
                      " order by f.id limit 1", (q,)).fetchone()[0]
    args = {"p": p, "q": q, "r": r, "f": face}

    def run(sql):
        return lambda conn: conn.execute(sql, args).fetchone()[0]

    results = race(url, run(first), run(second))
    if first.startswith("select merge") and second.startswith("select merge"):
        assert len(errors(results)) == 1, results  # q is merged once: the other merge finds it gone
    for e in errors(results):
        assert e.diag.sqlstate == "22023" and plain(e).startswith("unknown person"), (e.diag.sqlstate, plain(e))
    assert same_photo_violations(db) == 0 and ghosts(db) == 0
    assert db.execute("select count(*) from face_people fp where fp.person_id is not null"
                      " and not exists (select from people pe where pe.id = fp.person_id)").fetchone()[0] == 0


# N7: named people and their references survive the loss of every photo.

def test_truncate_photos_keeps_named_people_and_references(make_database, shared_faces):
    url = make_database()
    real = shared_faces / "party" / "real"
    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("amy__amy1.png", "raj__raj1.png"):
            conn.execute("insert into photos (filename, image) values (%s, %s)",
                         (name, (real / f"face-api.js__examples__images__{name}").read_bytes()))
        conn.execute("select remember_face('Amy', %s)", ((shared_faces / "party" / "references" / "amy.png"
                                                          ).read_bytes(),))
        person = conn.execute("select id from people where name = 'Amy'").fetchone()[0]
        face = conn.execute("select f.id from faces f join photos p on p.id = f.photo_id"
                            " where p.filename = 'amy__amy1.png'").fetchone()[0]
        conn.execute("select assign_face(%s, %s)", (face, person))
        conn.execute("update people set cover_face_id = %s where id = %s", (face, person))
        unnamed = conn.execute("insert into people (profile) values ('mtcnn') returning id").fetchone()[0]
        conn.execute("select pgfaces_place(id, %s, 'cluster') from faces where id <> %s", (unnamed, face))
        conn.execute("truncate photos cascade")  # every photo lost: their faces go, named people stay
        assert conn.execute("select name, faces, cover_face_id from people_overview").fetchall() == [("Amy", 0, None)]
        assert conn.execute("select count(*) from person_references where person_id = %s", (person,)).fetchone()[0] == 1
        assert conn.execute("select count(*) from find_photos_of('Amy', 5)").fetchone()[0] == 0
        assert conn.execute("select count(*) from people where id = %s", (unnamed,)).fetchone()[0] == 0  # no ghost

"""Every rule about people holds under concurrent transactions (issue 20): each pair of edits (assign_face,
unassign_face, merge_people, forget_person, name_person, hide_person, cluster_faces, a photo's INSERT and DELETE)
runs in two connections at once, inside their transactions (tests/races.py), on the same people and photo; then the
rules are checked. A loser is told why in one plain line of a class the user can act on: never an internal error
(XX000), a raw foreign-key message (23503) or a deadlock (40P01)."""

from __future__ import annotations

import itertools

import psycopg
import pytest

from conftest import plain
from people_photos import REAL, person_of, same_photo_violations
from people_photos import url  # noqa: F401 (fixture: this module's own collection)
from races import errors, race

STUART = "face-api.js__examples__images__stuart__stuart{}.png"
R_IS, NEW, GONE = STUART.format(1), STUART.format(2), STUART.format(3)  # R's: a face, a photo to add, one to delete

# What a loser may be told: unknown person or face (22023), two faces of one photo (23000).
TOLD = {"22023": ("unknown person", "unknown face"), "23000": ("two faces of one photo are never one person",)}

OPS = {
    "assign h1 to R": ("select assign_face(%(h1)s, %(r)s)", ()),
    "assign h2 to R": ("select assign_face(%(h2)s, %(r)s)", ()),
    "unassign h1": ("select unassign_face(%(h1)s)", ()),
    "merge P into R": ("select merge_people(%(r)s, %(p)s)", ()),
    "merge R into P": ("select merge_people(%(p)s, %(r)s)", ()),
    "forget R": ("select forget_person(%(r)s::bigint)", ()),
    "name R": ("select name_person(%(r)s, 'Stuart')", ()),
    "hide P": ("select hide_person(%(p)s)", ()),
    "cluster": ("select cluster_faces()", ()),
    "delete R's photo": ("delete from photos where filename = %(gone)s", ()),
    "insert R's photo": ("insert into photos (filename, image) values (%(new)s, %(new_bytes)s)", ()),
}


def fresh(conn) -> dict:
    """The people as a run leaves them, and the cast: a photo H with two faces h1 (of person P) and h2; a person R
    with no face in H; a photo of R's to delete (GONE), and one to add (NEW), whose face joins R on INSERT."""
    conn.execute("delete from photos where filename = %s", (NEW,))
    conn.execute("insert into photos (filename, image) values (%s, %s) on conflict (sha256) do nothing",
                 (GONE, (REAL / GONE).read_bytes()))
    conn.execute("delete from face_people")
    conn.execute("delete from people")
    conn.execute("select cluster_faces()")
    r = person_of(conn, R_IS)
    assert r is not None and person_of(conn, GONE) == r
    h1, h2, p = conn.execute(
        "select a.id, b.id, a.person_id from faces a join faces b on b.photo_id = a.photo_id and b.id > a.id"
        " where a.person_id is not null and a.person_id <> %s"
        " and not exists (select from faces c where c.photo_id = a.photo_id and c.person_id = %s)"
        " order by a.id, b.id limit 1", (r, r)).fetchone()
    return {"h1": h1, "h2": h2, "p": p, "r": r, "gone": GONE, "new": NEW, "new_bytes": (REAL / NEW).read_bytes()}


def check_rules(conn) -> None:
    assert same_photo_violations(conn) == 0
    assert conn.execute("select count(*) from people pe where pe.name is null"  # no ghost people
                        " and not exists (select from face_people fp where fp.person_id = pe.id)"
                        " and not exists (select from person_references r where r.person_id = pe.id)").fetchone()[0] == 0
    assert conn.execute("select count(*) from face_people fp join faces f on f.id = fp.face_id"  # one profile each
                        " join people pe on pe.id = fp.person_id where pe.profile <> f.profile").fetchone()[0] == 0


@pytest.mark.parametrize("first, second", list(itertools.combinations(OPS, 2)) + [("cluster", "cluster")])
def test_two_edits_at_once_keep_every_rule(url, first, second):  # noqa: F811
    if not REAL.is_dir():
        pytest.skip(f"the test photos are not here: {REAL}")
    with psycopg.connect(url, autocommit=True) as conn:
        cast = fresh(conn)

    def run(op):
        sql, _ = OPS[op]
        return lambda c: c.execute(sql, cast).rowcount

    results = race(url, run(first), run(second))
    for e in errors(results):
        state, message = e.diag.sqlstate, plain(e)
        assert state in TOLD and message.startswith(TOLD[state]) or any(t in message for t in TOLD.get(state, ())), (
            first, second, state, message)
    with psycopg.connect(url, autocommit=True) as conn:
        check_rules(conn)
        for op, result in zip((first, second), results):  # a face the user placed stays, whatever ran beside it
            if op.startswith("assign") and not isinstance(result, psycopg.Error):
                face = cast["h1" if "h1" in op else "h2"]
                other = second if op == first else first
                if other in ("cluster", "hide P", "name R", "delete R's photo", "insert R's photo", "unassign h1") \
                        and not (other == "unassign h1" and face == cast["h1"]):
                    assert conn.execute("select person_id, assigned_by from face_people where face_id = %s",
                                        (face,)).fetchone() == (cast["r"], "user"), (first, second)
        conn.execute("select cluster_faces()")  # and a run afterwards finds nothing it cannot write
        check_rules(conn)

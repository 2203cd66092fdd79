"""People: faces grouped by cluster_faces(), named once, searched by name and by company. The rules no run may
break are tested on real photos (face-api.js's eight people, alone and together) after the user names, merges,
assigns and ejects by hand: two faces of one photo are never one person; a face the user placed stays there; a
named person is never renamed, dropped or merged by clustering and keeps its id; a re-run on unchanged data
changes nothing."""

from __future__ import annotations

import threading

import psycopg
import pytest
from PIL import Image

import images as im
from people_photos import PEOPLE, REAL, faceapi_photos, first_photo, person_of, same_photo_violations, state, who
from people_photos import db, url  # noqa: F401 (fixtures: each test module gets its own collection)

def test_the_eight_people_are_found_and_kept_apart(db):
    groups: dict[str, set] = {}
    for path in faceapi_photos():
        if who(path.name):  # the person of a one-person photo is its largest face
            groups.setdefault(who(path.name), set()).add(person_of(db, path.name))
    # Each person's photos in one group (a face just over the threshold may wait, unassigned), and no group
    # shared by two people: a false merge is the worst error.
    persons = {person: g - {None} for person, g in groups.items()}
    assert all(len(g) == 1 for g in persons.values()), str(sorted(groups.items()))
    assert len({next(iter(g)) for g in persons.values()}) == len(PEOPLE)
    assigned = sum(person_of(db, p.name) is not None for p in faceapi_photos() if who(p.name))
    assert assigned >= 0.9 * sum(1 for p in faceapi_photos() if who(p.name))
    assert same_photo_violations(db) == 0


def test_a_rerun_on_unchanged_data_changes_nothing(db):
    before = state(db)
    assert db.execute("select cluster_faces()").fetchone()[0] == 0
    assert state(db) == before


def test_user_decisions_survive_a_rerun(db):
    amy = person_of(db, "face-api.js__examples__images__amy__amy1.png")
    raj = person_of(db, "face-api.js__examples__images__raj__raj1.png")
    moved = db.execute("select f.id from faces f join photos p on p.id = f.photo_id"
                       " where p.filename = 'face-api.js__examples__images__amy__amy2.png'").fetchone()[0]
    ejected = db.execute("select f.id from faces f join photos p on p.id = f.photo_id"
                         " where p.filename = 'face-api.js__examples__images__amy__amy3.png'").fetchone()[0]
    assert db.execute("select assign_face(%s, %s)", (moved, raj)).fetchone()[0] == raj
    assert db.execute("select unassign_face(%s)", (ejected,)).fetchone()[0] == amy
    db.execute("select cluster_faces()")
    assert state(db)[moved] == (raj, "user")
    assert state(db)[ejected] == (None, "user")
    assert db.execute("select kept_apart from unassigned_faces where face_id = %s", (ejected,)).fetchone()[0]
    assert same_photo_violations(db) == 0


def test_named_people_keep_their_id_and_name_and_are_never_merged(db):
    amy = person_of(db, "face-api.js__examples__images__amy__amy1.png")
    penny = person_of(db, "face-api.js__examples__images__penny__penny2.png")
    db.execute("select name_person(%s, 'Amy')", (amy,))
    db.execute("select name_person(%s, 'Penny')", (penny,))
    # Give clustering every reason to merge them: one of Penny's faces placed in Amy by hand.
    face = db.execute("select f.id from faces f join photos p on p.id = f.photo_id"
                      " where p.filename = 'face-api.js__examples__images__penny__penny3.png'").fetchone()[0]
    db.execute("select assign_face(%s, %s)", (face, amy))
    for _ in range(2):
        db.execute("select cluster_faces()")
    names = dict(db.execute("select id, name from people where name is not null").fetchall())
    assert names == {amy: "Amy", penny: "Penny"}
    assert person_of(db, "face-api.js__examples__images__amy__amy4.png") == amy
    assert person_of(db, "face-api.js__examples__images__penny__penny4.png") == penny


def test_merge_and_its_refusals(db):
    a, b = db.execute(  # two people who never share a photo (the user merges them by mistake)
        "select a.person_id, b.person_id from face_people a join face_people b on a.person_id < b.person_id"
        " where not exists (select from faces x join faces y on x.photo_id = y.photo_id"
        "                   where x.person_id = a.person_id and y.person_id = b.person_id)"
        " order by a.person_id, b.person_id limit 1").fetchone()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"cannot merge person {a} into itself"):
        db.execute("select merge_people(%s, %s)", (a, a))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown person id -5"):
        db.execute("select merge_people(%s, -5)", (a,))
    db.execute("select name_person(%s, 'Leonard')", (b,))
    faces_a = db.execute("select count(*) from face_people where person_id in (%s, %s)", (a, b)).fetchone()[0]
    assert db.execute("select merge_people(%s, %s)", (a, b)).fetchone()[0] == a  # the user's wish, even if wrong
    assert db.execute("select name, faces from people_overview where person_id = %s", (a,)).fetchone() == (
        "Leonard", faces_a)
    assert db.execute("select count(*) from people where id = %s", (b,)).fetchone()[0] == 0
    db.execute("select cluster_faces()")  # merged by hand: the user's decision stays
    assert db.execute("select count(*) from face_people where person_id = %s", (a,)).fetchone()[0] == faces_a


def test_two_people_with_a_face_in_one_photo_cannot_be_merged(db):
    group = db.execute("select p.id from photos p join faces f on f.photo_id = p.id where p.filename like '%bbt%'"
                       " group by p.id having count(f.person_id) >= 2 limit 1").fetchone()[0]
    a, b = [r[0] for r in db.execute("select f.person_id from faces f where f.photo_id = %s and f.person_id is not null"
                                     " limit 2", (group,))]
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match=f"both have a face in photo {group}"):
        db.execute("select merge_people(%s, %s)", (a, b))
    face_b = db.execute("select f.id from faces f where f.photo_id = %s and f.person_id = %s", (group, b)).fetchone()[0]
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="never one person"):
        db.execute("select assign_face(%s, %s)", (face_b, a))


@pytest.mark.parametrize("call, error, message", [
    ("select name_person(-1, 'x')", psycopg.errors.InvalidParameterValue, "unknown person id -1"),
    ("select name_person(%(p)s, '  ')", psycopg.errors.InvalidParameterValue, "a person needs a name"),
    ("select name_person(%(p)s, NULL)", psycopg.errors.InvalidParameterValue, "a person needs a name"),
    ("select assign_face(-1, %(p)s)", psycopg.errors.InvalidParameterValue, "unknown face id -1"),
    ("select unassign_face(NULL)", psycopg.errors.InvalidParameterValue, "unknown face id NULL"),
    ("select hide_person(-1)", psycopg.errors.InvalidParameterValue, "unknown person id -1"),
    ("select forget_person('nobody')", psycopg.errors.InvalidParameterValue, 'unknown person "nobody"'),
    ("select * from find_photos_with(array['nobody'])", psycopg.errors.InvalidParameterValue, 'unknown person "nobody"'),
    ("select * from find_photos_with(array[]::text[])", psycopg.errors.InvalidParameterValue, "at least one name"),
    ("select * from suggest_people('nobody')", psycopg.errors.InvalidParameterValue, 'unknown person "nobody"'),
])
def test_bad_edits_are_clear_errors(db, call, error, message):
    person = person_of(db, "face-api.js__examples__images__raj__raj2.png")
    with pytest.raises(error, match=message):
        db.execute(call, {"p": person})


def test_a_duplicate_name_is_refused_with_the_way_to_merge(db):
    a = person_of(db, "face-api.js__examples__images__raj__raj1.png")
    b = person_of(db, "face-api.js__examples__images__sheldon__sheldon1.png")
    db.execute("select name_person(%s, 'Raj')", (a,))
    with pytest.raises(psycopg.errors.UniqueViolation, match=f'person {a} is named "Raj" already') as failure:
        db.execute("select name_person(%s, 'Raj')", (b,))
    assert failure.value.diag.message_hint == f"merge_people({a}, {b}) makes them one person"


def test_a_face_of_another_profile_cannot_join(db):
    other = db.execute("insert into people (profile) values ('hog') returning id").fetchone()[0]
    face = db.execute("select id from faces limit 1").fetchone()[0]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='is of profile "mtcnn", person .* of profile "hog"'):
        db.execute("select assign_face(%s, %s)", (face, other))


def test_hide_twice_and_forget(db):
    raj = person_of(db, "face-api.js__examples__images__raj__raj1.png")
    for _ in range(2):
        assert db.execute("select hide_person(%s)", (raj,)).fetchone()[0] == raj
    assert db.execute("select hidden from people_overview where person_id = %s", (raj,)).fetchone()[0]
    db.execute("select hide_person(%s, false)", (raj,))
    db.execute("select name_person(%s, 'Raj')", (raj,))
    faces = db.execute("select count(*) from face_people where person_id = %s", (raj,)).fetchone()[0]
    photos = db.execute("select count(*) from photos").fetchone()[0]
    assert db.execute("select forget_person('Raj')").fetchone()[0] == faces
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"unknown person id {raj}"):
        db.execute("select forget_person(%s::bigint)", (raj,))
    assert db.execute("select count(*) from photos").fetchone()[0] == photos
    db.execute("select cluster_faces()")  # no ghost: the forgotten faces stay in no person
    assert db.execute("select count(*) from unassigned_faces where kept_apart").fetchone()[0] == faces


def test_remember_face_names_a_person_and_suggests_the_group_it_falls_into(db, shared_faces):
    group = person_of(db, "face-api.js__examples__images__amy__amy1.png")
    named = db.execute("select remember_face('amy', %s)",
                       ((shared_faces / "party" / "references" / "amy.png").read_bytes(),)).fetchone()[0]
    assert named != group  # offered, not silently merged
    suggested = db.execute("select person_id from suggest_people('amy')").fetchall()
    assert suggested[0][0] == group
    db.execute("select merge_people(%s, %s)", (named, group))
    rows = db.execute("select filename from find_photos_of('amy', 10)").fetchall()
    amys = {r[0] for r in rows if who(r[0]) == "amy"}
    assert len(amys) == 4 and all(who(r[0]) in ("amy", None) for r in rows[:4])


def test_find_photos_with_company(db):
    names = {}
    for person in ("sheldon", "leonard", "penny"):
        pid = person_of(db, first_photo(person))
        db.execute("select name_person(%s, %s)", (pid, person))
        names[person] = pid
    together = db.execute("select filename from find_photos_with(array['sheldon', 'leonard'], 20)").fetchall()
    for (filename,) in together:
        persons = {r[0] for r in db.execute("select f.person_id from faces f join photos p on p.id = f.photo_id"
                                            " where p.filename = %s", (filename,))}
        assert {names["sheldon"], names["leonard"]} <= persons
    alone = db.execute("select filename from find_photos_with(array['sheldon'], 20, true)").fetchall()
    assert alone and {who(f) for (f,) in alone} <= {"sheldon", None}
    for (filename,) in alone:
        named = {r[0] for r in db.execute("select pe.name from faces f join photos p on p.id = f.photo_id"
                                          " join people pe on pe.id = f.person_id where p.filename = %s"
                                          " and pe.name is not null", (filename,))}
        assert named == {"sheldon"}


def test_a_new_face_joins_its_person_on_insert(db):
    stuart = person_of(db, "face-api.js__examples__images__stuart__stuart1.png")
    image = im.jpeg(Image.open(REAL / "face-api.js__examples__images__stuart__stuart2.png").convert("RGB").rotate(5))
    photo = db.execute("insert into photos (filename, image) values ('stuart-again.jpg', %s) returning id",
                       (image,)).fetchone()[0]
    try:
        assert db.execute("select fp.person_id, fp.assigned_by from faces f join face_people fp on fp.face_id = f.id"
                          " where f.photo_id = %s", (photo,)).fetchone() == (
            stuart, "join")
    finally:
        db.execute("delete from photos where id = %s", (photo,))


def test_two_runs_at_once_and_inserts_during_a_run(url):
    errors = []

    def run(sql, args=()):
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql, args)
        except psycopg.Error as e:  # noqa: PERF203
            errors.append(e)

    photo = REAL / "face-api.js__examples__images__bbt1.jpg"
    data = im.jpeg(Image.open(photo).convert("RGB").rotate(2))
    threads = [threading.Thread(target=run, args=("select cluster_faces()",)) for _ in range(2)]
    threads.append(threading.Thread(target=run, args=(
        "insert into photos (filename, image) values ('bbt-again.jpg', %s)", (data,))))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    with psycopg.connect(url, autocommit=True) as conn:
        assert same_photo_violations(conn) == 0
        assert conn.execute("select count(*) from faces f join photos p on p.id = f.photo_id"
                            " where p.filename = 'bbt-again.jpg'").fetchone()[0] >= 2
        conn.execute("delete from photos where filename = 'bbt-again.jpg'")


def test_no_ghost_people_when_their_faces_go(db):
    """An unnamed person whose last face goes (photo deleted, face unassigned) is gone too; a named one stays."""
    def faces_of(person):
        return [r[0] for r in db.execute("select face_id from face_people where person_id = %s", (person,))]

    raj = person_of(db, "face-api.js__examples__images__raj__raj1.png")
    db.execute("select name_person(%s, 'Raj')", (raj,))
    stuart = person_of(db, "face-api.js__examples__images__stuart__stuart1.png")
    for face in faces_of(raj) + faces_of(stuart)[1:]:
        db.execute("select unassign_face(%s)", (face,))
    db.execute("delete from photos where id = (select photo_id from faces where id = %s)", (faces_of(stuart)[0],))
    assert db.execute("select count(*) from people where id = %s", (stuart,)).fetchone()[0] == 0
    assert db.execute("select faces from people_overview where person_id = %s", (raj,)).fetchone() == (0,)

"""The client-side helpers under attack, round 3 (issue 20, N4): where plpython3u is installed the server calls them
itself and no log-in role may; in client-side mode a writer calls them, and they check what they store as the
server's path does (the image's size and format, the embedding, the thumbnail) and take the run's lock."""

from __future__ import annotations

import psycopg
import pytest

import images as im
import test_roles as roles
from conftest import SHARED_FACES, plain

REFERENCE = SHARED_FACES / "party" / "references" / "amy.png"
UNIT = "[" + ",".join(["1"] + ["0"] * 127) + "]"
CALLABLE = ("select p.proname from pg_proc p where p.pronamespace = 'public'::regnamespace"
            " and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid"
            "                 and d.deptype = 'e') and has_function_privilege(%s, p.oid, 'execute')")


@pytest.mark.parametrize("call, args", [
    ("select pgfaces_remember('x', 'mtcnn', %s, %s::vector)", (b"\x00" * (70 * 1024 * 1024), "[0" + ",0" * 127 + "]")),
    ("select pgfaces_cluster_apply('mtcnn', '{}', '{}')", ()),
    ("select pgfaces_refresh_neighbours('mtcnn', 2000000000)", ()),
    ("select pgfaces_faces_added(1)", ()),
])
def test_a_server_install_keeps_its_helpers_from_writers(make_database, login_as, call, args):
    url = make_database()
    with psycopg.connect(login_as(url, "writer"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(call, args)


@pytest.fixture(scope="module")
def client_side(make_database):
    return make_database(client_side=True)


def test_a_client_side_writer_may_call_the_helpers(client_side):
    with psycopg.connect(client_side, autocommit=True) as conn:
        names = {r[0] for r in conn.execute(CALLABLE, ("pgfaces_writer",))}
    assert names == roles.SEARCH | roles.EDIT_PEOPLE | roles.CLIENT_SIDE_HELPERS


@pytest.mark.parametrize("image, embedding, thumbnail, state, message", [
    (b"\x00" * (70 * 1024 * 1024), UNIT, None, "22000",
     "reference image: image is 73400320 bytes, more than the limit of 67108864 bytes"),
    (b"<html><body>not a face</body></html>", UNIT, None, "22000", "reference image: not a supported image"),
    (b"", UNIT, None, "22000", "reference image: empty image"),
    (None, UNIT, None, "22004", "a reference needs its image and its embedding"),
    ("{reference}", "[0" + ",0" * 127 + "]", None, "22023", "reference image: the embedding's length is 0"),
    ("{reference}", "[1e-9" + ",0" * 127 + "]", None, "22023", "reference image: the embedding's length is 0"),
    ("{reference}", "[1,2,3]", None, "22023", 'reference image: profile "mtcnn" has 128 dimensions'),
    ("{reference}", UNIT, b"GIF89a" + bytes(100), "22023", "reference image: the thumbnail is not a JPEG"),
    ("{reference}", UNIT, b"\xff\xd8\xff" + bytes(70000) + b"\xff\xd9", "22023", "reference image: a thumbnail of 70005 bytes"),
])
def test_pgfaces_remember_checks_what_it_stores(client_side, login_as, image, embedding, thumbnail, state, message):
    if image == "{reference}":
        image = REFERENCE.read_bytes()
    with psycopg.connect(login_as(client_side, "writer"), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as failure:
            conn.execute("select pgfaces_remember('Amy', 'mtcnn', %s, %s::vector, %s)", (image, embedding, thumbnail))
        assert failure.value.diag.sqlstate == state and plain(failure.value).startswith(message), (
            failure.value.diag.sqlstate, plain(failure.value))
        assert conn.execute("select count(*) from people").fetchone()[0] == 0  # nothing stored


def test_pgfaces_remember_stores_a_reference_the_server_would(client_side, login_as):
    if not REFERENCE.exists():
        pytest.skip(f"the test photos are not here: {REFERENCE}")
    with psycopg.connect(login_as(client_side, "writer"), autocommit=True) as conn:
        person = conn.execute("select pgfaces_remember('Amy', 'mtcnn', %s, %s::vector, %s)",
                              (REFERENCE.read_bytes(), UNIT, im.jpeg(im.gradient(96, 96, seed=2)))).fetchone()[0]
        assert conn.execute("select count(*) from person_references where person_id = %s", (person,)).fetchone()[0] == 1
        conn.execute("select forget_person(%s::bigint)", (person,))


def test_cluster_apply_waits_for_the_run_going_on(client_side, login_as):
    with psycopg.connect(client_side) as run, psycopg.connect(login_as(client_side, "writer"), autocommit=True) as conn:
        run.execute("select pgfaces_cluster_begin('mtcnn')")  # a run holds the profile's lock until it commits
        conn.execute("set lock_timeout = '300ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            conn.execute("select pgfaces_cluster_apply('mtcnn', '{}', '{}')")
        run.rollback()
        assert conn.execute("select pgfaces_cluster_apply('mtcnn', '{}', '{}')").fetchone()[0] == 0


@pytest.mark.parametrize("most", [0, -1, None, 100001])
def test_refresh_neighbours_is_bounded(client_side, login_as, most):
    with psycopg.connect(login_as(client_side, "writer"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="most must be between 1 and 100000"):
            conn.execute("select pgfaces_refresh_neighbours('mtcnn', %s)", (most,))


def test_client_side_faces_are_checked_as_they_arrive(client_side, login_as):
    """A client-side writer inserts the faces its client found: each is checked as the server would make it."""
    with psycopg.connect(login_as(client_side, "writer"), autocommit=True) as conn:
        photo = conn.execute("insert into photos (filename, image, sha256, width, height)"
                             " values ('p.jpg', %s, 'x', 100, 80) returning id",
                             (im.jpeg(im.gradient(100, 80, seed=4)),)).fetchone()[0]
        insert = ("insert into faces (photo_id, profile, x, y, width, height, score, embedding, thumbnail)"
                  " values (%s, 'mtcnn', %s, %s, %s, %s, %s, %s::vector, %s)")
        for box, score, embedding, message in [
                ((0, 0, 101, 10), 0.9, UNIT, "the box 101x10 at 0,0 is not inside the 100x80 picture"),
                ((5, 5, 10, 10), float("nan"), UNIT, "score: NaN is not a number"),
                ((5, 5, 10, 10), 0.9, "[0" + ",0" * 127 + "]", "the embedding's length is 0")]:
            with pytest.raises(psycopg.errors.InvalidParameterValue) as failure:
                conn.execute(insert, (photo, *box, score, embedding, None))
            assert plain(failure.value) == f"photo {photo}, a face: {message}" or message in plain(failure.value)
        conn.execute(insert, (photo, 5, 5, 10, 10, 0.9, UNIT, im.jpeg(im.gradient(96, 96, seed=5))))
        conn.execute("delete from photos where id = %s", (photo,))

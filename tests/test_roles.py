"""pgfaces_reader may only search; pgfaces_writer may also insert and delete photos and remember faces. Neither may
create functions, use plpython3u, read server files or change profiles. Every allow and every denial is proved by
logging in over TCP as a user in each role."""

from __future__ import annotations

import secrets
import urllib.parse
import uuid

import psycopg
import pytest
from PIL import Image

import images as im
from conftest import SHARED_FACES

FACE = SHARED_FACES / "party" / "real" / "face-api.js__examples__images__amy__amy1.png"
Denied = psycopg.errors.InsufficientPrivilege


def _as(url: str, user: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="module")
def role_db(make_database, admin_url):
    """A migrated database holding one photo, plus a log-in user in each role (dropped at the end)."""
    if not FACE.exists():
        pytest.skip(f"the test photos are not here: {FACE}")
    url = make_database()
    tag = uuid.uuid4().hex[:8]
    users = {}
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for role in ("reader", "writer"):
            name, password = f"pgfaces_test_{role}_{tag}", secrets.token_urlsafe(16)
            admin.execute(f"create role {name} login password '{password}' in role pgfaces_{role}")
            admin.execute(f"alter role {name} set statement_timeout = '60s'")  # README: a timeout per log-in role
            users[role] = _as(url, name, password)
            users[f"{role}_name"] = name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into photos (filename, image) values ('amy.jpg', %s)", (im.jpeg(Image.open(FACE)),))
    yield url, users
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"drop database if exists \"{urllib.parse.urlsplit(url).path[1:]}\" with (force)")
        for role in ("reader", "writer"):
            admin.execute(f"drop role if exists pgfaces_test_{role}_{tag}")


@pytest.fixture(params=["reader", "writer"])
def user(request, role_db):
    with psycopg.connect(role_db[1][request.param], autocommit=True) as conn:
        yield request.param, conn


def reference() -> bytes:
    return im.jpeg(Image.open(FACE), quality=70)


def test_both_may_search(user):
    role, conn = user
    assert conn.execute("select current_user").fetchone()[0].startswith(f"pgfaces_test_{role}")
    assert conn.execute("select count(*) from photos").fetchone()[0] >= 1
    assert conn.execute("select count(*) from faces").fetchone()[0] >= 1
    assert conn.execute("select count(*) from profiles").fetchone()[0] >= 1
    conn.execute("select count(*) from people").fetchone()
    conn.execute("select count(*) from person_references").fetchone()
    assert [r[1] for r in conn.execute("select * from find_photos_like(%s, 3)", (reference(),))] == ["amy.jpg"]
    assert conn.execute("select count(*) from find_faces_like(%s, 3)", (reference(),)).fetchone()[0] == 1
    vector = conn.execute("select embedding from faces limit 1").fetchone()[0]
    assert conn.execute("select count(*) from find_faces_near(%s::vector, 3)", (vector,)).fetchone()[0] == 1
    assert conn.execute("select count(*) from find_photos_near(%s::vector, 3)", (vector,)).fetchone()[0] == 1
    assert conn.execute("select count(*) from detect_and_embed(%s)", (reference(),)).fetchone()[0] == 1


DENIED_TO_BOTH = {
    "update profiles": "update profiles set match_threshold = 0.1",
    "insert profiles": "insert into profiles (name, detector, embedder, dimensions) values ('evil', 'hog', 'dlib', 128)",
    "delete profiles": "delete from profiles",
    "insert faces": "insert into faces (photo_id, profile, x, y, width, height, embedding)"
                    " select id, 'hog', 0, 0, 1, 1, '[1,2]' from photos limit 1",
    "update faces": "update faces set x = 0",
    "delete faces": "delete from faces",
    "update photos": "update photos set filename = 'x'",
    "create function": "create function public.evil() returns int language sql as 'select 1'",
    "create temp function": "create function pg_temp.evil() returns int language sql as 'select 1'",
    "create temp table": "create temp table evil (x int)",
    "create table": "create table public.evil (x int)",
    "plpython3u": "create function public.evil() returns int language plpython3u as 'return 1'",
    "plpython3u do": "do language plpython3u $$ import os $$",
    "read server file": "select pg_read_binary_file('/etc/passwd')",
    "read server text file": "select pg_read_file('postgresql.conf')",
    "list server dir": "select pg_ls_dir('.')",
    "copy from file": "copy people (name) from '/etc/hostname'",
    "copy from program": "copy people (name) from program 'id'",
    "lo_import": "select lo_import('/etc/passwd')",
    "reprocess": "select reprocess('hog')",
    "ensure index": "select pgfaces_ensure_profile_index('hog')",
    "set role postgres": "set role postgres",
    "alter system": "alter system set work_mem = '1GB'",
}


@pytest.mark.parametrize("what", sorted(DENIED_TO_BOTH))
def test_denied_to_both(user, what):
    _, conn = user
    with pytest.raises((Denied, psycopg.errors.FeatureNotSupported)):
        conn.execute(DENIED_TO_BOTH[what])


def test_reader_may_not_write(role_db):
    _, users = role_db
    with psycopg.connect(users["reader"], autocommit=True) as conn:
        with pytest.raises(Denied):
            conn.execute("insert into photos (filename, image) values ('r.jpg', %s)", (im.jpeg(),))
        with pytest.raises(Denied):
            conn.execute("delete from photos")
        with pytest.raises(Denied):
            conn.execute("select remember_face('Amy', %s)", (reference(),))
        with pytest.raises(Denied):
            conn.execute("insert into people (name) values ('x')")
        with pytest.raises(Denied):
            conn.execute("select pgfaces_py_analyse_photo(p, false) from photos p limit 1")


def test_writer_inserts_deletes_and_remembers(role_db):
    url, users = role_db
    image = im.jpeg(Image.open(FACE).rotate(3))
    with psycopg.connect(users["writer"], autocommit=True) as conn:
        photo = conn.execute("insert into photos (filename, image) values ('w.jpg', %s) returning id", (image,)).fetchone()[0]
        assert conn.execute("select count(*) from faces where photo_id = %s", (photo,)).fetchone()[0] == 1
        assert conn.execute("select remember_face('Amy', %s)", (reference(),)).fetchone()[0] > 0
        assert [r[1] for r in conn.execute("select * from find_photos_of('Amy', 5)")][:1] in (["amy.jpg"], ["w.jpg"])
        conn.execute("delete from photos where id = %s", (photo,))
        assert conn.execute("select count(*) from faces where photo_id = %s", (photo,)).fetchone()[0] == 0


def test_python_functions_are_security_definer_with_fixed_search_path(role_db):
    url, _ = role_db
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select p.proname, p.prosecdef, p.proconfig, r.rolsuper from pg_proc p join pg_language l on l.oid = p.prolang"
            " join pg_roles r on r.oid = p.proowner where l.lanname = 'plpython3u'"
            " and p.pronamespace = 'public'::regnamespace").fetchall()
        assert rows
        for name, definer, config, owner_is_super in rows:
            assert definer and owner_is_super, name
            assert "search_path=public, pg_temp" in (config or []), (name, config)
        # Nobody but superusers may use the language.
        assert not conn.execute("select lanpltrusted from pg_language where lanname = 'plpython3u'").fetchone()[0]


@pytest.mark.parametrize("role", ["reader", "writer"])
def test_statement_timeout_stops_a_long_search(role_db, admin_url, role):
    _, users = role_db
    with psycopg.connect(users[role], autocommit=True) as conn:
        assert conn.execute("show statement_timeout").fetchone()[0] == "1min"
    name = users[f"{role}_name"]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"alter role {name} set statement_timeout = '300ms'")
    try:
        with psycopg.connect(users[role], autocommit=True) as conn:
            vector = conn.execute("select embedding from faces limit 1").fetchone()[0]
            with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
                conn.execute("select pg_sleep(2), * from find_photos_near(%s::vector, 3)", (vector,))
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"alter role {name} set statement_timeout = '60s'")


# Every function of the schema each role may execute, read from the catalog: a new function is callable by nobody
# until sql/idempotent/090-grants.sql lists it, and nothing internal (pgfaces_py_*, reprocess, ...) is on a list.
SEARCH = {"find_faces_near", "find_photos_near", "find_photos_of", "find_faces_like", "find_photos_like",
          "face_embedding", "detect_and_embed", "km_between", "face_key",
          "pgfaces_profile", "pgfaces_operator", "pgfaces_limits", "pgfaces_is_client_side", "pgfaces_person_name"}
SEARCH |= {"find_photos_with", "suggest_people", "suggest_merges", "person_id",
           "pgfaces_deferred"}  # the WHEN of the photos triggers, evaluated as the user who inserts
SEARCH |= {"pgfaces_nearest_names"}  # the hint of an unknown name (pgfaces.client.cli)
EDIT_PEOPLE = {"remember_face", "name_person", "merge_people", "assign_face", "unassign_face", "hide_person",
               "forget_person", "cluster_faces"}
# What the server's Python calls in a server install; a writer calls them only in client-side mode (test_client_helpers).
CLIENT_SIDE_HELPERS = {"pgfaces_remember", "pgfaces_faces_added", "pgfaces_cluster_begin", "pgfaces_refresh_neighbours",
                       "pgfaces_cluster_unchanged", "pgfaces_cluster_faces", "pgfaces_cluster_apply"}
CALLABLE = {"reader": SEARCH, "writer": SEARCH | EDIT_PEOPLE}


@pytest.mark.parametrize("role", ["reader", "writer"])
def test_the_functions_each_role_may_call_are_exactly_the_listed_ones(role_db, role):
    url, _ = role_db
    with psycopg.connect(url, autocommit=True) as conn:
        names = {r[0] for r in conn.execute(
            "select p.proname from pg_proc p where p.pronamespace = 'public'::regnamespace"
            " and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid"
            "                 and d.deptype = 'e')"
            " and has_function_privilege(%s, p.oid, 'execute')", (f"pgfaces_{role}",))}
    assert names == CALLABLE[role]

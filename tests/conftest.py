"""Database fixtures: every test session gets a throwaway database on the project's server.

`invoke test` starts the server and passes its maintenance URI in PGFACES_ADMIN_URL.
"""

from __future__ import annotations

import os
import pathlib
import re
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_FACES = ROOT.parent / "shared" / "faces"
SQL_DIR = pathlib.Path(os.environ.get("PGFACES_SQL_DIR", ROOT / "sql"))


PYTHONISH = re.compile(r"plpy\.|spiexceptions|Traceback|[A-Z][a-z]+Error: |\.py\b")


def plain(e, classes: tuple[str, ...] | None = None) -> str:
    """The error's message, checked to be what a user should see: one line, no Python class name or traceback
    (and, given `classes`, a SQLSTATE of one of those classes)."""
    state, message = e.diag.sqlstate or "", e.diag.message_primary or ""
    assert classes is None or state[:2] in classes, (state, message)
    assert "\n" not in message and not PYTHONISH.search(message), message
    assert not PYTHONISH.search(e.diag.context or ""), e.diag.context
    return message


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def admin_url() -> str:
    url = os.environ.get("PGFACES_ADMIN_URL")
    if not url:
        pytest.fail("PGFACES_ADMIN_URL is not set: run the tests with `./pgfaces test` (it starts the server)")
    return url


@pytest.fixture(scope="session")
def make_database(admin_url):
    """Creates migrated throwaway databases; drops them when the session ends."""
    import psycopg
    from pgfaces.migrate import migrate

    made = []

    def make(client_side: bool = False, migrated: bool = True) -> str:
        name = f"pgfaces_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        made.append(name)
        url = _with_database(admin_url, name)
        if migrated:
            with psycopg.connect(url) as conn:
                migrate(conn, SQL_DIR, client_side=client_side, log=lambda *_: None)
        return url

    yield make
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def db_url(make_database) -> str:
    """The session's shared, migrated database."""
    return make_database()


@pytest.fixture
def conn(db_url):
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture(scope="session")
def shared_faces() -> pathlib.Path:
    if not SHARED_FACES.is_dir():
        pytest.skip(f"the test photos are not here: {SHARED_FACES} (clone the project beside shared/)")
    return SHARED_FACES


@pytest.fixture(scope="session")
def login_as(admin_url):
    """login_as(url, "reader" | "writer") -> the URL of a new log-in user in pgfaces_<role>, over TCP (dropped at
    the end of the session)."""
    import secrets
    import urllib.parse

    import psycopg

    made = []

    def make(url: str, role: str) -> str:
        name, password = f"pgfaces_test_{role}_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"create role {name} login password '{password}' in role pgfaces_{role}")
        made.append(name)
        parts = urllib.parse.urlsplit(url)
        netloc = f"{name}:{urllib.parse.quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    yield make
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in made:
            admin.execute(f"drop role if exists {name}")

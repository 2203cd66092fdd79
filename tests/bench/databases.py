"""The benchmarks' own databases on the project's server: never the user's."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def database_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


def empty_database(admin_url: str, name: str) -> str:
    """Drops and recreates `name`, with nothing in it; returns its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    return database_url(admin_url, name)


def fresh_database(admin_url: str, name: str) -> str:
    """Drops and recreates `name`, migrates it and returns its URL."""
    import psycopg
    from pgfaces.migrate import migrate

    url = empty_database(admin_url, name)
    with psycopg.connect(url) as conn:
        migrate(conn, ROOT / "sql", log=lambda *_: None)
    return url


def only_profile(url: str, profile: str) -> None:
    """Makes `profile` the database's default and its only ingesting profile."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("update profiles set ingest = (name = %s)", (profile,))
        conn.execute("update profiles set is_default = false where is_default and name <> %s", (profile,))
        conn.execute("update profiles set is_default = true where name = %s", (profile,))


def profile_dict(url: str, profile: str) -> dict:
    """The profile as the server's Python gets it (pgfaces.profiles)."""
    import psycopg
    from psycopg.rows import dict_row

    from pgfaces.profiles import COLUMNS, from_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return from_row(conn.execute(f"select {COLUMNS} from profiles where name = %s", (profile,)).fetchone())


def exists(admin_url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        return conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None

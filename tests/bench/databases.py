"""The benchmarks' own databases on the project's server: never the user's."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def database_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


def fresh_database(admin_url: str, name: str) -> str:
    """Drops and recreates `name`, migrates it and returns its URL."""
    import psycopg
    from pgfaces.migrate import migrate

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    url = database_url(admin_url, name)
    with psycopg.connect(url) as conn:
        migrate(conn, ROOT / "sql", log=lambda *_: None)
    return url

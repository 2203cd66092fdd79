"""A sharded setup on PostgreSQL's own postgres_fdw (README, "Shards"): N shard databases, each an ordinary pgfaces
database holding some photos with their faces (and analysing them), and an entry node that routes each INSERT to a
shard by the photo's hash and answers every search from all shards with one SQL call.

This module turns migrated databases into shards and an entry (sql/shards/); starting the clusters is the tasks'
(tasks/shards.py). Run again, it changes nothing.
"""

from __future__ import annotations

import pathlib
import urllib.parse
from dataclasses import dataclass

SQL_DIR = pathlib.Path(__file__).resolve().parent.parent.parent / "sql" / "shards"
# What a user of the entry reaches first: the sharded photos, faces and searches, then the entry's own tables.
ENTRY_SEARCH_PATH = "sharded, public"


class ShardError(Exception):
    pass


@dataclass(frozen=True)
class ShardAddress:
    """Where the entry reaches a shard: its URL's host, port, database, and the role and password it logs in with."""
    host: str
    port: int
    dbname: str
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> ShardAddress:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ShardError(f"a shard's address must be a URL postgresql://USER:PASSWORD@HOST:PORT/DB, got {url!r}")
        if not parts.password:
            raise ShardError(f"the shard at {parts.hostname}:{parts.port or 5432} needs a password in its URL "
                             "(the entry logs in with it: `./pgfaces url` on the shard prints one)")
        return cls(parts.hostname, parts.port or 5432, parts.path.lstrip("/") or "pgfaces",
                   urllib.parse.unquote(parts.username or "postgres"), urllib.parse.unquote(parts.password))

    def server_options(self) -> dict[str, str]:
        # extensions: pgvector's operators and casts may be sent to the shard (the ORDER BY ... LIMIT of a search
        # runs there, on its HNSW index); async_capable: the shards of one search are asked at once;
        # parallel_commit: and their remote transactions committed at once.
        return {"host": self.host, "port": str(self.port), "dbname": self.dbname, "extensions": "vector",
                "async_capable": "true", "parallel_commit": "true", "connect_timeout": "10"}


def _options(conn, kind: str, name: str, wanted: dict[str, str], have: dict[str, str]) -> None:
    from psycopg import sql

    changes = [sql.SQL("{} {} {}").format(sql.SQL("set" if k in have else "add"), sql.Identifier(k), sql.Literal(v))
               for k, v in wanted.items() if have.get(k) != v]
    if changes:
        conn.execute(sql.SQL("alter {} options ({})").format(sql.SQL(kind).format(sql.Identifier(name)),
                                                             sql.SQL(", ").join(changes)))


def _have(conn, query: str, name: str) -> dict[str, str] | None:
    row = conn.execute(query, (name,)).fetchone()
    return None if row is None else dict(o.split("=", 1) for o in (row[0] or []))


def register(conn, number: int, shard: ShardAddress) -> None:
    """The foreign server pgfaces_shard_<number> and the user mapping every role of the entry reaches it with."""
    from psycopg import sql

    name = f"pgfaces_shard_{number}"
    have = _have(conn, "select srvoptions from pg_foreign_server where srvname = %s", name)
    if have is None:
        conn.execute(sql.SQL("create server {} foreign data wrapper postgres_fdw").format(sql.Identifier(name)))
        have = {}
    _options(conn, "server {}", name, shard.server_options(), have)
    login = {"user": shard.user, "password": shard.password}
    have = _have(conn, "select umoptions from pg_user_mappings where srvname = %s and usename = 'public'", name)
    if have is None:
        conn.execute(sql.SQL("create user mapping for public server {}").format(sql.Identifier(name)))
        have = {}
    _options(conn, "user mapping for public server {}", name, login, have)


def make_shard(conn, number: int) -> None:
    """A migrated pgfaces database made shard `number` (its ids from number * 10^12: sql/shards/shard.sql)."""
    with conn.transaction():
        conn.execute("select set_config('pgfaces_shards.shard', %s, true)", (str(number),))
        conn.execute((SQL_DIR / "shard.sql").read_text())


def make_entry(conn, shards: list[ShardAddress]) -> None:
    """A migrated pgfaces database made the entry node of these shards, numbered from 1 in this order."""
    if not shards:
        raise ShardError("an entry node needs at least one shard")
    with conn.transaction():
        conn.execute("create extension if not exists postgres_fdw")
        for number, shard in enumerate(shards, 1):
            register(conn, number, shard)
        conn.execute("select set_config('pgfaces_shards.count', %s, true)", (str(len(shards)),))
        conn.execute((SQL_DIR / "entry.sql").read_text())
        database = conn.execute("select current_database()").fetchone()[0]
        from psycopg import sql

        conn.execute(sql.SQL("alter database {} set search_path = " + ENTRY_SEARCH_PATH).format(sql.Identifier(database)))


def refresh_entry(conn) -> None:
    """entry.sql again after a migrate of an entry node: its copies of the search functions follow the new ones."""
    with conn.transaction():
        conn.execute("select set_config('pgfaces_shards.count', (select count(*) from sharded.pgfaces_shards())::text,"
                     " true)")
        conn.execute((SQL_DIR / "entry.sql").read_text())


def is_entry(conn) -> bool:
    return conn.execute("select to_regclass('sharded.photos') is not null").fetchone()[0]


def shard_status(conn) -> list[tuple[int, str, str]]:
    """(number, host:port/db, what it answers) for each shard of an entry node."""
    rows = conn.execute(
        "select s.shard, s.faces::text, s.photos::text,"
        " (select string_agg(split_part(o, '=', 2), ':' order by o) from unnest(f.srvoptions) o"
        "  where o like 'host=%%' or o like 'port=%%')"
        " from sharded.pgfaces_shards() s join pg_foreign_server f on f.srvname = s.server order by 1").fetchall()
    out = []
    for number, faces, photos, where in rows:
        try:
            with conn.transaction():
                counts = conn.execute(f"select (select count(*) from {photos}), (select count(*) from {faces})").fetchone()
            out.append((number, where, f"{counts[0]} photos, {counts[1]} faces"))
        except Exception as e:  # noqa: BLE001 - any failure is that shard's state, shown as such
            message = getattr(getattr(e, "diag", None), "message_primary", None) or str(e)
            out.append((number, where, f"not answering: {message.splitlines()[0]}"))
    return out

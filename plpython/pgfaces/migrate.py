"""Schema migrations, in the manner of pgai's extension.

`sql/incremental/NNN-name.sql` runs once per database and is recorded, with its checksum, in the ledger table
`pgfaces_migration`; an applied file that was edited afterwards is refused. `sql/idempotent/NNN-name.sql` is
`create or replace` and re-runs on every migrate. Files run in name order, each in its own transaction.

With `client_side=True` the files whose first line is `-- requires: plpython3u` are skipped, so the schema
installs on managed services that offer pgvector but no untrusted languages; files whose first line is
`-- client-side only` run in that mode alone (stubs that say why a Python function is missing).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import pathlib
import sys

LEDGER = "pgfaces_migration"
PLPYTHON_MARK = "-- requires: plpython3u"
CLIENT_SIDE_MARK = "-- client-side only"
# Serialises concurrent migrations of one database (two `invoke up` at once, or a container restart loop).
ADVISORY_LOCK_KEY = 0x70676661636573


class MigrationError(Exception):
    pass


def default_sql_dir() -> pathlib.Path:
    """sql/ two levels above this file: the repository's (plpython/pgfaces/) and the image's (/opt/pgfaces/python/pgfaces/)."""
    return pathlib.Path(__file__).resolve().parent.parent.parent / "sql"


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _files(directory: pathlib.Path, client_side: bool) -> list[pathlib.Path]:
    skip = PLPYTHON_MARK if client_side else CLIENT_SIDE_MARK
    return [f for f in sorted(directory.glob("*.sql")) if not f.read_text().startswith(skip)]


@contextlib.contextmanager
def _notices_to(log, conn, name: str, ours_only: bool):
    """Passes the NOTICEs raised while `name` runs to `log`; with ours_only, only pgfaces' own (SQLSTATE class PF)."""
    def tell(diagnostic):
        if not ours_only or (diagnostic.sqlstate or "").startswith("PF"):
            log(f"{name}: {diagnostic.message_primary}")

    conn.add_notice_handler(tell)
    try:
        yield
    finally:
        conn.remove_notice_handler(tell)


def migrate(conn, sql_dir: pathlib.Path | None = None, client_side: bool = False, log=print) -> list[str]:
    """Bring the database up to date. Returns the names of the incremental files applied now."""
    sql_dir = pathlib.Path(sql_dir or default_sql_dir())
    if not (sql_dir / "incremental").is_dir():
        raise MigrationError(f"no migrations found: {sql_dir}/incremental is not a directory")
    if not conn.autocommit:
        conn.commit()  # each file gets its own transaction, so the connection must not hold one open
        conn.autocommit = True
    conn.execute("select pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    # The schema lives in public, whatever the database's search_path says (an entry node of shards puts its
    # schema `sharded` first: README, "Shards").
    conn.execute("set search_path = public")
    try:
        conn.execute(
            f"""create table if not exists {LEDGER} (
                    name text primary key,
                    checksum text not null,
                    applied_at timestamptz not null default now())"""
        )
        applied = dict(conn.execute(f"select name, checksum from {LEDGER}").fetchall())
        done = []
        for path in _files(sql_dir / "incremental", client_side):
            text = path.read_text()
            name = f"incremental/{path.name}"
            if name in applied:
                if applied[name] != checksum(text):
                    raise MigrationError(
                        f"{name} was edited after it was applied to this database "
                        f"(checksum {applied[name][:12]} recorded, {checksum(text)[:12]} now). "
                        "Applied migrations are immutable: restore the file and add a new one."
                    )
                continue
            log(f"applying {name}")
            # A migration's NOTICEs say what the user has to do next (e.g. reprocess stored photos).
            with _notices_to(log, conn, name, ours_only=False), conn.transaction():
                conn.execute(text)
                conn.execute(f"insert into {LEDGER} (name, checksum) values (%s, %s)", (name, checksum(text)))
            done.append(name)
        for path in _files(sql_dir / "idempotent", client_side):
            # These re-run every time, and PostgreSQL's own NOTICEs ("already exists, skipping") would repeat.
            with _notices_to(log, conn, f"idempotent/{path.name}", ours_only=True), conn.transaction():
                conn.execute(path.read_text())
        return done
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
        conn.execute("reset search_path")


def main(argv=None) -> int:
    import psycopg

    parser = argparse.ArgumentParser(prog="python -m pgfaces.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="libpq connection string or URI")
    parser.add_argument("--sql-dir", type=pathlib.Path, default=None, help="folder holding incremental/ and idempotent/")
    parser.add_argument("--client-side", action="store_true", help="skip the parts that need plpython3u")
    args = parser.parse_args(argv)
    try:
        with psycopg.connect(args.dsn) as conn:
            applied = migrate(conn, args.sql_dir, args.client_side)
    except MigrationError as e:
        print(f"migrate: {e}", file=sys.stderr)
        return 1
    print(f"migrate: {len(applied)} new migration(s) applied; functions refreshed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

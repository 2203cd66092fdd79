"""A read replica on this machine: `./pgfaces up --replica-of URL` (README, "Read replicas").

PostgreSQL's streaming replication does the work: pg_basebackup copies the primary's cluster into this PGFACES_HOME
and writes standby.signal and primary_conninfo (-R), and the standby then replays the primary's WAL for ever,
answering read-only queries meanwhile (hot standby). Searches run there as on the primary: the same server library
(pgfaces_preload), the same server venv and a copy of this checkout's package, so the same models; they write
nothing (tests/test_replica.py runs them on a standby, where any write fails). The replica is never migrated: the
schema and the functions come from the primary, with everything else.
"""

from __future__ import annotations

import shutil
import sys
import urllib.parse

from invoke import Exit

from . import cluster
from .config import DATA, LOG, PASSWORD_FILE, PORT, RUN

# Appended to the copy of the primary's postgresql.conf: a later line wins. hot_standby_feedback: the primary's
# VACUUM waits for the replica's searches rather than cancelling them.
def replica_settings() -> dict[str, str]:
    return {
        "port": str(PORT),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{RUN}'",
        "hot_standby": "on",
        "hot_standby_feedback": "on",
    }


def _password(primary_url: str) -> str:
    password = urllib.parse.urlsplit(primary_url).password
    if not password:
        raise Exit("--replica-of needs the primary's URL with its superuser's password, as `./pgfaces url` prints it "
                   "on the primary (postgresql://postgres:PASSWORD@HOST:PORT/pgfaces)")
    return urllib.parse.unquote(password)


def base_backup(c, primary_url: str) -> None:
    """A copy of the primary's cluster in DATA, set up as its standby."""
    password = _password(primary_url)
    cluster.make_home()
    cluster.make_data_dirs()
    # The standby is a copy: its superuser and password are the primary's.
    PASSWORD_FILE.write_text(password + "\n")
    PASSWORD_FILE.chmod(0o600)
    parts = urllib.parse.urlsplit(primary_url)
    primary = f"host={parts.hostname or '127.0.0.1'} port={parts.port or 5432} user={parts.username or 'postgres'}"
    cluster.echo(f"pg_basebackup -D {DATA} -d '{primary}' -R -X stream -c fast")
    # The password in the environment, not on the command line; -R writes it into the standby's primary_conninfo.
    result = c.run(cluster.as_server_user(f"{cluster.pg_bin()}/pg_basebackup -D {DATA} -d '{primary}' -R -X stream"
                                          " -c fast --no-password"), env={"PGPASSWORD": password}, warn=True, hide=True)
    if not result.ok:
        shutil.rmtree(DATA, ignore_errors=True)
        raise Exit(f"pg_basebackup from {primary} failed: {result.stderr.strip()}")
    with open(DATA / "postgresql.conf", "a") as conf:
        conf.write("\n# pgfaces replica (tasks/replica.py)\n")
        conf.writelines(f"{k} = {v}\n" for k, v in replica_settings().items())


def up(c, primary_url: str) -> str:
    """Install what is missing, copy the primary (first time only), start the standby; returns its URI."""
    cluster.install(c)
    if not (DATA / "PG_VERSION").exists():
        base_backup(c, primary_url)
    elif not cluster.is_replica():
        raise Exit(f"{DATA} holds a primary's cluster, not a replica: give the replica a PGFACES_HOME of its own")
    cluster.ensure_settings()
    cluster.sync_package()
    cluster.start(c)
    cluster.wait_ready()
    print(f"replica of {urllib.parse.urlsplit(primary_url).hostname}:{urllib.parse.urlsplit(primary_url).port}"
          f" running on port {PORT} (data {DATA}, log {LOG})", file=sys.stderr)
    return cluster.uri()

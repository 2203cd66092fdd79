"""Tasks of the server's life: up, down, status, url, psql, migrate, reset."""

from __future__ import annotations

import os
import sys

from invoke import Exit, task

from . import cluster, container, replica
from .config import DATA, DB, LOG, PORT


@task(help={"image": "run the container image (see `invoke build`) instead of a native server",
            "replica_of": "URL of a primary (its `./pgfaces url`): make this PGFACES_HOME/PGFACES_PORT a read "
                          "replica of it (streaming replication), for searches"})
def up(c, image=False, replica_of=""):
    """Install what is missing, start the server, create and migrate the database, print its URI."""
    if replica_of:
        print(replica.up(c, replica_of))
    else:
        print(container.up(c) if image else cluster.up(c))


@task(help={"image": "stop the container started by `invoke up --image`"})
def down(c, image=False):
    """Stop the server (data stays)."""
    if image:
        container.down(c)
    else:
        cluster.stop(c)


@task
def status(c):
    """Say whether the server runs, where its data lives, and what the database holds."""
    running = cluster.server_running(c)
    print(f"server: {'running' if running else 'stopped'}; data {DATA}; port {PORT}; log {LOG}")
    if running:
        import psycopg

        with psycopg.connect(cluster.uri()) as conn:
            row = conn.execute(
                "select (select extversion from pg_extension where extname = 'vector'),"
                " (select count(*) from photos), (select count(*) from faces)").fetchone()
        print(f"pgvector {row[0]}; {row[1]} photos, {row[2]} faces")
        print(cluster.uri())


@task
def url(c):
    """Print the database URI, alone on one line (for scripts: psql "$(invoke url)")."""
    print(cluster.uri())


@task
def psql(c):
    """Open psql on the database."""
    os.execvp("psql", ["psql", cluster.live_uri()])


@task(help={"client_side": "install only what works without plpython3u (managed PostgreSQL services)",
            "database": "database to migrate (default: the project's)"})
def migrate(c, client_side=False, database=DB):
    """Apply new incremental migrations and refresh every function."""
    if not client_side:
        cluster.sync_package()
    applied = cluster.run_migrations(database, client_side=client_side)
    for name in applied:
        print(f"applied {name}")
    print(f"migrate: {len(applied)} new migration(s); functions refreshed")


@task(help={"yes": "confirm that every photo, face and person is to be deleted"})
def reset(c, yes=False):
    """Drop and recreate the database (all photos and faces are lost)."""
    if not yes:
        raise Exit("reset deletes every photo, face and person in the database: run `invoke reset --yes`")
    import psycopg

    with psycopg.connect(cluster.live_uri("postgres"), autocommit=True) as conn:
        cluster.echo(f"drop database {DB}")
        conn.execute(f'drop database if exists "{DB}" with (force)')
    cluster.ensure_database()
    cluster.run_migrations()
    print(cluster.uri(), file=sys.stdout)

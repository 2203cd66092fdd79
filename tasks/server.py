"""Tasks of the server's life: up, down, status, url, psql, migrate, reset."""

from __future__ import annotations

import os
import sys

from invoke import Exit, task

from . import cluster, container, replica, shards
from .config import CONTAINER, DATA, DB, IMAGE, LOG, PORT


@task(help={"image": "run the container image (see `./pgfaces build`) instead of a native server",
            "replica_of": "URL of a primary (its `./pgfaces url`): make this PGFACES_HOME/PGFACES_PORT a read "
                          "replica of it (streaming replication), for searches",
            "shards": "N: also start N shard clusters here (PGFACES_HOME/shards/K) and make this server their "
                      "entry node (README, \"Shards\")",
            "shard_port": "port of shard 1 (the others follow; default PGFACES_SHARD_PORT, else PGFACES_PORT + 1)",
            "shard_urls": "URL of a shard running elsewhere (its `./pgfaces url`), once per shard, in order"},
      iterable=["shard_urls"])
def up(c, image=False, replica_of="", shards=0, shard_port=0, shard_urls=None):
    """Install what is missing, start the server, create and migrate the database, print its URI."""
    if replica_of:
        print(replica.up(c, replica_of))
    elif shards or shard_urls:
        print(shards_up(c, shards, shard_port, shard_urls))
    elif not image and shards_here():  # an entry node of local shards: start them with it, as `down` stops them
        print(shards_up(c, len(shards_here()), 0, []))
    else:
        print(container.up(c) if image else cluster.up(c))


def stop_plan(port: int, native: int | None, container: int | None) -> tuple[str | None, str]:
    """What `down` stops for PGFACES_PORT `port`: "native" or "container" (whichever runs on that port, native:
    this PGFACES_HOME's server), or None; and what to tell the user about the rest."""
    elsewhere = []
    if native is not None and native != port:
        elsewhere.append(f"the native server of {DATA} runs on port {native} (`PGFACES_PORT={native} ./pgfaces down`)")
    if container is not None and container != port:
        elsewhere.append(f"the container {CONTAINER} runs on port {container} "
                         f"(`PGFACES_PORT={container} ./pgfaces down`)")
    rest = "; ".join(elsewhere)
    if native == port:
        return "native", rest
    if container == port:
        return "container", rest
    return None, f"no pgfaces server runs on port {port}" + (f"; {rest}" if rest else "")


@task(help={"image": "stop the container started by `./pgfaces up --image`, whatever its port"})
def down(c, image=False):
    """Stop the server on PGFACES_PORT, native or container (data stays)."""
    state = container.published_port(c)
    running = state[1] if state is not None and state[0] else None
    if image:
        if running is None:
            print(f"the container {CONTAINER} is not running")
            return
        return container.down(c)
    what, rest = stop_plan(PORT, cluster.running_port(c), running)
    if what == "native":
        cluster.stop(c)
        shards.down(c)
    elif what == "container":
        container.down(c)
    if rest:
        print(rest)


@task
def status(c):
    """Say which servers run (native, container), where their data lives, and what the database holds."""
    native = cluster.running_port(c)
    state = container.published_port(c)
    print(f"native server: {f'running on port {native}' if native else 'stopped'}; data {DATA}; log {LOG}")
    if state is not None:
        print(f"container {CONTAINER}: {'running' if state[0] else 'stopped'}, port {state[1]}; image {IMAGE}")
    on_port = ("the native server" if native == PORT else
               f"the container {CONTAINER}" if state is not None and state[0] and state[1] == PORT else None)
    if on_port is None:
        print(f"port {PORT}: no pgfaces server (start one: `PGFACES_PORT={PORT} ./pgfaces up`)")
        return
    import psycopg

    try:
        with psycopg.connect(cluster.uri(), connect_timeout=10, autocommit=True) as conn:
            row = conn.execute(
                "select (select extversion from pg_extension where extname = 'vector'),"
                " (select count(*) from public.photos), (select count(*) from public.faces)").fetchone()
            print(f"port {PORT}: {on_port}; pgvector {row[0]}; {row[1]} photos, {row[2]} faces")
            shards.status(conn)
    except psycopg.Error as e:
        print(f"port {PORT}: {on_port}, whose database {DB} does not answer: {str(e).strip().splitlines()[0]}")
        return
    print(cluster.uri())


def shards_up(c, count, port, urls):
    return shards.up(c, count, port or None, list(urls or []))


def shards_here():
    return shards.local_shards()


@task
def url(c):
    """Print the database URI, alone on one line (for scripts: psql "$(./pgfaces url)")."""
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
        raise Exit("reset deletes every photo, face and person in the database: run `./pgfaces reset --yes`")
    import psycopg

    with psycopg.connect(cluster.live_uri("postgres"), autocommit=True) as conn:
        cluster.echo(f"drop database {DB}")
        conn.execute(f'drop database if exists "{DB}" with (force)')
    cluster.ensure_database()
    cluster.run_migrations()
    print(cluster.uri(), file=sys.stdout)

"""A sharded setup on this machine: `./pgfaces up --shards N` (README, "Shards").

The entry node is this PGFACES_HOME/PGFACES_PORT's cluster; shard k is a cluster of its own in PGFACES_HOME/shards/k
on port PGFACES_SHARD_PORT + k - 1 (default PGFACES_PORT + k), each made, started and migrated by `./pgfaces up`
itself. pgfaces.shards then numbers each shard's ids and makes the entry reach them (postgres_fdw). Shards on other
machines are given by their URLs instead (`--shard-urls`).
"""

from __future__ import annotations

import os
import subprocess
import sys

from invoke import Exit

from . import cluster
from .config import HOME, PORT, ROOT

SHARDS_DIR = HOME / "shards"


def shard_port(k: int, base: int | None = None) -> int:
    base = base or int(os.environ.get("PGFACES_SHARD_PORT") or PORT + 1)
    return base + k - 1


def local_shards() -> list[int]:
    """The shard clusters made on this machine under PGFACES_HOME/shards."""
    if not SHARDS_DIR.is_dir():
        return []
    return sorted(int(d.name) for d in SHARDS_DIR.iterdir() if d.name.isdigit() and (d / "data" / "PG_VERSION").exists())


def _pgfaces(k: int, port: int | None, *args: str) -> str:
    """`./pgfaces ARGS` for local shard k; returns its last line of output (a URL for `up`)."""
    env = {**os.environ, "PGFACES_HOME": str(SHARDS_DIR / str(k))}
    if port is not None:
        env["PGFACES_PORT"] = str(port)
    done = subprocess.run([str(ROOT / "pgfaces"), *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise Exit(f"shard {k}: ./pgfaces {' '.join(args)} failed:\n{done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _port_of(k: int) -> int | None:
    """The port local shard k was made with (its postgresql.conf), so that `down` and a later `up` find it."""
    conf = SHARDS_DIR / str(k) / "data" / "postgresql.conf"
    port = None
    if conf.exists():
        for line in conf.read_text().splitlines():
            if line.strip().startswith("port ="):
                port = int(line.split("=", 1)[1].split("#")[0].strip())
    return port


def up(c, shards: int, base_port: int | None, urls: list[str]) -> str:
    """Start the local shards (or take the given URLs), make them shards of this entry node; returns its URI."""
    import psycopg

    from pgfaces import shards as sharding

    if urls and shards:
        raise Exit("give either --shards N (clusters on this machine) or --shard-urls (shards running elsewhere)")
    if not urls:
        if not 1 <= shards <= 64:
            raise Exit(f"--shards must be 1 to 64 on one machine (got {shards})")
        SHARDS_DIR.mkdir(parents=True, exist_ok=True)
        SHARDS_DIR.chmod(0o755)
        for k in range(1, shards + 1):
            port = _port_of(k) or shard_port(k, base_port)
            print(f"shard {k}: port {port}, data {SHARDS_DIR / str(k)}", file=sys.stderr, flush=True)
            urls.append(_pgfaces(k, port, "up"))
    addresses = []
    try:
        addresses = [sharding.ShardAddress.from_url(u) for u in urls]
        for k, url in enumerate(urls, 1):
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                sharding.make_shard(conn, k)
    except sharding.ShardError as e:
        raise Exit(str(e))
    except psycopg.Error as e:
        raise Exit(f"shard {k} ({addresses[k - 1].host}:{addresses[k - 1].port}): "
                   f"{(e.diag.message_primary if hasattr(e, 'diag') else None) or str(e).splitlines()[0]}")
    entry = cluster.up(c)
    with psycopg.connect(entry, autocommit=True) as conn:
        try:
            sharding.make_entry(conn, addresses)
        except psycopg.Error as e:
            raise Exit(f"entry node: {e.diag.message_primary or e}")
    print(f"entry node on port {PORT} with {len(addresses)} shards: "
          + ", ".join(f"{a.host}:{a.port}" for a in addresses), file=sys.stderr)
    return entry


def down(c) -> None:
    for k in local_shards():
        print(f"shard {k}: {_pgfaces(k, _port_of(k), 'down') or 'stopped'}")


def status(conn) -> None:
    from pgfaces import shards as sharding

    if not sharding.is_entry(conn):
        return
    for number, where, state in sharding.shard_status(conn):
        print(f"shard {number} ({where}): {state}")

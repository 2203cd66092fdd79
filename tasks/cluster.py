"""The native server: install what is missing, make the cluster, start and stop it, reach its databases.

Helpers for the tasks in tasks/server.py (and the others that need a running server); no tasks here.
"""

from __future__ import annotations

import getpass
import os
import pathlib
import secrets
import shutil
import socket
import sys
import time
import urllib.parse

from invoke import Exit

from pgfaces import serverconf, shards

from .config import DATA, DB, HOME, IS_ROOT, LOG, PASSWORD_FILE, PORT, PYTHON_DIR, ROOT, RUN, SERVER_USER, VENV


def echo(cmd: str) -> None:
    print(f"+ {cmd}", file=sys.stderr, flush=True)


def sh(c, cmd: str, **kw):
    echo(cmd)
    return c.run(cmd, echo=False, **kw)


def as_server_user(cmd: str) -> str:
    return f"runuser -u {SERVER_USER} -- {cmd}" if IS_ROOT else cmd


def pg_bin() -> pathlib.Path:
    versions = sorted((p for p in pathlib.Path("/usr/lib/postgresql").glob("*") if p.name.isdigit()),
                      key=lambda p: int(p.name))
    if not versions:
        raise Exit("PostgreSQL is not installed: run `sudo bash docker/install-server.sh` (or `./pgfaces up` as root)")
    return versions[-1] / "bin"


def password() -> str:
    if not PASSWORD_FILE.exists():
        raise Exit(f"no cluster at {HOME} yet (no {PASSWORD_FILE}): run `./pgfaces up`")
    return PASSWORD_FILE.read_text().strip()


def uri(database: str = DB) -> str:
    return f"postgresql://postgres:{urllib.parse.quote(password(), safe='')}@127.0.0.1:{PORT}/{database}"


def live_uri(database: str = DB) -> str:
    """uri(database), once a connection to it succeeds; else stop with what to do."""
    import psycopg

    url = uri(database)
    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.OperationalError as e:
        reason = str(e).strip().splitlines()[0].strip() if str(e).strip() else type(e).__name__
        raise Exit(f"no database answers at 127.0.0.1:{PORT}/{database} ({reason}): start the server with `./pgfaces up`")
    return url


def server_env() -> dict:
    """The environment the server starts with: its Python packages, and one thread per backend."""
    site = next(VENV.glob("lib/python3*/site-packages"), None)
    if site is None:
        raise Exit(f"the server's venv {VENV} is missing: run `sudo bash docker/install-server.sh`")
    return {
        "PYTHONPATH": f"{PYTHON_DIR}:{site}",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def server_running(c) -> bool:
    if not (DATA / "PG_VERSION").exists():
        return False
    return c.run(as_server_user(f"{pg_bin()}/pg_ctl status -D {DATA}"), hide=True, warn=True).ok


def running_port(c) -> int | None:
    """The port of this PGFACES_HOME's server while it runs (postmaster.pid says it), else None."""
    if not server_running(c):
        return None
    try:
        return int((DATA / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return PORT


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def log_tail(lines: int = 20) -> str:
    try:
        return "\n".join(LOG.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no server log: {e})"


def install(c) -> None:
    """Installs what is missing, or says exactly what to run where we cannot."""
    if IS_ROOT and shutil.which("apt-get"):
        sh(c, f"bash {ROOT}/docker/install-server.sh", env={"PGFACES_VENV": str(VENV)})
        return
    missing = []
    try:
        bin_dir = pg_bin()
        major = bin_dir.parent.name
        if not pathlib.Path(f"/usr/lib/postgresql/{major}/lib/plpython3.so").exists():
            missing.append(f"postgresql-plpython3-{major}")
        if not pathlib.Path(f"/usr/share/postgresql/{major}/extension/vector.control").exists():
            missing.append("pgvector >= 0.8")
    except Exit:
        missing.append("PostgreSQL with PL/Python")
    if not (VENV / "bin" / "python").exists():
        missing.append(f"the server venv {VENV}")
    if missing:
        why = "not root" if not IS_ROOT else "no apt-get"
        raise Exit(
            f"missing: {', '.join(missing)}; cannot install them here ({why}). "
            f"Run as root: sudo bash {ROOT}/docker/install-server.sh"
        )


def sync_package() -> None:
    """Copies plpython/pgfaces where the server can read it (the repository may sit under /root)."""
    target = PYTHON_DIR / "pgfaces"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(ROOT / "plpython" / "pgfaces", target, ignore=shutil.ignore_patterns("__pycache__"))
    # Preloads imports and models in the postmaster (see pgfaces/warmup.py); read at server start.
    shutil.copy2(ROOT / "plpython" / "sitecustomize.py", PYTHON_DIR / "sitecustomize.py")
    for path in [PYTHON_DIR, *PYTHON_DIR.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def is_replica() -> bool:
    """A standby made by `up --replica-of` (tasks/replica.py): read-only, never migrated."""
    return (DATA / "standby.signal").exists()


def preload_library_installed() -> bool:
    return (pg_bin().parent / "lib" / "pgfaces_preload.so").exists()


def ensure_settings() -> dict[str, str]:
    """pgfaces.serverconf's settings in the cluster's postgresql.conf; returns what it wrote."""
    return serverconf.ensure(DATA / "postgresql.conf", preload_library_installed())


def make_home() -> None:
    """PGFACES_HOME, writable, or stop with what to do."""
    try:
        HOME.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Exit(f"cannot create the data directory {HOME}: {e.strerror}; set PGFACES_HOME to a writable path")
    if not os.access(HOME, os.W_OK):
        raise Exit(f"data directory {HOME} is not writable by {getpass.getuser()}: set PGFACES_HOME to a writable path")
    HOME.chmod(0o755)


def make_data_dirs() -> None:
    """The cluster's data and socket directories, the server user's, the data private to it."""
    for d in (DATA, RUN):
        d.mkdir(exist_ok=True)
        if IS_ROOT:
            shutil.chown(d, SERVER_USER, SERVER_USER)
    DATA.chmod(0o700)


def init_cluster(c) -> None:
    make_home()
    if (DATA / "PG_VERSION").exists():
        written = ensure_settings()
        if written and server_running(c):
            print(f"wrote {', '.join(f'{k} = {v}' for k, v in written.items())} to {DATA / 'postgresql.conf'}; the running"
                  " server takes them at its next start: `./pgfaces down && ./pgfaces up`", file=sys.stderr)
        return
    secret = secrets.token_urlsafe(24)
    PASSWORD_FILE.write_text(secret + "\n")
    PASSWORD_FILE.chmod(0o600)
    make_data_dirs()
    pwfile = RUN / ".initdb-pw"
    pwfile.write_text(secret + "\n")
    if IS_ROOT:
        shutil.chown(pwfile, SERVER_USER, SERVER_USER)
    try:
        sh(c, as_server_user(
            f"{pg_bin()}/initdb -D {DATA} -U postgres --pwfile={pwfile} --auth-local=peer "
            f"--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8"), hide="out")
    finally:
        pwfile.unlink(missing_ok=True)
    with open(DATA / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# pgfaces\n"
            f"port = {PORT}\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{RUN}'\n"
        )
    ensure_settings()


def _library_newer_than_server() -> bool:
    """Whether the server library (docker/pgfaces_preload.c, built by install-server.sh) was rebuilt since the
    server started: its settings and preloading take effect only at a start."""
    library = pg_bin().parent / "lib" / "pgfaces_preload.so"
    started = DATA / "postmaster.pid"
    return library.exists() and started.exists() and library.stat().st_mtime > started.stat().st_mtime


def start(c) -> None:
    if server_running(c) and _library_newer_than_server():
        print("the server library changed since the server started: restarting it", file=sys.stderr)
        stop(c)
    if server_running(c):
        print(f"server already running (data {DATA})")
        return
    if port_in_use(PORT):
        raise Exit(f"port {PORT} on 127.0.0.1 is already in use: stop what listens there or set PGFACES_PORT")
    LOG.touch()
    if IS_ROOT:
        shutil.chown(LOG, SERVER_USER, SERVER_USER)
    exports = " ".join(f"{k}={v}" for k, v in server_env().items())
    result = sh(c, as_server_user(f"env {exports} {pg_bin()}/pg_ctl start -w -t 120 -D {DATA} -l {LOG}"),
                warn=True, hide=True)
    if not result.ok:
        raise Exit(f"the server did not start (data {DATA}, port {PORT}). Last lines of {LOG}:\n{log_tail()}")


def stop(c) -> None:
    if not server_running(c):
        print("server is not running")
        return
    sh(c, as_server_user(f"{pg_bin()}/pg_ctl stop -w -m fast -D {DATA}"))


def wait_ready(timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(uri("postgres"), connect_timeout=3).close()
            return
        except psycopg.OperationalError as e:
            if time.monotonic() > deadline:
                raise Exit(f"server on port {PORT} does not answer: {e}\nLast lines of {LOG}:\n{log_tail()}")
            time.sleep(0.3)


def ensure_database(name: str = DB) -> None:
    import psycopg

    with psycopg.connect(uri("postgres"), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            echo(f"create database {name}")
            conn.execute(f'create database "{name}"')


def run_migrations(database: str = DB, client_side: bool = False) -> list[str]:
    import psycopg

    from pgfaces.migrate import MigrationError, migrate

    try:
        with psycopg.connect(live_uri(database)) as conn:
            applied = migrate(conn, ROOT / "sql", client_side=client_side)
            if shards.is_entry(conn):  # an entry node of shards (README, "Shards")
                shards.refresh_entry(conn)
            return applied
    except MigrationError as e:
        raise Exit(f"migrate: {e}")


def ensure_up(c) -> None:
    """The server running this checkout's package, started (and installed) when it is not."""
    if server_running(c):
        sync_package()
        return
    up(c)


def up(c) -> str:
    """Install what is missing, start the server, create and migrate the database; returns its URI."""
    install(c)
    init_cluster(c)
    sync_package()
    start(c)
    wait_ready()
    if is_replica():  # its schema is the primary's, replayed
        return uri()
    ensure_database()
    applied = run_migrations()
    print(f"migrated ({len(applied)} new)", file=sys.stderr)
    return uri()

"""pgfaces tasks: run `invoke --list` (or `./pgfaces --list`) to see them."""

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

from invoke import Exit, task

ROOT = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "plpython"))

IS_ROOT = os.geteuid() == 0
# The cluster runs as `postgres` when we are root, else as the calling user.
SERVER_USER = "postgres" if IS_ROOT else getpass.getuser()
HOME = pathlib.Path(os.environ.get("PGFACES_HOME") or ("/var/lib/pgfaces" if IS_ROOT else "~/.local/share/pgfaces")).expanduser()
PORT = int(os.environ.get("PGFACES_PORT", "5433"))
DB = os.environ.get("PGFACES_DB", "pgfaces")
VENV = pathlib.Path(os.environ.get("PGFACES_VENV", "/opt/pgfaces/venv"))
DATA = HOME / "data"
RUN = HOME / "run"
LOG = HOME / "server.log"
PASSWORD_FILE = HOME / "superuser-password"
PYTHON_DIR = HOME / "python"  # the server's copy of plpython/pgfaces
IMAGE = os.environ.get("PGFACES_IMAGE", "pgfaces:latest")
CONTAINER = "pgfaces"
SHARED_FACES = ROOT.parent / "shared" / "faces"


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
        raise Exit("PostgreSQL is not installed: run `sudo bash docker/install-server.sh` (or `invoke up` as root)")
    return versions[-1] / "bin"


def password() -> str:
    if not PASSWORD_FILE.exists():
        raise Exit(f"no cluster at {HOME} yet (no {PASSWORD_FILE}): run `invoke up`")
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
        raise Exit(f"no database answers at 127.0.0.1:{PORT}/{database} ({reason}): start the server with `invoke up`")
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


def init_cluster(c) -> None:
    try:
        HOME.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Exit(f"cannot create the data directory {HOME}: {e.strerror}; set PGFACES_HOME to a writable path")
    if not os.access(HOME, os.W_OK):
        raise Exit(f"data directory {HOME} is not writable by {getpass.getuser()}: set PGFACES_HOME to a writable path")
    HOME.chmod(0o755)
    if (DATA / "PG_VERSION").exists():
        written = ensure_settings()
        if written and server_running(c):
            print(f"wrote {', '.join(f'{k} = {v}' for k, v in written.items())} to {DATA / 'postgresql.conf'}; the running"
                  " server takes them at its next start: `invoke down && invoke up`", file=sys.stderr)
        return
    secret = secrets.token_urlsafe(24)
    PASSWORD_FILE.write_text(secret + "\n")
    PASSWORD_FILE.chmod(0o600)
    for d in (DATA, RUN):
        d.mkdir(exist_ok=True)
        if IS_ROOT:
            shutil.chown(d, SERVER_USER, SERVER_USER)
    DATA.chmod(0o700)
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


# Speed settings, added to existing clusters too (they take effect at the next start). pgfaces_preload
# (docker/pgfaces_preload.c, built by install-server.sh) starts Python in the postmaster, whose sitecustomize
# preloads the models so every backend forks warm (first call in a new backend: no imports or model loading;
# see pgfaces/warmup.py). An HNSW build of a million 128-d vectors fits in 2 GB; one parallel worker besides
# the leader on 2 cores. shared_buffers: a quarter of the RAM (PostgreSQL's own advice), so that HNSW indexes of a
# million faces (544 MiB) are searched from shared memory, not the kernel's page cache (with initdb's 128MB a
# search at 1M faces took 4.4 ms instead of 2.5). hnsw.ef_search 100: recall@10 0.977 at 1M faces where pgvector's
# default 40 gives 0.940 (`invoke bench --faces 1000000`, m 16 / ef_construction 64), for ~2 ms more per search.
SPEED_SETTINGS = {
    "shared_preload_libraries": "'pgfaces_preload'",
    "hnsw.ef_search": "100",
    "maintenance_work_mem": "2GB",
    "max_parallel_maintenance_workers": "1",
}


# Values initdb or earlier versions wrote: replaced by the current ones; any other value was set by hand and is
# kept. initdb writes shared_buffers = 128MB uncommented, so a new cluster has it too.
EARLIER_DEFAULTS = {"shared_buffers": {"128MB", "512MB"}, "maintenance_work_mem": {"1GB"}}


def memory_bytes() -> int:
    """The machine's RAM, or the container's memory limit where that is lower (cgroup v2, then v1)."""
    with open("/proc/meminfo") as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:")) * 1024
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = pathlib.Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def shared_buffers() -> str:
    return f"{min(8192, max(128, memory_bytes() // 4 // 2**20))}MB"


def ensure_settings() -> dict[str, str]:
    """Appends the speed settings that postgresql.conf lacks or holds at an old default; returns what it wrote."""
    conf_file = DATA / "postgresql.conf"
    settings = {**SPEED_SETTINGS, "shared_buffers": shared_buffers()}
    try:
        if not (pg_bin().parent / "lib" / "pgfaces_preload.so").exists():
            settings.pop("shared_preload_libraries")  # an old install: the server would not start with it
    except Exit:
        return {}
    text = conf_file.read_text()
    present = {}  # the last value of each setting, as PostgreSQL reads it
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            present[key.strip()] = value.split("#", 1)[0].strip()
    missing = {k: v for k, v in settings.items() if k not in present}
    overridden = {k: v for k, v in settings.items() if present.get(k) in EARLIER_DEFAULTS.get(k, set()) and present[k] != v}
    written = {**missing, **overridden}
    if written:
        with open(conf_file, "a") as conf:
            conf.write("\n# pgfaces speed (see tasks.SPEED_SETTINGS)\n")
            conf.writelines(f"{k} = {v}\n" for k, v in written.items())
    return written


def start(c) -> None:
    if server_running(c):
        print(f"server already running (data {DATA})")
        return
    if port_in_use(PORT):
        raise Exit(f"port {PORT} on 127.0.0.1 is already in use: stop what listens there or set PGFACES_PORT")
    LOG.touch()
    if IS_ROOT:
        shutil.chown(LOG, SERVER_USER, SERVER_USER)
    env = server_env()
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    result = sh(c, as_server_user(f"env {exports} {pg_bin()}/pg_ctl start -w -t 120 -D {DATA} -l {LOG}"),
                warn=True, hide=True)
    if not result.ok:
        raise Exit(f"the server did not start (data {DATA}, port {PORT}). Last lines of {LOG}:\n{log_tail()}")


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
    from pgfaces.migrate import MigrationError, migrate as apply

    try:
        with psycopg.connect(live_uri(database)) as conn:
            return apply(conn, ROOT / "sql", client_side=client_side)
    except MigrationError as e:
        raise Exit(f"migrate: {e}")


@task(help={"image": "run the container image (see `invoke build`) instead of a native server"})
def up(c, image=False):
    """Install what is missing, start the server, create and migrate the database, print its URI."""
    if image:
        return up_image(c)
    install(c)
    init_cluster(c)
    sync_package()
    start(c)
    wait_ready()
    ensure_database()
    applied = run_migrations()
    print(f"migrated ({len(applied)} new)", file=sys.stderr)
    print(uri())


@task(help={"image": "stop the container started by `invoke up --image`"})
def down(c, image=False):
    """Stop the server (data stays)."""
    if image:
        engine, env = container_engine(c)
        sh(c, f"{engine} stop {CONTAINER}", env=env, hide="out")
        return
    if not server_running(c):
        print("server is not running")
        return
    sh(c, as_server_user(f"{pg_bin()}/pg_ctl stop -w -m fast -D {DATA}"))


@task
def status(c):
    """Say whether the server runs, where its data lives, and what the database holds."""
    running = server_running(c)
    print(f"server: {'running' if running else 'stopped'}; data {DATA}; port {PORT}; log {LOG}")
    if running:
        import psycopg

        with psycopg.connect(uri()) as conn:
            row = conn.execute(
                "select (select extversion from pg_extension where extname = 'vector'),"
                " (select count(*) from photos), (select count(*) from faces)").fetchone()
        print(f"pgvector {row[0]}; {row[1]} photos, {row[2]} faces")
        print(uri())


@task
def url(c):
    """Print the database URI, alone on one line (for scripts: psql "$(invoke url)")."""
    print(uri())


@task
def psql(c):
    """Open psql on the database."""
    os.execvp("psql", ["psql", live_uri()])


@task(help={"client_side": "install only what works without plpython3u (managed PostgreSQL services)",
            "database": "database to migrate (default: the project's)"})
def migrate(c, client_side=False, database=DB):
    """Apply new incremental migrations and refresh every function."""
    if not client_side:
        sync_package()
    applied = run_migrations(database, client_side=client_side)
    for name in applied:
        print(f"applied {name}")
    print(f"migrate: {len(applied)} new migration(s); functions refreshed")


@task(help={"yes": "confirm that every photo, face and person is to be deleted"})
def reset(c, yes=False):
    """Drop and recreate the database (all photos and faces are lost)."""
    if not yes:
        raise Exit("reset deletes every photo, face and person in the database: run `invoke reset --yes`")
    import psycopg

    with psycopg.connect(live_uri("postgres"), autocommit=True) as conn:
        echo(f"drop database {DB}")
        conn.execute(f'drop database if exists "{DB}" with (force)')
    ensure_database()
    run_migrations()
    print(uri())


@task(help={"tag": "image tag (default pgfaces:latest)"})
def build(c, tag=IMAGE):
    """Build the server's container image with docker, or podman where there is no docker engine."""
    sh(c, f"bash {ROOT}/docker/build-image.sh {tag}", pty=False)


def container_engine(c) -> tuple[str, dict]:
    """docker where an engine answers, else podman with the project's containers.conf (see docker/)."""
    if shutil.which("docker") and c.run("docker info", hide=True, warn=True).ok:
        return "docker", {}
    if not shutil.which("podman"):
        raise Exit("neither a docker engine nor podman is here: run `invoke build` (it installs podman) first")
    return "podman", {"CONTAINERS_CONF": str(ROOT / "docker" / "containers.conf")}


def up_image(c):
    if not PASSWORD_FILE.exists():
        HOME.mkdir(parents=True, exist_ok=True)
        PASSWORD_FILE.write_text(secrets.token_urlsafe(24) + "\n")
        PASSWORD_FILE.chmod(0o600)
    engine, env = container_engine(c)
    # The password goes through the environment, never the command line (ps would show it).
    env["POSTGRES_PASSWORD"] = password()
    if c.run(f"{engine} image exists {IMAGE}" if engine == "podman" else f"docker image inspect {IMAGE}",
             hide=True, warn=True, env=env).failed:
        raise Exit(f"no image {IMAGE}: run `invoke build` first")
    if c.run(f"{engine} container inspect {CONTAINER}", hide=True, warn=True, env=env).ok:
        sh(c, f"{engine} start {CONTAINER}", env=env, hide="out")
    else:
        if port_in_use(PORT):
            raise Exit(f"port {PORT} on 127.0.0.1 is already in use: stop the native server (`invoke down`) or set PGFACES_PORT")
        sh(c, f"{engine} run -d --name {CONTAINER} -p 127.0.0.1:{PORT}:5432 -e POSTGRES_PASSWORD --shm-size=256m "
              f"-v pgfaces-data:/var/lib/postgresql/data {IMAGE}", env=env, hide="out")
    wait_ready(timeout=120)
    print(uri())

@task(help={"slow": "also run the slow tests (container image build and run)",
            "k": "only tests whose names match this expression (pytest -k)",
            "path": "test file or folder (default: tests/)"})
def test(c, slow=False, k="", path="tests"):
    """Start the server if needed and run the tests against throwaway databases on it."""
    up(c)
    marker = "" if slow else '-m "not slow"'
    select = f'-k "{k}"' if k else ""
    env = {"PGFACES_ADMIN_URL": uri("postgres"), "PGFACES_SQL_DIR": str(ROOT / "sql")}
    echo(f"pytest {path} {marker} {select}")
    result = c.run(f"{sys.executable} -m pytest {path} -q -rs {marker} {select}", env=env, warn=True, pty=False)
    if not result.ok:
        raise Exit(code=result.exited)


# invoke takes one positional argument per name, so further paths come with --also (or in one quoted glob).
@task(iterable=["also"],
      help={"path": "a file, a folder (searched recursively) or a glob in quotes ('photos/**/*.jpg')",
            "also": "another file, folder or glob (repeatable)",
            "workers": "connections loading at once, or with --client-side processes analysing (default: the number of cores)",
            "quiet": "no progress bar",
            "client_side": "detect and embed here, not in the server (databases without plpython3u)"})
def load(c, path, also=None, workers=0, quiet=False, client_side=False):
    """Load photos into the database; files already there are skipped; failures are listed at the end."""
    from pgfaces.loader import load as load_photos

    paths = [path, *(also or [])]
    if client_side:
        from pgfaces import client

        try:
            report = client.load(live_uri(), list(paths), workers=workers or None, progress=not quiet)
        except RuntimeError as e:
            raise Exit(f"load: {e}")
    else:
        report = load_photos(live_uri(), list(paths), workers=workers or None, progress=not quiet)
    print(report.summary())
    if report.failed and not report.loaded and not report.skipped:
        raise Exit(code=1)


@task(help={"image": "reference photo of the person (its largest face is used)",
            "n": "how many photos", "since": "taken at or after (YYYY-MM-DD)", "until": "taken before (YYYY-MM-DD)",
            "near": "LAT,LON,KM: taken within KM kilometres of a point",
            "person": "NAME: also remember IMAGE as NAME's face and rank by all of NAME's faces",
            "profile": "profile to search (default: the default profile)", "html": "also write a contact sheet here",
            "max_distance": "only faces at most this far",
            "client_side": "embed the reference image here, not in the server (databases without plpython3u)"})
def search(c, image, n=10, since="", until="", near="", person="", profile="", html="", max_distance=0.0,
           client_side=False):
    """Print the photos that show the person in IMAGE, best first."""
    import psycopg
    from pgfaces import search as s
    from pgfaces.errors import PgfacesError

    path = pathlib.Path(image)
    if not path.is_file():
        raise Exit(f"no such file: {image}")
    data = path.read_bytes()
    try:
        filters = s.Filters(since or None, until or None, s.parse_near(near) if near else None)
    except ValueError as e:
        raise Exit(str(e))
    with psycopg.connect(live_uri(), autocommit=True) as conn:
        conn.add_notice_handler(lambda d: print(f"NOTICE: {d.message_primary}", file=sys.stderr))
        embed = None
        if client_side:
            from pgfaces import client

            embed = client.reference_embedder(conn, profile or None)
        try:
            if person:
                remember(conn, person, data, profile or None, client_side)
            matches = s.search(conn, None if person else data, person or None, n, filters, profile or None,
                               max_distance or None, embed=embed)
        except psycopg.Error as e:
            raise Exit(f"search failed: {e.diag.message_primary or e}")
        except (ValueError, PgfacesError) as e:
            raise Exit(f"search failed: {e}")
        print(s.format_table(matches))
        if html:
            title = f"Photos of {person}" if person else f"Photos like {image}"
            pathlib.Path(html).write_text(s.contact_sheet(conn, matches, title))
            print(f"contact sheet: {html}")


def remember(conn, person: str, data: bytes, profile: str | None, client_side: bool) -> None:
    """Stores `data` as one of `person`'s faces, unless the very same image is stored already."""
    known = conn.execute(
        "select 1 from person_references r join people pe on pe.id = r.person_id"
        " where pe.name = %s and r.profile = (pgfaces_profile(%s)).name and md5(r.image) = md5(%s)",
        (person, profile, data)).fetchone()
    if known:
        return
    if client_side:
        from pgfaces import client

        client.remember_face(conn, person, data, profile)
    else:
        conn.execute("select remember_face(%s, %s, %s)", (person, data, profile))
    echo(f"remembered {person}'s face")


@task(help={"photos": "folder of photos to load (default: ../shared/faces when it exists)"})
def demo(c, photos=""):
    """Set everything up, load sample photos, find the talk's speaker in them and print the result."""
    if photos:
        folders = [photos]
        reference = None
    elif SHARED_FACES.is_dir():
        folders = [str(SHARED_FACES / "photos" / "seed"), str(SHARED_FACES / "party" / "parties")]
        reference = SHARED_FACES / "photos" / "seed" / "find-faces-talk" / "slides" / "images" / "slack-picture.jpg"
    else:
        raise Exit(f"no sample photos at {SHARED_FACES}: run `./pgfaces demo --photos FOLDER` with a folder of photos")
    up(c)
    load(c, folders[0], also=folders[1:])
    if reference is None:
        print("loaded; now search: ./pgfaces search path/to/me.jpg")
        return
    print(f"\nphotos of the person in {reference.name}:")
    search(c, image=str(reference), n=10, html=str(HOME / "demo.html"))


@task(iterable=["profile"],
      help={"profile": "profile to measure (repeatable; default: every shipped profile, and the talk's detector "
                       "with dlib when its CLIP model cannot be loaded)",
            "parties_only": "load parties/ and negatives/ only (for slow profiles)",
            "keep": "keep the pgfaces_bench_* databases afterwards",
            "resume": "reuse a pgfaces_bench_<profile> left by an interrupted run, loading only what it lacks"})
def bench_quality(c, profile, parties_only=False, keep=False, resume=False):
    """Measure search quality and speed per profile on ../shared/faces/party (fresh database each); prints a table."""
    sys.path.insert(0, str(ROOT))
    from tests.bench import quality

    if server_running(c):
        sync_package()  # the server runs this checkout's pipeline
    else:
        up(c)
    argv = [f"--profile={p}" for p in profile] + ["--admin-url", uri("postgres")]
    argv += ["--parties-only"] if parties_only else []
    argv += ["--keep"] if keep else []
    argv += ["--resume"] if resume else []
    quality.main(argv)


@task(iterable=["profile"],
      help={"faces": "largest search size: 10k, 100k and 1M faces up to it (default 100000)",
            "profile": "ingest profile to measure (repeatable; default mtcnn and hog; the first one is searched)",
            "folder": "photos to ingest (default ../shared/faces/party/parties)",
            "photos": "only the first N photos (default all)",
            "workers": "connections / processes of the parallel runs (default: the number of cores)",
            "queries": "vector queries per search size (default 200)",
            "ef_search": "hnsw.ef_search values, comma-separated (default 40,100)",
            "hnsw_grid": "also build these m:ef_construction indexes, e.g. 16:64,16:128,24:128",
            "full_precision": "also measure a full-precision (vector) index with the shipped parameters",
            "synthetic": "synthetic vectors: people (several faces per person, default) or strangers (one each)",
            "skip_ingest": "search only (needs an earlier run's pgfaces_speed_<profile> database)",
            "skip_search": "ingest only"})
def bench(c, faces=100_000, profile=None, folder="", photos=0, workers=0, queries=200, ef_search="40,100", hnsw_grid="",
          full_precision=False, synthetic="people", skip_ingest=False, skip_search=False):
    """Measure ingest and search speed and backend memory (databases pgfaces_speed_*); prints a table."""
    sys.path.insert(0, str(ROOT))
    from tests.bench import speed

    if server_running(c):
        sync_package()  # the server runs this checkout's pipeline
    else:
        up(c)
    argv = ["--admin-url", uri("postgres"), f"--server-python={VENV / 'bin' / 'python'}", f"--faces={faces}", f"--photos={photos}", f"--queries={queries}",
            f"--ef-search={ef_search}", f"--hnsw-grid={hnsw_grid}", f"--synthetic={synthetic}"]
    argv += [f"--profile={p}" for p in (profile or [])]
    if folder:
        if not pathlib.Path(folder).is_dir():
            raise Exit(f"no folder {folder}: give --folder a folder of photos")
        argv.append(f"--folder={pathlib.Path(folder).resolve()}")
    argv += [f"--workers={workers}"] if workers else []
    argv += ["--full-precision"] if full_precision else []
    argv += ["--skip-ingest"] if skip_ingest else []
    argv += ["--skip-search"] if skip_search else []
    speed.main(argv)


@task(help={"examples": "how many mutated photos to try (default 2000)"})
def fuzz(c, examples=2000):
    """Fuzz detect_and_embed in the server with mutated real photos; fails on any crash or unclear error."""
    up(c)
    env = {"PGFACES_ADMIN_URL": uri("postgres"), "PGFACES_SQL_DIR": str(ROOT / "sql"),
           "PGFACES_FUZZ_EXAMPLES": str(int(examples))}
    echo(f"PGFACES_FUZZ_EXAMPLES={examples} pytest tests/test_bad_inputs.py -k fuzz")
    result = c.run(f"{sys.executable} -m pytest tests/test_bad_inputs.py -q -rs -k test_fuzz_detect_and_embed",
                   env=env, warn=True, pty=False)
    if not result.ok:
        raise Exit(code=result.exited)

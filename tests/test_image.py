"""The container image (docker/Dockerfile) end to end: build it, start it, talk to it over TCP.

Slow (a first build installs PostgreSQL, builds pgvector and the server venv: minutes; a cached one takes
seconds), so it is marked `slow`: `pytest tests/test_image.py -m slow`.

Settings (environment):
  PGFACES_TEST_IMAGE   use this image as it is instead of building pgfaces:latest with docker/build-image.sh
  PGFACES_TEST_ENGINE  docker or podman (default: docker where a daemon answers, else podman)
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import time
import uuid

import pytest

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCKER_DIR = ROOT / "docker"
IMAGE = "pgfaces:latest"
# Quotes and a space, to check that the password reaches initdb unmangled.
PASSWORD = "pg faces's s3cret"
READY_TIMEOUT = 180


def _engine() -> str:
    engine = os.environ.get("PGFACES_TEST_ENGINE")
    if engine:
        return engine
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return "docker"
    return "podman"


ENGINE = _engine()
ENV = dict(os.environ)
if ENGINE == "podman":
    ENV.setdefault("CONTAINERS_CONF", str(DOCKER_DIR / "containers.conf"))


def engine(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run([ENGINE, *args], env=ENV, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{ENGINE} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port: int, password: str | None = PASSWORD, dbname: str = "pgfaces", timeout: int = 5):
    """Over TCP as postgres. password=None sends none: not even one from PGPASSWORD or ~/.pgpass."""
    import psycopg

    return psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname=dbname, connect_timeout=timeout,
        password=password if password is not None else "", passfile=os.devnull, autocommit=True,
    )


@pytest.fixture(scope="module")
def image() -> str:
    given = os.environ.get("PGFACES_TEST_IMAGE")
    if given:
        return given
    if ENGINE == "podman" and os.geteuid() != 0:
        pytest.skip("no Docker daemon answers, and the podman build here needs root")
    # Layer-cached: after the first build, a build with unchanged requirements takes seconds.
    proc = subprocess.run(
        ["bash", str(DOCKER_DIR / "build-image.sh"), IMAGE],
        env={**ENV, "ENGINE": ENGINE}, capture_output=True, text=True, timeout=3600,
    )
    assert proc.returncode == 0, f"build-image.sh failed:\n{proc.stderr[-6000:]}"
    return IMAGE


def wait_ready(name: str, port: int) -> None:
    """Until the server answers over TCP with the password (it opens the port only after migrating)."""
    import psycopg

    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        state = engine("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        if state != "true":
            logs = engine("logs", name, check=False)
            raise AssertionError(f"container {name} stopped while starting:\n{logs.stdout}\n{logs.stderr}")
        try:
            connect(port, timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                logs = engine("logs", name, check=False)
                raise AssertionError(
                    f"{name} not ready after {READY_TIMEOUT} s:\n{logs.stdout}\n{logs.stderr}"
                ) from None
            time.sleep(0.5)


@pytest.fixture(scope="module")
def server(image):
    """A container of the image on a free loopback port, with a volume of its own; removed afterwards."""
    name = f"pgfaces-test-{uuid.uuid4().hex[:8]}"
    volume = f"{name}-data"
    port = free_port()
    engine("volume", "create", volume)
    try:
        engine(
            "run", "-d", "--name", name,
            "-p", f"127.0.0.1:{port}:5432",
            "-e", f"POSTGRES_PASSWORD={PASSWORD}",
            "-v", f"{volume}:/var/lib/postgresql/data",
            image,
        )
        wait_ready(name, port)
        yield {"name": name, "port": port, "volume": volume, "image": image}
    finally:
        engine("rm", "-f", "-v", name, check=False)
        engine("volume", "rm", "-f", volume, check=False)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_pgvector_is_at_least_0_8(server):
    with connect(server["port"]) as conn:
        (version,) = conn.execute("select extversion from pg_extension where extname = 'vector'").fetchone()
    assert _version(version) >= (0, 8, 0)


def test_migration_ran(server):
    with connect(server["port"]) as conn:
        ledger = conn.execute("select count(*) from pgfaces_migration").fetchone()[0]
        detect = conn.execute("select 1 from pg_proc where proname = 'detect_and_embed'").fetchall()
    assert ledger > 0
    assert detect, "the migration ran but made no function detect_and_embed"


def test_tcp_needs_the_password(server):
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(server["port"], password="not the password")
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        connect(server["port"], password=None)


def test_plpython_imports_the_server_venv(server):
    """PL/Python in the running server sees pgfaces and the venv, one thread per backend, and no password."""
    with connect(server["port"]) as conn:
        conn.execute(
            """create function pg_temp.probe() returns text language plpython3u as $$
import os, numpy, pgfaces
return ' '.join([pgfaces.__name__, numpy.__name__, os.environ.get('OMP_NUM_THREADS', '-'),
                 str('POSTGRES_PASSWORD' in os.environ)])
$$"""
        )
        assert conn.execute("select pg_temp.probe()").fetchone()[0] == "pgfaces numpy 1 False"


def test_restart_keeps_data_and_migrates_again(server):
    with connect(server["port"]) as conn:
        conn.execute("create table image_test_keep (x int)")
        conn.execute("insert into image_test_keep values (42)")
        ledger = conn.execute("select name, checksum from pgfaces_migration order by name").fetchall()
    started = time.monotonic()
    engine("stop", server["name"])
    stopped = time.monotonic() - started
    # The image's STOPSIGNAL (SIGINT, fast shutdown) stops it at once, not after the engine's 10 s SIGKILL grace.
    assert stopped < 8, f"stopping took {stopped:.1f} s"
    exit_code = engine("inspect", "--format", "{{.State.ExitCode}}", server["name"]).stdout.strip()
    assert exit_code == "0"
    engine("start", server["name"])
    # `start` keeps the container's port mapping.
    wait_ready(server["name"], server["port"])
    with connect(server["port"]) as conn:
        assert conn.execute("select x from image_test_keep").fetchall() == [(42,)]
        assert conn.execute("select name, checksum from pgfaces_migration order by name").fetchall() == ledger
    logs = engine("logs", server["name"])
    assert (logs.stdout + logs.stderr).count("migrating database pgfaces") == 2


def test_first_start_without_password_fails_clearly(image):
    proc = engine("run", "--rm", image, check=False, timeout=60)
    assert proc.returncode != 0
    assert "POSTGRES_PASSWORD is not set" in proc.stdout + proc.stderr

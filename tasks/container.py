"""The server as a container image: build it, run it, stop it (docker where an engine runs, else podman)."""

from __future__ import annotations

import json
import secrets
import shutil

from invoke import Exit, task

from . import cluster
from .config import CONTAINER, HOME, IMAGE, PASSWORD_FILE, PORT, ROOT


@task(help={"tag": "image tag (default pgfaces:latest)"})
def build(c, tag=IMAGE):
    """Build the server's container image with docker, or podman where there is no docker engine."""
    cluster.sh(c, f"bash {ROOT}/docker/build-image.sh {tag}", pty=False)


def engine(c) -> tuple[str, dict]:
    """docker where an engine answers, else podman with the project's containers.conf (see docker/)."""
    if shutil.which("docker") and c.run("docker info", hide=True, warn=True).ok:
        return "docker", {}
    if not shutil.which("podman"):
        raise Exit("neither a docker engine nor podman is here: run `./pgfaces build` (it installs podman) first")
    return "podman", {"CONTAINERS_CONF": str(ROOT / "docker" / "containers.conf")}


def published_port(c) -> tuple[bool, int | None] | None:
    """The container's state: (running, the host port its PostgreSQL is published on), or None when there is no
    container (or no engine to ask)."""
    if not (shutil.which("podman") or shutil.which("docker")):
        return None
    try:
        name, env = engine(c)
    except Exit:
        return None
    found = c.run(f"{name} container inspect --format '{{{{.State.Running}}}} {{{{json .HostConfig.PortBindings}}}}' "
                  f"{CONTAINER}", hide=True, warn=True, env=env)
    if not found.ok or not found.stdout.strip():
        return None
    running, _, bindings = found.stdout.strip().partition(" ")
    ports = [int(b["HostPort"]) for b in (json.loads(bindings or "null") or {}).get("5432/tcp") or []
             if str(b.get("HostPort", "")).isdigit()]
    return running == "true", ports[0] if ports else None


def up(c) -> str:
    """Starts the container (made from the image on first use); returns the database URI."""
    if not PASSWORD_FILE.exists():
        HOME.mkdir(parents=True, exist_ok=True)
        PASSWORD_FILE.write_text(secrets.token_urlsafe(24) + "\n")
        PASSWORD_FILE.chmod(0o600)
    name, env = engine(c)
    # The password goes through the environment, never the command line (ps would show it).
    env["POSTGRES_PASSWORD"] = cluster.password()
    if c.run(f"{name} image exists {IMAGE}" if name == "podman" else f"docker image inspect {IMAGE}",
             hide=True, warn=True, env=env).failed:
        raise Exit(f"no image {IMAGE}: run `./pgfaces build` first")
    existing = published_port(c)
    if existing is not None:
        if existing[1] != PORT:  # a container's ports are fixed when it is made
            raise Exit(f"the container {CONTAINER} publishes port {existing[1]}, not {PORT}: run "
                       f"`PGFACES_PORT={existing[1]} ./pgfaces up --image`, or remove it (`{name} rm -f {CONTAINER}`; "
                       f"its data stays in the volume pgfaces-data) to make it anew on port {PORT}")
        cluster.sh(c, f"{name} start {CONTAINER}", env=env, hide="out")
    else:
        if cluster.port_in_use(PORT):
            raise Exit(f"port {PORT} on 127.0.0.1 is already in use: stop what listens there (`PGFACES_PORT={PORT} "
                       "./pgfaces down`) or set PGFACES_PORT")
        cluster.sh(c, f"{name} run -d --name {CONTAINER} -p 127.0.0.1:{PORT}:5432 -e POSTGRES_PASSWORD --shm-size=256m "
                      f"-v pgfaces-data:/var/lib/postgresql/data {IMAGE}", env=env, hide="out")
    cluster.wait_ready(timeout=120)
    return cluster.uri()


def down(c) -> None:
    name, env = engine(c)
    cluster.sh(c, f"{name} stop {CONTAINER}", env=env, hide="out")

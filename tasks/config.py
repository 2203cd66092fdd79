"""Where things are: the repository, the cluster's data, its port and database; each one an environment variable
the reader may set (README, "Installation")."""

from __future__ import annotations

import contextlib
import getpass
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0
# The cluster runs as `postgres` when we are root, else as the calling user.
SERVER_USER = "postgres" if IS_ROOT else getpass.getuser()
HOME = pathlib.Path(os.environ.get("PGFACES_HOME")
                    or ("/var/lib/pgfaces" if IS_ROOT else "~/.local/share/pgfaces")).expanduser()
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
# Where the user typed the command: ./pgfaces runs invoke from the repository and says where it was called from.
CALLER_DIR = pathlib.Path(os.environ.get("PGFACES_CALLER_DIR") or os.getcwd())


@contextlib.contextmanager
def in_caller_dir():
    """Runs the block in the user's folder, so that the paths they gave (and the files written) are theirs, as
    with `python -m pgfaces.client`."""
    here = os.getcwd()
    try:
        os.chdir(CALLER_DIR)
    except OSError:  # their folder is gone: paths relative to it cannot be found either
        yield
        return
    try:
        yield
    finally:
        os.chdir(here)


def from_caller(path: str) -> str:
    """A path the user gave, made absolute from the folder they typed the command in."""
    return str(CALLER_DIR / pathlib.Path(path).expanduser()) if path else path

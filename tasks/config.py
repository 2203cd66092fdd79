"""Where things are: the repository, the cluster's data, its port and database; each one an environment variable
the reader may set (README, "Installation")."""

from __future__ import annotations

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

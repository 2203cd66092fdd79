"""pgfaces tasks, joined into one collection: `./pgfaces --list` (or `invoke --list` in the repository).

server: the native server's life · container: the image · app: the user's commands · dev: tests and benchmarks.
Reusable work lives in tasks/cluster.py and in the pgfaces package; the tasks stay thin.
"""

from __future__ import annotations

import os
import pathlib
import sys

try:
    import psycopg  # noqa: F401
    import pgfaces  # noqa: F401
except ImportError:
    # This invoke runs in a Python without the project's packages (e.g. `pip install invoke`): run the same
    # command in the project's venv, which ./pgfaces makes on first use.
    script = pathlib.Path(__file__).resolve().parent.parent / "pgfaces"
    if os.environ.get("PGFACES_VENV_INVOKE") == "1":
        sys.exit("pgfaces: the project's venv lacks its packages: remove .venv and run ./pgfaces again")
    print(f"pgfaces: this invoke's Python lacks the project's packages; running {script.name} instead",
          file=sys.stderr)
    os.environ["PGFACES_VENV_INVOKE"] = "1"
    os.execv(str(script), [str(script), *sys.argv[1:]])

from invoke import Collection  # noqa: E402

from . import app, container, dev, server  # noqa: E402

ns = Collection()
for module in (server, container, app, dev):
    for task in Collection.from_module(module).tasks.values():
        ns.add_task(task)

"""Imported by Python at start-up wherever this directory is on PYTHONPATH: the pgfaces server's python dir.

In the postmaster (shared_preload_libraries = 'pgfaces_preload' makes it start Python) it preloads pgfaces' imports
and models so that backends fork warm; see pgfaces/warmup.py. Elsewhere, and with PGFACES_PRELOAD=0, it does
nothing. It must never stop the server from starting: every error is caught and logged.
"""

import os
import sys


def _postmaster() -> bool:
    """The postmaster (it runs in its data directory, whose postmaster.pid starts with its pid), not a backend:
    without shared_preload_libraries each backend starts Python itself and loads only what it uses."""
    try:
        if os.path.basename(os.readlink("/proc/self/exe")) != "postgres":
            return False
        with open("postmaster.pid") as f:
            return f.readline().strip() == str(os.getpid())
    except OSError:
        return False


if _postmaster():
    # Python was started by pgfaces_preload before PL/Python registered its built-in module `plpy`; a backend's
    # PLy_initialize registers it later (PyImport_AppendInittab), which Python <= 3.11 still honours except for
    # this tuple, fixed at start-up and checked by the built-in importer.
    if "plpy" not in sys.builtin_module_names:
        sys.builtin_module_names = tuple(sys.builtin_module_names) + ("plpy",)

if os.environ.get("PGFACES_PRELOAD", "") != "0" and _postmaster():
    try:
        from pgfaces import warmup

        warmup.preload()
    except BaseException as exc:  # noqa: BLE001 - in the postmaster: log and carry on
        print(f"pgfaces preload: failed to import ({type(exc).__name__}: {exc})", file=sys.stderr, flush=True)

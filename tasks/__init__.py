"""pgfaces tasks, joined into one collection: `./pgfaces --list` (or invoke's own --list in the repository).

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

from invoke import Collection, Program  # noqa: E402

from . import app, container, dev, server  # noqa: E402

ns = Collection()
for module in (server, container, app, dev):
    for task in Collection.from_module(module).tasks.values():
        ns.add_task(task)


# invoke gives a task one value per positional argument, and a positional argument cannot be left out. So the bare
# values a user types after some tasks are handed to a flag before invoke parses them: load's further paths (`load
# a b`, as a shell glob expands) to --also, search's IMAGE (none with `search --person NAME`) to --image. And
# `TASK --help` asks for the task's help rather than being taken for TASK's argument.
BARE_VALUES = {"load": ("--also", True), "search": ("--image", False)}  # task: (flag, may repeat)


def _bare_values_to_flags(argv: list[str], contexts) -> list[str]:
    tasks = {name: ctx for ctx in contexts for name in (ctx.name, *ctx.aliases)}
    out, ctx, positional, waiting, given = [], None, 0, False, 0
    for token in argv:
        if waiting:
            waiting = False
        elif token in ("-h", "--help") and ctx is not None:
            return [ctx.name, *[""] * len(ctx.positional_args), "--help"]  # a positional may not be missing
        elif token.startswith("-"):
            flag = ctx.flags.get(token) if ctx is not None else None
            waiting = flag is not None and flag.takes_value and not flag.optional
        elif ctx is not None and positional:
            positional -= 1
        elif ctx is not None and ctx.name in BARE_VALUES and (BARE_VALUES[ctx.name][1] or not given):
            out.append(BARE_VALUES[ctx.name][0])
            given += 1
        elif token in tasks:
            ctx, given = tasks[token], 0
            positional = len(ctx.positional_args)
        out.append(token)
    return out


def _parse_tasks(self) -> None:
    self.core.unparsed = _bare_values_to_flags(self.core.unparsed, self.collection.to_contexts())
    _invoke_parse_tasks(self)


_invoke_parse_tasks = Program.parse_tasks
Program.parse_tasks = _parse_tasks

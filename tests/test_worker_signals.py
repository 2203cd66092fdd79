"""The queue's workers as a user runs them, from another folder: SIGTERM or Ctrl-C (SIGINT) ends each worker's
current photo, stops every process they started and exits 0; a worker process killed with SIGKILL is replaced."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from queueing import drain, duplicates, insert_all, states

ROOT = pathlib.Path(__file__).resolve().parents[1]
WAIT_S = 180  # loading the models in each new process takes seconds on a busy machine


def descendants(pid: int) -> set[int]:
    """Every live process under `pid` (children, theirs, ...), read from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def commands(pids) -> list[str]:
    """What the live ones of `pids` run (for a failure's message)."""
    lines = []
    for pid in pids:
        try:
            lines.append(f"{pid}: " + pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except OSError:
            pass
    return lines


def worker_sessions(url: str) -> dict[str, int]:
    """The workers connected to this database: name -> the pid of the process that named itself so."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("select application_name from pg_stat_activity where datname = current_database()"
                            " and application_name like 'pgfaces worker %'").fetchall()
    return {name: int(name.split(":")[-2]) for (name,) in rows}


def wait_for(what, check, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"waited {timeout:.0f} s for {what}")


@pytest.fixture
def queued(make_database, shared_faces):
    """A database with 12 party photos queued for analysis."""
    url = make_database()
    insert_all(url, sorted((shared_faces / "party" / "parties").glob("*.jpg"))[:12])
    return url


@pytest.fixture
def start(tmp_path):
    """start(*command, env=...) -> the command running in a folder of its own, in a session of its own (as a shell
    runs it: Ctrl-C reaches its whole process group). Whatever is left of it is killed at the end."""
    started = []

    def run(*command, env=None):
        process = subprocess.Popen(list(command), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        started.append(process)
        return process

    yield run
    for process in started:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()


def ctrl_c(process: subprocess.Popen) -> None:
    """What the terminal does on Ctrl-C: SIGINT to every process of the foreground group."""
    os.killpg(process.pid, signal.SIGINT)


def stopped_cleanly(url: str, process: subprocess.Popen, before: set[int]) -> str:
    out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0, (out, err)
    # The forkserver and the resource tracker end once they see the command's end: a moment.
    wait_for(f"every process to end: {commands(before)}", lambda: not [p for p in before if alive(p)], 15)
    wait_for("the workers' sessions to end", lambda: not worker_sessions(url), 30)
    assert "running" not in states(url), states(url)  # each photo in hand was finished
    return out + err


def test_client_workers_replace_a_killed_one_and_stop_on_sigterm(queued, start):
    process = start(sys.executable, "-m", "pgfaces.client", "work", "--workers", "2", "--dsn", queued)
    first = wait_for("two workers", lambda: len(worker_sessions(queued)) == 2 and worker_sessions(queued))
    victim = sorted(first.values())[0]
    os.kill(victim, signal.SIGKILL)
    after = wait_for("a new worker in place of the killed one",
                     lambda: (w := worker_sessions(queued)) and len(w) == 2 and victim not in w.values() and w)
    assert process.poll() is None, "one dead worker took the command down"
    wait_for("a photo in hand", lambda: states(queued).get("running"))
    started = descendants(process.pid)  # the workers, the forkserver and multiprocessing's resource tracker
    assert set(after.values()) <= started
    process.send_signal(signal.SIGTERM)
    said = stopped_cleanly(queued, process, started)
    assert "1 worker process(es) died and were replaced" in said and "SIGTERM" in said
    assert "Traceback" not in said


@pytest.mark.parametrize("workers", ["1", "2"])
def test_client_workers_stop_on_ctrl_c(queued, start, workers):
    process = start(sys.executable, "-m", "pgfaces.client", "work", "--workers", workers, "--dsn", queued)
    wait_for("a photo in hand", lambda: states(queued).get("running"))
    ctrl_c(process)
    said = stopped_cleanly(queued, process, descendants(process.pid))
    assert "analysed" in said and "Traceback" not in said and "KeyboardInterrupt" not in said


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_in_server_workers_stop_on_a_signal(queued, start, sig):
    """`./pgfaces work --workers 2`, typed in another folder: the loops end their photo and the command exits 0."""
    env = {**os.environ, "PGFACES_DB": queued.rsplit("/", 1)[1]}
    process = start(str(ROOT / "pgfaces"), "work", "--workers", "2", env=env)
    wait_for("a photo in hand", lambda: states(queued).get("running"))
    ctrl_c(process) if sig == signal.SIGINT else process.send_signal(sig)
    said = stopped_cleanly(queued, process, descendants(process.pid))
    assert "analysed" in said and "Traceback" not in said


def test_a_second_signal_stops_the_workers_at_once(queued, start):
    """Ctrl-C twice: every process ends now; the photos they held are claimed again and analysed once."""
    process = start(sys.executable, "-m", "pgfaces.client", "work", "--workers", "2", "--dsn", queued)
    wait_for("a photo in hand", lambda: states(queued).get("running"))
    started = descendants(process.pid)
    ctrl_c(process)
    time.sleep(0.2)
    ctrl_c(process)
    out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 130 and "stopped at once" in out, (out, err)
    wait_for(f"every process to end: {commands(started)}", lambda: not [p for p in started if alive(p)], 15)

    drain(queued, in_server=True)
    assert states(queued) == {"done": 12} and duplicates(queued) == 0

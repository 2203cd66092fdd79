"""Faults of deferred analysis: a worker killed mid-photo (SIGKILL) leaves its job to be taken again, at once (its
backend is gone) or after its lease; a late worker writes nothing; a job abandoned too often is parked; a server
restart loses nothing queued. No photo ends with duplicate or missing faces.

The restart tests stop and start the whole server with `./pgfaces down` / `up`, so they are marked slow (see
tests/test_faults.py): run them on a cluster of your own,
`PGFACES_HOME=/tmp/pgfaces-x PGFACES_PORT=5499 ./pgfaces test --slow -k "queue and restart"`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from conftest import SHARED_FACES
from queueing import deferred, drain, duplicates, faces, insert_all, states
from test_faults import pgfaces, wait_for_server

PARTIES = SHARED_FACES / "party" / "parties"
REAL = SHARED_FACES / "party" / "real"


def party_photos(n: int):
    if not PARTIES.is_dir():
        pytest.skip(f"the test photos are not here: {PARTIES}")
    return sorted(PARTIES.iterdir(), key=lambda p: p.stat().st_size, reverse=True)[:n]  # the slowest


def start_worker(url: str, *args: str) -> subprocess.Popen:
    """`python -m pgfaces.client [ARGS] work` in a process of its own: one loop, killed with it."""
    return subprocess.Popen([sys.executable, "-m", "pgfaces.client", *args, "work", "--dsn", url, "--workers", "1",
                             "--until-empty"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_running(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until the process's worker holds a job (its claim committed)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while not conn.execute("select exists (select from analysis_queue where state = 'running' and worker like %s)",
                               (f"%:{process.pid}:%",)).fetchone()[0]:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the worker claimed nothing"
            time.sleep(0.05)


@pytest.mark.parametrize("where", [(), ("--in-server",)], ids=["client", "in-server"])
def test_sigkill_of_a_worker_mid_photo_loses_and_duplicates_nothing(make_database, where):
    batch = party_photos(3)
    reference, url = make_database(), make_database()
    insert_all(reference, batch, defer=False)
    insert_all(url, batch)
    victim = start_worker(url, *where)
    try:
        wait_running(url, victim)
        time.sleep(0.5)  # inside the analysis by now
        os.kill(victim.pid, signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait()
    started = time.monotonic()
    report = drain(url, in_server=True)
    assert time.monotonic() - started < 120  # the killed worker's job was taken at once, not after the 10-min lease
    assert states(url) == {"done": len(batch)}, report.summary()
    assert faces(url) == faces(reference) and duplicates(url) == 0
    if not where:  # a client's job dies with it and is analysed again; an in-server backend finishes its own
        with psycopg.connect(url) as conn:
            assert conn.execute("select max(attempts) from analysis_queue").fetchone()[0] == 2


def test_an_expired_lease_is_taken_over_and_the_late_worker_writes_nothing(make_database):
    batch = party_photos(1)
    url = make_database()
    insert_all(url, batch)
    with psycopg.connect(url, autocommit=True) as slow:  # alive, but silent past its lease
        photo_id, profile, token = slow.execute("select photo_id, profile, token"
                                                " from pgfaces_claim_job('slow', '1 second')").fetchone()
        assert drain(url, in_server=True, name="fast", poll=0.3).done == 1  # waited for the lease, then took it
        assert states(url) == {"done": 1}
        before = faces(url)
        late = slow.execute("select pgfaces_finish_job(%s, %s, %s, '{1}', '{2}', '{30}', '{30}', '{0.9}',"
                            " array[(select embedding from faces limit 1)], '{NULL}')",
                            (photo_id, profile, token)).fetchone()[0]
        assert late == "lost"
        assert slow.execute("select pgfaces_fail_job(%s, %s, %s, 'late')", (photo_id, profile, token)
                            ).fetchone()[0] == "lost"
        assert slow.execute("select state from pgfaces_run_job(%s, %s, %s)", (photo_id, profile, token)
                            ).fetchone()[0] == "lost"
    assert faces(url) == before and duplicates(url) == 0 and states(url) == {"done": 1}


def test_a_job_abandoned_max_attempts_times_is_parked(make_database):
    url = make_database()
    insert_all(url, party_photos(1))
    for _ in range(2):  # two workers die holding it (their connections close with them)
        with psycopg.connect(url, autocommit=True) as doomed:
            assert doomed.execute("select * from pgfaces_claim_job('doomed', '1 hour', 2)").fetchone() is not None
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while conn.execute("select * from pgfaces_claim_job('next', '1 hour', 2)").fetchone() is not None:
            assert time.monotonic() < deadline
        state, attempts, error = conn.execute("select state, attempts, error from analysis_queue").fetchone()
    assert (state, attempts) == ("failed", 2)
    assert error == "abandoned 2 times: its worker died, lost its connection or overran its lease while analysing it" \
                    " (last: doomed)"


def _restart_server(url: str) -> None:
    with psycopg.connect(url) as conn:
        port = int(conn.execute("show port").fetchone()[0])
    if port != int(os.environ.get("PGFACES_PORT", "5433")):
        pytest.skip(f"the test server listens on {port} but ./pgfaces down would stop the one on PGFACES_PORT")
    try:
        stopped = pgfaces("down")
        assert stopped.returncode == 0, stopped.stderr
    finally:
        restarted = pgfaces("up")  # never leave the server down, whatever failed above
    assert restarted.returncode == 0, restarted.stderr
    wait_for_server(url)


@pytest.mark.slow
def test_a_server_restart_loses_nothing_queued(make_database):
    batch = party_photos(3)
    url = make_database()
    insert_all(url, batch)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select * from pgfaces_claim_job('before-restart')")
        _restart_server(url)
    assert states(url) == {"queued": 2, "running": 1}
    assert drain(url, in_server=True).done == 3
    assert states(url) == {"done": 3} and duplicates(url) == 0


@pytest.mark.slow
def test_two_workers_drain_through_a_sigkill_and_a_restart(make_database):
    """The issue's check, smaller: a deferred load drained by two workers, one SIGKILLed, the server restarted once."""
    if not REAL.is_dir():
        pytest.skip(f"the test photos are not here: {REAL}")
    batch = sorted(REAL.iterdir())[:30] + party_photos(4)
    reference, url = make_database(), make_database()
    insert_all(reference, batch, defer=False)
    with deferred(url) as conn:
        for p in batch:
            conn.execute("insert into photos (filename, image) values (%s, %s) on conflict do nothing",
                         (p.name, p.read_bytes()))
    survivor, victim = start_worker(url, "--in-server"), start_worker(url)
    try:
        wait_running(url, victim)
        time.sleep(0.5)
        os.kill(victim.pid, signal.SIGKILL)
        _restart_server(url)
        out, err = survivor.communicate(timeout=600)
        assert survivor.returncode == 0, err
    finally:
        for p in (survivor, victim):
            p.kill()
            p.wait()
    drain(url, in_server=True)  # whatever the survivor left while the server was down
    stored = len(faces(reference))
    assert states(url) == {"done": len(set(p.read_bytes() for p in batch))} and stored > 0
    assert faces(url) == faces(reference) and duplicates(url) == 0

"""Two connections racing: each opens a transaction, the two wait for each other at a barrier, make their call, wait
again (briefly: the other may be blocked by a lock, which is the point) and commit. What each got back, or the
error it ended with, is returned: the tests then check what the rules say must hold."""

from __future__ import annotations

import threading
from typing import Callable

import psycopg

# How long a call that returned waits for the other before committing: long enough that both calls are inside
# their transactions at once when neither blocks the other; a blocked one is released by this commit.
OVERLAP = 0.7


def race(url: str, *calls: Callable[[psycopg.Connection], object]) -> list[object]:
    """Runs `calls` at once, one connection and transaction each; returns each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        with psycopg.connect(url) as conn:  # a transaction until commit
            conn.execute("select 1")
            try:
                barrier.wait(timeout=10)
                results[i] = calls[i](conn)
            except psycopg.Error as e:
                results[i] = e
                conn.rollback()
                return
            finally:
                try:
                    barrier.wait(timeout=OVERLAP)
                except threading.BrokenBarrierError:
                    pass
            try:
                conn.commit()
            except psycopg.Error as e:
                results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def call(sql: str, *args) -> Callable[[psycopg.Connection], object]:
    """A racer that runs one statement and returns its first value."""
    def run(conn):
        row = conn.execute(sql, args).fetchone()
        return row[0] if row else None
    return run


def errors(results: list[object]) -> list[psycopg.Error]:
    return [r for r in results if isinstance(r, psycopg.Error)]

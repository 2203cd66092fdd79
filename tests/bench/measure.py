"""What the benchmarks measure with: log lines, the load average, percentiles, and a server backend's CPU time and
memory read from /proc (the server runs on this host)."""

from __future__ import annotations

import os
import pathlib
import sys
import threading
import time


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    try:
        return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


def backend_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (a server backend), from /proc; None when it is not on this host."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_memory(conn) -> dict:
    """VmRSS, VmHWM and the RSS split (anon, file, shmem) of the connection's backend, MiB."""
    pid = conn.execute("select pg_backend_pid()").fetchone()[0]
    fields = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            fields[key] = int(value.split()[0]) / 1024  # MiB
    return fields


class BackendCpu:
    """CPU seconds of every backend connected to one database while it runs (a `with` block), other than the
    watcher's own. Backends are sampled every `interval` seconds and keep their last reading after they exit, so
    the total misses at most that much of each backend's last moments."""

    def __init__(self, url: str, interval: float = 0.2):
        self.url, self.interval = url, interval
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()

    def _sample(self, conn) -> None:
        for (pid,) in conn.execute("select pid from pg_stat_activity where datname = current_database()"
                                   " and backend_type = 'client backend' and pid <> pg_backend_pid()"):
            cpu = backend_cpu_seconds(pid)
            if cpu is not None:
                self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))

    def _watch(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(self.interval):
                self._sample(conn)
            self._sample(conn)

    def __enter__(self):
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())

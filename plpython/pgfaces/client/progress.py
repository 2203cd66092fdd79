"""The queue's progress as a bar on stderr, read from the view analysis_progress (`./pgfaces load --deferred`)."""

from __future__ import annotations

import sys
import time

TOTALS = ("select coalesce(sum(queued), 0), coalesce(sum(running), 0), coalesce(sum(done), 0),"
          " coalesce(sum(failed), 0), coalesce(sum(photos_per_second), 0), max(time_left) from analysis_progress")
IDLE_S = 15.0  # nothing running for this long: say how to start workers, and stop following


def line(queued: int, running: int, done: int, failed: int, rate: float, left, width: int = 30) -> str:
    total = queued + running + done + failed
    filled = int(width * (done + failed) / total) if total else width
    eta = f"  about {left} left" if left else ""
    return (f"[{'#' * filled}{'.' * (width - filled)}] {done + failed}/{total} jobs  {running} running  "
            f"{failed} failed  {float(rate):.2f} photos/s{eta}")


def follow(conn, interval: float = 1.0, out=sys.stderr, idle: float = IDLE_S) -> tuple:
    """Redraws the bar until nothing is queued or running, or no worker has run for `idle` seconds; returns the last
    totals. Ctrl-C stops following only: the queue goes on."""
    redraw, idle_since, last = out.isatty(), time.monotonic(), None
    try:
        while True:
            totals = conn.execute(TOTALS).fetchone()
            queued, running = totals[0], totals[1]
            text = line(*totals)
            if redraw:
                out.write("\r" + text)
            elif last is None or totals[:4] != last[:4]:
                out.write(text + "\n")
            out.flush()
            last = totals
            if queued + running == 0:
                break
            if running:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle:
                out.write(("\n" if redraw else "") + f"no worker has analysed anything for {idle:.0f} s: the photos "
                          "wait in the queue; start workers with `./pgfaces work` (in the server) or `python -m "
                          "pgfaces.client work --dsn URL` (anywhere)\n")
                return last
            time.sleep(interval)
    except KeyboardInterrupt:
        out.write("\nstopped following; the queue goes on (select * from analysis_progress)\n")
    if redraw:
        out.write("\n")
    return last

"""Loading a folder of photos: INSERT INTO photos over several connections, skipping what is already there.

The server does the work (its trigger detects and embeds); this side only reads files, skips known hashes,
keeps N connections busy and reports. One bad file never stops the rest.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
import hashlib
import os
import pathlib
import queue
import sys
import threading
import time

from .errors import PgfacesError
from .terminal import printable

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}


@dataclasses.dataclass
class LoadReport:
    loaded: int = 0
    faces: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def photos_per_second(self) -> float:
        return self.loaded / self.seconds if self.seconds else 0.0

    def summary(self, note: str = "") -> str:
        """What happened, one line (with `note` at its end), then one line per failed file."""
        lines = [
            f"loaded {self.loaded} photo(s) with {self.faces} face(s) in {self.seconds:.1f} s "
            f"({self.photos_per_second:.2f} photos/s); {self.skipped} already loaded; {len(self.failed)} failed{note}"
        ]
        # The server's message already starts with the file's name; say it once.
        lines += [f"  FAILED {printable(name)}: {printable(reason.removeprefix(f'{name}: '))}"
                  for name, reason in self.failed]
        return "\n".join(lines)


def collect(paths: list[str]) -> tuple[list[pathlib.Path], list[tuple[str, str]]]:
    """Files from files, folders (recursively, image suffixes only) and globs; unknown paths are failures."""
    files, missing = [], []
    for given in paths:
        matches = sorted(glob.glob(given, recursive=True)) if glob.has_magic(given) else [given]
        if not matches:
            missing.append((given, "no file matches this pattern"))
        for match in matches:
            path = pathlib.Path(match)
            if path.is_dir():
                files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            elif path.is_file():
                files.append(path)
            else:
                missing.append((given, "no such file or folder"))
    seen, unique = set(), []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, missing


def sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def skip_known(conn, files: list[pathlib.Path], report: LoadReport) -> list[pathlib.Path]:
    """The files whose bytes the database does not hold yet; the rest count as skipped, unreadable ones and those
    over the server's byte limit (never read into memory) as failed."""
    from .imaging import check_length
    from .records import Limits

    known = {r[0] for r in conn.execute("select sha256 from photos")}
    limits = Limits(max_bytes=conn.execute("select max_image_bytes from pgfaces_limits()").fetchone()[0])
    todo = []
    for f in files:
        try:
            check_length(f.stat().st_size, limits)
            digest = sha256_file(f)
        except OSError as e:
            report.failed.append((str(f), e.strerror or str(e)))
            continue
        except PgfacesError as e:
            report.failed.append((str(f), str(e)))
            continue
        if digest in known:
            report.skipped += 1
        else:
            known.add(digest)  # the same bytes twice in one load: the second is a skip, not a failure
            todo.append(f)
    return todo


# libpq's options for a deferred load: each INSERT stores the photo and queues it (README, "Deferred analysis").
DEFERRED_OPTIONS = "-c pgfaces.defer=on"


def load(dsn: str, paths: list[str], workers: int | None = None, progress: bool = True,
         deferred: bool = False, keep_outside: bool = False) -> LoadReport:
    """INSERTs every photo under `paths` that the database does not hold yet. Returns what happened.
    deferred: the photos are stored and queued for the workers (their faces are not counted).
    keep_outside: each row holds the file's absolute path (uri), not its bytes: the server reads the file, which
    must be in a folder of pgfaces.originals_dirs (README, "Originals outside the database")."""
    from . import originals

    import psycopg

    workers = workers or os.cpu_count() or 1
    files, failed = collect(paths)
    report = LoadReport(failed=list(failed))
    started = time.monotonic()

    with psycopg.connect(dsn) as conn:
        todo = skip_known(conn, files, report)

    bar = Progress(len(todo), progress)
    lock = threading.Lock()
    connections: queue.Queue = queue.Queue()

    def insert(path: pathlib.Path):
        conn = None
        try:
            # A connection that cannot be made (the server stopping, say) fails this photo, not the load.
            try:
                conn = connections.get_nowait()
            except queue.Empty:
                conn = psycopg.connect(dsn, autocommit=True, **({"options": DEFERRED_OPTIONS} if deferred else {}))
            column, value = ("uri", originals.file_uri(path)) if keep_outside else ("image", path.read_bytes())
            with conn.transaction():
                # No conflict target: sha256 is photos' only key a row can collide on, and an entry node of shards
                # (whose photos are foreign tables, without local keys) takes the clause in this form only.
                row = conn.execute(
                    f"insert into photos (filename, {column}) values (%s, %s) on conflict do nothing"
                    " returning id", (str(path), value),
                ).fetchone()
                faces = 0 if row is None or deferred else conn.execute(
                    "select count(*) from faces where photo_id = %s", (row[0],)).fetchone()[0]
            with lock:
                if row is None:
                    report.skipped += 1
                else:
                    report.loaded += 1
                    report.faces += faces
        except psycopg.Error as e:
            message = e.diag.message_primary or str(e)
            with lock:
                report.failed.append((str(path), message))
            if conn is not None and (conn.closed or conn.broken):
                conn = None
        except OSError as e:
            with lock:
                report.failed.append((str(path), e.strerror or str(e)))
        finally:
            if conn is not None:
                connections.put(conn)
            with lock:
                bar.update(report.loaded, report.faces, len(report.failed))

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(insert, todo))
    while not connections.empty():
        connections.get().close()
    bar.close()
    report.seconds = time.monotonic() - started
    return report


class Progress:
    """A one-line progress bar on stderr: photos, photos/s, faces found, failures."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.started, self.done = total, time.monotonic(), 0
        self.enabled = enabled and total > 0
        # On a terminal the bar redraws in place; in a log (CI) it prints a line every tenth of the way.
        self.redraw = sys.stderr.isatty()

    def update(self, loaded: int, faces: int, failed: int):
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed else 0.0
        width = 30
        filled = int(width * self.done / self.total)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} photos "
                f"{rate:.2f}/s  {faces} faces  {failed} failed")
        if self.redraw:
            sys.stderr.write("\r" + line)
        elif self.done == self.total or self.done % max(1, self.total // 10) == 0:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self):
        if self.enabled and self.redraw:
            sys.stderr.write("\n")

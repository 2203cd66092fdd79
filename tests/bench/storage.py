"""`./pgfaces bench-storage`: the database's bytes per photo with the originals inside (`INSERT ... image`) and
outside (`INSERT ... uri`: a path and a preview), on the party benchmark loaded whole as `./pgfaces load` loads a
folder, into two fresh databases of the project's server (pgfaces_storage_in, pgfaces_storage_out).

Bytes are pg_total_relation_size (heap, TOAST and indexes, the faces' HNSW index included) of photos and faces;
every table of the schema is summed too, for what the others (people, nearest-face lists, queue) add."""

from __future__ import annotations

import os
import pathlib
import time

from pgfaces import originals

from . import databases
from .speed_photos import PARTY

DIRS = ("parties", "real", "references", "negatives", "broken")
TARGET = 0.05  # originals outside: at most 5% of the bytes per photo inside (issue 22)


def _sizes(url: str) -> dict:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze photos, faces")  # the free space map and visibility map, as a settled table has
        return dict(zip(
            ("photos", "faces", "photos_n", "faces_n", "tables", "previews"),
            conn.execute("select pg_total_relation_size('photos'), pg_total_relation_size('faces'),"
                         " (select count(*) from photos), (select count(*) from faces),"
                         " (select sum(pg_total_relation_size(c.oid)) from pg_class c"
                         "  where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'm')),"
                         " (select coalesce(sum(length(preview)), 0) from photos)").fetchone()))


def _drop(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def load(admin_url: str, name: str, folders: list[str], outside: bool, workers: int) -> tuple[dict, float, object]:
    from pgfaces import loader

    url = databases.fresh_database(admin_url, name)
    if outside:
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'alter database "{name}" set pgfaces.originals_dirs = '
                         f"{psycopg.sql.quote(os.path.realpath(PARTY))}")
    started = time.monotonic()
    report = loader.load(url, folders, workers, progress=False, keep_outside=outside)
    return _sizes(url), time.monotonic() - started, report


def run(admin_url: str, workers: int = 0, keep: bool = False, log=print) -> dict:
    folders = [str(PARTY / d) for d in DIRS if (PARTY / d).is_dir()]
    if not folders:
        raise SystemExit(f"no party benchmark at {PARTY}")
    workers = workers or os.cpu_count() or 1
    files = [p for f in folders for p in pathlib.Path(f).rglob("*") if p.is_file()]
    on_disk = sum(p.stat().st_size for p in files)
    results = {}
    for outside in (False, True):
        name = "pgfaces_storage_out" if outside else "pgfaces_storage_in"
        log(f"loading {len(files)} files of {PARTY} into {name} ({'uri' if outside else 'image'}), {workers} connections")
        sizes, seconds, report = load(admin_url, name, folders, outside, workers)
        log(f"  {report.summary().splitlines()[0]}")
        results["outside" if outside else "inside"] = {**sizes, "seconds": seconds}
        if not keep:
            _drop(admin_url, name)
    inside, outside = results["inside"], results["outside"]
    n = inside["photos_n"]

    def per(r, key):
        return r[key] / r["photos_n"]

    log(f"\nparty benchmark: {n} photos stored (of {len(files)} files, {on_disk / len(files) / 1024:.0f} kB each on "
        f"disk), {inside['faces_n']} / {outside['faces_n']} faces")
    log("| bytes per photo | originals inside | originals outside | outside / inside |")
    log("|---|---|---|---|")
    for label, key in (("photos (heap, TOAST, indexes)", "photos"), ("faces (heap, TOAST, indexes: HNSW)", "faces")):
        log(f"| {label} | {per(inside, key) / 1024:,.1f} kB | {per(outside, key) / 1024:,.1f} kB | "
            f"{per(outside, key) / per(inside, key):.3f} |")
    total_in = (inside["photos"] + inside["faces"]) / n
    total_out = (outside["photos"] + outside["faces"]) / outside["photos_n"]
    ratio = total_out / total_in
    log(f"| **photos + faces** | **{total_in / 1024:,.1f} kB** | **{total_out / 1024:,.1f} kB** | **{ratio:.3f}** |")
    log(f"| every table of the schema (people, neighbours, queue, ...) | {per(inside, 'tables') / 1024:,.1f} kB | "
        f"{per(outside, 'tables') / 1024:,.1f} kB | {per(outside, 'tables') / per(inside, 'tables'):.3f} |")
    log(f"of which the preview (at most {originals.PREVIEW_SIDE} px, WebP): "
        f"{per(outside, 'previews') / 1024:.1f} kB per photo outside")
    log(f"load time: {inside['seconds']:.1f} s inside, {outside['seconds']:.1f} s outside")
    log(f"target: outside / inside <= {TARGET:.2f}: {'met' if ratio <= TARGET else 'NOT met'} ({ratio:.3f})")
    return results

"""Search quality per profile on the party benchmark (../shared/faces/party), through the SQL contract only.

For each profile: a fresh database `pgfaces_bench_<profile>` on the project's server, migrated, with only that
profile ingesting; every photo of parties/, real/, negatives/ and broken/ goes in by `INSERT INTO photos`
over 2 connections (broken/ must be rejected); then every query of QUERIES.tsv runs
`find_photos_like(reference, n => <all photos>, profile => P)`. Printed and written to bench-results/quality.json:

- mAP: mean over the queries of average precision over the whole ranking (ignore_files dropped); a relevant
  photo that is never returned counts as a miss (zero precision at its recall level); a reference in which
  the profile finds no face scores 0 for its query.
- recall@10 and precision@10 (relevant in the top 10 / relevant, / 10), averaged over the queries.
- faces found per photo against the manifest's `faces` (parties + real): sum found / sum expected, and the
  share of photos where found >= expected.
- faces "found" on the negatives, per 100 negative images.
- seconds per photo: wall time of the load / photos (2 connections on 2 cores), and the mean INSERT latency
  (one backend = one core, so that is seconds per photo per core).
- the calibrated same-person threshold (tests/bench/calibrate.py, on ../shared/faces/photos) and, at that
  threshold, the precision and recall of "matches only" (distance <= threshold) over all queries.

A benchmark that prints figures, not a test with thresholds: `invoke bench-quality [--profile P ...]`.
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import json
import pathlib
import sys
import threading
import time

from . import databases
from .measure import backend_cpu_seconds

ROOT = pathlib.Path(__file__).resolve().parents[2]

PARTY = ROOT.parent / "shared" / "faces" / "party"
RESULTS = ROOT / "bench-results" / "quality.json"
LOADED_DIRS = ("parties", "real", "negatives", "broken")
WORKERS = 2
# The talk's detector with the dlib embedder, measured when the talk's CLIP model cannot be loaded.
TUTORIAL_DLIB = "tutorial_dlib"
TUTORIAL_DLIB_LABEL = "tutorial-detector+dlib"
PROBE_REFERENCE = "references/obama.jpg"


@dataclasses.dataclass
class Query:
    identity: str
    reference: str
    relevant: set[str]
    ignore: set[str]


def read_manifest(party: pathlib.Path = PARTY) -> dict[str, dict]:
    with open(party / "MANIFEST.tsv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


def read_queries(party: pathlib.Path = PARTY) -> list[Query]:
    def files(text: str) -> set[str]:
        return {x for x in text.split(";") if x}

    with open(party / "QUERIES.tsv", newline="") as f:
        return [Query(r["identity"], r["reference_file"], files(r["relevant_files"]), files(r["ignore_files"]))
                for r in csv.DictReader(f, delimiter="\t")]


# --- scoring -------------------------------------------------------------------------------------------------------


def average_precision(ranking: list[str], relevant: set[str]) -> float:
    """AP over the whole ranking; relevant photos never returned contribute zero precision."""
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, name in enumerate(ranking, 1):
        if name in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant)


def score_query(ranking: list[str], query: Query, k: int = 10) -> dict:
    ranking = [name for name in ranking if name not in query.ignore]
    top = ranking[:k]
    hits = sum(1 for name in top if name in query.relevant)
    return {
        "ap": average_precision(ranking, query.relevant),
        "recall_at_10": hits / len(query.relevant),
        "precision_at_10": hits / k,
        "relevant": len(query.relevant),
        "returned_relevant": sum(1 for name in ranking if name in query.relevant),
        "missed": sorted(query.relevant - set(ranking)),
    }


# --- database ------------------------------------------------------------------------------------------------------


def fresh_database(admin_url: str, profile: str) -> str:
    """Drops and recreates pgfaces_bench_<profile>, migrates it, and makes `profile` the only one ingesting."""
    import psycopg

    url = databases.fresh_database(admin_url, f"pgfaces_bench_{profile}")
    with psycopg.connect(url) as conn:
        if profile == TUTORIAL_DLIB:
            conn.execute(
                "insert into profiles (name, detector, detector_params, embedder, embedder_params, dimensions, metric,"
                " description) select %s, detector, detector_params, 'dlib', '{}', 128, 'l2',"
                " 'The talk''s Haar detector (1.05 / 2 / 250x250, full size) + dlib ResNet 128-d'"
                " from profiles where name = 'tutorial'", (TUTORIAL_DLIB,))
        if not conn.execute("select 1 from profiles where name = %s", (profile,)).fetchone():
            known = [r[0] for r in conn.execute("select name from profiles order by name")]
            raise SystemExit(f"unknown profile {profile!r}; known: {', '.join(known)}")
        conn.execute("update profiles set ingest = (name = %s)", (profile,))
        conn.commit()
    return url


def profile_row(url: str, profile: str) -> dict:
    import psycopg
    from psycopg.rows import dict_row

    from pgfaces.profiles import COLUMNS

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(f"select {COLUMNS}, description from profiles where name = %s", (profile,)).fetchone()


def probe(url: str, profile: str, party: pathlib.Path) -> str | None:
    """None if the profile runs here, else the error (a model that cannot be loaded, say)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("select count(*) from detect_and_embed(%s, %s)",
                         ((party / PROBE_REFERENCE).read_bytes(), profile)).fetchone()
        except psycopg.Error as e:
            return e.diag.message_primary or str(e)
    return None


def load(url: str, files: list[pathlib.Path], workers: int = WORKERS) -> dict:
    """INSERTs every file over `workers` connections; per-photo latency, wall time, and what was rejected."""
    import psycopg

    latencies, rejected = [], {}
    lock = threading.Lock()
    local = threading.local()
    connections = []
    backends: dict[int, float | None] = {}  # backend pid -> its CPU seconds when we started using it

    def insert(path: pathlib.Path):
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed:
            conn = local.conn = psycopg.connect(url, autocommit=True)
            pid = conn.execute("select pg_backend_pid()").fetchone()[0]
            with lock:
                connections.append(conn)
                backends[pid] = backend_cpu_seconds(pid)
        data = path.read_bytes()
        started = time.monotonic()
        try:
            conn.execute("insert into photos (filename, image) values (%s, %s)", (str(path), data))
        except psycopg.Error as e:
            with lock:
                rejected[str(path)] = e.diag.message_primary or str(e)
            return
        with lock:
            latencies.append(time.monotonic() - started)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(insert, files))
    wall = time.monotonic() - started
    cpu = None
    if backends and all(v is not None for v in backends.values()):
        now = {pid: backend_cpu_seconds(pid) for pid in backends}
        if all(v is not None for v in now.values()):
            cpu = sum(now[pid] - backends[pid] for pid in backends)
    for conn in connections:
        conn.close()
    return {"wall": wall, "latencies": latencies, "rejected": rejected, "cpu": cpu}


def faces_per_file(url: str, profile: str, party: pathlib.Path) -> dict[str, int]:
    import psycopg

    prefix = str(party) + "/"
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select p.filename, count(f.id) from photos p left join faces f on f.photo_id = p.id and f.profile = %s"
            " group by p.filename", (profile,)).fetchall()
    return {name.removeprefix(prefix): count for name, count in rows}


def rank(url: str, profile: str, reference: pathlib.Path, n: int, party: pathlib.Path) -> tuple[list[tuple[str, float]], str | None]:
    import psycopg

    prefix = str(party) + "/"
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            rows = conn.execute(
                "select filename, distance from find_photos_like(%s, n => %s, profile => %s)",
                (reference.read_bytes(), n, profile)).fetchall()
        except psycopg.Error as e:
            return [], e.diag.message_primary or str(e)
    return [(name.removeprefix(prefix), distance) for name, distance in rows], None


# --- one profile ---------------------------------------------------------------------------------------------------


def existing_database(admin_url: str, profile: str) -> str | None:
    import psycopg

    name = f"pgfaces_bench_{profile}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        found = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
    return databases.database_url(admin_url, name) if found else None


def bench_profile(admin_url: str, profile: str, party: pathlib.Path = PARTY, dirs=LOADED_DIRS,
                  calibrate_threshold: bool = True, keep: bool = False, resume: bool = False, log=print) -> dict:
    """resume: reuse a pgfaces_bench_<profile> left by an interrupted run and load only what it lacks (the
    speed figures are then those of that partial load, and say so)."""
    from .calibrate import calibrate

    label = TUTORIAL_DLIB_LABEL if profile == TUTORIAL_DLIB else profile
    result: dict = {"profile": label, "db_profile": profile, "loaded_dirs": list(dirs)}
    url = existing_database(admin_url, profile) if resume else None
    resumed = url is not None
    url = url or fresh_database(admin_url, profile)
    try:
        row = profile_row(url, profile)
        result["definition"] = {k: row[k] for k in ("detector", "detector_params", "embedder", "embedder_params",
                                                     "description")}
        error = probe(url, profile, party)
        if error:
            result["error"] = error
            log(f"{label}: cannot run here: {error}")
            return result

        manifest = read_manifest(party)
        queries = read_queries(party)
        files = sorted(p for d in dirs for p in (party / d).iterdir() if p.is_file())
        if resumed:
            present = set(faces_per_file(url, profile, party))
            files = [f for f in files if f.relative_to(party).as_posix() not in present]
        log(f"{label}: loading {len(files)} files over {WORKERS} connections ...")
        loaded = load(url, files)
        faces = faces_per_file(url, profile, party)
        photos = len(faces)
        broken = [f for f in files if f.parent.name == "broken"]
        rejected = {pathlib.Path(k).relative_to(party).as_posix(): v for k, v in loaded["rejected"].items()}
        result["load"] = {
            "photos": photos,
            "wall_seconds": round(loaded["wall"], 2),
            "seconds_per_photo_wall": loaded["wall"] / max(len(loaded["latencies"]), 1),
            "seconds_per_photo_latency": sum(loaded["latencies"]) / max(len(loaded["latencies"]), 1),
            # CPU time of the ingesting backends / photos: what a photo costs one core, whatever else runs.
            "cpu_seconds_per_photo": loaded["cpu"] / max(len(loaded["latencies"]), 1) if loaded["cpu"] is not None else None,
            "workers": WORKERS,
            "resumed": resumed,  # True: the speed figures cover only the photos loaded on resuming
            "broken_rejected": sum(1 for f in broken if f.relative_to(party).as_posix() in rejected),
            "broken_total": len(broken),
            "unexpected_rejections": {k: v for k, v in rejected.items() if not k.startswith("broken/")},
        }
        log(f"{label}: {photos} photos in {loaded['wall']:.0f} s; {len(rejected)} rejected")

        # Faces per photo against the manifest.
        counted = [(faces.get(name, 0), int(row["faces"])) for name, row in manifest.items()
                   if row["kind"] in ("party", "real") and name in faces]
        expected = sum(e for _, e in counted)
        negatives = [name for name, row in manifest.items() if row["kind"] == "negative" and name in faces]
        false_faces = sum(faces[name] for name in negatives)
        result["faces"] = {
            "found": sum(f for f, _ in counted),
            "expected": expected,
            "found_per_expected": sum(f for f, _ in counted) / max(expected, 1),
            "photos_all_found": sum(1 for f, e in counted if f >= e) / max(len(counted), 1),
            "parties_found_per_expected": _ratio(faces, manifest, "party"),
            "real_found_per_expected": _ratio(faces, manifest, "real"),
            "negative_images": len(negatives),
            "negative_faces": false_faces,
            "false_faces_per_100_negatives": 100 * false_faces / max(len(negatives), 1),
            "negatives_with_faces": sorted(n for n in negatives if faces[n]),
        }

        # Queries.
        threshold = None
        if calibrate_threshold:
            cal = calibrate(row, log=log)
            result["calibration"] = dataclasses.asdict(cal)
            threshold = cal.threshold
            log(cal.summary())
        per_query, matched, matched_relevant, relevant_total = {}, 0, 0, 0
        for q in queries:
            # With part of the set loaded (--parties-only), only the loaded photos can be found.
            q = dataclasses.replace(q, relevant={r for r in q.relevant if r.split("/")[0] in dirs})
            ranking, error = rank(url, profile, party / q.reference, photos, party)
            names = [name for name, _ in ranking]
            score = score_query(names, q)
            if error:
                score["error"] = error
            per_query[q.identity] = score
            relevant_total += len(q.relevant)
            if threshold is not None:
                kept = [name for name, d in ranking if d <= threshold and name not in q.ignore]
                matched += len(kept)
                matched_relevant += sum(1 for name in kept if name in q.relevant)
        n = len(queries)
        result["search"] = {
            "queries": n,
            # The best recall@10 possible: queries with more than 10 relevant photos cannot reach 1.
            "recall_at_10_ceiling": sum(min(10, s["relevant"]) / s["relevant"] for s in per_query.values()) / n,
            "precision_at_10_ceiling": sum(min(10, s["relevant"]) / 10 for s in per_query.values()) / n,
            "map": sum(s["ap"] for s in per_query.values()) / n,
            "recall_at_10": sum(s["recall_at_10"] for s in per_query.values()) / n,
            "precision_at_10": sum(s["precision_at_10"] for s in per_query.values()) / n,
            "queries_without_reference_face": sorted(k for k, s in per_query.items() if "error" in s),
            "per_query": per_query,
        }
        if threshold is not None:
            result["search"]["matches_only"] = {
                "threshold": threshold,
                "precision": matched_relevant / matched if matched else None,
                "recall": matched_relevant / relevant_total,
            }
        return result
    finally:
        if not keep:
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'drop database if exists "pgfaces_bench_{profile}" with (force)')


def _ratio(faces: dict, manifest: dict, kind: str) -> float:
    pairs = [(faces.get(n, 0), int(r["faces"])) for n, r in manifest.items() if r["kind"] == kind and n in faces]
    return sum(f for f, _ in pairs) / max(sum(e for _, e in pairs), 1)


# --- all profiles --------------------------------------------------------------------------------------------------


def default_profiles(admin_url: str) -> list[str]:
    """The shipped profiles, read from a migrated scratch database."""
    import psycopg

    url = fresh_database(admin_url, "tutorial")
    try:
        with psycopg.connect(url) as conn:
            return [r[0] for r in conn.execute("select name from profiles order by name")]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute('drop database if exists "pgfaces_bench_tutorial" with (force)')


COLUMNS = [
    ("profile", "{}", lambda r: r["profile"]),
    ("mAP", "{:.3f}", lambda r: r["search"]["map"]),
    ("R@10", "{:.3f}", lambda r: r["search"]["recall_at_10"]),
    ("P@10", "{:.3f}", lambda r: r["search"]["precision_at_10"]),
    ("faces found/expected", "{:.2f}", lambda r: r["faces"]["found_per_expected"]),
    ("photos all found", "{:.0%}", lambda r: r["faces"]["photos_all_found"]),
    ("false faces /100 neg", "{:.1f}", lambda r: r["faces"]["false_faces_per_100_negatives"]),
    ("s/photo (wall, 2 conn)", "{:.2f}", lambda r: r["load"]["seconds_per_photo_wall"]),
    ("CPU s/photo", "{:.2f}", lambda r: r["load"]["cpu_seconds_per_photo"]),
    ("threshold", "{:.3f}", lambda r: r["calibration"]["threshold"]),
    ("matches-only P / R", "{}", lambda r: "{:.2f} / {:.2f}".format(
        r["search"]["matches_only"]["precision"] or 0, r["search"]["matches_only"]["recall"])),
]


def table(results: list[dict]) -> str:
    """A Markdown table, one row per profile."""
    lines = ["| " + " | ".join(c[0] for c in COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['profile']} | not measured: {r['error']} |" + " |" * (len(COLUMNS) - 2))
            continue
        cells = []
        for _, fmt, get in COLUMNS:
            try:
                value = get(r)
                cells.append("-" if value is None else fmt.format(value))
            except (KeyError, TypeError):
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(admin_url: str, profiles: list[str] | None = None, output: pathlib.Path = RESULTS,
        party: pathlib.Path = PARTY, dirs=LOADED_DIRS, keep: bool = False, resume: bool = False) -> list[dict]:
    import os

    profiles = list(profiles or default_profiles(admin_url))
    results = []
    previous = {}
    if output.exists():
        try:
            previous = {r["profile"]: r for r in json.loads(output.read_text()).get("results", [])}
        except (ValueError, AttributeError):
            previous = {}
    for profile in profiles:
        result = bench_profile(admin_url, profile, party, dirs, keep=keep, resume=resume)
        results.append(result)
        if profile == "tutorial" and "error" in result and TUTORIAL_DLIB not in profiles:
            print(f"tutorial: CLIP model not loadable here ({result['error']}); measuring the talk's detector "
                  f"with dlib instead as {TUTORIAL_DLIB_LABEL}", flush=True)
            results.append(bench_profile(admin_url, TUTORIAL_DLIB, party, dirs, keep=keep))
        # Keep the figures of profiles not measured this time, so that one profile can be re-run alone.
        merged = {**previous, **{r["profile"]: r for r in results}}
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({
            "benchmark": str(party), "loaded_dirs": list(dirs), "cores": os.cpu_count(), "workers": WORKERS,
            "results": list(merged.values()),
        }, indent=2, default=str) + "\n")
    print()
    print(table(results))
    measured = [r for r in results if "search" in r]
    if measured:
        print(f"(R@10 is relevant in the top 10 / relevant: at most {measured[0]['search']['recall_at_10_ceiling']:.3f} "
              f"on this set, where most queries have 11-15 relevant photos; P@10 at most "
              f"{measured[0]['search']['precision_at_10_ceiling']:.3f}. CPU s/photo: CPU time of the ingesting backends "
              f"/ photos; s/photo (wall): load time / photos with {WORKERS} connections)")
    for r in results:
        if "error" in r and r["profile"] == "tutorial":
            print(f"\ntutorial: CLIP model not loadable here ({r['error']})")
        elif "search" in r and r["search"]["queries_without_reference_face"]:
            print(f"{r['profile']}: no face in the reference for {', '.join(r['search']['queries_without_reference_face'])}"
                  " (those queries score 0)")
        if "load" in r and r["load"]["unexpected_rejections"]:
            print(f"{r['profile']}: rejected photos that should load: {r['load']['unexpected_rejections']}")
        if "load" in r:
            print(f"{r['profile']}: broken files rejected {r['load']['broken_rejected']}/{r['load']['broken_total']}")
    print(f"\nwritten to {output}")
    return results


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.bench.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", default=[], help=f"repeatable; default all (+ {TUTORIAL_DLIB})")
    parser.add_argument("--admin-url", default=None, help="maintenance URI (default: the project's server)")
    parser.add_argument("--parties-only", action="store_true", help="load parties/ and negatives/ only (slow profiles)")
    parser.add_argument("--keep", action="store_true", help="keep the pgfaces_bench_* databases")
    parser.add_argument("--resume", action="store_true",
                        help="reuse pgfaces_bench_<profile> left by an interrupted run; load only what it lacks")
    args = parser.parse_args(argv)
    admin_url = args.admin_url
    if admin_url is None:
        from tasks import cluster

        admin_url = cluster.uri("postgres")
    dirs = ("parties", "negatives", "broken") if args.parties_only else LOADED_DIRS
    run(admin_url, args.profile or None, dirs=dirs, keep=args.keep, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())

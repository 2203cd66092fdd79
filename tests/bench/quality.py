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

A benchmark that prints figures, not a test with thresholds: `invoke bench-quality [--profile P ...]`. The party set
and its scoring are in quality_party.py; the databases, loading and ranking in quality_database.py.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

from .quality_database import TUTORIAL_DLIB, WORKERS, default_profiles, existing_database, faces_per_file
from .quality_database import fresh_database, load, probe, profile_row, rank
from .quality_party import PARTY, ROOT, read_manifest, read_queries, score_query

RESULTS = ROOT / "bench-results" / "quality.json"
LOADED_DIRS = ("parties", "real", "negatives", "broken")
TUTORIAL_DLIB_LABEL = "tutorial-detector+dlib"  # how the results name TUTORIAL_DLIB (quality_database.py)


# --- one profile ---------------------------------------------------------------------------------------------------


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

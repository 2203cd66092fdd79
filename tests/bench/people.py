"""Grouping faces into people through the database: `invoke bench-people [--faces 100000,1000000]`.

- Quality: the party benchmark (../shared/faces/party) loaded whole as `./pgfaces load` loads a folder (every
  folder: parties/, real/, references/, negatives/, broken/), then `select cluster_faces()`, scored on the labelled
  faces of FACES.tsv (party/README.md) read two ways (people_faces.faces_inside: every face found in a region is
  its person's; match_regions: one face per region): pairwise precision and recall, BCubed precision / recall /
  F1, people found vs true, unassigned share, photos with two faces in one person. Then a second run on the
  unchanged data (how many faces it changes: 0 is the rule). The same for parties/ and real/ alone, beside it.
- Joining on INSERT: what pgfaces_faces_added (listing a new face's nearest faces and joining it to a person) adds
  to an INSERT, per face, once people exist.
- Scale: synthetic people (tests/bench/synthetic.py, fitted on the benchmark's labelled faces) in photos of a few
  faces each, written with COPY; their nearest-face lists made as INSERTs make them (timed apart, per face), then
  cluster_faces() timed and scored against the synthetic truth.

Figures, not a test; databases of its own (pgfaces_bench_people*). Writes bench-results/people.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import threading
import time

import numpy as np

from . import databases
from .people_faces import FaceSet, faces_inside, labelled_regions, match_regions
from .people_scores import metrics, metrics_large

ROOT = pathlib.Path(__file__).resolve().parents[2]
FACES_DIR = ROOT.parent / "shared" / "faces"
RESULTS = ROOT / "bench-results" / "people.json"
PROFILE = "mtcnn"
FACES_PER_PHOTO = 3


def log(message: str) -> None:
    print(f"[bench-people {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _cluster(url: str) -> tuple[int, float]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        changed = conn.execute("select cluster_faces()").fetchone()[0]
        return changed, time.perf_counter() - started


# The whole benchmark as `./pgfaces load party/` loads it (references/, negatives/ and broken/ too), and the subset
# earlier figures were measured on.
WHOLE, SUBSET = ("",), ("parties", "real")


def quality(admin_url: str, folders=WHOLE, name: str = "pgfaces_bench_people", join: bool = True) -> dict:
    """The party benchmark's `folders` loaded through INSERT, clustered, scored (both ways of labelling, see
    people_faces); and the cost of joining on INSERT."""
    import psycopg

    from pgfaces import loader

    url = databases.fresh_database(admin_url, name)
    party = FACES_DIR / "party"
    log(f"quality: loading {', '.join(f or 'party/ (every folder)' for f in folders)} through INSERT (2 connections)")
    report = loader.load(url, [str(party / f) for f in folders], workers=2, progress=False)
    changed, seconds = _cluster(url)
    again, again_seconds = _cluster(url)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("select p.filename, p.width, p.height, f.x, f.y, f.width, f.height, f.person_id,"
                            " q.groupable from faces f join photos p on p.id = f.photo_id"
                            " join face_quality q on q.face_id = f.id where f.profile = %s"
                            " order by p.filename, f.id", (PROFILE,)).fetchall()
        cost = join_cost(conn) if join else None
    regions = labelled_regions(FACES_DIR)
    result = {"folders": list(folders), "photos": report.loaded, "faces": len(rows), "cluster_s": seconds,
              "changed": changed, "rerun_changed": again, "rerun_s": again_seconds, "join": cost,
              "held_back": sum(not r[8] for r in rows)}
    for rule, label in (("inside", faces_inside), ("one per region", match_regions)):
        identity, photo, labels = [], [], []
        by_file: dict[str, list] = {}
        for r in rows:
            by_file.setdefault(r[0], []).append(r)
        for filename, faces in by_file.items():
            regions_here = regions.get("party/" + str(pathlib.Path(filename).relative_to(party)), [])
            boxes = [f[3:7] for f in faces]
            found = (faces_inside(boxes, regions_here) if label is faces_inside
                     else match_regions(boxes, regions_here, (faces[0][1], faces[0][2])))
            for f, who in zip(faces, found):
                identity.append("?" if who is None else who)
                photo.append(filename)
                labels.append(-1 if f[7] is None else f[7])
        scored = FaceSet("party", np.zeros((len(identity), 1)), np.array(identity), np.array(photo))
        result[rule] = {"labelled_faces": int(scored.labelled.sum()),
                        **{k: float(v) for k, v in metrics(np.array(labels), scored).items()}}
    return result


def join_cost(conn, sample: int = 40) -> dict:
    """ms per face of pgfaces_faces_added on photos already loaded, their faces' people and lists taken away first."""
    photos = [r[0] for r in conn.execute(
        "select photo_id from faces group by photo_id order by photo_id desc limit %s", (sample,))]
    conn.execute("delete from face_people where assigned_by <> 'user' and face_id in"
                 " (select id from faces where photo_id = any(%s))", (photos,))
    conn.execute("delete from face_neighbours where face_id in (select id from faces where photo_id = any(%s))",
                 (photos,))
    faces, joined, started = 0, 0, time.perf_counter()
    for photo in photos:
        joined += conn.execute("select pgfaces_faces_added(%s)", (photo,)).fetchone()[0]
        faces += conn.execute("select count(*) from faces where photo_id = %s", (photo,)).fetchone()[0]
    seconds = time.perf_counter() - started
    return {"faces": faces, "joined": joined, "ms_per_face": seconds / max(faces, 1) * 1000}


def synthetic(admin_url: str, faces: int, fit_url: str) -> dict:
    """`faces` synthetic faces: written with COPY, listed as INSERTs list them, then clustered and scored."""
    import psycopg

    from .synthetic import People

    # Fitted on the benchmark's faces grouped by the run above (the people model needs who is who, not labels).
    with psycopg.connect(fit_url) as conn:
        real = conn.execute("select f.embedding::text, f.person_id from faces f where f.profile = %s order by f.id",
                            (PROFILE,)).fetchall()
    vectors = np.array([json.loads(r[0]) for r in real], dtype=np.float32)
    persons = np.array([-1 if r[1] is None else r[1] for r in real])
    model = People(vectors, persons)
    counts = model.rng.geometric(1 / model.mean_faces, size=int(faces / model.mean_faces * 1.3) + 10)
    counts = counts[: int(np.searchsorted(np.cumsum(counts), faces)) + 1]
    counts[-1] -= counts.sum() - faces
    counts = counts[counts > 0]
    truth = np.repeat(np.arange(len(counts)), counts)
    embeddings = model.faces_around(np.repeat(model.new_centres(len(counts)), counts, axis=0)).astype(np.float32)
    order = model.rng.permutation(len(truth))
    embeddings, truth = embeddings[order], truth[order]

    url = databases.fresh_database(admin_url, "pgfaces_bench_people_synthetic")
    log(f"synthetic {faces}: COPY")
    _copy(url, embeddings)
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(f"select pgfaces_ensure_profile_index('{PROFILE}')")
        conn.execute("analyze faces")
        index_s = time.perf_counter() - started
        ids = [r[0] for r in conn.execute("select id from faces order by id")]
    log(f"synthetic {faces}: nearest-face lists, 2 connections (as {faces} INSERTs would make them)")
    list_s = _list_in_parallel(url, ids, 2)
    log(f"synthetic {faces}: cluster_faces()")
    changed, cluster_s = _cluster(url)
    with psycopg.connect(url) as conn:
        labels = np.array([r[0] if r[0] is not None else -1 for r in conn.execute(
            "select f.person_id from faces f order by f.id")])
    return {"faces": faces, "people": int(len(counts)), "index_build_s": index_s, "lists_s": list_s,
            "lists_ms_per_face": list_s / faces * 1000 * 2, "cluster_s": cluster_s, "changed": changed,
            **{k: float(v) for k, v in metrics_large(labels, truth).items()}}


def _copy(url: str, embeddings: np.ndarray) -> None:
    """Placeholder photos of FACES_PER_PHOTO faces each, and the faces, in PostgreSQL's binary COPY format (a
    million rows in seconds); triggers off."""
    import struct

    import psycopg

    n, dims = embeddings.shape
    profile = PROFILE.encode()
    row = np.dtype([("fields", ">i2"), ("l_photo", ">i4"), ("photo", ">i8"), ("l_profile", ">i4"),
                    ("profile", f"S{len(profile)}"), ("l_x", ">i4"), ("x", ">i4"), ("l_y", ">i4"), ("y", ">i4"),
                    ("l_w", ">i4"), ("w", ">i4"), ("l_h", ">i4"), ("h", ">i4"),
                    ("l_vec", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (dims,))])
    rows = np.zeros(n, row)
    rows["fields"], rows["l_photo"], rows["photo"] = 7, 8, 1 + np.arange(n) // FACES_PER_PHOTO
    rows["l_profile"], rows["profile"] = len(profile), profile
    for f in ("x", "y", "w", "h"):
        rows[f"l_{f}"] = 4
    rows["w"], rows["h"] = 100, 100
    rows["l_vec"], rows["dim"], rows["vec"] = 4 + 4 * dims, dims, embeddings
    header, trailer = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0), struct.pack(">h", -1)
    with psycopg.connect(url) as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute(f"drop index if exists faces_hnsw_{PROFILE}")  # built once after the COPY, not row by row
        conn.execute("insert into photos (id, filename, image, sha256) overriding system value"
                     " select g, 'synthetic-' || g || '.jpg', '\\x00', 'synthetic ' || g"
                     " from generate_series(1, %s) g", (n // FACES_PER_PHOTO + 1,))
        with conn.cursor().copy("copy faces (photo_id, profile, x, y, width, height, embedding)"
                                " from stdin (format binary)") as copy:
            copy.write(header)
            for start in range(0, n, 100_000):
                copy.write(rows[start:start + 100_000].tobytes())
            copy.write(trailer)
        conn.execute("select setval(pg_get_serial_sequence('photos', 'id'), (select max(id) from photos))")
        conn.commit()


def _list_in_parallel(url: str, ids: list[int], connections: int) -> float:
    import psycopg

    chunks = [ids[i::connections] for i in range(connections)]

    def work(chunk):
        with psycopg.connect(url, autocommit=True) as conn:
            for start in range(0, len(chunk), 2000):
                conn.execute("select pgfaces_list_neighbours(pgfaces_profile(%s), %s)",
                             (PROFILE, chunk[start:start + 2000]))

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def print_report(report: dict) -> None:
    print(f"\npgfaces people (profile {PROFILE}); load average {report['load_start']} -> {report['load_end']}")
    print("\n| party benchmark | labelled faces | pairwise precision | pairwise recall | BCubed P | BCubed R |"
          " BCubed F1 | people found / true | unassigned | same-photo violations |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for q in (report["quality"], report["subset"]):
        what = "every folder" if q["folders"] == list(WHOLE) else " + ".join(f + "/" for f in q["folders"])
        for rule in ("inside", "one per region"):
            m = q[rule]
            print(f"| {what}, {rule} | {m['labelled_faces']} | {m['P']:.3f} | {m['R']:.3f} | {m['BP']:.3f} |"
                  f" {m['BR']:.3f} | {m['F1']:.3f} | {m['found']:.0f} / {m['true']:.0f} | {m['unassigned']:.1%} |"
                  f" {m['viol']:.0f} |")
    q = report["quality"]
    print(f"\nevery folder: {q['photos']} photos, {q['faces']} faces, {q['held_back']} under the quality bar;"
          f" cluster_faces(): {q['cluster_s']:.1f} s ({q['changed']} faces placed); again on unchanged data:"
          f" {q['rerun_changed']} changed, {q['rerun_s']:.1f} s")
    j = q["join"]
    print(f"joining on INSERT (pgfaces_faces_added: list + join): {j['ms_per_face']:.1f} ms per face "
          f"({j['joined']} of {j['faces']} faces joined a person at once)")
    for s in report["synthetic"]:
        print(f"\n{s['faces']} synthetic faces ({s['people']} people): lists {s['lists_ms_per_face']:.2f} ms per face"
              f" (as each INSERT makes its own), cluster_faces() {s['cluster_s']:.1f} s; pairwise P {s['P']:.4f},"
              f" R {s['R']:.3f}, BCubed F1 {s['F1']:.3f}")


def run(admin_url: str, sizes: list[int]) -> dict:
    def load() -> str:
        try:
            return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
        except OSError:
            return "?"

    report = {"load_start": load(), "quality": quality(admin_url),
              "subset": quality(admin_url, SUBSET, "pgfaces_bench_people_subset", join=False), "synthetic": []}
    fit_url = databases.database_url(admin_url, "pgfaces_bench_people")
    for size in sizes:
        report["synthetic"].append(synthetic(admin_url, size, fit_url))
    report["load_end"] = load()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str))
    print_report(report)
    print(f"\nwritten: {RESULTS}")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.people", description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--faces", default="100000", help="synthetic sizes, comma-separated (e.g. 100000,1000000)")
    args = parser.parse_args(argv)
    run(args.admin_url, [int(s) for s in args.faces.split(",") if s])
    return 0


if __name__ == "__main__":
    sys.exit(main())

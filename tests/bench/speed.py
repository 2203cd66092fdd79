"""Speed and memory of pgfaces: `invoke bench [--faces 1000000] [--profile mtcnn --profile hog]`.

Prints a table and writes bench-results/speed.json. Everything runs in databases of its own on the project's
server (pgfaces_speed_<profile> for ingest, pgfaces_speed_search for search), never the user's.

- Ingest: the party photos (../shared/faces/party/parties/*.jpg) through `invoke load`'s loader with 1 and N
  connections (a fresh table each time, new backends, so model loading is included); in the same run the same
  detection + embedding by a bare Python loop (tests/bench/speed_bare.py) in 1 and N processes, models loaded
  before the clock starts. Ratio = pipeline photos/s / bare photos/s with as many processes as connections.
- Where the time goes per photo (bare loop, timers around the functions pipeline.py calls): header, EXIF,
  decode (reduced + resize, and the full-resolution decode), detect, align+embed (also per face), thumbnail;
  the database write = pipeline seconds/photo on 1 connection - bare seconds/photo on 1 process, and an
  INSERT with no ingesting profile (sha256, EXIF, row + TOAST write). First call in a new backend: a new
  connection's first `detect_and_embed` of the reference minus its second (imports + model loading).
- Search: the real faces of the ingest run plus synthetic vectors written directly with binary COPY (drawn by
  tests/bench/synthetic.py: people with several faces each by default, or --synthetic strangers; their photos
  are placeholder rows written with triggers off), at
  10k, 100k and (with --faces 1000000) 1M faces. At each size: HNSW build time and size of the profile's index
  as pgfaces_ensure_profile_index makes it; find_faces_near p50/p95 and recall@10 against exact search
  (index scans off) for queries that are not in the table (perturbed real faces and new synthetic faces),
  per hnsw.ef_search; find_photos_like, face_embedding (the reference part of it) and detect_and_embed p50/p95 of
  a ~1 MP reference, in one warm backend.
- Memory: VmRSS (anon/file/shmem) of a backend after its models loaded, and VmHWM after INSERTing a synthetic
  50-megapixel JPEG (8660x5774, with real faces pasted in).

A benchmark that prints figures, not a test with thresholds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import platform
import statistics
import struct
import subprocess
import sys
import time

from . import databases, synthetic

ROOT = pathlib.Path(__file__).resolve().parents[2]

PARTY = ROOT.parent / "shared" / "faces" / "party"
RESULTS = ROOT / "bench-results" / "speed.json"
BARE = pathlib.Path(__file__).resolve().parent / "speed_bare.py"
REFERENCE_PHOTO = "parties/party_001.jpg"
SEARCH_DB = "pgfaces_speed_search"


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


def fresh_database(admin_url: str, name: str, profile: str | None) -> str:
    """A migrated database `name` whose only ingesting (and default) profile is `profile`."""
    import psycopg

    url = databases.fresh_database(admin_url, name)
    with psycopg.connect(url) as conn:
        if profile:
            conn.execute("update profiles set ingest = (name = %s)", (profile,))
            conn.execute("update profiles set is_default = false where is_default and name <> %s", (profile,))
            conn.execute("update profiles set is_default = true where name = %s", (profile,))
    return url


def profile_dict(url: str, profile: str) -> dict:
    import psycopg
    from psycopg.rows import dict_row

    from pgfaces.profiles import COLUMNS, from_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return from_row(conn.execute(f"select {COLUMNS} from profiles where name = %s", (profile,)).fetchone())


SERVER_PYTHON = [sys.executable]  # set from --server-python: the bare loop runs the server venv's libraries


def bare(mode: str, profile: dict, files: list[pathlib.Path], processes: int | None = None) -> dict:
    # The server's Python, with this checkout's package on its path, as the server has its copy on PYTHONPATH.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT / "plpython")}
    args = [SERVER_PYTHON[0], str(BARE), mode, json.dumps(profile)]
    if processes:
        args.append(str(processes))
    out = subprocess.run(args + [str(f) for f in files], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def backend_memory(conn) -> dict:
    pid = conn.execute("select pg_backend_pid()").fetchone()[0]
    fields = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            fields[key] = int(value.split()[0]) / 1024  # MiB
    return fields


# --- ingest -------------------------------------------------------------------------------------------------------


def bench_ingest(admin_url: str, profile: str, files: list[pathlib.Path], workers: int) -> dict:
    import psycopg
    from pgfaces.loader import load

    log(f"ingest {profile}: fresh database")
    url = fresh_database(admin_url, f"pgfaces_speed_{profile}", profile)
    prof = profile_dict(url, profile)
    result: dict = {"profile": profile, "photos": len(files), "folder": str(files[0].parent), "workers": workers,
                    "load_before": load_average()}

    def run_load(n: int) -> dict:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("truncate photos cascade")
        report = load(url, [str(f) for f in files], workers=n, progress=False)
        if report.failed:
            log(f"  {len(report.failed)} failed: {report.failed[:3]}")
        return {"connections": n, "photos": report.loaded, "faces": report.faces, "seconds": report.seconds,
                "photos_per_s": report.loaded / report.seconds, "faces_per_s": report.faces / report.seconds}

    log(f"ingest {profile}: INSERT with no profile ingesting (row write only)")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate photos cascade")
        conn.execute("update profiles set ingest = false")
        started = time.perf_counter()
        for f in files:
            conn.execute("insert into photos (filename, image) values (%s, %s)", (str(f), f.read_bytes()))
        insert_only = (time.perf_counter() - started) / len(files)
        conn.execute("update profiles set ingest = (name = %s)", (profile,))

    counts = sorted({1, workers})
    result["pipeline"], result["bare"] = {}, {}
    for n in counts:
        log(f"ingest {profile}: pipeline, {n} connection(s)")
        result["pipeline"][n] = run_load(n)
        log(f"ingest {profile}: bare loop, {n} process(es)")
        result["bare"][n] = bare("throughput", prof, files, n)
    result["ratio_pipeline_bare"] = {n: result["pipeline"][n]["photos_per_s"] / result["bare"][n]["photos_per_s"]
                                     for n in counts}
    result["scaling_pipeline"] = result["pipeline"][workers]["photos_per_s"] / result["pipeline"][1]["photos_per_s"]
    result["scaling_bare"] = result["bare"][workers]["photos_per_s"] / result["bare"][1]["photos_per_s"]

    log(f"ingest {profile}: per-stage breakdown (bare, 1 process)")
    result["breakdown"] = bare("breakdown", prof, files)
    result["breakdown"]["insert_without_analysis_s"] = insert_only
    # Both rates measured back to back, in the same load conditions.
    result["breakdown"]["db_write_s"] = 1 / result["pipeline"][1]["photos_per_s"] - 1 / result["bare"][1]["photos_per_s"]

    result["first_call"] = first_call(url, profile)
    result["memory_50mp"] = memory_50mp(url, profile)
    return result


def reference_1mp() -> bytes:
    """A party photo resized to about 1 megapixel (1224x816 for 3:2): several faces, the largest is used."""
    import cv2

    image = cv2.imread(str(PARTY / REFERENCE_PHOTO))
    h, w = image.shape[:2]
    scale = (1_000_000 / (h * w)) ** 0.5
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return data.tobytes()


def first_call(url: str, profile: str) -> dict:
    import psycopg

    reference = reference_1mp()
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        connect = time.perf_counter() - started
        conn.execute("select 1")
        before = backend_memory(conn)
        sql = "select count(*) from detect_and_embed(%s, %s)"
        times = []
        for _ in range(3):
            started = time.perf_counter()
            conn.execute(sql, (reference, profile)).fetchone()
            times.append(time.perf_counter() - started)
        after = backend_memory(conn)
    return {"connect_s": connect, "first_s": times[0], "warm_s": min(times[1:]),
            "first_minus_warm_s": times[0] - min(times[1:]), "rss_new_backend_mib": before, "rss_after_models_mib": after}


def synthetic_50mp() -> bytes:
    """An 8660x5774 JPEG: a party photo stretched as background, real faces pasted in at several sizes."""
    import cv2
    import numpy as np

    w, h = 8660, 5774
    rng = np.random.default_rng(50)
    background = cv2.resize(cv2.imread(str(PARTY / "parties/party_002.jpg")), (w, h), interpolation=cv2.INTER_LINEAR)
    noise = rng.integers(-12, 12, size=(h, w, 1), dtype=np.int16)
    image = np.clip(background.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    refs = sorted(p for p in (PARTY / "references").iterdir() if p.suffix in (".jpg", ".png", ".jpeg"))[:6]
    for i, ref in enumerate(refs):
        face = cv2.imread(str(ref))
        side = 600 + 150 * i
        fh, fw = face.shape[:2]
        scale = side / max(fh, fw)
        face = cv2.resize(face, (round(fw * scale), round(fh * scale)))
        x, y = 400 + i * 1300, 800 + (i % 2) * 2200
        image[y:y + face.shape[0], x:x + face.shape[1]] = face[: h - y, : w - x]
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return data.tobytes()


def memory_50mp(url: str, profile: str) -> dict:
    import psycopg

    data = synthetic_50mp()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select count(*) from detect_and_embed(%s, %s)", (reference_1mp(), profile)).fetchone()
        before = backend_memory(conn)
        started = time.perf_counter()
        conn.execute("insert into photos (filename, image) values ('synthetic-50mp.jpg', %s)", (data,))
        seconds = time.perf_counter() - started
        faces = conn.execute("select count(*) from faces f join photos p on p.id = f.photo_id"
                             " where p.filename = 'synthetic-50mp.jpg'").fetchone()[0]
        after = backend_memory(conn)
        conn.execute("delete from photos where filename = 'synthetic-50mp.jpg'")
    return {"bytes": len(data), "megapixels": 8660 * 5774 / 1e6, "insert_s": seconds, "faces": faces,
            "before_mib": before, "after_mib": after}


# --- search -------------------------------------------------------------------------------------------------------


def copy_real(src_url: str, dst_url: str, profile: str) -> int:
    """The ingest run's photos and faces, copied with triggers off (no re-analysis)."""
    import psycopg

    with psycopg.connect(src_url) as src, psycopg.connect(dst_url) as dst:
        dst.execute("set session_replication_role = replica")
        with src.cursor().copy("copy (select id, filename, image, sha256, width, height from photos) to stdout") as out, \
                dst.cursor().copy("copy photos (id, filename, image, sha256, width, height) from stdin") as into:
            for block in out:
                into.write(block)
        with src.cursor().copy("copy (select photo_id, profile, x, y, width, height, score, embedding"
                               " from faces where profile = %s) to stdout", (profile,)) as out, \
                dst.cursor().copy("copy faces (photo_id, profile, x, y, width, height, score, embedding)"
                                  " from stdin") as into:
            for block in out:
                into.write(block)
        dst.execute("select setval(pg_get_serial_sequence('photos', 'id'), (select max(id) from photos))")
        dst.commit()
        return dst.execute("select count(*) from faces").fetchone()[0]


def real_embeddings(url: str, profile: str):
    """The real faces' embeddings and their photos' ids."""
    import numpy as np
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("select embedding::text, photo_id from faces where profile = %s order by id",
                            (profile,)).fetchall()
    return np.array([json.loads(r[0]) for r in rows], dtype=np.float32), np.array([r[1] for r in rows])


def label_real_faces(url: str, profile: str, real, photo_ids):
    """Each real face's person, for fitting the people model, with no labels needed (any folder of photos will do):
    average-linkage clusters of faces nearer to each other on average than the profile's match threshold, never two
    faces of one photo; a face like no other gets -1. On the party photos this finds 34 people where the benchmark's
    labels know 16 plus unlabelled extras, and a same-person distance of 0.35 where the labelled faces give 0.39."""
    import numpy as np
    import psycopg
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist, squareform

    with psycopg.connect(url) as conn:
        threshold = conn.execute("select match_threshold from profiles where name = %s", (profile,)).fetchone()[0]
    distances = squareform(pdist(real.astype(np.float64)))
    distances[photo_ids[:, None] == photo_ids[None, :]] = 1e6  # one person is not twice in a photo
    np.fill_diagonal(distances, 0)
    clusters = fcluster(linkage(squareform(distances, checks=False), method="average"), threshold, criterion="distance")
    _, labels, sizes = np.unique(clusters, return_inverse=True, return_counts=True)
    return np.where(sizes[labels] > 1, labels, -1)


def copy_synthetic(url: str, profile: str, vectors, first_photo: int, faces_per_photo: int = 8) -> None:
    """Placeholder photos and faces in PostgreSQL's binary COPY format (fast for a million rows)."""
    import numpy as np
    import psycopg

    n, dims = vectors.shape
    photo_ids = first_photo + np.arange(n) // faces_per_photo
    photos = np.unique(photo_ids)
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    trailer = struct.pack(">h", -1)
    prof = profile.encode()
    face_dtype = np.dtype([
        ("nfields", ">i2"),
        ("l_photo", ">i4"), ("photo", ">i8"),
        ("l_profile", ">i4"), ("profile", f"S{len(prof)}"),
        ("l_x", ">i4"), ("x", ">i4"), ("l_y", ">i4"), ("y", ">i4"),
        ("l_w", ">i4"), ("w", ">i4"), ("l_h", ">i4"), ("h", ">i4"),
        ("l_vec", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (dims,)),
    ])
    rows = np.zeros(n, face_dtype)
    rows["nfields"] = 7
    rows["l_photo"], rows["photo"] = 8, photo_ids
    rows["l_profile"], rows["profile"] = len(prof), prof
    for f in ("x", "y", "w", "h"):
        rows[f"l_{f}"] = 4
    rows["w"], rows["h"] = 100, 100
    rows["l_vec"], rows["dim"], rows["vec"] = 4 + 4 * dims, dims, vectors
    sha = np.array([hashlib.sha256(b"synthetic %d" % p).hexdigest().encode() for p in photos])
    photo_dtype = np.dtype([("nfields", ">i2"), ("l_id", ">i4"), ("id", ">i8"), ("l_name", ">i4"), ("name", "S13"),
                            ("l_image", ">i4"), ("image", "S1"), ("l_sha", ">i4"), ("sha", "S64")])
    prow = np.zeros(len(photos), photo_dtype)
    prow["nfields"] = 4
    prow["l_id"], prow["id"] = 8, photos
    prow["l_name"], prow["name"] = 13, b"synthetic.jpg"
    prow["l_image"], prow["image"] = 1, b"x"
    prow["l_sha"], prow["sha"] = 64, sha
    with psycopg.connect(url) as conn:
        conn.execute("set session_replication_role = replica")
        with conn.cursor().copy("copy photos (id, filename, image, sha256) from stdin (format binary)") as copy:
            copy.write(header + prow.tobytes() + trailer)
        with conn.cursor().copy("copy faces (photo_id, profile, x, y, width, height, embedding)"
                                " from stdin (format binary)") as copy:
            step = 100_000
            copy.write(header)
            for i in range(0, n, step):
                copy.write(rows[i:i + step].tobytes())
            copy.write(trailer)
        conn.execute("select setval(pg_get_serial_sequence('photos', 'id'), (select max(id) from photos))")


def vector_literal(v) -> str:
    return "[" + ",".join(f"{x:.6g}" for x in v) + "]"


def synthetic_model(url: str, profile: str, model: str, real, photo_ids) -> tuple[object, dict]:
    """The synthetic model fitted to the real faces, and how its distances compare with theirs."""
    if model == "strangers":
        return synthetic.Strangers(real), {"model": model}
    labels = label_real_faces(url, profile, real, photo_ids)
    try:
        model_ = synthetic.People(real, labels)
    except ValueError as e:  # too few photos show anyone twice: the ingest figures still stand
        log(f"search: {e} among the ingested photos; drawing strangers instead")
        return synthetic.Strangers(real), {"model": "strangers", "why": str(e)}
    sample, sample_labels = model_.sample()
    fit = {"real": synthetic.distances_summary(real, labels), "synthetic": synthetic.distances_summary(sample, sample_labels)}
    log(f"search: people model fitted on {int((labels >= 0).sum())} faces of {len(set(labels) - {-1})} people; mean distance same person /"
        f" different people: real {fit['real']['same_person']:.3f} / {fit['real']['different_people']:.3f},"
        f" synthetic {fit['synthetic']['same_person']:.3f} / {fit['synthetic']['different_people']:.3f}")
    return model_, fit


def bench_search(admin_url: str, ingest_url: str, profile: str, sizes: list[int], queries: int,
                 ef_values: list[int], full_precision: bool, hnsw_grid: list[tuple[int, int]], model: str = "people") -> dict:
    import numpy as np
    import psycopg

    log("search: fresh database, real faces copied from the ingest run")
    url = fresh_database(admin_url, SEARCH_DB, profile)
    real_count = copy_real(ingest_url, url, profile)
    real, photo_ids = real_embeddings(url, profile)
    synth, fit = synthetic_model(url, profile, model, real, photo_ids)
    # The first size's synthetic faces are drawn before the queries, so that queries can be new faces of people
    # in the library at every size.
    pending = synth.draw(sizes[0] - real_count) if sizes[0] > real_count else None
    rng = np.random.default_rng(11)
    spread = float(np.linalg.norm(real - real.mean(axis=0), axis=1).mean())
    half = queries // 2
    picks = real[rng.integers(0, len(real), half)]
    query_vectors = np.vstack([picks + rng.standard_normal(picks.shape).astype(np.float32) * spread * 0.05,
                               synth.queries(queries - half)])
    literals = [vector_literal(v) for v in query_vectors]
    reference = reference_1mp()
    index = f"faces_hnsw_{profile}"
    results = {"profile": profile, "real_faces": real_count, "queries": queries, "synthetic_fit": fit, "levels": []}
    have, next_photo = real_count, 10_000_000
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set maintenance_work_mem = '2GB'")
        conn.execute("set max_parallel_maintenance_workers = 1")
        for size in sizes:
            if size > have:
                log(f"search: writing {size - have} synthetic vectors")
                conn.execute(f"drop index if exists {index}")  # rebuilt below; inserting into HNSW is slow
                vectors = pending if pending is not None else synth.draw(size - have)
                pending = None
                copy_synthetic(url, profile, vectors, next_photo)
                next_photo += size  # room for the photo ids of this batch
                have = size
                conn.execute("vacuum analyze faces")
                conn.execute("vacuum analyze photos")
            level: dict = {"faces": have, "load": load_average()}
            log(f"search @ {have}: exact neighbours of {queries} queries")
            exact = []
            with conn.transaction():
                conn.execute("set local enable_indexscan = off")
                conn.execute("set local enable_bitmapscan = off")
                for q in literals:
                    exact.append([r[0] for r in conn.execute(
                        "select id from faces where profile = %s order by embedding::vector(128) <-> %s::vector(128),"
                        " id limit 10", (profile, q))])
            grid = hnsw_grid or [(None, None)]
            level["builds"] = []
            for m, efc in grid:
                conn.execute(f"drop index if exists {index}")
                log(f"search @ {have}: building {index} (m={m or 'shipped'}, ef_construction={efc or 'shipped'})")
                started = time.perf_counter()
                if m is None:
                    conn.execute("select pgfaces_ensure_profile_index(%s)", (profile,))
                else:
                    conn.execute(f"create index {index} on faces using hnsw ((embedding::halfvec(128)) halfvec_l2_ops)"
                                 f" with (m = {m}, ef_construction = {efc}) where profile = %s".replace("%s", f"'{profile}'"))
                build = {"build_s": time.perf_counter() - started,
                         "index_mib": conn.execute("select pg_relation_size(%s) / 1048576.0", (index,)).fetchone()[0],
                         "definition": conn.execute("select pg_get_indexdef(%s::regclass)", (index,)).fetchone()[0],
                         "ef_search": {}}
                for ef in ef_values:
                    conn.execute(f"set hnsw.ef_search = {ef}")
                    build["ef_search"][ef] = vector_queries(conn, profile, literals, exact)
                level["builds"].append(build)
            # The shipped index (last grid entry when a grid is given) serves the image search.
            conn.execute("reset hnsw.ef_search")
            level["image_search"] = image_search(conn, profile, reference)
            if full_precision:
                level["full_precision"] = full_precision_index(conn, profile, literals, exact, ef_values)
            results["levels"].append(level)
            log(f"search @ {have}: done")
    results["synthetic"] = synth.describe()
    return results


def vector_queries(conn, profile: str, literals: list[str], exact: list[list[int]]) -> dict:
    sql = "select face_id from find_faces_near(%s::vector, 10, %s)"
    for q in literals[:20]:  # warm the index pages and the plan cache
        conn.execute(sql, (q, profile)).fetchall()
    times, recalls = [], []
    for q, truth in zip(literals, exact):
        started = time.perf_counter()
        got = [r[0] for r in conn.execute(sql, (q, profile))]
        times.append(time.perf_counter() - started)
        recalls.append(len(set(got) & set(truth)) / max(1, len(truth)))
    # The index scan alone: the same query as find_faces_near's, prepared, without the plpgsql wrapper.
    raw_sql = (f"select id from faces where profile = '{profile}' order by embedding::halfvec(128) <-> %s::halfvec(128)"
               " limit 10")
    raw = []
    with conn.transaction():
        conn.execute("set local hnsw.iterative_scan = strict_order")
        for q in literals:
            started = time.perf_counter()
            conn.execute(raw_sql, (q,), prepare=True).fetchall()
            raw.append(time.perf_counter() - started)
    return {"p50_ms": pct(times, 0.5) * 1000, "p95_ms": pct(times, 0.95) * 1000,
            "recall_at_10": statistics.mean(recalls), "raw_p50_ms": pct(raw, 0.5) * 1000,
            "raw_p95_ms": pct(raw, 0.95) * 1000}


def image_search(conn, profile: str, reference: bytes, runs: int = 21) -> dict:
    calls = {"detect_and_embed": "select count(*) from detect_and_embed(%s, %s)",
             "face_embedding": "select face_embedding(%s, %s) is not null",
             "find_photos_like": "select count(*) from find_photos_like(%s, 10, null, %s)"}
    for sql in calls.values():
        conn.execute(sql, (reference, profile)).fetchall()
    # Interleaved, so that a slower stretch of the machine weighs on every call alike (the overhead below is a
    # difference of two calls 30 times longer than it).
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, sql in calls.items():
            started = time.perf_counter()
            conn.execute(sql, (reference, profile)).fetchall()
            times[name].append(time.perf_counter() - started)
    out = {name: {"p50_ms": pct(t, 0.5) * 1000, "p95_ms": pct(t, 0.95) * 1000} for name, t in times.items()}
    embedding = conn.execute("select face_embedding(%s, %s)::text", (reference, profile)).fetchone()[0]
    for name, sql in (("find_photos_near", "select count(*) from find_photos_near(%s::vector, 10, null, %s)"),
                      ("find_faces_near", "select count(*) from find_faces_near(%s::vector, 10, %s)")):
        conn.execute(sql, (embedding, profile)).fetchall()
        samples = []
        for _ in range(runs * 4):
            started = time.perf_counter()
            conn.execute(sql, (embedding, profile)).fetchall()
            samples.append(time.perf_counter() - started)
        out[name] = {"p50_ms": pct(samples, 0.5) * 1000, "p95_ms": pct(samples, 0.95) * 1000}
    # find_photos_like embeds the reference's largest face (face_embedding); detect_and_embed does every face.
    # The overhead is the median of the differences of calls made back to back, steadier than a difference of p50s.
    out["overhead_p50_ms"] = statistics.median(
        like - embed for like, embed in zip(times["find_photos_like"], times["face_embedding"])) * 1000
    return out


def full_precision_index(conn, profile: str, literals, exact, ef_values) -> dict:
    """The shipped index's parameters at full precision (vector, as before halfvec), for comparison."""
    name = f"faces_hnsw_full_{profile}"
    conn.execute(f"drop index if exists {name}")
    conn.execute(f"drop index if exists faces_hnsw_{profile}")
    started = time.perf_counter()
    conn.execute(f"create index {name} on faces using hnsw ((embedding::vector(128)) vector_l2_ops)"
                 f" with (m = 16, ef_construction = 64) where profile = '{profile}'")
    out = {"build_s": time.perf_counter() - started,
           "index_mib": conn.execute("select pg_relation_size(%s) / 1048576.0", (name,)).fetchone()[0], "ef_search": {}}
    sql = ("select id from faces where profile = %s order by embedding::vector(128) <-> %s::vector(128) limit 10")
    for ef in ef_values:
        conn.execute(f"set hnsw.ef_search = {ef}")
        for q in literals[:20]:
            conn.execute(sql, (profile, q)).fetchall()
        times, recalls = [], []
        for q, truth in zip(literals, exact):
            started = time.perf_counter()
            got = [r[0] for r in conn.execute(sql, (profile, q))]
            times.append(time.perf_counter() - started)
            recalls.append(len(set(got) & set(truth)) / 10)
        out["ef_search"][ef] = {"p50_ms": pct(times, 0.5) * 1000, "p95_ms": pct(times, 0.95) * 1000,
                                "recall_at_10": statistics.mean(recalls)}
    conn.execute("reset hnsw.ef_search")
    conn.execute(f"drop index {name}")
    conn.execute("select pgfaces_ensure_profile_index(%s)", (profile,))
    return out


# --- report -------------------------------------------------------------------------------------------------------


def print_table(report: dict) -> None:
    p = print
    p(f"\npgfaces speed ({report['machine']}; server dlib {report.get('server_dlib', '?')}); load average at start {report['load_start']}, end {report['load_end']}")
    for ing in report["ingest"]:
        w = ing["workers"]
        p(f"\nIngest, profile {ing['profile']}: {ing['photos']} photos of {ing.get('folder', PARTY / 'parties')}")
        p(f"  {'':28} {'photos/s':>9} {'faces/s':>8}")
        for n in sorted({1, w}):
            pl, b = ing["pipeline"][n], ing["bare"][n]
            p(f"  {'pipeline, %d connection(s)' % n:28} {pl['photos_per_s']:9.2f} {pl['faces_per_s']:8.2f}")
            p(f"  {'bare loop, %d process(es)' % n:28} {b['photos_per_s']:9.2f} {b['faces_per_s']:8.2f}"
              f"   pipeline/bare = {ing['ratio_pipeline_bare'][n]:.2f}")
        p(f"  {w} connections / 1: {ing['scaling_pipeline']:.2f}x  ({w} processes / 1 bare: {ing['scaling_bare']:.2f}x)")
        bd = ing["breakdown"]
        p("  per photo (bare, 1 process), ms: " + ", ".join(
            f"{k} {v * 1000:.0f}" for k, v in bd["per_photo_s"].items()))
        p(f"  align+embed per face {bd['align_embed_per_face_s'] * 1000:.0f} ms; database write "
          f"{bd['db_write_s'] * 1000:.0f} ms/photo (pipeline - bare, 1 conn/process); INSERT with no analysis "
          f"{bd['insert_without_analysis_s'] * 1000:.0f} ms/photo")
        fc = ing["first_call"]
        p(f"  new backend: connect {fc['connect_s'] * 1000:.0f} ms; first detect_and_embed {fc['first_s'] * 1000:.0f} ms,"
          f" warm {fc['warm_s'] * 1000:.0f} ms (first call costs +{fc['first_minus_warm_s'] * 1000:.0f} ms);"
          f" bare imports {bd['imports_s'] * 1000:.0f} ms + models {bd['model_load_s'] * 1000:.0f} ms")
        rm = fc["rss_after_models_mib"]
        p(f"  backend RSS after models: {rm.get('VmRSS', 0):.0f} MiB (anon {rm.get('RssAnon', 0):.0f}, file "
          f"{rm.get('RssFile', 0):.0f}, shmem {rm.get('RssShmem', 0):.0f}); new backend "
          f"{fc['rss_new_backend_mib'].get('VmRSS', 0):.0f} MiB")
        mm = ing["memory_50mp"]
        p(f"  50 MP INSERT: {mm['insert_s']:.1f} s, {mm['faces']} faces, peak VmHWM {mm['after_mib']['VmHWM']:.0f} MiB"
          f" (before {mm['before_mib']['VmHWM']:.0f})")
    s = report.get("search")
    if s:
        syn = s.get("synthetic", {})
        kind = (f"synthetic people, {syn['mean_faces_per_person']:.0f} faces each on average" if syn.get("model") == "people"
                else "synthetic strangers")
        p(f"\nSearch, profile {s['profile']} ({s['real_faces']} real faces + {kind}; {s['queries']} queries):")
        fit = s.get("synthetic_fit", {})
        if "why" in fit:
            p(f"  strangers, not people: {fit['why']}")
        if "real" in fit:
            p(f"  mean distance, same person / different people: real {fit['real']['same_person']:.3f} /"
              f" {fit['real']['different_people']:.3f}, synthetic {fit['synthetic']['same_person']:.3f} /"
              f" {fit['synthetic']['different_people']:.3f}")
        p(f"  {'faces':>8} {'index':>28} {'build s':>8} {'MiB':>6} {'ef':>4} {'near p50':>8} {'p95':>6} {'recall':>6} {'index-only p50':>14}")
        for lv in s["levels"]:
            for b in lv["builds"]:
                d = b["definition"]
                params = d[d.find("WITH"):d.find(")", d.find("WITH")) + 1] if "WITH" in d else d
                for ef, r in b["ef_search"].items():
                    p(f"  {lv['faces']:8} {params[5:]:>28} {b['build_s']:8.1f} {b['index_mib']:6.0f} {ef:>4} "
                      f"{r['p50_ms']:8.2f} {r['p95_ms']:6.2f} {r['recall_at_10']:6.3f} {r['raw_p50_ms']:14.2f}")
            if "full_precision" in lv:
                h = lv["full_precision"]
                for ef, r in h["ef_search"].items():  # measured on the index scan alone: compare the last column
                    p(f"  {lv['faces']:8} {'vector m=16 efc=64':>28} {h['build_s']:8.1f} {h['index_mib']:6.0f} {ef:>4} "
                      f"{'-':>8} {'-':>6} {r['recall_at_10']:6.3f} {r['p50_ms']:14.2f}")
            im = lv["image_search"]
            p(f"  {lv['faces']:8} 1 MP reference: find_photos_like p50 {im['find_photos_like']['p50_ms']:.0f} ms "
              f"(p95 {im['find_photos_like']['p95_ms']:.0f}), face_embedding (its reference's largest face) p50 "
              f"{im['face_embedding']['p50_ms']:.0f} ms, difference (median of pairs) {im['overhead_p50_ms']:.1f} ms; detect_and_embed "
              f"(every face) p50 {im['detect_and_embed']['p50_ms']:.0f} ms; find_photos_near p50 {im['find_photos_near']['p50_ms']:.1f} ms,"
              f" find_faces_near p50 {im['find_faces_near']['p50_ms']:.1f} ms  [load {lv['load']}]")


def run(admin_url: str, profiles: list[str] | None = None, workers: int = 0, folder: pathlib.Path = PARTY / "parties",
        photos: int = 0, faces: int = 100_000, queries: int = 200, ef_search: str = "40,100", hnsw_grid: str = "",
        full_precision: bool = False, synthetic_model: str = "people", skip_ingest: bool = False,
        skip_search: bool = False, server_python: str = sys.executable) -> dict:
    """The whole benchmark; prints its tables and writes bench-results/speed.json."""
    SERVER_PYTHON[0] = server_python
    profiles = profiles or ["mtcnn", "hog"]
    workers = workers or os.cpu_count() or 2
    from pgfaces.loader import collect

    files, missing = collect([str(folder)])
    if missing or not files:
        raise SystemExit(f"no photos to ingest in {folder}")
    if photos:
        files = files[:photos]
    args = dict(profiles=profiles, workers=workers, folder=str(folder), photos=photos, faces=faces, queries=queries,
                ef_search=ef_search, hnsw_grid=hnsw_grid, full_precision=full_precision, synthetic=synthetic_model)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_start": load_average(),
              "server_dlib": subprocess.run([server_python, "-c", "import dlib; print(dlib.__version__,"
                                             " 'BLAS' if dlib.DLIB_USE_BLAS else 'no BLAS',"
                                             " 'AVX' if dlib.USE_AVX_INSTRUCTIONS else 'no AVX')"],
                                            capture_output=True, text=True).stdout.strip(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "args": args, "ingest": []}
    if not skip_ingest:
        for profile in profiles:
            report["ingest"].append(bench_ingest(admin_url, profile, files, workers))
    if not skip_search:
        sizes = [s for s in (10_000, 100_000, 1_000_000) if s <= faces] or [faces]
        grid = [tuple(int(v) for v in pair.split(":")) for pair in hnsw_grid.split(",") if pair]
        grid = grid + [(None, None)] if grid else []
        report["search"] = bench_search(admin_url, databases.database_url(admin_url, f"pgfaces_speed_{profiles[0]}"),
                                        profiles[0], sizes, queries, [int(v) for v in ef_search.split(",")],
                                        full_precision, grid, synthetic_model)
    report["load_end"] = load_average()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str))
    print_table(report)
    print(f"\nwritten: {RESULTS}")
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--profile", action="append", default=[], help="ingest profiles (default mtcnn, hog)")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--folder", type=pathlib.Path, default=PARTY / "parties",
                        help="photos to ingest (default: the party benchmark's)")
    parser.add_argument("--photos", type=int, default=0, help="only the first N photos")
    parser.add_argument("--faces", type=int, default=100_000, help="largest search size (10k, 100k, 1M up to it)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", default="40,100", help="hnsw.ef_search values to measure")
    parser.add_argument("--hnsw-grid", default="", help="m:ef_construction pairs to build besides the shipped one")
    parser.add_argument("--full-precision", action="store_true",
                        help="also measure a full-precision (vector) index with the shipped parameters")
    parser.add_argument("--synthetic", choices=synthetic.MODELS, default="people",
                        help="how the synthetic vectors are drawn (see tests/bench/synthetic.py)")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--server-python", default=sys.executable,
                        help="python of the server's venv, for the bare loop (same dlib, OpenCV, onnxruntime)")
    a = parser.parse_args(argv)
    return run(a.admin_url, a.profile, a.workers, a.folder, a.photos, a.faces, a.queries, a.ef_search, a.hnsw_grid,
               a.full_precision, a.synthetic, a.skip_ingest, a.skip_search, a.server_python)


if __name__ == "__main__":
    main()

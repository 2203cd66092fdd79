"""The vector searches `invoke bench` times at each size, every one against exact search (recall@10 of the face ids):
find_faces_near on the shipped index at each hnsw.ef_search, and (`--search-options`) what pgvector 0.8 offers
beyond m and ef_search, each written as the query find_faces_near would run minus its join to photos: candidates
from an index, re-ranked by the exact distance.

- the shipped halfvec HNSW index with hnsw.iterative_scan = relaxed_order instead of strict_order;
- bit(128) HNSW over binary_quantize(embedding) (16-byte entries where halfvec's are 256; hamming distance), then
  the exact distance over its K nearest;
- IVFFlat over the full-precision vectors (lists = faces / 1000), ivfflat.probes lists scanned. It is built on
  embedding::vector(128), not halfvec, so that the planner cannot take it for the shipped index's expression.

Each option's index is built once per size (`create index if not exists`: a reused database keeps them); its build
time and size are printed with its figures.
"""

from __future__ import annotations

import statistics
import time

from .measure import log, pct

SHIPPED = "halfvec HNSW m16 efc64 (shipped): find_faces_near"


def timed(conn, sql: str, literals: list[str], exact: list[list[int]], settings: dict) -> dict:
    """p50/p95 ms and mean recall@10 of `sql` (%(q)s: the query vector), `settings` set for the transaction."""
    times, recalls = [], []
    with conn.transaction():
        for name, value in settings.items():
            conn.execute("select set_config(%s, %s, true)", (name, str(value)))
        for q in literals[:20]:  # warm the index pages and the plan cache
            conn.execute(sql, {"q": q}, prepare=True).fetchall()
        for q, truth in zip(literals, exact):
            started = time.perf_counter()
            got = [r[0] for r in conn.execute(sql, {"q": q}, prepare=True)]
            times.append(time.perf_counter() - started)
            recalls.append(len(set(got) & set(truth)) / max(1, len(truth)))
    return {"p50_ms": pct(times, 0.5) * 1000, "p95_ms": pct(times, 0.95) * 1000,
            "recall_at_10": statistics.mean(recalls)}


def build(conn, name: str, definition: str, params: tuple = ()) -> dict:
    """Creates the index unless it exists: its build seconds (None: it was there already) and size."""
    exists = conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]
    started = time.perf_counter()
    if not exists:
        log(f"search: building {name}")
        conn.execute(definition, params)
    return {"index": name, "build_s": None if exists else time.perf_counter() - started,
            "index_mib": conn.execute("select pg_relation_size(%s) / 1048576.0", (name,)).fetchone()[0]}


def shipped_index(conn, profile: str) -> dict:
    return build(conn, f"faces_hnsw_{profile}", "select pgfaces_ensure_profile_index(%s)", (profile,))


def reranked(candidates: str, k: int) -> str:
    """The exact top 10 of the first k faces that `candidates` (faces ordered by an index) returns."""
    return (f"select id from ({candidates} limit {k}) c"
            " order by embedding::vector(128) <-> %(q)s::vector(128), id limit 10")


def shipped(conn, profile: str, literals, exact, ef_values) -> list[dict]:
    """find_faces_near at each ef_search, and its index scan alone (the inner query, prepared)."""
    index = shipped_index(conn, profile)
    scan = (f"select id from faces where profile = '{profile}'"
            " order by embedding::halfvec(128) <-> %(q)s::halfvec(128) limit 10")
    rows = []
    for ef in ef_values:
        row = timed(conn, f"select face_id from find_faces_near(%(q)s::vector, 10, '{profile}')", literals, exact,
                    {"hnsw.ef_search": ef})
        alone = timed(conn, scan, literals, exact, {"hnsw.ef_search": ef, "hnsw.iterative_scan": "strict_order"})
        rows.append({"option": SHIPPED, "setting": f"ef_search {ef}", **index, **row,
                     "index_scan_p50_ms": alone["p50_ms"]})
    return rows


def relaxed_order(conn, profile: str, literals, exact, ef_values) -> list[dict]:
    """The shipped index, relaxed_order: an unfiltered top 10 never needs the scan to iterate."""
    sql = reranked(f"select id, embedding from faces where profile = '{profile}'"
                   " order by embedding::halfvec(128) <-> %(q)s::halfvec(128)", 10)
    return [{"option": "halfvec HNSW, iterative_scan relaxed_order", "setting": f"ef_search {ef}",
             **timed(conn, sql, literals, exact, {"hnsw.ef_search": ef, "hnsw.iterative_scan": "relaxed_order"})}
            for ef in ef_values[:2]]


def binary_quantized(conn, profile: str, literals, exact, candidates=(200, 1000)) -> list[dict]:
    """bit(128) HNSW, K candidates re-ranked: ef_search K (1000 is pgvector's most), or ef_search 200 with a relaxed
    iterative scan that goes on past it."""
    index = build(conn, f"faces_bq_{profile}",
                  f"create index faces_bq_{profile} on faces using hnsw ((binary_quantize(embedding)::bit(128))"
                  f" bit_hamming_ops) with (m = 16, ef_construction = 64) where profile = '{profile}'")
    rows = []
    for k, settings in [(k, {"hnsw.ef_search": k, "hnsw.iterative_scan": "off"}) for k in candidates] + [
            (max(candidates), {"hnsw.ef_search": 200, "hnsw.iterative_scan": "relaxed_order"})]:
        sql = reranked(f"select id, embedding from faces where profile = '{profile}'"
                       " order by binary_quantize(embedding)::bit(128) <~> binary_quantize(%(q)s::vector)", k)
        setting = f"K {k}, ef_search {settings['hnsw.ef_search']}" + (
            ", relaxed_order" if settings["hnsw.iterative_scan"] != "off" else "")
        rows.append({"option": "bit(128) HNSW + exact re-rank", "setting": setting, **index,
                     **timed(conn, sql, literals, exact, settings)})
    return rows


def ivfflat(conn, profile: str, literals, exact, faces: int, probes=(10, 20, 40)) -> list[dict]:
    lists = max(10, faces // 1000)
    with conn.transaction():  # IVFFlat's k-means runs in one process, with this much memory
        conn.execute("set local maintenance_work_mem = '2GB'")
        index = build(conn, f"faces_ivfflat_{profile}",
                      f"create index faces_ivfflat_{profile} on faces using ivfflat ((embedding::vector(128))"
                      f" vector_l2_ops) with (lists = {lists}) where profile = '{profile}'")
    sql = reranked(f"select id, embedding from faces where profile = '{profile}'"
                   " order by embedding::vector(128) <-> %(q)s::vector(128)", 10)
    rows = [{"option": f"IVFFlat vector, {lists} lists", "setting": f"probes {p}", **index,
             **timed(conn, sql, literals, exact, {"ivfflat.probes": p, "ivfflat.iterative_scan": "off"})}
            for p in probes]
    conn.execute(f"drop index faces_ivfflat_{profile}")  # --full-precision builds an HNSW on the same expression
    return rows


def options(conn, profile: str, literals, exact, ef_values, faces: int) -> list[dict]:
    return (relaxed_order(conn, profile, literals, exact, ef_values)
            + binary_quantized(conn, profile, literals, exact)
            + ivfflat(conn, profile, literals, exact, faces))


def full_precision(conn, profile: str, literals, exact, ef_values) -> list[dict]:
    """The shipped parameters at full precision (vector, as before halfvec): its index scan alone, for comparison
    with the shipped index's."""
    index = build(conn, f"faces_hnsw_full_{profile}",
                  f"create index faces_hnsw_full_{profile} on faces using hnsw ((embedding::vector(128)) vector_l2_ops)"
                  f" with (m = 16, ef_construction = 64) where profile = '{profile}'")
    scan = (f"select id from faces where profile = '{profile}'"
            " order by embedding::vector(128) <-> %(q)s::vector(128) limit 10")
    rows = [{"option": "vector HNSW m16 efc64: index scan", "setting": f"ef_search {ef}", **index,
             **timed(conn, scan, literals, exact, {"hnsw.ef_search": ef, "hnsw.iterative_scan": "strict_order"})}
            for ef in ef_values]
    conn.execute(f"drop index faces_hnsw_full_{profile}")
    return rows


def hnsw_grid(conn, profile: str, literals, exact, ef_values, grid: list[tuple[int, int]]) -> list[dict]:
    """Other m / ef_construction for the shipped index, each built in its place; the shipped one is built again
    after them (at 1M faces each build takes minutes)."""
    rows = []
    conn.execute(f"drop index if exists faces_hnsw_{profile}")
    for m, efc in grid:
        name = f"faces_hnsw_{profile}_m{m}_efc{efc}"
        index = build(conn, name, f"create index {name} on faces using hnsw ((embedding::halfvec(128)) halfvec_l2_ops)"
                                  f" with (m = {m}, ef_construction = {efc}) where profile = '{profile}'")
        for ef in ef_values:
            rows.append({"option": f"halfvec HNSW m{m} efc{efc}: find_faces_near", "setting": f"ef_search {ef}",
                         **index, **timed(conn, f"select face_id from find_faces_near(%(q)s::vector, 10, '{profile}')",
                                          literals, exact, {"hnsw.ef_search": ef})})
        conn.execute(f"drop index {name}")
    shipped_index(conn, profile)
    return rows

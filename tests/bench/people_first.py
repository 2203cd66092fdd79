"""Searching people before faces, measured: is a face search over a million faces faster through their people?

Runs on a database `invoke bench-people --faces 1000000` left behind (pgfaces_bench_people_synthetic: synthetic
people's faces, grouped by cluster_faces()). One vector per person (the mean of its faces) gets an HNSW index of its
own; a search takes the P people nearest the query from that index, then ranks their faces by the exact distance.
Queries are faces of the table (the query face itself left out); recall@10 is against exact search over every face.
Compared with the shipped face index at the same hnsw.ef_search values.

    PYTHONPATH=plpython python -m tests.bench.people_first --dsn URL [--queries 200]
"""

from __future__ import annotations

import argparse
import time

from .measure import log, pct

PEOPLE_FIRST = """
    with near as (
        select c.person_id from pgfaces_bench_centroids c
        order by c.centroid <-> %(q)s::vector limit %(people)s)
    select f.id from near join face_people fp on fp.person_id = near.person_id join faces f on f.id = fp.face_id
    where f.id <> %(self)s order by f.embedding <-> %(q)s::vector limit 10"""
FACES_FIRST = """
    select f.id from faces f where f.profile = 'mtcnn' and f.id <> %(self)s
    order by f.embedding::halfvec(128) <-> %(q)s::halfvec(128) limit 10"""
EXACT = """
    select f.id from faces f where f.id <> %(self)s order by f.embedding <-> %(q)s::vector limit 10"""


def centroids(conn) -> float:
    """The people's mean vectors and their HNSW index (once); returns the seconds it took, 0 when they were there."""
    if conn.execute("select to_regclass('pgfaces_bench_centroids')").fetchone()[0]:
        return 0.0
    started = time.perf_counter()
    conn.execute("create table pgfaces_bench_centroids as select fp.person_id, avg(f.embedding)::vector(128) as centroid"
                 " from face_people fp join faces f on f.id = fp.face_id group by fp.person_id")
    conn.execute("create index on pgfaces_bench_centroids using hnsw (centroid vector_l2_ops)")
    conn.execute("analyze pgfaces_bench_centroids")
    return time.perf_counter() - started


def timed(conn, sql: str, queries: list[tuple[int, str]], truth: dict[int, set], settings: dict, **params) -> dict:
    times, recalls = [], []
    with conn.transaction():
        for name, value in settings.items():
            conn.execute("select set_config(%s, %s, true)", (name, str(value)))
        for face, q in queries[:20]:  # warm
            conn.execute(sql, {"q": q, "self": face, **params}).fetchall()
        for face, q in queries:
            started = time.perf_counter()
            got = {r[0] for r in conn.execute(sql, {"q": q, "self": face, **params})}
            times.append(time.perf_counter() - started)
            recalls.append(len(got & truth[face]) / 10)
    return {"p50_ms": pct(times, 0.5) * 1000, "p95_ms": pct(times, 0.95) * 1000,
            "recall_at_10": sum(recalls) / len(recalls)}


def main(argv: list[str] | None = None) -> int:
    import psycopg

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="the bench-people synthetic database")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        faces, people = conn.execute("select count(*), count(distinct person_id) from face_people").fetchone()
        log(f"{faces} assigned faces in {people} people; centroids and their index")
        built = centroids(conn)
        queries = conn.execute("select id, embedding::text from faces tablesample bernoulli (0.1) repeatable (7)"
                               " limit %s", (args.queries,)).fetchall()
        log(f"exact neighbours of {len(queries)} queries")
        with conn.transaction():
            conn.execute("set local enable_indexscan = off")
            truth = {face: {r[0] for r in conn.execute(EXACT, {"q": q, "self": face})} for face, q in queries}
        rows = []
        for ef in (40, 100):
            rows.append(("faces (shipped halfvec HNSW)", f"ef_search {ef}",
                         timed(conn, FACES_FIRST, queries, truth, {"hnsw.ef_search": ef})))
            for p in (1, 3, 10):
                rows.append((f"people first: {p} nearest people, their faces exactly", f"ef_search {ef}",
                             timed(conn, PEOPLE_FIRST, queries, truth, {"hnsw.ef_search": ef}, people=p)))
    print(f"\n{faces} faces in {people} people (centroid index built in {built:.0f} s; 0: there already)")
    print(f"{'search':55} {'setting':14} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}")
    for name, setting, r in rows:
        print(f"{name:55} {setting:14} {r['p50_ms']:7.2f} {r['p95_ms']:7.2f} {r['recall_at_10']:9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

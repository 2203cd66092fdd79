"""The developers' tasks: tests, benchmarks and fuzzing. Benchmarks live in tests/bench; these call them."""

from __future__ import annotations

import pathlib
import sys

from invoke import Exit, task

from . import cluster
from .config import ROOT, VENV

# The benchmarks are imported as tests.bench.*: invoke takes the repository off sys.path once it has loaded the tasks.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _pytest(c, args: str, env: dict | None = None) -> None:
    env = {"PGFACES_ADMIN_URL": cluster.uri("postgres"), "PGFACES_SQL_DIR": str(ROOT / "sql"), **(env or {})}
    cluster.echo(f"pytest {args}")
    result = c.run(f"{sys.executable} -m pytest {args}", env=env, warn=True, pty=False)
    if not result.ok:
        raise Exit(code=result.exited)


@task(help={"slow": "also run the slow tests (container image build and run)",
            "k": "only tests whose names match this expression (pytest -k)",
            "path": "test file or folder (default: tests/)"})
def test(c, slow=False, k="", path="tests"):
    """Start the server if needed and run the tests against throwaway databases on it."""
    print(cluster.up(c))
    marker = "" if slow else '-m "not slow"'
    select = f'-k "{k}"' if k else ""
    _pytest(c, f"{path} -q -rs {marker} {select}")


@task(help={"examples": "how many mutated photos to try (default 2000)"})
def fuzz(c, examples=2000):
    """Fuzz detect_and_embed in the server with mutated real photos; fails on any crash or unclear error."""
    print(cluster.up(c))
    _pytest(c, "tests/test_bad_inputs.py -q -rs -k test_fuzz_detect_and_embed",
            {"PGFACES_FUZZ_EXAMPLES": str(int(examples))})


@task(iterable=["profile"],
      help={"profile": "profile to measure (repeatable; default: every shipped profile, and the talk's detector "
                       "with dlib when its CLIP model cannot be loaded)",
            "parties_only": "load parties/ and negatives/ only (for slow profiles)",
            "keep": "keep the pgfaces_bench_* databases afterwards",
            "resume": "reuse a pgfaces_bench_<profile> left by an interrupted run, loading only what it lacks"})
def bench_quality(c, profile, parties_only=False, keep=False, resume=False):
    """Measure search quality and speed per profile on ../shared/faces/party (fresh database each); prints a table."""
    from tests.bench import quality

    cluster.ensure_up(c)  # the server runs this checkout's pipeline
    dirs = ("parties", "negatives", "broken") if parties_only else quality.LOADED_DIRS
    quality.run(cluster.uri("postgres"), profile or None, dirs=dirs, keep=keep, resume=resume)


@task(iterable=["profile"],
      help={"faces": "largest search size: 10k, 100k and 1M faces up to it (default 100000)",
            "profile": "ingest profile to measure (repeatable; default mtcnn; the first one is searched)",
            "folder": "photos to ingest (default: the party bench, parties/ real/ negatives/ of ../shared/faces/party)",
            "photos": "only the first N photos (default all)",
            "workers": "connections / processes of the parallel runs (default: the number of cores)",
            "rounds": "side-by-side ingest rounds, even ones in reverse order (default 2; ratios: medians over the rounds)",
            "threads": "also time one process with this many intra-op threads per ONNX session against 1",
            "queries": "vector queries per search size (default 200)",
            "ef_search": "hnsw.ef_search values, comma-separated (default 40,100,150)",
            "hnsw_grid": "also build these m:ef_construction indexes, e.g. 16:64,16:128,24:128",
            "full_precision": "also measure a full-precision (vector) HNSW index with the shipped parameters",
            "search_options": "also measure pgvector 0.8's other options: iterative scan, binary quantisation, IVFFlat",
            "synthetic": "synthetic vectors: people (several faces per person, default) or strangers (one each)",
            "skip_ingest": "search only (needs an earlier run's pgfaces_speed_<profile> database)",
            "skip_search": "ingest only",
            "reuse_search": "reuse an earlier run's search database of the same size (vectors, exact neighbours, indexes)"})
def bench(c, faces=100_000, profile=None, folder="", photos=0, workers=0, rounds=2, threads=1, queries=200,
          ef_search="40,100,150", hnsw_grid="", full_precision=False, search_options=False, synthetic="people",
          skip_ingest=False, skip_search=False, reuse_search=False):
    """Measure ingest against the naive client loop, and search speed (databases pgfaces_speed_*); prints tables."""
    from tests.bench import speed

    if folder and not pathlib.Path(folder).is_dir():
        raise Exit(f"no folder {folder}: give --folder a folder of photos")
    cluster.ensure_up(c)  # the server runs this checkout's pipeline
    speed.run(cluster.uri("postgres"), profiles=profile or None, folder=pathlib.Path(folder).resolve() if folder else None,
              photos=photos, workers=workers, rounds=rounds, threads=threads, faces=faces, queries=queries,
              ef_search=ef_search, hnsw_grid=hnsw_grid, full_precision=full_precision, search_options=search_options,
              synthetic_model=synthetic, skip_ingest=skip_ingest, skip_search=skip_search, reuse_search=reuse_search,
              server_python=str(VENV / "bin" / "python"))


@task(help={"folder": "photos to load (default ../shared/faces/party/parties)",
            "rounds": "rounds of the INSERT comparison (default 3)",
            "repeats": "runs of each drain / immediate load (default 2)",
            "queries": "searches per server in the replica comparison (default 30)",
            "skip_replica": "no replica comparison"})
def bench_queue(c, folder="", rounds=3, repeats=2, queries=30, skip_replica=False):
    """Measure deferred analysis: INSERT cost, draining with in-server and client workers, replica search p50."""
    from tests.bench import speed_photos, speed_queue

    if folder and not pathlib.Path(folder).is_dir():
        raise Exit(f"no folder {folder}: give --folder a folder of photos")
    cluster.ensure_up(c)
    speed_queue.run(cluster.uri("postgres"), pathlib.Path(folder).resolve() if folder else speed_photos.PARTY / "parties",
              rounds, repeats, queries, skip_replica)


@task(help={"workers": "connections loading at once (default: the number of cores)",
            "keep": "keep the pgfaces_storage_* databases afterwards"})
def bench_storage(c, workers=0, keep=False):
    """Measure the database's bytes per photo with the originals inside and outside (--keep-originals-outside)."""
    from tests.bench import storage

    cluster.ensure_up(c)  # the server runs this checkout's pipeline
    storage.run(cluster.uri("postgres"), workers, keep)


@task(help={"faces": "synthetic faces searched, the same on one node and on the shards (default 100000)",
            "queries": "search queries per setup (default 200)",
            "shards": "shard counts to compare with one node, comma-separated (default 2,3)",
            "photos": "party photos ingested through each setup (default 24)"})
def bench_shards(c, faces=100_000, queries=200, shards="2,3", photos=24):
    """Measure search p50 and recall@10 on one node against N shards at the same faces, and ingest through the entry."""
    from tests.bench import shards as bench

    cluster.ensure_up(c)  # the server runs this checkout's pipeline
    bench.run(cluster.uri("postgres"), ROOT, faces, queries, tuple(int(s) for s in shards.split(",") if s), photos)


@task(help={"faces": "synthetic sizes to time cluster_faces at, comma-separated (default 100000; 1000000 takes long)"})
def bench_people(c, faces="100000"):
    """Measure grouping into people: quality on the party benchmark, joining on INSERT, cluster_faces at scale."""
    from tests.bench import people

    sizes = [s.strip() for s in str(faces).split(",") if s.strip()]
    if not all(s.isdigit() and int(s) > 0 for s in sizes):
        raise Exit(f"--faces takes positive whole numbers, comma-separated (e.g. 100000,1000000), not {faces!r}")
    cluster.ensure_up(c)  # the server runs this checkout's pipeline
    people.run(cluster.uri("postgres"), [int(s) for s in sizes])


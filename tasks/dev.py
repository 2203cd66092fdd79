"""The developers' tasks: tests, benchmarks and fuzzing. Benchmarks live in tests/bench; these call them."""

from __future__ import annotations

import pathlib
import sys

from invoke import Exit, task

from . import cluster
from .config import ROOT, VENV

# The benchmarks are imported as tests.bench: invoke puts tasks/ on the path, not the repository's root.
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
            "profile": "ingest profile to measure (repeatable; default mtcnn and hog; the first one is searched)",
            "folder": "photos to ingest (default ../shared/faces/party/parties)",
            "photos": "only the first N photos (default all)",
            "workers": "connections / processes of the parallel runs (default: the number of cores)",
            "queries": "vector queries per search size (default 200)",
            "ef_search": "hnsw.ef_search values, comma-separated (default 40,100)",
            "hnsw_grid": "also build these m:ef_construction indexes, e.g. 16:64,16:128,24:128",
            "full_precision": "also measure a full-precision (vector) index with the shipped parameters",
            "synthetic": "synthetic vectors: people (several faces per person, default) or strangers (one each)",
            "skip_ingest": "search only (needs an earlier run's pgfaces_speed_<profile> database)",
            "skip_search": "ingest only"})
def bench(c, faces=100_000, profile=None, folder="", photos=0, workers=0, queries=200, ef_search="40,100", hnsw_grid="",
          full_precision=False, synthetic="people", skip_ingest=False, skip_search=False):
    """Measure ingest and search speed and backend memory (databases pgfaces_speed_*); prints a table."""
    from tests.bench import speed

    if folder and not pathlib.Path(folder).is_dir():
        raise Exit(f"no folder {folder}: give --folder a folder of photos")
    cluster.ensure_up(c)  # the server runs this checkout's pipeline
    speed.run(cluster.uri("postgres"), profile or None, workers, pathlib.Path(folder).resolve() if folder
              else speed.PARTY / "parties", photos, faces, queries, ef_search, hnsw_grid, full_precision, synthetic,
              skip_ingest, skip_search, str(VENV / "bin" / "python"))

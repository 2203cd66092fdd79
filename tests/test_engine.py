"""The engine: migrations ledger, pgvector, PL/Python with the pinned packages, restarts keep data."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import psycopg
import pytest

from pgfaces.migrate import MigrationError, migrate

ROOT = pathlib.Path(__file__).resolve().parents[1]


def pinned(package: str) -> str:
    for line in (ROOT / "requirements" / "server.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower().replace("_", "-") == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in requirements/server.lock")


def test_second_migrate_applies_nothing_and_keeps_data(db_url):
    with psycopg.connect(db_url) as conn:
        conn.execute("insert into people (name) values ('ledger keeps me')")
        conn.commit()
        ledger_before = conn.execute("select name, checksum, applied_at from pgfaces_migration order by name").fetchall()
        assert [r[0] for r in ledger_before][:3] == [
            "incremental/001-vector.sql", "incremental/002-plpython.sql", "incremental/003-tables.sql"]
        assert migrate(conn, log=lambda *_: None) == []
        assert conn.execute("select name, checksum, applied_at from pgfaces_migration order by name").fetchall() == ledger_before
        assert conn.execute("select count(*) from people where name = 'ledger keeps me'").fetchone()[0] == 1


@pytest.fixture
def sql(tmp_path):
    """A copy of sql/ that a test may add to or edit."""
    copy = tmp_path / "sql"
    shutil.copytree(ROOT / "sql", copy)
    return copy


def test_edited_applied_migration_is_refused(make_database, sql):
    url = make_database(migrated=False)
    with psycopg.connect(url) as conn:
        migrate(conn, sql, log=lambda *_: None)
        edited = sql / "incremental" / "003-tables.sql"
        edited.write_text(edited.read_text() + "\n-- an afterthought\n")
        with pytest.raises(MigrationError, match=r"incremental/003-tables\.sql was edited after it was applied"):
            migrate(conn, sql, log=lambda *_: None)


def test_new_incremental_file_runs_once(make_database, sql):
    url = make_database(migrated=False)
    with psycopg.connect(url) as conn:
        migrate(conn, sql, log=lambda *_: None)
        (sql / "incremental" / "999-extra.sql").write_text("create table extra (id int); insert into extra values (1);")
        assert migrate(conn, sql, log=lambda *_: None) == ["incremental/999-extra.sql"]
        assert migrate(conn, sql, log=lambda *_: None) == []
        assert conn.execute("select count(*) from extra").fetchone()[0] == 1


def test_pgvector_is_at_least_0_8_and_hnsw_index_is_used(conn):
    version = conn.execute("select extversion from pg_extension where extname = 'vector'").fetchone()[0]
    assert tuple(int(p) for p in version.split(".")) >= (0, 8, 0)
    conn.execute("create temp table v (id int, e vector(3))")
    conn.execute("insert into v select i, array[i, i % 7, i % 13]::real[]::vector from generate_series(1, 2000) i")
    conn.execute("create index on v using hnsw (e vector_l2_ops)")
    conn.execute("analyze v")
    conn.execute("set enable_seqscan = off")
    plan = "\n".join(r[0] for r in conn.execute("explain select id from v order by e <-> '[100,2,9]' limit 5"))
    assert re.search(r"Index Scan using v_e_idx", plan), plan
    nearest = [r[0] for r in conn.execute("select id from v order by e <-> '[100,2,9]' limit 1")]
    assert nearest == [100]


def test_plpython_imports_the_pinned_cv2_and_dlib(conn):
    conn.execute(
        """create function pg_temp.versions() returns text language plpython3u as $$
import cv2, dlib, numpy
return f"{cv2.__version__} {dlib.__version__} {numpy.__version__}"
$$""")
    cv2_v, dlib_v, numpy_v = conn.execute("select pg_temp.versions()").fetchone()[0].split()
    assert cv2_v == pinned("opencv-python-headless").rsplit(".", 1)[0]
    assert cv2_v.startswith("4.")  # 5.x has no CascadeClassifier
    assert dlib_v == pinned("dlib-bin").split(".post")[0]
    assert numpy_v == pinned("numpy")


def test_restart_keeps_data(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into people (name) values ('survives a restart')")
    for verb in ("down", "up"):
        subprocess.run([str(ROOT / "pgfaces"), verb], check=True, cwd=ROOT, capture_output=True)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from people where name = 'survives a restart'").fetchone()[0] == 1


def test_a_migrations_notice_reaches_the_user(make_database, sql):
    url = make_database(migrated=False)
    with psycopg.connect(url) as conn:
        migrate(conn, sql, log=lambda *_: None)
        (sql / "incremental" / "999-advice.sql").write_text(
            "do $$ begin raise notice 'run select reprocess(''mtcnn'')'; end $$;")
        said = []
        migrate(conn, sql, log=said.append)
        assert said == ["applying incremental/999-advice.sql",
                        "incremental/999-advice.sql: run select reprocess('mtcnn')"]


def test_a_full_precision_index_of_an_earlier_version_is_rebuilt_at_half_precision(make_database, sql):
    url = make_database(migrated=False)
    with psycopg.connect(url) as conn:
        migrate(conn, sql, log=lambda *_: None)
        conn.execute("drop index faces_hnsw_hog")
        conn.execute("create index faces_hnsw_hog on faces using hnsw ((embedding::vector(128)) vector_l2_ops)"
                     " with (m = 16, ef_construction = 64) where profile = 'hog'")
        conn.commit()
        said = []
        migrate(conn, sql, log=said.append)
        definition = conn.execute("select pg_get_indexdef('faces_hnsw_hog'::regclass)").fetchone()[0]
        assert "::halfvec(128)) halfvec_l2_ops" in definition and "WHERE (profile = 'hog'::text)" in definition
        assert [s for s in said if "rebuilding" in s] == [
            "idempotent/001-profiles.sql: rebuilding index faces_hnsw_hog at half precision (halfvec); queries of your"
            " own that order by embedding::vector(128) must now order by embedding::halfvec(128) to use it"]
        said.clear()
        migrate(conn, sql, log=said.append)
        assert not [s for s in said if "rebuilding" in s]

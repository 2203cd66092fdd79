"""The project's server runs with the settings `invoke up` writes (pgfaces.serverconf, shared with the image)."""

from __future__ import annotations

import psycopg

from pgfaces import serverconf


def setting(conn, name: str) -> str:
    return conn.execute("select current_setting(%s)", (name,)).fetchone()[0]


def test_shared_buffers_is_a_quarter_of_the_ram_not_initdbs_128mb(admin_url):
    with psycopg.connect(admin_url) as conn:
        bytes_ = conn.execute("select setting::bigint * 8192 from pg_settings where name = 'shared_buffers'").fetchone()[0]
        want = conn.execute("select pg_size_bytes(%s)", (serverconf.shared_buffers(),)).fetchone()[0]
    assert bytes_ == want


def test_hnsw_and_index_build_settings(admin_url):
    with psycopg.connect(admin_url) as conn:
        conn.execute("load 'vector'")
        assert setting(conn, "hnsw.ef_search") == serverconf.SETTINGS["hnsw.ef_search"]
        assert setting(conn, "maintenance_work_mem") == serverconf.SETTINGS["maintenance_work_mem"]


def test_settings_of_initdb_and_earlier_versions_are_replaced_and_hand_set_ones_kept(tmp_path, monkeypatch):
    conf = tmp_path / "postgresql.conf"
    conf.write_text("shared_buffers = 128MB\t\t\t# min 128kB\nmaintenance_work_mem = 3GB\n")
    written = serverconf.ensure(conf)
    assert written["shared_buffers"] == serverconf.shared_buffers() and "maintenance_work_mem" not in written
    read = {}
    for line in conf.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            read[key.strip()] = value.split("#", 1)[0].strip()  # the last one wins, as in PostgreSQL
    assert read["shared_buffers"] == serverconf.shared_buffers()
    assert read["maintenance_work_mem"] == "3GB"
    assert read["hnsw.ef_search"] == serverconf.SETTINGS["hnsw.ef_search"]
    before = conf.read_text()
    assert serverconf.ensure(conf) == {}  # nothing to add the second time
    assert conf.read_text() == before

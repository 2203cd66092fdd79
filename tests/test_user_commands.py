"""The commands as a user types them, from a folder of their own (not the repository): relative paths, several
paths, failures in the exit status, and a typo in a person's name. `./pgfaces` (PGFACES_DB picks the test's
database) and `python -m pgfaces.client` behave alike."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import psycopg
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
AMY = "face-api.js__examples__images__amy__amy{}.png"
BIDEN = "face_recognition__examples__biden.jpg"


@pytest.fixture(scope="module")
def user(make_database, shared_faces, tmp_path_factory):
    """A user's folder (me.jpg, photos/ with two good photos and a broken one) and their database."""
    home = tmp_path_factory.mktemp("user")
    shutil.copy(shared_faces / "party" / "references" / "amy.png", home / "me.jpg")
    (home / "photos").mkdir()
    for name in (AMY.format(1), BIDEN):
        shutil.copy(shared_faces / "party" / "real" / name, home / "photos" / name)
    (home / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    return home, make_database()


def pgfaces(url: str, cwd: pathlib.Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PGFACES_DB": url.rsplit("/", 1)[1]}
    return subprocess.run([str(ROOT / "pgfaces"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def client(url: str, cwd: pathlib.Path, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "pgfaces.client", *args, "--dsn", url], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def said(result: subprocess.CompletedProcess) -> list[str]:
    """What the command said on stderr, line by line, without the progress bars and echoed commands."""
    return [line for line in result.stderr.splitlines() if not line.startswith(("[", "+ "))]


def count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]


def test_a_load_with_failures_exits_1_with_a_summary_and_keeps_the_rest(user):
    home, url = user
    result = pgfaces(url, home, "load", "photos")
    assert result.returncode == 1, result.stderr
    assert "loaded 2 photo(s) with 2 face(s)" in result.stdout and "FAILED photos/broken.jpg: " in result.stdout
    assert said(result) == ["pgfaces: 1 of 3 file(s) failed (listed above); 2 loaded"]
    assert count(url, "select count(*) from photos where filename like 'photos/%'") == 2


def test_paths_are_relative_to_where_the_user_stands(user):
    """From the folder above, `load HOME/photos/x`; from the user's folder, `search me.jpg --html sheet.html`."""
    home, url = user
    above = pgfaces(url, home.parent, "load", f"{home.name}/photos/{BIDEN}", "--quiet")
    assert above.returncode == 0 and "1 already loaded; 0 failed" in above.stdout, above.stdout + above.stderr
    found = pgfaces(url, home, "search", "me.jpg", "-n", "1", "--html", "sheet.html")
    assert found.returncode == 0, found.stderr
    assert AMY.format(1) in found.stdout.splitlines()[1]
    assert (home / "sheet.html").read_text().count("<figure>") == 1
    missing = pgfaces(url, home, "search", "you.jpg")
    assert missing.returncode == 1 and said(missing) == ["pgfaces: no such file: you.jpg"]


def test_load_takes_several_paths(user, shared_faces):
    home, url = user
    amy2 = shared_faces / "party" / "real" / AMY.format(2)
    several = pgfaces(url, home, "load", str(amy2), f"photos/{BIDEN}", "nowhere.jpg", "--quiet")
    assert several.returncode == 1
    assert "loaded 1 photo(s)" in several.stdout and "1 already loaded; 1 failed" in several.stdout
    assert "FAILED nowhere.jpg: no such file or folder" in several.stdout
    assert said(several) == ["pgfaces: 1 of 3 file(s) failed (listed above); 1 loaded"]
    also = pgfaces(url, home, "load", str(amy2), "--also", f"photos/{BIDEN}", "--quiet")
    assert also.returncode == 0 and "2 already loaded; 0 failed" in also.stdout


def test_a_typo_in_a_name_is_an_error_with_the_nearest_names(user):
    home, url = user
    new = pgfaces(url, home, "remember", "Amy", "me.jpg")
    assert new.returncode == 0 and new.stdout.strip().startswith('me.jpg remembered as a face of "Amy": a new person')
    people = count(url, "select count(*) from people")
    for run, prog in ((pgfaces, "./pgfaces"), (client, "python -m pgfaces.client")):
        typo = run(url, home, "search", "me.jpg", "--person", "Amyy")
        assert typo.returncode == 1 and typo.stdout == ""
        assert said(typo) == [f'pgfaces: unknown person "Amyy": did you mean "Amy"? to name someone new: '
                              f'{prog} remember Amyy IMAGE']
        assert run(url, home, "search", "--person", "Nobody").returncode == 1
    assert count(url, "select count(*) from people") == people  # no one new
    by_name = [run(url, home, "search", "--person", "Amy", "-n", "2") for run in (pgfaces, client)]
    assert [r.returncode for r in by_name] == [0, 0], [r.stderr for r in by_name]
    assert by_name[0].stdout == by_name[1].stdout and AMY.format(1) in by_name[0].stdout
    with_image = pgfaces(url, home, "search", "photos/" + AMY.format(1), "--person", "Amy", "-n", "1")
    assert with_image.returncode == 0  # a known person: the picture becomes one more of their faces
    assert count(url, "select count(*) from person_references") == 2


def test_help_of_a_task_is_its_help(user):
    home, url = user
    result = pgfaces(url, home, "load", "--help")
    assert result.returncode == 0 and "Load photos into the database" in result.stdout


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_command_stops_its_work_in_the_server(user, sig, status):
    """SIGTERM or Ctrl-C while cluster_faces() runs in the server (here: waits for a run that holds its lock): the
    statement is cancelled, no backend goes on with it, and the exit status says how it was stopped."""
    home, url = user
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("begin")
        holder.execute("select pgfaces_cluster_begin('mtcnn')")  # the run's lock, held as a running run holds it
        command = subprocess.Popen([sys.executable, "-m", "pgfaces.client", "--dsn", url, "cluster"], cwd=home,
                                   stderr=subprocess.PIPE, text=True)
        waiting = ("select count(*) from pg_stat_activity where state = 'active' and query like '%%cluster_faces%%'"
                   " and pid <> pg_backend_pid()")
        for _ in range(200):
            if holder.execute(waiting).fetchone()[0]:
                break
            time.sleep(0.05)
        command.send_signal(sig)
        _, err = command.communicate(timeout=30)
        assert command.returncode == status, err
        assert "stopped" in err and "Traceback" not in err
        time.sleep(0.5)
        assert holder.execute(waiting).fetchone()[0] == 0
        holder.execute("rollback")

"""What `./pgfaces down` stops: the server on PGFACES_PORT, native or container, never the other one (the image's
container on 5833 and the native server on 5433 both running, say); and it says how to stop the rest."""

from __future__ import annotations

from tasks.config import DATA
from tasks.server import stop_plan


def test_the_container_on_the_port_is_stopped_not_the_native_server():
    what, rest = stop_plan(5833, native=5433, container=5833)
    assert what == "container"
    assert rest == f"the native server of {DATA} runs on port 5433 (`PGFACES_PORT=5433 ./pgfaces down`)"


def test_the_native_server_on_the_port_is_stopped_not_the_container():
    assert stop_plan(5433, native=5433, container=5833) == (
        "native", "the container pgfaces runs on port 5833 (`PGFACES_PORT=5833 ./pgfaces down`)")


def test_nothing_on_the_port_stops_nothing_and_says_what_runs_where():
    what, rest = stop_plan(5999, native=5433, container=5833)
    assert what is None
    assert rest.startswith("no pgfaces server runs on port 5999; the native server of ")
    assert "`PGFACES_PORT=5433 ./pgfaces down`" in rest and "`PGFACES_PORT=5833 ./pgfaces down`" in rest
    assert stop_plan(5433, native=None, container=None) == (None, "no pgfaces server runs on port 5433")


def test_one_server_alone_is_stopped_without_a_word_about_others():
    assert stop_plan(5433, native=5433, container=None) == ("native", "")
    assert stop_plan(5833, native=None, container=5833) == ("container", "")

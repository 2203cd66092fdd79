"""People's names under attack (issue 20): one rule for every function that takes a name (N10), names that show as
what they are (N9), and a command line that never prints a terminal's commands (N11)."""

from __future__ import annotations

import unicodedata

import psycopg
import pytest

from conftest import SHARED_FACES, plain
from pgfaces.client import cli

REAL = SHARED_FACES / "party" / "real"
AMY = [REAL / f"face-api.js__examples__images__amy__amy{i}.png" for i in (1, 2, 3)]
REFERENCE = SHARED_FACES / "party" / "references" / "amy.png"
ATTACK = "\x1b[2J\x1b]0;pwned\x07"


@pytest.fixture(scope="module")
def url(make_database):
    if not REFERENCE.exists():
        pytest.skip(f"the test photos are not here: {REFERENCE}")
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        for path in AMY:
            conn.execute("insert into photos (filename, image) values (%s, %s)", (path.name, path.read_bytes()))
        conn.execute("select remember_face('O''Brien', %s)", (REFERENCE.read_bytes(),))
    return url


@pytest.fixture
def db(url):
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


SPELLINGS = [" O'Brien ", "\tO'Brien\n", "\u00a0O'Brien\u200b", "\u3000O'Brien\ufeff", "O\u2019Brien"]


@pytest.mark.parametrize("spelling", SPELLINGS[:4])
def test_every_function_that_takes_a_name_finds_the_same_person(db, spelling):
    of = {r[0] for r in db.execute("select photo_id from find_photos_of(%s, 10)", (spelling,))}
    assert len(of) == 3
    assert {r[0] for r in db.execute("select photo_id from find_photos_with(%s, 10)", ([spelling],))} == of
    assert db.execute("select count(*) from suggest_people(%s)", (spelling,)).fetchone()[0] >= 0
    assert db.execute("select remember_face(%s, %s)", (spelling, REFERENCE.read_bytes())).fetchone()[0] == \
        db.execute("select id from people where name = 'O''Brien'").fetchone()[0]


def test_the_command_line_s_person_follows_the_rule(url, capsys):
    assert cli.search(url, person=SPELLINGS[2], n=5) == 0
    out = capsys.readouterr().out
    assert sum(p.name in out for p in AMY) == 3, out
    from pgfaces.search import Filters
    assert cli.search(url, person=SPELLINGS[1], n=5, filters=Filters(since="1900-01-01")) == 0  # its own query


def test_another_apostrophe_is_another_name(db):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as failure:
        db.execute("select * from find_photos_with(%s, 10)", ([SPELLINGS[4]],))
    assert plain(failure.value) == 'unknown person "O\u2019Brien"'


BAD_NAMES = {
    "tabs and newlines": ("\t\n\r\t", "a person needs a name"),
    "no-break spaces": ("\u00a0\u00a0\u202f", "a person needs a name"),
    "zero-width spaces": ("\u200b\u200b\ufeff\u2060", "a person needs a name"),
    "hangul fillers": ("\u3164\u115f", "a person needs a name"),
    "RTL override": ("\u202egnp.exe", "bidirectional controls, which change the order it is shown in (it has U+202E)"),
    "isolate": ("Amy\u2067x\u2069", "bidirectional controls"),
    "escape sequence": (ATTACK, "control characters (it has U+001B)"),
    "bell": ("Amy\x07", "control characters (it has U+0007)"),
    "C1 control": ("Amy\x9b2J", "control characters (it has U+009B)"),
    "zero-width inside": ("A\u200bmy", "invisible characters (it has U+200B)"),
    "150 combining marks": ("Z" + "\u0301" * 150, "at most 4 combining marks on a character"),
    "stacked on every letter": ("".join(c + "\u0336\u0317\u0358\u035c\u0360" for c in "Amy"), "at most 4 combining"),
    "starting with a mark": ("\u0301Amy", "may not start with a combining mark"),
    "too long": ("x" * 201, "at most 200 characters"),
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
@pytest.mark.parametrize("call", ["select name_person(%s, %s)", "select remember_face(%s, %s)",
                                  "select forget_person(%s)", "select * from find_photos_with(array[%s]::text[])"])
def test_a_name_that_does_not_show_as_what_it_is_is_refused(db, case, call):
    name, reason = BAD_NAMES[case]
    person = db.execute("select id from people where name = 'O''Brien'").fetchone()[0]
    args = {"select name_person(%s, %s)": (person, name), "select remember_face(%s, %s)": (name, b"not read")}
    with pytest.raises(psycopg.errors.InvalidParameterValue) as failure:
        db.execute(call, args.get(call, (name,)))
    message = plain(failure.value)
    assert reason in message and "\x1b" not in message and "\u202e" not in message, message


@pytest.mark.parametrize("name, stored", [
    ("Nguy\u1ec5n Th\u1ecb Minh", "Nguy\u1ec5n Th\u1ecb Minh"),  # Vietnamese: two marks on a letter
    ("Nguye\u0302\u0303n", "Nguy\u1ec5n"),  # decomposed: stored composed (NFC), so both spellings find them
    ("\u05d3\u05bc\u05b8\u0591\u05bd\u05d5\u05b4\u05d3", None),  # pointed Hebrew with cantillation: four marks
    ("\u0645\u062d\u0645\u062f \u0639\u0644\u064a", None),  # Arabic: right to left by itself, no control needed
    ("Jean\u00a0\u00a0Pierre\tDupont", "Jean Pierre Dupont"),
    ("\U0001f469\u200d\U0001f52c Ada", None),  # an emoji joined by a zero-width joiner
])
def test_real_names_are_kept(db, name, stored):
    person = db.execute("insert into people (profile) values ('mtcnn') returning id").fetchone()[0]
    try:
        db.execute("select name_person(%s, %s)", (person, name))
        assert db.execute("select name from people where id = %s", (person,)).fetchone()[0] == \
            (stored or unicodedata.normalize("NFC", name))
    finally:
        db.execute("delete from people where id = %s", (person,))


def test_the_command_line_prints_no_terminal_commands(url, db, capsys, tmp_path):
    """A name stored before the rule, and a photo's file name (any text), as `people` and `search` print them."""
    db.execute("insert into people (name, profile) values (%s, 'mtcnn')", (ATTACK + "\u202eold",))
    db.execute("insert into photos (filename, image) values (%s, %s)", (ATTACK + ".png", AMY[0].read_bytes() + b"\0"))
    try:
        assert cli.people(url) == 0
        assert cli.search(url, str(REFERENCE), n=10) == 0
        assert cli.search(url, person="Nobody " + ATTACK, n=1) == 1
        assert cli.search(url, str(tmp_path / (ATTACK + ".jpg"))) == 1
        out = capsys.readouterr()
        shown = out.out + out.err
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown, repr(shown)
        assert out.out.count("\\x1b[2J\\x1b]0;pwned\\x07") == 2  # escaped, visibly: the person and the photo
        assert "\\x1b[2J\\x1b]0;pwned\\x07.png" in out.out
    finally:
        db.execute("delete from people where name like %s", (ATTACK + "%",))
        db.execute("delete from photos where filename like %s", (ATTACK + "%",))

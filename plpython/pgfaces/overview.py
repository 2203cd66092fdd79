"""The people of a collection as the user looks at them: a table for the terminal and a page for the browser, read
from the views people_overview and unassigned_faces. The page is one self-contained HTML file (thumbnails inlined),
readable with no server."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html

STRIP = 12  # face thumbnails per person on the page


@dataclasses.dataclass
class Person:
    person_id: int
    name: str | None
    profile: str
    hidden: bool
    faces: int
    photos: int
    first_taken_at: dt.datetime | None
    last_taken_at: dt.datetime | None
    cover_face_id: int | None

    @property
    def label(self) -> str:
        return self.name or f"(unnamed #{self.person_id})"


def people(conn, include_hidden: bool = False) -> list[Person]:
    rows = conn.execute(
        "select person_id, name, profile, hidden, faces, photos, first_taken_at, last_taken_at, cover_face_id"
        " from people_overview where %s or not hidden order by name is null, faces desc, person_id",
        (include_hidden,)).fetchall()
    return [Person(*r) for r in rows]


def unassigned_count(conn) -> tuple[int, int]:
    """(faces waiting for cluster_faces, faces the user kept apart)."""
    return conn.execute("select count(*) filter (where not kept_apart), count(*) filter (where kept_apart)"
                        " from unassigned_faces").fetchone()


def table(persons: list[Person], unassigned: tuple[int, int]) -> str:
    def day(t):
        return t.strftime("%Y-%m-%d") if t else "-"

    lines = [f"{'person':>7}  {'name':<28} {'faces':>6} {'photos':>6}  {'first':<10}  {'last':<10}  cover"]
    for p in persons:
        name = p.label + (" (hidden)" if p.hidden else "")
        lines.append(f"{p.person_id:>7}  {name[:28]:<28} {p.faces:>6} {p.photos:>6}  {day(p.first_taken_at):<10}  "
                     f"{day(p.last_taken_at):<10}  {p.cover_face_id or '-'}")
    lines.append(f"{len(persons)} people; {unassigned[0]} faces wait for cluster_faces(), "
                 f"{unassigned[1]} kept apart by hand")
    return "\n".join(lines)


def _img(thumbnail: bytes | None, alt: str, css: str = "") -> str:
    if not thumbnail:
        return f'<span class="none {css}">{html.escape(alt)}</span>'
    src = "data:image/jpeg;base64," + base64.b64encode(bytes(thumbnail)).decode()
    return f'<img class="{css}" src="{src}" alt="{html.escape(alt)}" title="{html.escape(alt)}">'


def _thumbnails(conn, persons: list[Person]) -> tuple[dict[int, bytes], dict[int, list[tuple[int, bytes]]]]:
    """Every listed person's cover thumbnail and strip of faces (the largest first), in two queries for the page."""
    covers = dict(conn.execute("select id, thumbnail from faces where id = any(%s)",
                               ([p.cover_face_id for p in persons if p.cover_face_id],)).fetchall())
    strips: dict[int, list[tuple[int, bytes]]] = {}
    for person_id, face_id, thumbnail in conn.execute(
            "select person_id, id, thumbnail from ("
            " select fp.person_id, f.id, f.thumbnail, row_number() over (partition by fp.person_id"
            "  order by f.width * f.height desc, f.id) as place"
            " from face_people fp join faces f on f.id = fp.face_id where fp.person_id = any(%s)) s"
            " where place <= %s order by person_id, place", ([p.person_id for p in persons], STRIP)):
        strips.setdefault(person_id, []).append((face_id, thumbnail))
    return covers, strips


def page(conn, persons: list[Person], unassigned: tuple[int, int], title: str = "People") -> str:
    """Each person's cover face, name and counts, then a strip of their faces; the faces in no person last."""
    covers, strips = _thumbnails(conn, persons)
    cards = []
    for p in persons:
        faces = "".join(_img(t, f"face {i}", "face") for i, t in strips.get(p.person_id, []))
        cards.append(
            f'<section class="person"><div class="cover">{_img(covers.get(p.cover_face_id), p.label, "cover")}</div>'
            f'<div><h2>{html.escape(p.label)}{" <small>(hidden)</small>" if p.hidden else ""}</h2>'
            f'<p>person {p.person_id} · {p.faces} faces in {p.photos} photos'
            f'{f" · {p.first_taken_at:%Y-%m-%d} to {p.last_taken_at:%Y-%m-%d}" if p.first_taken_at else ""}</p>'
            f'<div class="strip">{faces}</div></div></section>')
    waiting = conn.execute("select u.face_id, f.thumbnail from unassigned_faces u join faces f on f.id = u.face_id"
                           " where not u.kept_apart order by u.face_id limit 60").fetchall()
    rest = "".join(_img(t, f"face {i}", "face") for i, t in waiting)
    body = "\n".join(cards) or "<p>No people yet: run <code>select cluster_faces()</code>.</p>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:70em}} .person{{display:flex;gap:1em;margin:1em 0;
border-bottom:1px solid #ddd;padding-bottom:1em}} .cover{{width:96px;height:96px;border-radius:8px;object-fit:cover}}
.face{{width:48px;height:48px;object-fit:cover;margin:2px;border-radius:4px}} h2{{margin:0 0 .2em}}
p{{margin:.2em 0;color:#555}} .none{{display:inline-block;background:#eee}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{len(persons)} people; {unassigned[0]} faces wait for <code>cluster_faces()</code>; {unassigned[1]} kept apart by hand.</p>
{body}
<h2>Faces in no person</h2><div class="strip">{rest or "none"}</div>
</body></html>
"""

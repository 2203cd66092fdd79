"""The user's tasks on the project's database: load, search, demo. Each one is pgfaces.client.cli's command of the
same name (what `python -m pgfaces.client` runs against any database), pointed at the local server, run in the
folder the user typed it in (their paths are relative to it)."""

from __future__ import annotations

from invoke import Exit, task

from pgfaces.client import cli

from . import cluster as server
from .config import HOME, SHARED_FACES, from_caller, in_caller_dir

cli.PROG = "./pgfaces"  # the commands' hints name this one


def database_url() -> str:
    """The project's database, once it answers (else: what to run to start it)."""
    return server.live_uri()


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


# invoke takes one positional argument per name: further paths are given to --also (tasks/__init__.py does so for
# `load a b c`, as a shell glob expands).
@task(iterable=["also"],
      help={"path": "a file, a folder (searched recursively) or a glob in quotes ('photos/**/*.jpg'); more may follow",
            "also": "another file, folder or glob (repeatable)",
            "workers": "connections loading at once, or with --client-side processes analysing (default: the number of cores)",
            "quiet": "no progress bar",
            "client_side": "detect and embed here, not in the server (databases without plpython3u)",
            "deferred": "store and queue the photos (pgfaces.defer = on), then show the workers' progress",
            "keep_originals_outside": "store each file's absolute path and a preview, not its bytes (the folder must "
                                      "be under pgfaces.originals_dirs)"})
def load(c, path, also=None, workers=0, quiet=False, client_side=False, deferred=False, keep_originals_outside=False):
    """Load photos into the database; files already there are skipped; failures are listed at the end (and make
    the exit status 1)."""
    url = database_url()
    with in_caller_dir():
        _exit(cli.load(url, [path, *(also or [])], workers or None, quiet, client_side or None, deferred=deferred,
                       keep_outside=keep_originals_outside))


@task(help={"workers": "loops analysing at once (default: the number of cores)",
            "lease": "a running job is taken from its worker after this long (default 10 minutes)",
            "max_attempts": "claims before a job is parked as failed (default 3)",
            "until_empty": "stop once nothing is queued or running (default: wait for more until Ctrl-C)",
            "client_side": "analyse in this process, not in the server (databases without plpython3u)"})
def work(c, workers=0, lease="10 minutes", max_attempts=3, until_empty=False, client_side=False):
    """Drain the queue of deferred analysis: N loops that have the server analyse the next queued photo."""
    _exit(cli.work(database_url(), workers or None, not client_side, lease, max_attempts, until_empty))


@task(help={"image": "reference photo of the person (its largest face is used)",
            "n": "how many photos", "since": "taken at or after (YYYY-MM-DD)", "until": "taken before (YYYY-MM-DD)",
            "near": "LAT,LON,KM: taken within KM kilometres of a point", "camera": "taken with this camera",
            "person": "NAME: photos of this person (remembered or named); with IMAGE, it is remembered as one more "
                      "of their faces. Someone new: `./pgfaces remember NAME IMAGE` first",
            "profile": "profile to search (default: the default profile)", "html": "also write a contact sheet here",
            "max_distance": "only faces at most this far",
            "client_side": "embed the reference image here, not in the server (databases without plpython3u)"})
def search(c, image="", n=10, since="", until="", near="", camera="", person="", profile="", html="",
           max_distance=0.0, client_side=False):
    """Print the photos that show the person in IMAGE (or --person NAME), best first."""
    from pgfaces import search as s

    try:
        filters = s.Filters(since or None, until or None, s.parse_near(near) if near else None, camera or None)
    except ValueError as e:
        raise Exit(str(e))
    url = database_url()
    with in_caller_dir():
        _exit(cli.search(url, image or None, person or None, n, filters, profile or None, max_distance or None,
                         html or None, client_side or None))


@task(help={"name": "the person's name: a new person when no one has it yet",
            "image": "a photo of them (its largest face is remembered)",
            "profile": "profile (default: the default profile)",
            "client_side": "embed the image here, not in the server (databases without plpython3u)"})
def remember(c, name, image, profile="", client_side=False):
    """Remember the largest face in IMAGE as NAME's (naming someone new), for `search --person NAME`."""
    url = database_url()
    with in_caller_dir():
        _exit(cli.remember(url, name, image, profile or None, client_side or None))


@task(help={"profile": "profile whose faces to group (default: the default profile)",
            "client_side": "group them here, not in the server (databases without plpython3u)"})
def cluster(c, profile="", client_side=False):
    """Group the collection's faces into people (cluster_faces), with a progress line."""
    _exit(cli.cluster(database_url(), profile or None, client_side or None))


@task(help={"html": "also write a page with each person's cover face and a strip of their faces",
            "hidden": "list hidden people too"})
def people(c, html="", hidden=False):
    """Print the people of the collection (people_overview) and the faces in none."""
    url = database_url()
    with in_caller_dir():
        _exit(cli.people(url, html or None, hidden))


@task(help={"photos": "folder of photos to load (default: ../shared/faces when it exists)"})
def demo(c, photos=""):
    """Set everything up, load sample photos, find the talk's speaker in them and print the result."""
    if photos:
        folders, reference = [from_caller(photos)], None
    elif SHARED_FACES.is_dir():
        folders = [str(SHARED_FACES / "photos" / "seed"), str(SHARED_FACES / "party" / "parties")]
        reference = SHARED_FACES / "photos" / "seed" / "find-faces-talk" / "slides" / "images" / "slack-picture.jpg"
    else:
        raise Exit(f"no sample photos at {SHARED_FACES}: run `./pgfaces demo --photos FOLDER` with a folder of photos")
    print(server.up(c))
    if cli.load(database_url(), folders):  # a file that cannot be loaded is listed, and the demo goes on
        print("(the files listed as FAILED were left out)")
    if reference is None:
        print("loaded; now search: ./pgfaces search path/to/me.jpg")
        return
    print(f"\nphotos of the person in {reference.name}:")
    search(c, image=str(reference), n=10, html=str(HOME / "demo.html"))

"""The server settings pgfaces needs, in one place: `./pgfaces up` writes them into a native cluster's postgresql.conf
and the image's entrypoint into its own (`python -m pgfaces.serverconf PGDATA/postgresql.conf`).

Settings a cluster lacks are appended (they take effect at its next start); a value that initdb or an earlier
version of pgfaces wrote is replaced; any other value was set by hand and is kept.
"""

from __future__ import annotations

import pathlib
import sys

# pgfaces_preload (docker/pgfaces_preload.c, built by install-server.sh) starts Python in the postmaster, whose
# sitecustomize preloads the models so every backend forks warm (see pgfaces/warmup.py), and defines the pgfaces.*
# settings so that only superusers set the limits. hnsw.ef_search 100: recall@10 0.977 at 1M faces where pgvector's
# default 40 gives 0.940 (`invoke bench --faces 1000000`), for ~2 ms more per search. An HNSW build of a million
# 128-d vectors fits in 2 GB; one parallel worker besides the leader on 2 cores.
SETTINGS = {
    "shared_preload_libraries": "'pgfaces_preload'",
    "hnsw.ef_search": "100",
    "maintenance_work_mem": "2GB",
    "max_parallel_maintenance_workers": "1",
}

# Values initdb or earlier versions wrote: replaced by the current ones. initdb writes shared_buffers = 128MB
# uncommented, so a new cluster has it too.
EARLIER_DEFAULTS = {"shared_buffers": {"128MB", "512MB"}, "maintenance_work_mem": {"1GB"}}


def memory_bytes() -> int:
    """The machine's RAM, or the container's memory limit where that is lower (cgroup v2, then v1)."""
    with open("/proc/meminfo") as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:")) * 1024
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = pathlib.Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def shared_buffers() -> str:
    """A quarter of the memory (PostgreSQL's own advice): a million faces' HNSW index (544 MiB) is then searched in
    shared memory, not the kernel's page cache (with initdb's 128MB a search at 1M faces took 4.4 ms, not 2.5)."""
    return f"{min(8192, max(128, memory_bytes() // 4 // 2**20))}MB"


def wanted(preload_library: bool = True) -> dict[str, str]:
    """The settings, without shared_preload_libraries where the library is not installed (the server would not
    start with it)."""
    settings = {**SETTINGS, "shared_buffers": shared_buffers()}
    if not preload_library:
        settings.pop("shared_preload_libraries")
    return settings


def present(text: str) -> dict[str, str]:
    """The last value of each setting in a postgresql.conf, as PostgreSQL reads it."""
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.split("#", 1)[0].strip()
    return values


def ensure(conf_file: pathlib.Path, preload_library: bool = True) -> dict[str, str]:
    """Appends the settings that `conf_file` lacks or holds at an old default; returns what it wrote."""
    have = present(conf_file.read_text())
    written = {k: v for k, v in wanted(preload_library).items()
               if k not in have or (have[k] in EARLIER_DEFAULTS.get(k, set()) and have[k] != v)}
    if written:
        with open(conf_file, "a") as conf:
            conf.write("\n# pgfaces (pgfaces/serverconf.py)\n")
            conf.writelines(f"{k} = {v}\n" for k, v in written.items())
    return written


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pgfaces.serverconf PATH/postgresql.conf", file=sys.stderr)
        return 2
    for key, value in ensure(pathlib.Path(args[0])).items():
        print(f"pgfaces.serverconf: {key} = {value}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

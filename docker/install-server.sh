#!/usr/bin/env bash
# Installs what a pgfaces server needs: PostgreSQL with PL/Python, pgvector >= 0.8, and a venv made from
# the Python that PL/Python embeds. Used by `invoke up` on a host and by docker/Dockerfile alike.
# Idempotent: on a machine that has it all, it checks and changes nothing.
#
# Settings (environment):
#   PGFACES_VENV   the server's venv                       (default /opt/pgfaces/venv)
#   PG_MAJOR       PostgreSQL major version to install     (default: the distribution's)
#   PIP_CERT       CA bundle for pip, where a proxy needs one (optional; never stored)
#   PGFACES_DLIB   wheel (default, or what the venv has): dlib from the dlib-bin wheel (AVX, no BLAS);
#                  source: dlib built here with OpenBLAS/LAPACK and -march=$PGFACES_DLIB_MARCH (~8-15 min of
#                  CPU; the face descriptor runs several times faster, see `invoke bench`)
#   PGFACES_DLIB_MARCH  -march for the source build (default native: the image then needs this CPU family)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements=${PGFACES_REQUIREMENTS:-$here/../requirements}
venv=${PGFACES_VENV:-/opt/pgfaces/venv}
pgvector_min=0.8.0

say() { printf '+ %s\n' "$*" >&2; }
run() { say "$*"; "$@"; }
die() { printf 'install-server: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (it installs Debian packages). Run: sudo bash $0"
command -v apt-get >/dev/null || die "needs apt-get (Debian or Ubuntu). Elsewhere install PostgreSQL with \
plpython3u, pgvector >= $pgvector_min and a venv from requirements/server.lock by hand."

export DEBIAN_FRONTEND=noninteractive
apt_updated=
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -z "$apt_updated" ]; then run apt-get update -qq; apt_updated=1; fi
    run apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# --- PostgreSQL and PL/Python of the host's release -------------------------------------------------------
if [ -z "${PG_MAJOR:-}" ]; then
    if [ -d /usr/lib/postgresql ] && ls /usr/lib/postgresql | grep -qE '^[0-9]+$'; then
        PG_MAJOR=$(ls /usr/lib/postgresql | grep -E '^[0-9]+$' | sort -n | tail -n1)
    else
        apt_install apt-utils >/dev/null 2>&1 || true
        [ -n "$apt_updated" ] || { run apt-get update -qq; apt_updated=1; }
        PG_MAJOR=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9]\+\)$/\1/p' | head -n1)
        [ -n "$PG_MAJOR" ] || die "cannot tell which PostgreSQL this distribution ships; set PG_MAJOR"
    fi
fi
apt_install "postgresql-$PG_MAJOR" "postgresql-plpython3-$PG_MAJOR" python3-venv ca-certificates
pg_bin=/usr/lib/postgresql/$PG_MAJOR/bin

# --- pgvector ------------------------------------------------------------------------------------------------
installed_pgvector() {
    local control=/usr/share/postgresql/$PG_MAJOR/extension/vector.control
    [ -f "$control" ] && sed -n "s/^default_version = '\(.*\)'/\1/p" "$control"
}
have=$(installed_pgvector || true)
if [ -n "$have" ] && version_ge "$have" "$pgvector_min"; then
    say "pgvector $have is installed"
else
    [ -n "$apt_updated" ] || { run apt-get update -qq; apt_updated=1; }
    candidate=$(apt-cache policy "postgresql-$PG_MAJOR-pgvector" 2>/dev/null | sed -n 's/ *Candidate: \([0-9.]*\).*/\1/p')
    if [ -n "$candidate" ] && version_ge "$candidate" "$pgvector_min"; then
        apt_install "postgresql-$PG_MAJOR-pgvector"
    else
        # Not packaged for this release: build Debian trixie's source package. A private apt tree keeps the
        # trixie suite out of the host's own sources.
        say "postgresql-$PG_MAJOR-pgvector >= $pgvector_min is not in apt; building pgvector from trixie's source package"
        apt_install build-essential dpkg-dev "postgresql-server-dev-$PG_MAJOR" debian-archive-keyring
        tree=$(mktemp -d /tmp/pgvector-src.XXXXXX)
        mkdir -p "$tree/lists/partial" "$tree/src"
        echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
            > "$tree/trixie.list"
        aptopts=(-o "Dir::Etc::SourceList=$tree/trixie.list" -o "Dir::Etc::SourceParts=-"
                 -o "Dir::State::Lists=$tree/lists" -o "APT::Sandbox::User=root")
        run apt-get "${aptopts[@]}" update -qq
        (cd "$tree/src" && run apt-get "${aptopts[@]}" source -qq --download-only pgvector \
            && run dpkg-source --no-check -x ./*.dsc pgvector)
        run make -s -C "$tree/src/pgvector" PG_CONFIG="$pg_bin/pg_config" OPTFLAGS="" -j"$(nproc)"
        run make -s -C "$tree/src/pgvector" PG_CONFIG="$pg_bin/pg_config" install
        rm -rf "$tree"
        have=$(installed_pgvector || true)
        [ -n "$have" ] && version_ge "$have" "$pgvector_min" || die "pgvector build gave '${have:-nothing}', need >= $pgvector_min"
        say "pgvector $have built and installed"
    fi
fi

# --- the server's venv -----------------------------------------------------------------------------------------
# PL/Python embeds the distribution's python3, so the venv must come from that interpreter, not from
# whatever python3 is first on PATH.
server_python=/usr/bin/python3
stamp=$venv/.pgfaces-lock.sha256
# The choice sticks: a later run without PGFACES_DLIB keeps the dlib this venv was built with.
dlib_mode=${PGFACES_DLIB:-$(cat "$venv/.pgfaces-dlib" 2>/dev/null || echo wheel)}
case "$dlib_mode" in wheel|source) ;; *) die "PGFACES_DLIB must be wheel or source, not '$dlib_mode'" ;; esac
dlib_march=${PGFACES_DLIB_MARCH:-native}
want=$( (cat "$requirements/server.lock" "$requirements/server-nodeps.lock"; echo "dlib=$dlib_mode/$dlib_march") \
    | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
    say "server venv $venv is up to date"
else
    [ -x "$venv/bin/python" ] || run "$server_python" -m venv "$venv"
    pipenv=()
    [ -n "${PIP_CERT:-}" ] && pipenv=(env "PIP_CERT=$PIP_CERT")
    run "${pipenv[@]}" "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements/server.lock"
    run "${pipenv[@]}" "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$requirements/server-nodeps.lock"
    if [ "$dlib_mode" = source ]; then
        # Same dlib version as the wheel, built with BLAS/LAPACK and this CPU's vector instructions.
        apt_install build-essential cmake libopenblas-dev liblapack-dev python3-dev
        dlib_version=$(sed -n 's/^dlib-bin==\([0-9.]*\).*/\1/p' "$requirements/server.lock" | sed 's/\.$//')
        run "$venv/bin/pip" uninstall -q -y dlib-bin
        run env "${pipenv[@]:1}" CFLAGS="-O3 -march=$dlib_march" CXXFLAGS="-O3 -march=$dlib_march" \
            CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$venv/bin/pip" install -q --disable-pip-version-check \
            --no-binary dlib "dlib==${dlib_version:-20.0.1}"
        "$venv/bin/python" -c 'import dlib, sys; sys.exit(0 if dlib.DLIB_USE_BLAS else 1)' \
            || die "dlib was built without BLAS (is libopenblas-dev installed?)"
    fi
    echo "$want" > "$stamp"
    echo "$dlib_mode" > "$venv/.pgfaces-dlib"
fi
# The server's user reads the venv: the venv itself, and a way through (x, not r) each folder above it. Never more:
# the folder a PGFACES_VENV stands in may hold other things (a cluster's data folder must stay 0700).
chmod -R a+rX "$venv"
dir=$(dirname "$(realpath "$venv")")
while [ "$dir" != / ]; do chmod a+x "$dir"; dir=$(dirname "$dir"); done

# --- pgfaces_preload: Python started in the postmaster so backends fork with the models loaded ----------------
# (docker/pgfaces_preload.c; tasks.py lists it in shared_preload_libraries once it is installed.)
preload_so=/usr/lib/postgresql/$PG_MAJOR/lib/pgfaces_preload.so
if [ ! -f "$preload_so" ] || [ "$here/pgfaces_preload.c" -nt "$preload_so" ]; then
    apt_install gcc "postgresql-server-dev-$PG_MAJOR" python3-dev
    pyver=$("$server_python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    run gcc -O2 -shared -fPIC -I"$("$pg_bin/pg_config" --includedir-server)" -I"/usr/include/python$pyver" \
        "$here/pgfaces_preload.c" "-lpython$pyver" -o "$preload_so"
fi
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
say "server ready: PostgreSQL $PG_MAJOR at $pg_bin, pgvector $(installed_pgvector), PYTHONPATH $site"

#!/usr/bin/env bash
# Entry point of the pgfaces image.
#
# First start (no cluster in $PGDATA): initdb as postgres, with peer auth on the unix socket and scram-sha-256
# over TCP from any address, the superuser's password from POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE).
# Every start: create the database $POSTGRES_DB if it is missing, start PostgreSQL on the unix socket only, run
# the migrations (python -m pgfaces.migrate), stop it, then exec postgres in the foreground listening on 5432.
# TCP clients thus never see a half-migrated schema, and postgres is PID 1, so `docker stop` / `podman stop`
# (SIGINT, the image's STOPSIGNAL) or a plain SIGTERM shut it down cleanly.
#
# `docker run IMAGE -c work_mem=64MB` passes server settings to postgres; `docker run IMAGE bash` runs bash.
set -euo pipefail

PGDATA=${PGDATA:-/var/lib/postgresql/data}
POSTGRES_DB=${POSTGRES_DB:-pgfaces}
venv=${PGFACES_VENV:-/opt/pgfaces/venv}
sql_dir=${PGFACES_SQL_DIR:-/opt/pgfaces/sql}
socket_dir=/var/run/postgresql
export PGDATA

log() { printf 'pgfaces-entrypoint: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Arguments that start with '-' are postgres options.
first=${1:-}
if [ "${first:0:1}" = - ]; then
    set -- postgres "$@"
fi
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift

# shellcheck disable=SC2010  # (version directories are plain numbers)
pg_major=$(ls /usr/lib/postgresql | grep -E '^[0-9]+$' | sort -n | tail -n1)
[ -n "$pg_major" ] || die "no PostgreSQL under /usr/lib/postgresql"
pg_bin=/usr/lib/postgresql/$pg_major/bin
export PATH=$pg_bin:$PATH

# As root: make the volume and the socket directory postgres's, then run this script again as postgres.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" "$socket_dir"
    if [ "$(stat -c %U "$PGDATA")" != postgres ]; then
        chown -R postgres:postgres "$PGDATA"
    fi
    chmod 700 "$PGDATA"
    chown postgres:postgres "$socket_dir"
    chmod 2775 "$socket_dir"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        [ -r "$POSTGRES_PASSWORD_FILE" ] || die "POSTGRES_PASSWORD_FILE=$POSTGRES_PASSWORD_FILE cannot be read"
        POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
    fi
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        die "the database is not initialised and POSTGRES_PASSWORD is not set.
  TCP connections need a password (scram-sha-256), so the first start needs one for the superuser postgres:
    podman run -e POSTGRES_PASSWORD=... -v pgfaces-data:/var/lib/postgresql/data ...
  (or POSTGRES_PASSWORD_FILE=/run/secrets/... ). Later starts of the same volume keep that password."
    fi
    if [ -n "$(ls -A "$PGDATA")" ]; then
        die "$PGDATA holds files but no PostgreSQL cluster (no PG_VERSION); mount an empty volume or a cluster's"
    fi
    log "initialising a PostgreSQL $pg_major cluster in $PGDATA"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --pgdata="$PGDATA" --username=postgres --pwfile="$pwfile" \
        --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-instructions >&2 \
        || { rm -f "$pwfile"; die "initdb failed"; }
    rm -f "$pwfile"
    cat >> "$PGDATA/postgresql.conf" <<'EOF'

# --- pgfaces image (the server settings themselves come from pgfaces.serverconf, below) ---
listen_addresses = '*'
password_encryption = 'scram-sha-256'
EOF
    cat >> "$PGDATA/pg_hba.conf" <<'EOF'

# pgfaces image: a password (scram-sha-256) from any address over TCP
host    all             all             0.0.0.0/0               scram-sha-256
host    all             all             ::/0                    scram-sha-256
EOF
fi
unset POSTGRES_PASSWORD
# The settings a native `invoke up` writes too (preload library, shared_buffers for this container's memory, ...).
"$venv/bin/python" -m pgfaces.serverconf "$PGDATA/postgresql.conf" \
    || die "cannot write the server settings into $PGDATA/postgresql.conf"

# Migrate with the server reachable on the unix socket only.
log "starting PostgreSQL on the unix socket to migrate"
pg_ctl --pgdata="$PGDATA" --wait --timeout=120 --silent \
    -o "-c listen_addresses='' -c unix_socket_directories='$socket_dir'" start >&2
stop_server() { pg_ctl --pgdata="$PGDATA" --wait --timeout=120 --silent --mode=fast stop >&2 || true; }
trap 'stop_server' EXIT

exists=$(psql --no-psqlrc --quiet --tuples-only --no-align --host="$socket_dir" --dbname=postgres \
    --set=db="$POSTGRES_DB" <<'EOF'
select 1 from pg_database where datname = :'db';
EOF
)
if [ "$exists" != 1 ]; then
    log "creating database $POSTGRES_DB"
    createdb --host="$socket_dir" -- "$POSTGRES_DB"
fi

log "migrating database $POSTGRES_DB"
# The dsn's values are single-quoted for libpq (so a database name with spaces or quotes works).
db_quoted=${POSTGRES_DB//\\/\\\\}
db_quoted=${db_quoted//\'/\\\'}
"$venv/bin/python" -m pgfaces.migrate --sql-dir "$sql_dir" \
    --dsn "host='$socket_dir' dbname='$db_quoted' user=postgres application_name=pgfaces-entrypoint" >&2 \
    || die "migration of $POSTGRES_DB failed; PostgreSQL is not started (see the messages above)"

trap - EXIT
stop_server
log "migrated; starting PostgreSQL $pg_major on port 5432"
exec postgres -D "$PGDATA" "$@"

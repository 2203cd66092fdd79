#!/usr/bin/env bash
# Builds the pgfaces server image from docker/Dockerfile.
#
#   docker/build-image.sh [TAG]          TAG defaults to pgfaces:latest (podman stores it as localhost/pgfaces:latest)
#
# With docker where a Docker daemon answers (`docker info`); else with rootful podman: podman, buildah, runc
# and debootstrap are installed from apt when missing, the base image debian:bookworm-slim is made with
# debootstrap when it is not in local storage (docker/make-base.sh; nothing is pulled), and podman reads
# docker/containers.conf. Each command is echoed before it runs.
#
# Settings (environment):
#   PIP_CERT      CA bundle for pip inside the build (default /etc/ssl/certs/ca-certificates.crt when it
#                 exists); handed over as the build secret `pipcert`, so it is in no layer of the image
#   BASE          base image (default: the Dockerfile's, debian:bookworm-slim)
#   ENGINE        docker or podman, to skip the detection
#   BUILD_ARGS    extra arguments for `docker build` / `podman build` (e.g. --no-cache)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
tag=${1:-pgfaces:latest}

say() { printf '+ %s\n' "$*" >&2; }
run() { say "$*"; "$@"; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }

engine=${ENGINE:-}
if [ -z "$engine" ]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; else engine=podman; fi
fi

args=(build -f "$here/Dockerfile" -t "$tag")
[ -n "${BASE:-}" ] && args+=(--build-arg "BASE=$BASE")
cert=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
if [ -s "$cert" ]; then
    args+=(--secret "id=pipcert,src=$cert")
elif [ -n "${PIP_CERT:-}" ]; then
    die "PIP_CERT=$PIP_CERT is not a readable file"
fi
# shellcheck disable=SC2206
[ -n "${BUILD_ARGS:-}" ] && args+=(${BUILD_ARGS})

case "$engine" in
docker)
    # BuildKit reads docker/Dockerfile.dockerignore by itself and handles the --secret.
    export DOCKER_BUILDKIT=1
    cd "$root"
    start=$SECONDS
    run docker "${args[@]}" "$root"
    say "built $tag in $((SECONDS - start)) s"
    run docker image ls "$tag"
    ;;
podman)
    [ "$(id -u)" = 0 ] || die "the podman build here is rootful: run as root (or start a Docker daemon)"
    missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v buildah >/dev/null || missing+=(buildah)
    command -v runc >/dev/null || missing+=(runc)
    if [ -z "${BASE:-}" ]; then command -v debootstrap >/dev/null || missing+=(debootstrap); fi
    if [ ${#missing[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        run apt-get update -qq
        run apt-get install -y -qq "${missing[@]}"
    fi
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
    say "export CONTAINERS_CONF=$CONTAINERS_CONF"
    # Nothing is pulled: the base must be in local storage already, or be made here.
    if [ -z "${BASE:-}" ]; then
        run "$here/make-base.sh"
    elif ! podman image exists "$BASE"; then
        die "base image $BASE is not in podman's local storage (nothing is pulled here)"
    fi
    cd "$root"
    start=$SECONDS
    run podman "${args[@]}" --pull=never --ignorefile "$here/Dockerfile.dockerignore" "$root"
    say "built $tag in $((SECONDS - start)) s"
    run podman image ls "$tag"
    ;;
*) die "ENGINE must be docker or podman, not $engine" ;;
esac

#!/usr/bin/env bash
# Makes the image the Dockerfile builds FROM (debian:bookworm-slim) without pulling it: debootstrap a minimal
# bookworm from Debian's package mirror and import it into podman's local storage. For hosts that reach
# Debian's mirror but no image registry. Does nothing when the image is already there (FORCE=1 remakes it).
#
#   docker/make-base.sh [IMAGE]        IMAGE defaults to docker.io/library/debian:bookworm-slim
#
# The image is tagged with the fully qualified name that the short name `debian:bookworm-slim` stands for, so
# `ARG BASE=debian:bookworm-slim` in the Dockerfile resolves to it locally (build with --pull=never), and
# also as localhost/debian:bookworm-slim.
#
# Settings (environment):
#   CONTAINERS_CONF   podman settings (default: docker/containers.conf beside this script)
#   DEBIAN_MIRROR     default http://deb.debian.org/debian
#   FORCE=1           remake the image even if it exists
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image=${1:-docker.io/library/debian:bookworm-slim}
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}

say() { printf '+ %s\n' "$*" >&2; }
run() { say "$*"; "$@"; }
die() { printf 'make-base: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, rootful podman)"
command -v podman >/dev/null || die "needs podman (apt-get install podman)"

if [ -z "${FORCE:-}" ] && podman image exists "$image"; then
    say "base image $image exists; not remaking it (FORCE=1 to remake)"
    exit 0
fi
command -v debootstrap >/dev/null || die "needs debootstrap (apt-get install debootstrap)"

root=$(mktemp -d /var/tmp/pgfaces-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
run debootstrap --variant=minbase "$suite" "$root" "$mirror"

# Slim it the way Debian's -slim images are: no apt lists, caches, docs or man pages; apt told not to
# install docs either, and to skip recommends (the install script passes --no-install-recommends anyway).
run chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/var/log/apt/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/tmp/* "$root"/var/tmp/*
cat > "$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
# The same sources Debian's image has (debootstrap writes only the main suite).
cat > "$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
# No init system runs in a container: package scripts must not try to start services (Debian's images do this).
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
: > "$root/etc/hostname"
: > "$root/etc/resolv.conf"

say "tar -C $root -c . | podman import --change CMD=/bin/bash - $image"
tar --numeric-owner -C "$root" -c . | podman import --change 'CMD=["/bin/bash"]' - "$image"
if [ "$image" = docker.io/library/debian:bookworm-slim ]; then
    run podman tag "$image" localhost/debian:bookworm-slim
fi
run podman image ls "$image"

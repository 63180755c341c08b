#!/usr/bin/env bash
# Build the local job images a provider offers, with no registry:
#
#   dcloud/busybox:1     Debian's static busybox on an empty base (about 2 MB, under 1 s)
#   dcloud/python:3.11   Python 3.11 on a minimal Debian bookworm (debootstrap, about a
#                        minute the first time; its root file system is cached in
#                        .dev/images/python-3.11.tar.gz, so a rebuild takes seconds)
#
# Both run as the non-root user 65534 which can write /output, and carry the label
# dcloud.job-image=1 (how the provider agent lists the images it offers). An image is
# built only when it is missing or its recipe (tools/images/<name>/) changed; the label
# dcloud.image.recipe holds the digest of the recipe it was built from.
#
#   tools/images.sh            build what is missing or out of date
#   tools/images.sh --check    exit 0 if every image is present and current, 1 if not,
#                              2 if no Docker engine answers
# Needs a running engine (tools/dockerd.sh start) and, for the Python root file system,
# root, debootstrap and a reachable Debian mirror (DCLOUD_DEBIAN_MIRROR picks another).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export DOCKER_BUILDKIT=0  # the classic builder: no buildx plugin is needed

say() { printf '[images] %s\n' "$*"; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }
digest() { cat "$@" | sha256sum | cut -c1-16; }
quiet() {  # run a command, showing its output only when it fails
  local out
  if ! out=$("$@" 2>&1); then printf '%s\n' "$out" >&2; return 1; fi
}
label_of() {  # label_of IMAGE LABEL: the label's value, empty when the image is missing
  docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

busybox_recipe=$(digest tools/images/busybox/*)
python_recipe=$(digest tools/images/python/*)
rootfs_recipe=$(digest tools/images/python/rootfs.sh)
cache=.dev/images/python-3.11.tar.gz

current() { [ "$(label_of "$1" dcloud.image.recipe)" = "$2" ]; }

if [ "${1:-}" = --check ]; then
  docker version >/dev/null 2>&1 || exit 2
  current dcloud/busybox:1 "$busybox_recipe" && current dcloud/python:3.11 "$python_recipe"
  exit
fi
[ $# -eq 0 ] || die "usage: tools/images.sh [--check]"
docker version >/dev/null 2>&1 || die "no Docker engine answers; start one with tools/dockerd.sh start"

build_busybox() {
  if current dcloud/busybox:1 "$busybox_recipe"; then say "dcloud/busybox:1 is up to date"; return; fi
  local bin ctx
  bin=$(dpkg -L busybox-static 2>/dev/null | grep -m1 -E '/bin/busybox$' || true)
  [ -n "$bin" ] && [ -x "$bin" ] || die "Debian's busybox-static is not installed (apt-get install busybox-static)"
  ctx=$scratch/busybox
  mkdir -p "$ctx"
  cp tools/images/busybox/* "$ctx/"
  cp "$bin" "$ctx/busybox"
  say "building dcloud/busybox:1"
  quiet docker build --label "dcloud.image.recipe=$busybox_recipe" -t dcloud/busybox:1 "$ctx"
}

# dcloud/python-rootfs:bookworm: the imported root file system, labelled with the digest
# of rootfs.sh; loaded from the cache when that matches, else built again with debootstrap.
python_rootfs() {
  if current dcloud/python-rootfs:bookworm "$rootfs_recipe"; then return; fi
  if [ -f "$cache" ] && [ "$(cat "$cache.recipe" 2>/dev/null)" = "$rootfs_recipe" ]; then
    say "loading the Python root file system from $cache"
    gzip -dc "$cache" | docker load -q >/dev/null
    current dcloud/python-rootfs:bookworm "$rootfs_recipe" && return
    say "the cached root file system is out of date; building it again"
  fi
  [ "$(id -u)" = 0 ] || die "building the Python root file system needs root (debootstrap)"
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
  local dir=$scratch/rootfs
  say "building the Python root file system with debootstrap (about a minute)"
  tools/images/python/rootfs.sh "$dir"
  tar -C "$dir" -c . | quiet docker import \
    --change "LABEL dcloud.image.recipe=$rootfs_recipe" - dcloud/python-rootfs:bookworm
  say "caching it in $cache"
  docker save dcloud/python-rootfs:bookworm | gzip -1 >"$scratch/rootfs.tar.gz"
  mv "$scratch/rootfs.tar.gz" "$cache"
  echo "$rootfs_recipe" >"$cache.recipe"
}

build_python() {
  if current dcloud/python:3.11 "$python_recipe"; then say "dcloud/python:3.11 is up to date"; return; fi
  python_rootfs
  say "building dcloud/python:3.11"
  quiet docker build --label "dcloud.image.recipe=$python_recipe" -t dcloud/python:3.11 \
    tools/images/python
}

mkdir -p .dev/images
exec 9>.dev/images/.lock
flock 9  # one build at a time (two test sessions may start together)
scratch=$(mktemp -d .dev/images/build.XXXXXX)
tidy() {  # an interrupted debootstrap may leave /proc or /sys mounted inside the root
  local m
  for m in "$scratch"/rootfs/proc "$scratch"/rootfs/sys; do
    if mountpoint -q "$m" 2>/dev/null; then umount -R "$m" || true; fi
  done
  rm -rf --one-file-system "$scratch" || true
}
trap tidy EXIT
build_busybox
build_python
# Earlier builds of these tags, now untagged and used by no container.
docker image prune -f --filter label=dcloud.job-image=1 >/dev/null
say "job images: $(docker image ls --filter label=dcloud.job-image=1 --format '{{.Repository}}:{{.Tag}}' | sort | paste -sd ' ')"

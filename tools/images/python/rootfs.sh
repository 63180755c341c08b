#!/usr/bin/env bash
# Build the Debian bookworm root file system of dcloud/python:3.11 in $1 (run as root).
# debootstrap uses its default Debian mirror unless DCLOUD_DEBIAN_MIRROR names another.
set -euo pipefail
dir=$1
debootstrap --variant=minbase --include=python3 bookworm "$dir" ${DCLOUD_DEBIAN_MIRROR:-} >/dev/null
# Package caches, documentation and translations: not needed to run jobs.
rm -rf "$dir"/var/cache/apt/* "$dir"/var/lib/apt/lists/* "$dir"/var/log/* \
  "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/* "$dir"/usr/share/info/*

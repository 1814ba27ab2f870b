#!/bin/sh
# Writes ca-certificates.crt as Debian's update-ca-certificates does on a fresh install: every
# usr/share/ca-certificates/mozilla/*.crt of the locked .deb, in C-locale name order, each ending
# in a newline. Run after `baleen pkg lock pkg/ca-certificates`; needs dpkg-deb.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
line=$(grep '^amd64 ca-certificates ' "$here/packages.lock")
set -- $line
cache=${BALEEN_CACHE:-$HOME/.baleen/cache}
deb=$cache/debian/by-hash/$5
[ -f "$deb" ] || { echo "bundle.sh: build pkg/ca-certificates first (no $5 in $cache)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
cd "$tmp/usr/share/ca-certificates"
find mozilla -name '*.crt' | LC_ALL=C sort | while read -r c; do sed -e '$a\' "$c"; done \
  > "$here/ca-certificates.crt"
echo "bundle.sh: $(grep -c 'BEGIN CERTIFICATE' "$here/ca-certificates.crt") certificates"

#!/bin/sh
# Regenerates the golden files of this directory from Go's archive/tar (Debian's golang-go).
set -eu
cd "$(dirname "$0")"
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/baleen-gocache}"
go run gen_tar.go

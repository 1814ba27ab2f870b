#!/bin/sh
# Rewrites the conformance golden files (tree listings, config.json/runtime.json, metadata files)
# from the current code. Read the diff against docs/compat.md (Image tree) and docs/init.md
# (Containers) before committing: a golden file nobody reviewed proves nothing.
set -eu
cd "$(dirname "$0")/../../../../.."
BALEEN_REGEN_GOLDEN=1 cargo test -p baleen-build --test conformance
git status --short crates/build/tests/golden/conformance

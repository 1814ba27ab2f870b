#!/bin/sh
# Rewrites the expected config.json/runtime.json files from the current code. Read the diff
# against docs/yaml.md and docs/compat.md before committing: a golden file nobody reviewed proves
# nothing.
set -eu
cd "$(dirname "$0")/../../../.."
BALEEN_REGEN_GOLDEN=1 cargo test -p baleen-spec --test golden
git status --short crates/spec/tests/golden

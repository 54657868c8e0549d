#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the tools the tests drive (kcat,
# Prometheus, podman, helm, Python clients...), builds every binary, runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$(date +%s)
bash e2e/install-tools.sh

# Snapshot tests fail on a stale snapshot instead of rewriting it.
export INSTA_UPDATE=no
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# Binaries first: the end-to-end tests run the real strom-broker and strom-operator processes.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast -- --test-threads=2

echo "test.sh: finished in $(( $(date +%s) - started ))s"

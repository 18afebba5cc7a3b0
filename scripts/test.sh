#!/usr/bin/env bash
# The project's one test command: formatting, lints, then every test of the workspace.
# It installs what the tests need; SQLite is compiled in, so today that is only the toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked

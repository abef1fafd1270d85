#!/usr/bin/env bash
# The project's test command: unit tests, golden-vector conformance tests and
# process-level tests that start real skynet-node processes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --locked
cargo test --workspace --locked

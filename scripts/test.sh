#!/usr/bin/env bash
# The project's test command: unit tests, golden-vector conformance tests,
# process-level tests that start real skynet-node / skynet-master processes, and
# (when Docker is available) the container cluster tests, for which it first
# builds the skynet-rs:latest image (deploy/build-image.sh).
#
# In CI (CI=true) Docker is required: a missing engine or image fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --locked
if docker info >/dev/null 2>&1; then
    SKIP_SMOKE=0 bash deploy/build-image.sh
    export SKYNET_CONTAINER_TESTS=require
elif [ "${CI:-}" = "true" ]; then
    echo "test.sh: Docker is required in CI (docker info failed)" >&2
    exit 1
else
    echo "test.sh: no Docker engine: the container tests will be skipped" >&2
fi
# The redis test starts its own redis-server processes (loopback, data in a
# temporary folder); it needs the binary, from the system's packages.
if ! command -v redis-server >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server ||
        echo "test.sh: could not install redis-server: the redis test will fail in CI, skip elsewhere" >&2
fi
cargo test --workspace --locked

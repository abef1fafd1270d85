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
# The redis and mysql tests start their own servers (loopback, data in a
# temporary folder); they need the programs, from the system's packages.
# need PROGRAM PACKAGE TEST installs PACKAGE unless PROGRAM is there.
need() {
    if command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; then
        return 0
    fi
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" ||
        echo "test.sh: could not install $2: the $3 test will fail in CI, skip elsewhere" >&2
}
need redis-server redis-server redis
need mariadbd mariadb-server mysql
cargo test --workspace --locked
# Fuzz smoke: each fuzz target for 20 s (fuzz/smoke.sh), when the nightly
# toolchain and cargo-fuzz are installed; SKYNET_FUZZ=0 skips it.
if [ "${SKYNET_FUZZ:-1}" != 0 ] && cargo +nightly fuzz --version >/dev/null 2>&1; then
    ./fuzz/smoke.sh
elif [ "${CI:-}" = "true" ]; then
    echo "test.sh: cargo-fuzz on nightly is required in CI (.ci/run installs it)" >&2
    exit 1
else
    echo "test.sh: no cargo-fuzz on nightly (or SKYNET_FUZZ=0): fuzz smoke skipped" >&2
fi

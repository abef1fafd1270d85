#!/usr/bin/env bash
# Builds the container image skynet-rs:latest (deploy/Dockerfile, FROM scratch).
#
#   deploy/build-image.sh            binaries + image + smoke test
#
# 1. Compiles skynet-node and skynet-master (release, glibc, dynamically
#    linked so that the node can load C Lua modules with dlopen) into their
#    own target dir, so the normal target/ build is not invalidated:
#    target/static/<host triple>/release/.
# 2. Lays out a small build context in target/static/image-context: the
#    binaries, the dynamic loader and the shared libraries they need (as
#    `ldd` lists them, at the same paths), lualib/, service/, examples/, the
#    container-test services deploy/test/, the configs deploy/config/, and an
#    empty /skynet/luaclib for C modules; then runs `docker build` on it.
# 3. Runs the image once (the single-node example must end with "example done").
#
# Needs only cargo (Rust), a C toolchain as any build does, ldd and docker.
# Safe to run again: the cargo build is incremental, the context is rebuilt
# from scratch, the tag is moved.
#
# Environment:
#   IMAGE                  image tag (default skynet-rs:latest)
#   STATIC_TARGET_DIR      cargo target dir (default <repo>/target/static)
#   SKIP_SMOKE=1           do not run the image after building it
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${IMAGE:-skynet-rs:latest}
TARGET_DIR=${STATIC_TARGET_DIR:-$ROOT/target/static}
CONTEXT=$TARGET_DIR/image-context

die() { echo "build-image: $*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo not found (install Rust)"
command -v docker >/dev/null || die "docker not found"
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable (docker info failed)"

HOST=$(rustc -vV | sed -n 's/^host: //p')
case "$HOST" in
    *-linux-gnu) ;;
    *) die "static builds need a *-linux-gnu host, this is $HOST" ;;
esac

echo "build-image: compiling the binaries for $HOST into $TARGET_DIR"
# --target keeps this build apart from build scripts and proc macros. No
# debug info: smaller image.
(
    cd "$ROOT"
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo \
        cargo build --release --target "$HOST" --target-dir "$TARGET_DIR" \
        -p skynet-node -p skynet-master --bin skynet-node --bin skynet-master
)
BIN=$TARGET_DIR/$HOST/release
for b in skynet-node skynet-master; do
    [ -x "$BIN/$b" ] || die "$BIN/$b was not built"
done
command -v ldd >/dev/null || die "ldd not found (it lists the libraries to carry)"

echo "build-image: staging the build context in $CONTEXT"
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT/skynet/bin" "$CONTEXT/skynet/etc" "$CONTEXT/skynet/test" "$CONTEXT/tmp"
chmod 1777 "$CONTEXT/tmp"
cp "$BIN/skynet-node" "$BIN/skynet-master" "$CONTEXT/skynet/bin/"
mkdir -p "$CONTEXT/skynet/luaclib" "$CONTEXT/rootfs"
# The dynamic loader and every library the binaries link, at the paths the
# binaries ask for (symlinks followed: the image gets the files).
libs=$(for b in skynet-node skynet-master; do ldd "$BIN/$b"; done |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(0x/ { print $1 }' | sort -u)
[ -n "$libs" ] || die "ldd listed no libraries for the binaries"
for lib in $libs; do
    mkdir -p "$CONTEXT/rootfs$(dirname "$lib")"
    cp -L "$lib" "$CONTEXT/rootfs$lib"
done
cp -R "$ROOT/lualib" "$ROOT/service" "$ROOT/examples" "$CONTEXT/skynet/"
cp "$ROOT"/deploy/test/*.lua "$CONTEXT/skynet/test/"
cp "$ROOT"/deploy/config/*.conf "$ROOT"/deploy/config/*.lua "$CONTEXT/skynet/etc/"
cp "$ROOT/deploy/Dockerfile" "$CONTEXT/Dockerfile"

echo "build-image: docker build -t $IMAGE"
docker build -t "$IMAGE" -f "$CONTEXT/Dockerfile" "$CONTEXT"

if [ "${SKIP_SMOKE:-}" != 1 ]; then
    echo "build-image: smoke test (single-node example)"
    out=$(timeout 60 docker run --rm "$IMAGE" 2>&1) || die "the example failed:
$out"
    grep -q "example done" <<<"$out" || die "the example did not finish:
$out"
fi
docker image ls "$IMAGE"
echo "build-image: done: $IMAGE"

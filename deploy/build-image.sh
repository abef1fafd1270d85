#!/usr/bin/env bash
# Builds the container image skynet-rs:latest (deploy/Dockerfile, FROM scratch).
#
#   deploy/build-image.sh            static binaries + image + smoke test
#
# 1. Compiles skynet-node and skynet-master as static executables (glibc,
#    +crt-static) into their own target dir, so the normal target/ build is
#    not invalidated: target/static/<host triple>/release/.
# 2. Lays out a small build context in target/static/image-context (binaries,
#    lualib/, service/, examples/, the container-test services deploy/test/,
#    the configs deploy/config/) and runs `docker build` on it.
# 3. Runs the image once (the single-node example must end with "example done").
#
# Needs only cargo (Rust) and docker. Safe to run again: the cargo build is
# incremental, the context is rebuilt from scratch, the tag is moved.
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

echo "build-image: compiling static binaries for $HOST into $TARGET_DIR"
# --target makes RUSTFLAGS apply to the binaries only (not to build scripts
# and proc macros, which must stay dynamic). No debug info: smaller image.
(
    cd "$ROOT"
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo \
        cargo build --release --target "$HOST" --target-dir "$TARGET_DIR" \
        -p skynet-node -p skynet-master --bin skynet-node --bin skynet-master
)
BIN=$TARGET_DIR/$HOST/release
for b in skynet-node skynet-master; do
    [ -x "$BIN/$b" ] || die "$BIN/$b was not built"
    if command -v readelf >/dev/null && readelf -l "$BIN/$b" | grep -q 'Requesting program interpreter'; then
        die "$BIN/$b is dynamically linked; it would not run in a FROM scratch image"
    fi
done

echo "build-image: staging the build context in $CONTEXT"
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT/skynet/bin" "$CONTEXT/skynet/etc" "$CONTEXT/skynet/test" "$CONTEXT/tmp"
chmod 1777 "$CONTEXT/tmp"
cp "$BIN/skynet-node" "$BIN/skynet-master" "$CONTEXT/skynet/bin/"
cp -R "$ROOT/lualib" "$ROOT/service" "$ROOT/examples" "$CONTEXT/skynet/"
cp "$ROOT"/deploy/test/*.lua "$CONTEXT/skynet/test/"
cp "$ROOT"/deploy/config/*.conf "$CONTEXT/skynet/etc/"
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

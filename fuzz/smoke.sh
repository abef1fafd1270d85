#!/bin/sh
# Runs every fuzz target (or those named) for FUZZ_TIME seconds each (default
# 20), one at a time, and fails on the first crash, hang, leak or assertion.
# FUZZ_RUNS=N runs N executions per target instead (FUZZ_TIME, when also
# set, still caps each run). FUZZ_TARGET_DIR overrides fuzz/target. Needs nightly
# and cargo-fuzz; seeds the corpora first when the vectors are there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
targets=${*:-$(cargo +nightly fuzz list)}
[ -d corpus ] || ./seed.sh >/dev/null || echo "smoke.sh: no seeds, starting from empty corpora" >&2
limit="-max_total_time=${FUZZ_TIME:-20}"
if [ -n "${FUZZ_RUNS:-}" ]; then limit="-runs=$FUZZ_RUNS -max_total_time=${FUZZ_TIME:-0}"; fi
tdir=${FUZZ_TARGET_DIR:-$here/target}
cargo +nightly fuzz build --target-dir "$tdir" >/dev/null 2>&1 || cargo +nightly fuzz build --target-dir "$tdir"
for t in $targets; do
    # Absolute: config_loader works in a directory of its own.
    mkdir -p "$here/corpus/$t"
    log=$(mktemp)
    if ! cargo +nightly fuzz run --target-dir "$tdir" "$t" "$here/corpus/$t" -- \
        $limit -rss_limit_mb=2048 -timeout=10 -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log"
        echo "smoke.sh: fuzz target $t FAILED (artifact in fuzz/artifacts/$t)" >&2
        rm -f "$log"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
    echo "$t: ${runs:-?} runs in ${secs:-?} s"
    rm -f "$log"
done

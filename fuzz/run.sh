#!/usr/bin/env bash
# Builds the fuzz drivers (fuzz/build.sh) and runs each for FUZZ_SECONDS (default 60).
# Fails on any crash, invariant violation (abort), hang (-timeout), out-of-memory or sanitizer report.
# The committed seed corpora (fuzz/corpus/*) are read, never written: what a run discovers goes to
# .build-fuzz/corpus/<target>/; logs and crash/timeout artifacts to $FUZZ_OUT (default results/fuzz).
# Usage: fuzz/run.sh [profiles|pipeline ...]     (make fuzz FUZZ_SECONDS=30)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${FUZZ_SECONDS:-60}
OUT=${FUZZ_OUT:-results/fuzz}
TIMEOUT=${FUZZ_TIMEOUT:-10}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(profiles pipeline)

bash fuzz/build.sh 2>&1 | grep -v "Cannot export local symbol" || { echo "fuzz: build failed"; exit 1; }
mkdir -p "$OUT"
status=0
for t in "${TARGETS[@]}"; do
    case $t in
        profiles) seeds=fuzz/corpus/profiles; extra=(-dict=fuzz/profiles.dict) ;;
        pipeline) seeds=fuzz/corpus/frames; extra=() ;;
        *) echo "unknown fuzz target $t"; exit 2 ;;
    esac
    work=.build-fuzz/corpus/$t
    mkdir -p "$work"
    log=$OUT/$t.log
    echo "fuzz-$t: ${SECS}s, seeds $seeds, log $log"
    set +e
    SWIFT_BACKTRACE=enable=no VSWITCH_REPO="$ROOT" \
    ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:symbolize=1} \
        .build-fuzz/bin/fuzz-$t -max_total_time="$SECS" -timeout="$TIMEOUT" -max_len=20000 -rss_limit_mb=3072 \
            -print_final_stats=1 -artifact_prefix="$OUT/$t-" "${extra[@]}" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    set -e
    grep -E "^#[0-9]+ +DONE|^stat::number_of_executed_units|^Done " "$log" | sed "s/^/  /" || true
    if [ $rc -ne 0 ]; then
        echo "fuzz-$t FAILED (exit $rc): the report and the input's path are at the end of $log:"
        grep -E "ERROR:|violated|Fatal error|SUMMARY|Test unit written|timeout after" "$log" | head -20 | sed "s/^/  /"
        status=1
    else
        echo "fuzz-$t: no crash, hang or sanitizer report"
    fi
done
exit $status

#!/bin/sh
# tests/fuzz/run_fuzz.sh FUZZER SEED_DIR SECONDS - runs a libFuzzer target for a bounded time on a
# scratch copy of its seed corpus (the source tree is never written). Fails if the fuzzer finds a
# crash, a leak, a timeout or undefined behaviour; the input that did it is kept in
# ${ZW_FUZZ_ARTIFACTS:-/tmp} and named in the output.
set -eu
fuzzer=$1
seeds=$2
seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$seeds"/* "$work"/ 2>/dev/null || true
art=${ZW_FUZZ_ARTIFACTS:-/tmp}/
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$art" "$work"

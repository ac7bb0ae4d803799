#!/bin/sh
# tests/fuzz/run_fuzz.sh FUZZER SECONDS SEED_DIR... - runs a libFuzzer target for a bounded time
# on a scratch copy of its seed corpus (the source tree is never written), with an RSS limit of
# 1 GiB: reading an input of at most 64 KiB must stay far below it. Fails if the fuzzer finds a
# crash, a leak, a timeout, undefined behaviour or memory past the limit; the input that did it is
# kept in ${ZW_FUZZ_ARTIFACTS:-/tmp} and named in the output. Copy it into
# tests/fuzz/regress/<input>/ with the fix: ctest replays that directory (fuzz_replay_<input>).
set -eu
fuzzer=$1
seconds=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for seeds in "$@"; do
    cp "$seeds"/* "$work"/ 2>/dev/null || true
done
art=${ZW_FUZZ_ARTIFACTS:-/tmp}/
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=1024 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$art" "$work"

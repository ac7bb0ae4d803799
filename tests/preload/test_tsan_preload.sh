#!/bin/sh
# tests/preload/test_tsan_preload.sh ZW PROG - the preload library's engine under ThreadSanitizer
# (tests/preload/tsan_preload.c): 8 threads through the hooks, the sampler and the writer. Fails
# on any TSan report (TSAN_OPTIONS exitcode 66, set by ctest) and unless the capture counts
# exactly the program's allocation calls and nothing left live at exit.
set -u
zw=$1
prog=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$(ZW_OUTPUT="$tmp/t.zwc" "$prog") || { echo "FAIL: $prog exited with status $?"; exit 1; }
echo "$out"
want=$(echo "$out" | sed -nE 's/^allocations ([0-9]+),.*/\1/p')
json=$("$zw" stat --json "$tmp/t.zwc") || { echo "FAIL: zw stat"; exit 1; }
got=$(echo "$json" | sed -E 's/^\{[^{]*"allocations": ([0-9]+).*/\1/')
leaked=$(echo "$json" | sed -E 's/^\{[^{]*"leaked_blocks": ([0-9]+).*/\1/')
end=$(echo "$json" | sed -E 's/^\{[^{]*"end": "([a-z_]+)".*/\1/')
if [ -n "$want" ] && [ "$got" = "$want" ] && [ "$leaked" = 0 ] && [ "$end" = exit ]; then
    echo "ok: no ThreadSanitizer report; the capture counts the program's $want allocations, 0 blocks left, ended by exit"
else
    echo "FAIL: the program made '$want' allocations, the capture counts '$got', $leaked blocks left, end '$end'"
    exit 1
fi

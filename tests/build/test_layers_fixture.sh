#!/bin/sh
# tests/build/test_layers_fixture.sh CHECK MAP FIXTURE [LAYER: OBJECT ...] - the layer check on a
# tree with upward arrows (tests/build/layers_fixture) must fail and name each one: a public
# header of a layer above, a symbol of a layer above, a "../" include, an internal header read by
# the CLI.
set -u
check=$1 map=$2 fixture=$3
shift 3
out=$("$check" "$map" "$fixture" "$@")
rc=$?
echo "$out"
if [ "$rc" -ne 1 ]; then
    echo "FAIL: the check exited with $rc on upward arrows, 1 expected"
    exit 1
fi
fail=0
expect() {
    if ! printf '%s\n' "$out" | grep -qF -- "$1"; then
        echo "FAIL: the check did not say: $1"
        fail=1
    fi
}
expect 'src/mem/upward.c:3: mem -> gc: #include <zerowaste/gc.h>'
expect 'upward.c.o: mem -> gc: zw_gc_collect'
expect 'src/raw/relative.h:2: raw -> ?: #include "../mem/mem_internal.h" leaves its folder'
expect 'tools/zw/internal.c:3: zw -> trace: #include "fixture_internal.h" is internal to trace'
expect 'check_layers: 4 upward arrow(s)'
[ "$fail" -eq 0 ] && echo "the check fails on each upward arrow of the fixture: ok"
exit "$fail"

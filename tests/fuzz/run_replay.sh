#!/bin/sh
# tests/fuzz/run_replay.sh LIMIT_KB REPLAY DIR... - runs a replay program (tests/fuzz/replay.c) on
# the inputs of DIR... under an address-space limit of LIMIT_KB (0: none, as in the ASan build,
# whose shadow memory needs terabytes of address space).
set -eu
limit=$1
shift
if [ "$limit" -gt 0 ]; then
    ulimit -v "$limit"
fi
exec "$@"

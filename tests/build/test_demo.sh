#!/bin/sh
# tests/build/test_demo.sh DEMO - runs `make demo`'s program and checks its census: every
# Total line equals its arenas * 1 MiB, and the heap ends with no block allocated.
set -eu
out=$("$1")
echo "$out" | grep -q 'Small block threshold = 512, in 32 size classes.'
echo "$out" | awk '
    /arenas \* 1048576 bytes\/arena/ { gsub(",", "", $NF); want = $NF }
    /^Total / { gsub(",", "", $3); if ($3 != want) { print "Total " $3 " != " want; bad = 1 } n++ }
    END { if (n != 3 || bad) exit 1 }'
echo "$out" | grep -q '^== after freeing everything: 0 blocks, 0 bytes ==$'
echo "demo census: ok"

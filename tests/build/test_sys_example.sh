#!/bin/sh
# tests/build/test_sys_example.sh PROG - runs examples/01-sys and checks the figures docs/obj.md
# quotes: refcounts 1/2/1, sizes 64/28/856, and every block back once the free lists are empty.
set -eu
out=$("$1")
echo "$out"
echo "$out" | grep -q '^getrefcount(a) = 1 '
echo "$out" | grep -q '^a2 = a;   getrefcount(a) = 2 '
echo "$out" | grep -q '^a2 = None; getrefcount(a) = 1 '
echo "$out" | grep -q '^b1 = \["AAA"\]      Blocks: [0-9]* (+2), bytes: 64$'
echo "$out" | grep -q '^b2 = 111          Blocks: [0-9]* (+2), bytes: 28$'
echo "$out" | grep -q '^b2 = \[1024\] \* 100 Blocks: [0-9]* (+4), bytes: 856$'
echo "$out" | grep -q '^free lists emptied Blocks: [0-9]* (+0)$'
echo "sys example: ok"

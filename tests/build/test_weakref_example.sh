#!/bin/sh
# tests/build/test_weakref_example.sh PROG - runs examples/02-weakref and checks what docs/gc.md
# quotes: f3's refcount goes 2 -> 1 (Python's 3 -> 2) with weak observers, three weakrefs cost
# 3 blocks of 80 bytes, and only the weak version lets f3 go when the program drops it.
set -eu
out=$("$1")
echo "$out"
echo "$out" | grep -q '^before: New blocks: [0-9]*, new allocated bytes: [0-9]*, refcount(f3) = 2 (Python: 3)$'
echo "$out" | grep -q '^after : New blocks: [0-9]*, new allocated bytes: [0-9]*, refcount(f3) = 1 (Python: 2)$'
echo "$out" | grep -q '^refcount  *2  *1  *-1$'
echo "$out" | grep -q '^blocks  *[0-9]*  *[0-9]*  *+3$'
echo "$out" | grep -q '^bytes  *[0-9]*  *[0-9]*  *+240$'
# after `del f3`, the strong version still messages f3, the weak one does not
test "$(echo "$out" | grep -c 'Info for f3')" -eq 3
if "$1" bogus 2>/dev/null; then echo "bad argument accepted"; exit 1; fi
echo "weakref example: ok"

#!/bin/sh
# tests/build/test_talk_example.sh NAME PROG - runs one of the talk's "destroy" experiments
# (examples/02-weakref, 04-keep-short ... 08-namedtuple) and checks its figures exactly: blocks,
# bytes and objects of each variant's measure line and of the final table, the sign of every
# before/after delta (the talk's direction), that each variant run alone prints the same line,
# and that a bad argument is refused. Time is printed but never checked. docs/talk.md explains
# every figure; a change in the runtime that alters one shows here first.
set -eu
name=$1
prog=$2

# expect VARIANT BLOCKS BYTES OBJECTS: the variant's measure line (also when run alone)
expect() {
    line="^$(printf '%-6s' "$1"): New blocks: $2, new allocated bytes: $3, objects: $4, time: [0-9.]*\$"
    echo "$out" | grep -q "$line" || { echo "FAIL: no line /$line/"; exit 1; }
    "$prog" "$1" | grep -q "$line" || { echo "FAIL: '$prog $1' does not print /$line/"; exit 1; }
}
# row NAME BEFORE AFTER [AFTER2]: a row of the table; deltas computed here, so they are checked
row() {
    r=$1
    b=$2
    shift 2
    pat="^$r  *$b"
    for a in "$@"; do
        pat="$pat  *$a  *$(printf '%+d' $((a - b)))"
    done
    echo "$out" | grep -q "$pat\$" || { echo "FAIL: no table row /$pat$/"; exit 1; }
}
# down NAME BEFORE AFTER / up / same: the direction the talk shows for that delta
down() { [ "$3" -lt "$2" ] || { echo "FAIL: $1 should go down: $2 -> $3"; exit 1; }; }
up() { [ "$3" -gt "$2" ] || { echo "FAIL: $1 should go up: $2 -> $3"; exit 1; }; }

out=$("$prog")
echo "$out"
case $name in
keep_short) # talk: 4625 -> 3756 blocks, 209692 -> 185361 bytes
    expect before 3616 148504 1001
    expect after 2745 112632 1001
    row blocks 3616 2745
    row bytes 148504 112632
    row objects 1001 1001
    down blocks 3616 2745
    down bytes 148504 112632
    ;;
no_global) # talk: 312 -> 11 blocks, 24962 -> 2436 bytes
    expect before 301 22534 0
    expect after 1 56 0
    row blocks 301 1
    row bytes 22534 56
    row objects 0 0
    down blocks 301 1
    down bytes 22534 56
    ;;
generator) # talk: 12 -> 11 blocks, 81984 -> 2048 bytes
    expect before 3 80088 1
    expect after 2 120 1
    expect after-while 2 120 1
    row blocks 3 2 2
    row bytes 80088 120 120
    row objects 1 1 1
    down blocks 3 2
    down bytes 80088 120
    ;;
slots) # talk: 3751 -> 1756 blocks, 184080 -> 72400 bytes
    expect before 2745 112632 1001
    expect after 1745 72632 1001
    row blocks 2745 1745
    row bytes 112632 72632
    row objects 1001 1001
    down blocks 2745 1745
    down bytes 112632 72632
    ;;
namedtuple) # talk: 3751 -> 1758 blocks, 184080 -> 88512 bytes
    expect before 2745 112632 1001
    expect after 1745 88632 1001
    row blocks 2745 1745
    row bytes 112632 88632
    row objects 1001 1001
    down blocks 2745 1745
    down bytes 112632 88632
    ;;
weakref) # talk: refcount 3 -> 2; 22 -> 22 blocks, 4100 -> 3780 bytes (see docs/talk.md)
    expect before 13 608 8
    expect after 16 848 11
    row blocks 13 16
    row bytes 608 848
    row objects 8 11
    row 'refcount(f3) (Python)' 3 2
    row 'del f2-f4: blocks' 13 10
    row 'del f2-f4: bytes' 608 584
    down 'refcount(f3)' 3 2
    down 'blocks once the observers are dropped' 13 10
    down 'bytes once the observers are dropped' 608 584
    # once the program drops f2, f3, f4 the strong list still messages them, the weak one not
    test "$(echo "$out" | grep -c '^before:   Info for f3: msg$')" -eq 2
    test "$(echo "$out" | grep -c '^after :   Info for f3: msg$')" -eq 1
    ;;
*)
    echo "unknown example '$name'"
    exit 2
    ;;
esac
if "$prog" bogus 2>/dev/null; then echo "FAIL: bad argument accepted"; exit 1; fi
echo "$name example: ok"

#!/bin/sh
# tests/preload/test_leaks.sh ZW DIR - the leak check's ground truth: tests/preload/leaky.c makes
# blocks of each of memcheck's kinds by construction (its "expect:" comments); zw's scan must find
# exactly those, per line, and valgrind's memcheck (when installed) the same, in the same run.
set -u
zw=$1
dir=$2
src=$(dirname "$0")/leaky.c
lib=$dir/libzwp_leaky_lib.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# the truth: "LINE KIND BLOCKS", sorted
grep -nE 'expect: (definite|indirect|possible|reachable) [0-9]+' "$src" |
    sed -E 's/^([0-9]+):.*expect: ([a-z]+) ([0-9]+).*/\1 \2 \3/' |
    sort >"$tmp/truth.txt"
[ -s "$tmp/truth.txt" ] || fail "no expectations read from $src"

# ---- zw: the scan at exit, two threads still running ----
if "$zw" run -q -o "$tmp/leaky.zwc" -- "$dir/zwp_leaky" "$lib" >/dev/null; then
    "$dir/zwp_leaky" check "$tmp/leaky.zwc" >"$tmp/zw_all.txt" || fail "leaky check"
    grep -v '^total' "$tmp/zw_all.txt" | awk '{print $1, $2, $3}' | sort >"$tmp/zw.txt"
    if diff "$tmp/truth.txt" "$tmp/zw.txt" >/dev/null; then
        echo "ok: zw: every line of leaky.c in its kind ($(wc -l <"$tmp/truth.txt") lines)"
    else
        fail "zw's kinds differ from the construction (< truth, > zw)"
        diff "$tmp/truth.txt" "$tmp/zw.txt"
    fi
else
    fail "zw run leaky"
fi

# ---- memcheck on the same program: the same kinds, blocks and bytes per line ----
if ! command -v valgrind >/dev/null 2>&1; then
    echo "skipped: valgrind is not installed: memcheck's side of the comparison not run"
else
    valgrind --leak-check=full --show-leak-kinds=all "$dir/zwp_leaky" "$lib" >/dev/null \
        2>"$tmp/vg.txt" || fail "valgrind leaky"
    # "LINE KIND BLOCKS BYTES" of each loss record allocated by leaky.c itself (the frame after
    # valgrind's malloc)
    awk '
        / are (definitely|indirectly|possibly) lost in loss record| are still reachable in loss record/ {
            line = $0; sub(/^==[0-9]+== /, "", line)
            split(line, w, " ")
            bytes = w[1]; gsub(/,/, "", bytes)
            if (line ~ /direct,/) { d = line; sub(/.*\(/, "", d); sub(/ direct.*/, "", d); gsub(/,/, "", d); bytes = d }
            n = line; sub(/.* bytes in /, "", n); sub(/ blocks? .*/, "", n); gsub(/,/, "", n)
            kind = line ~ /definitely/ ? "definite" : line ~ /indirectly/ ? "indirect" : line ~ /possibly/ ? "possible" : "reachable"
            want = 1; next
        }
        want && / by 0x/ {
            if ($0 ~ /leaky\.c:[0-9]+\)/) {
                l = $0; sub(/.*leaky\.c:/, "", l); sub(/\).*/, "", l)
                print l, kind, n, bytes
            }
            want = 0
        }
        /^==[0-9]+== *$/ { want = 0 }
    ' "$tmp/vg.txt" | sort >"$tmp/vg_lines.txt"
    awk '{print $1, $2, $3, $4}' "$tmp/zw_all.txt" | grep -v '^total' | sort >"$tmp/zw_lines.txt"
    if [ -s "$tmp/vg_lines.txt" ] && diff "$tmp/vg_lines.txt" "$tmp/zw_lines.txt" >/dev/null; then
        echo "ok: memcheck = zw on every line of leaky.c (kind, blocks, bytes)"
    else
        fail "memcheck and zw differ per line (< memcheck, > zw)"
        diff "$tmp/vg_lines.txt" "$tmp/zw_lines.txt"
    fi
fi

[ "$fails" -eq 0 ] && echo "all leak checks passed"
exit $((fails > 0))

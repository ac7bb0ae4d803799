#!/bin/sh
# tests/preload/test_leaks.sh ZW DIR - the leak check's ground truth: tests/preload/leaky.c makes
# blocks of each of memcheck's kinds by construction (its "expect:" comments); zw's scan must find
# exactly those, per line, and valgrind's memcheck (when installed) the same, in the same run.
set -u
zw=$1
dir=$2
src=$(dirname "$0")/leaky.c
lib=$dir/libzwp_leaky_lib.so
. "$(dirname "$0")/../lib.sh"

# the truth: "LINE KIND BLOCKS", sorted
grep -nE 'expect: (definite|indirect|possible|reachable) [0-9]+' "$src" |
    sed -E 's/^([0-9]+):.*expect: ([a-z]+) ([0-9]+).*/\1 \2 \3/' |
    sort >"$tmp/truth.txt"
[ -s "$tmp/truth.txt" ] || fail "no expectations read from $src"

# ---- zw: the scan at exit, two threads still running; the end written by zw's own thread (the
# default) and by the thread that ends the program (ZW_END_THREAD=0): the same kinds ----
for et in 0 1; do
    if ZW_END_THREAD=$et "$zw" run -q -o "$tmp/leaky.zwc" -- "$dir/zwp_leaky" "$lib" >/dev/null; then
        "$dir/zwp_leaky" check "$tmp/leaky.zwc" >"$tmp/zw_all.txt" || fail "leaky check"
        grep -v '^total' "$tmp/zw_all.txt" | awk '{print $1, $2, $3}' | sort >"$tmp/zw.txt"
        if diff "$tmp/truth.txt" "$tmp/zw.txt" >/dev/null; then
            echo "ok: zw (ZW_END_THREAD=$et): every line of leaky.c in its kind ($(wc -l <"$tmp/truth.txt") lines)"
        else
            fail "zw's kinds (ZW_END_THREAD=$et) differ from the construction (< truth, > zw)"
            diff "$tmp/truth.txt" "$tmp/zw.txt"
        fi
    else
        fail "zw run leaky (ZW_END_THREAD=$et)"
    fi
done

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
    # the whole LEAK SUMMARY, blocks of each kind: memcheck frees the C library's one-time
    # allocations (__libc_freeres) before it checks, zw suppresses them (its built-in list)
    sed -nE 's/^==[0-9]+== +(definitely lost|indirectly lost|possibly lost|still reachable): .* in ([0-9,]+) blocks?$/\1 \2/p' \
        "$tmp/vg.txt" | tr -d , >"$tmp/vg_summary.txt"
    "$zw" stat "$tmp/leaky.zwc" |
        sed -nE 's/^ +(definitely lost|indirectly lost|possibly lost|still reachable): .* in ([0-9]+) blocks$/\1 \2/p' \
            >"$tmp/zw_summary.txt"
    if [ "$(wc -l <"$tmp/vg_summary.txt")" -eq 4 ] &&
        diff "$tmp/vg_summary.txt" "$tmp/zw_summary.txt" >/dev/null; then
        echo "ok: LEAK SUMMARY: memcheck's blocks of each kind = zw's ($(tr '\n' ' ' <"$tmp/zw_summary.txt"))"
    else
        fail "LEAK SUMMARY blocks differ (< memcheck, > zw)"
        diff "$tmp/vg_summary.txt" "$tmp/zw_summary.txt"
    fi
fi

# ---- suppressions: the built-in list and a file ----
"$zw" leaks --json --show-suppressed --group lineno "$tmp/leaky.zwc" >"$tmp/sup.json"
grep -q '"kind": "reachable", "bytes": [0-9]*, "blocks": 1, .*"function": "__GI__IO_file_doallocate"' \
    "$tmp/sup.json" && echo "ok: stdout's buffer is suppressed, and shown with --show-suppressed" ||
    fail "stdout's buffer not among the suppressed blocks"
"$zw" leaks --json --group lineno "$tmp/leaky.zwc" | grep -q '_IO_file_doallocate' &&
    fail "stdout's buffer listed as a leak"
printf '# the lost blocks\nleak:^make_lost*\n\nleak:make_overwritten$\n' >"$tmp/all.supp"
printf 'leak:make_overwritten\n' >"$tmp/one.supp"
n=$("$zw" leaks --json --kind definite --suppressions "$tmp/one.supp" "$tmp/leaky.zwc" | grep -c '"kind"')
[ "$n" = 1 ] && echo "ok: a function pattern suppresses its block" || fail "one.supp: $n definite rows, want 1"
"$zw" stat --json --suppressions "$tmp/all.supp" "$tmp/leaky.zwc" |
    grep -q '"definite": {"bytes": 0, "blocks": 0}, "indirect": {"bytes": 0, "blocks": 0}' &&
    echo "ok: file patterns ('^', '*', '\$') suppress the lost blocks, stat counts them apart" ||
    fail "all.supp did not suppress every lost block"
printf 'leek:x\n' >"$tmp/bad.supp"
"$zw" leaks --suppressions "$tmp/bad.supp" "$tmp/leaky.zwc" >/dev/null 2>"$tmp/err.txt"
[ $? -eq 1 ] && grep -q "line 1: not 'leak:PATTERN'" "$tmp/err.txt" &&
    echo "ok: a bad suppression line is an error naming it" || fail "bad.supp accepted"

# ---- the CI mode ----
"$zw" run -q --leak-check --error-exitcode=42 -o "$tmp/ci.zwc" -- "$dir/zwp_leaky" "$lib" \
    >/dev/null 2>"$tmp/ci.txt"
rc=$?
[ $rc -eq 42 ] && grep -q '^Direct leak of 100 byte(s) in 1 object(s) allocated from:' "$tmp/ci.txt" &&
    grep -q '^Indirect leak of 128 byte(s) in 4 object(s)' "$tmp/ci.txt" &&
    echo "ok: --leak-check: status 42 and LeakSanitizer's report" || fail "--leak-check: status $rc"
"$zw" run -q --leak-check --suppressions "$tmp/all.supp" -o "$tmp/ci.zwc" -- "$dir/zwp_leaky" \
    "$lib" >/dev/null 2>&1
rc=$?
[ $rc -eq 0 ] && echo "ok: --leak-check with every leak suppressed: the program's status" ||
    fail "--leak-check suppressed: status $rc"
"$zw" run -q --leak-check=possible --suppressions "$tmp/all.supp" -o "$tmp/ci.zwc" -- \
    "$dir/zwp_leaky" "$lib" >/dev/null 2>&1
rc=$?
[ $rc -eq 23 ] && echo "ok: --leak-check=possible counts possibly lost blocks (status 23)" ||
    fail "--leak-check=possible: status $rc"
"$zw" run -q --leak-check -o "$tmp/ci.zwc" -- sh -c 'exit 3' >/dev/null 2>&1
rc=$?
[ $rc -eq 3 ] && echo "ok: no leak: the program's own status" || fail "no leak: status $rc, want 3"
"$zw" run --error-exitcode=3 -- true >/dev/null 2>&1
[ $? -eq 2 ] && echo "ok: --error-exitcode alone is a usage error" || fail "--error-exitcode alone"

# ---- no scan: after a fatal signal, or turned off; the exit set is listed without kinds ----
"$zw" run -q -o "$tmp/segv.zwc" -- "$dir/zwp_crash" segv >/dev/null 2>&1
"$zw" stat "$tmp/segv.zwc" | grep -q '^LEAK SUMMARY: unknown (not scanned: the process ended on a signal)' &&
    echo "ok: a fatal signal: the scan is skipped and zw stat says so" ||
    fail "segv: no 'not scanned' summary"
"$zw" leaks --json "$tmp/segv.zwc" 2>"$tmp/err.txt" | grep -q '"bytes": 5000, "blocks": 1,' &&
    grep -q 'leak kinds unknown (not scanned: the process ended on a signal)' "$tmp/err.txt" &&
    echo "ok: zw leaks without kinds lists the exit set, and says why" ||
    fail "segv: zw leaks without kinds"
ZW_LEAK_CHECK=0 "$zw" run -q -o "$tmp/off.zwc" -- "$dir/zwp_leaky" "$lib" >/dev/null
"$zw" stat --json "$tmp/off.zwc" | grep -q '"leaks": null' &&
    echo "ok: ZW_LEAK_CHECK=0: no kinds" || fail "ZW_LEAK_CHECK=0 still scanned"

finish "leak checks"

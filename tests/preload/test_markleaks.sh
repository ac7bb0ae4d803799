#!/bin/sh
# tests/preload/test_markleaks.sh ZW DIR - the leak scan at a mark: tests/preload/markleaks.c has
# at zw_mark("mid") one block of 1111 bytes definitely lost and one of 2222 still reachable, and
# at exit only the 2222 one, definitely lost. Run it
# under zw run --leak-check-at-marks, then zw leaks --at mid and zw leaks must list exactly those.
set -u
zw=$1
dir=$2
. "$(dirname "$0")/../lib.sh"

# "KIND BYTES BLOCKS" of the rows of `zw leaks --json` whose traceback is markleaks.c's, sorted
own_rows() {
    grep '"kind"' | grep 'markleaks\.c' |
        sed -nE 's/.*"kind": *"([a-z]+)".*"bytes": *([0-9]+).*"blocks": *([0-9]+).*/\1 \2 \3/p' |
        sort
}

if ! "$zw" run -q --leak-check-at-marks -o "$tmp/m.zwc" -- "$dir/zwp_markleaks"; then
    fail "zw run --leak-check-at-marks markleaks"
else
    "$zw" leaks --at mid --json --limit 0 "$tmp/m.zwc" >"$tmp/mid.json" || fail "zw leaks --at mid"
    own_rows <"$tmp/mid.json" >"$tmp/mid.txt"
    printf 'definite 1111 1\nreachable 2222 1\n' >"$tmp/mid_want.txt"
    if diff "$tmp/mid_want.txt" "$tmp/mid.txt" >/dev/null; then
        echo "ok: zw leaks --at mid: 1111 bytes definitely lost, 2222 still reachable"
    else
        fail "zw leaks --at mid (< wanted, > found)"
        diff "$tmp/mid_want.txt" "$tmp/mid.txt"
        cat "$tmp/mid.json"
    fi
    "$zw" leaks --json --limit 0 "$tmp/m.zwc" >"$tmp/exit.json" || fail "zw leaks"
    own_rows <"$tmp/exit.json" >"$tmp/exit.txt"
    printf 'definite 2222 1\n' >"$tmp/exit_want.txt"
    if diff "$tmp/exit_want.txt" "$tmp/exit.txt" >/dev/null; then
        echo "ok: zw leaks (the exit set): 2222 bytes definitely lost, nothing else of the program"
    else
        fail "zw leaks at exit (< wanted, > found)"
        diff "$tmp/exit_want.txt" "$tmp/exit.txt"
        cat "$tmp/exit.json"
    fi
    # the text output names the mark
    "$zw" leaks --at mid "$tmp/m.zwc" >"$tmp/mid_text.txt" 2>&1 || fail "zw leaks --at mid (text)"
    grep -q "mark 'mid', by kind of leak" "$tmp/mid_text.txt" ||
        { fail "zw leaks --at mid does not name the mark"; cat "$tmp/mid_text.txt"; }
fi

# without the flag the mark keeps its set but not its kinds: said, and the set listed as it is
if ! "$zw" run -q -o "$tmp/n.zwc" -- "$dir/zwp_markleaks"; then
    fail "zw run markleaks"
else
    "$zw" leaks --at mid "$tmp/n.zwc" >"$tmp/n_out.txt" 2>"$tmp/n_err.txt" ||
        fail "zw leaks --at mid without the scan"
    if grep -q "leak kinds at mark 'mid' unknown" "$tmp/n_err.txt" &&
        grep -q 'markleaks\.c' "$tmp/n_out.txt"; then
        echo "ok: a mark not scanned: kinds unknown, its set listed"
    else
        fail "a mark not scanned"
        cat "$tmp/n_err.txt" "$tmp/n_out.txt"
    fi
fi
if "$zw" leaks --at nosuchmark "$tmp/m.zwc" >/dev/null 2>"$tmp/none.txt"; then
    fail "zw leaks --at a mark that does not exist succeeded"
elif grep -q "no mark 'nosuchmark'" "$tmp/none.txt"; then
    echo "ok: zw leaks --at a mark that does not exist: an error that names it"
else
    fail "zw leaks --at nosuchmark: $(cat "$tmp/none.txt")"
fi

finish "leak kinds at marks"

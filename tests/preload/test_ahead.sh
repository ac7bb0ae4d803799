#!/bin/sh
# tests/preload/test_ahead.sh ZW TESTDIR - the capture's table built ahead of the end by the
# sampler (src/preload/ahead.c) is the table the end alone builds: zwp_sites allocates from 4096
# tracebacks over 0.3 s (the sampler converts them as it goes), dlopens a library midway, forks
# (the child's capture starts its table afresh) or dlcloses the library (which makes the sampler
# give its work up); every capture's tracebacks and counts are those of ZW_TABLE_AHEAD=0, and the
# files the symboliser keeps open while the program runs are on descriptors 1000 and above. Last,
# a shell's descriptors under zw run are those it has untraced (libunwind's pipe, which zw's
# unwinder makes it create, goes to 1000 and above too), and a program opening files as the
# sampler samples gets the lowest free descriptor every time.
set -u
zw=$1
dir=$2
. "$(dirname "$0")/../lib.sh"

lib="$dir/libzwp_dlreuse_a.so"
# groups FILE: every traceback of the exit set with its blocks and bytes, one line each, sorted
groups() {
    "$zw" top --group traceback --json --limit 0 "$1" |
        jq -c '.[] | [.blocks, .bytes, [.traceback[] | [.function, .file, .line, .module]]]' | sort
}

for case in "fork $lib" "close $lib"; do
    for ahead in 0 1; do
        rm -f "$tmp/s$ahead.zwc"*
        ZW_TABLE_AHEAD=$ahead ZW_INTERVAL_MS=2 "$zw" run -q --follow-fork -o "$tmp/s$ahead.zwc" -- \
            "$dir/zwp_sites" $case >"$tmp/out" 2>"$tmp/err" ||
            fail "$case, ahead $ahead: zw run: $(cat "$tmp/err")"
        expect "$case, ahead $ahead: files on the program's descriptors" \
            "$(grep -Ec ', low files ([0-9]+) -> \1$' "$tmp/out")" "$(grep -c . "$tmp/out")"
    done
    for f in s0.zwc s0.zwc.1; do
        case "$case" in close*) [ "$f" = s0.zwc ] || continue ;; esac
        g=$(echo "$f" | sed 's/s0/s1/')
        groups "$tmp/$f" >"$tmp/$f.groups"
        groups "$tmp/$g" >"$tmp/$g.groups"
        n=$(wc -l <"$tmp/$f.groups")
        [ "$n" -gt 3000 ] && echo "ok: $case: $f: $n tracebacks" ||
            fail "$case: $f: $n tracebacks, want more than 3000"
        grep -q '"lib_mid"' "$tmp/$g.groups" && echo "ok: $case: $g: the library's frames named" ||
            fail "$case: $g: no lib_mid frame"
        if cmp -s "$tmp/$f.groups" "$tmp/$g.groups"; then
            echo "ok: $case: $g has the tracebacks and counts of $f (built at the end alone)"
        else
            fail "$case: $g differs from $f:"
            diff "$tmp/$f.groups" "$tmp/$g.groups" | head -10
        fi
    done
done

# lowfds: the shell's descriptors from 3 to 999 (its own directory listing left out)
lowfds='for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -ge 3 ] && [ "$n" -lt 1000 ] &&
    [ "$(readlink "$f")" != "/proc/$$/fd" ] && echo "$n $(readlink "$f" | cut -c1-5)"; done; true'
plain=$(sh -c "ls -l / >/dev/null; $lowfds" | sort)
# (without the table built ahead: its symboliser, opening a module's file while the shell runs,
# takes the lowest free descriptor for a moment, which the shell may then see, or find taken when
# it makes a pipe; docs/zw.md says so)
for mode in default fp; do
    traced=$(ZW_TABLE_AHEAD=0 ZW_UNWIND=$([ $mode = default ] || echo $mode) \
        "$zw" run -q -o "$tmp/fd.zwc" -- \
        sh -c "ls -l / >/dev/null; $lowfds" | sort)
    rm -f "$tmp/fd.zwc"*
    expect "$mode unwinder: a shell's descriptors 3-999 under zw run" "$traced" "$plain"
done

# a program opening a file again and again while the sampler samples every millisecond: each open
# gets the lowest free descriptor (the sampler opened /proc/self/statm at every sample, and took
# it from 336 of 84k opens)
out=$(ZW_TABLE_AHEAD=0 ZW_INTERVAL_MS=1 "$zw" run -q -o "$tmp/lowfd.zwc" -- "$dir/zwp_sites" lowfd)
case "$out" in
"lowfd "*" opens, 0 elsewhere") echo "ok: the sampler takes no low descriptor: $out" ;;
*) fail "the sampler takes low descriptors: $out" ;;
esac

finish "the table built ahead of the end, zw's descriptors"

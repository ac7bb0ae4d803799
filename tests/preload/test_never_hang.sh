#!/bin/sh
# tests/preload/test_never_hang.sh ZW TESTDIR - zw run never changes how a program ends and never
# loses what it counted (docs/zw.md#limits): glibc's double-free abort, abort() from a signal
# handler (100 runs), SIGSEGV inside malloc on a broken heap, signals left at their default
# action, SIGKILL, a file-size limit, a full disk, an address space limit, a small stack limit,
# exit() inside dlopen, an exit with a sample an hour.
# Each run must end with the program's own status within 5 s and leave a capture that loads and
# says how it ended.
set -u
zw=$1
dir=$2
die=$dir/zwp_die
. "$(dirname "$0")/../lib.sh"
# stat KEY FILE: the value of KEY in `zw stat --json --only FILE`
stat() {
    "$zw" stat --json --only "$2" | sed -E "s/^\{[^{]*\"$1\": (null|true|false|[0-9.]+|\"[^\"]*\").*/\1/"
}
# run NAME WANT_RC ARGS...: zw run -q of zwp_die ARGS, at most 30 s (a hang is forever; a loaded CI machine can take seconds)
run() {
    name=$1
    want=$2
    shift 2
    timeout -s KILL 30 "$zw" run -q -o "$tmp/$name.zwc" -- "$die" "$@" 2>"$tmp/$name.err" >/dev/null
    rc=$?
    [ "$rc" = "$want" ] || { fail "$name: status $rc, want $want (137: hung, killed after 30 s)"; return 1; }
    return 0
}
# ended NAME END CODE: the capture loads and says how the process ended
ended() {
    if ! "$zw" stat --only "$tmp/$1.zwc" >/dev/null 2>"$tmp/$1.stat"; then
        fail "$1: the capture does not load: $(cat "$tmp/$1.stat")"
        return 1
    fi
    got="$(stat end "$tmp/$1.zwc") $(stat end_code "$tmp/$1.zwc")"
    [ "$got" = "\"$2\" $3" ] || { fail "$1: ended '$got', want '\"$2\" $3'"; return 1; }
}

# ---- faults inside the allocator: the program's status at once, a capture saying so ----
run doublefree 134 doublefree && ended doublefree signal 6 && echo "ok: glibc's double-free abort: 134, capture ends with signal 6"
run corrupt 139 corrupt && ended corrupt signal 11 && echo "ok: SIGSEGV inside malloc on a broken heap: 139, capture ends with signal 11"
n=0
for i in $(seq 100); do
    run alarmabort 134 alarmabort && ended alarmabort signal 6 || break
    n=$((n + 1))
done
expect "abort() from a SIGALRM handler: runs ending with 134 and a capture" "$n" 100

# ---- signals left at their default action: an exit set and the totals, as for exit() ----
for sig in PIPE:13 USR1:10 ALRM:14 USR2:12; do
    sn=${sig%%:*}
    num=${sig#*:}
    run "sig$sn" $((128 + num)) signal "$num" || continue
    ended "sig$sn" signal "$num"
    expect "SIG$sn: capture complete" "$(stat complete "$tmp/sig$sn.zwc")" true
    l=$(stat leaked_bytes "$tmp/sig$sn.zwc")
    [ "$l" != null ] && [ "$l" -ge 5000 ] && echo "ok: SIG$sn: the exit set holds the 5000 bytes" ||
        fail "SIG$sn: no exit set with the 5000 bytes (leaked_bytes $l)"
done

# ---- SIGKILL: the totals are exact up to the kill, with no sample ever taken ----
rm -f "$tmp/pid"
"$zw" run -q --interval 3600000 -o "$tmp/killed.zwc" -- "$die" count 200000 "$tmp/pid" &
runner=$!
for i in $(seq 100); do [ -s "$tmp/pid" ] && break; sleep 0.05; done
kill -KILL "$(cat "$tmp/pid")"
wait "$runner"
expect "SIGKILL: status" "$?" 137
a=$(stat allocations "$tmp/killed.zwc")
# 200000, the 5000 bytes, and fopen's FILE and buffer
[ "$a" -ge 200001 ] && [ "$a" -le 200004 ] && echo "ok: SIGKILL: $a allocations counted" ||
    fail "SIGKILL: $a allocations counted, want 200001 to 200004"
expect "SIGKILL: end" "$(stat end "$tmp/killed.zwc")" '"unknown"'

# ---- a file-size limit cuts the capture, not the program; zw says so ----
# (a limit in 512- or 1024-byte blocks, as the shell counts: the capture's first 17 KiB fit)
sh -c "ulimit -f 40 && exec '$zw' run -q --interval 1 -o '$tmp/fsize.zwc' -- '$die' exit 1000000" \
    >/dev/null 2>"$tmp/fsize.err"
expect "file-size limit: the program's status" "$?" 42
grep -q 'zw: capture cut: write failed: File too large' "$tmp/fsize.err" &&
    echo "ok: file-size limit: zw run says the capture was cut by a failed write" ||
    { fail "file-size limit: zw run does not say the write failed"; cat "$tmp/fsize.err"; }
expect "file-size limit: ended" "$(stat end "$tmp/fsize.zwc") $(stat end_code "$tmp/fsize.zwc")" '"exit" 42'
expect "file-size limit: allocations" "$(stat allocations "$tmp/fsize.zwc")" 1000001
"$zw" stat --only "$tmp/fsize.zwc" | grep -q '^capture cut *write failed: File too large' &&
    echo "ok: file-size limit: zw stat says the write failed" || fail "file-size limit: zw stat"

# ---- a full disk (a 64 KiB tmpfs with 24 KiB left, in a mount namespace of our own, where one can
# be made): room for the start of the capture, not for a sample a millisecond (ZW_FLUSH_MS=0
# writes each one; batched, a short run's whole capture could fit) ----
if unshare -rm true 2>/dev/null; then
    mkdir "$tmp/small"
    unshare -rm sh -c "mount -t tmpfs -o size=64k tmpfs '$tmp/small' &&
        head -c 40960 /dev/zero >'$tmp/small/filler' &&
        ZW_FLUSH_MS=0 '$zw' run --interval 1 -o '$tmp/small/full.zwc' -- '$die' exit 1000000 >/dev/null 2>'$tmp/full.err';
        echo \$? >'$tmp/full.rc'; '$zw' stat --only '$tmp/small/full.zwc' >'$tmp/full.stat' 2>&1"
    expect "full disk: the program's status" "$(cat "$tmp/full.rc")" 42
    grep -q 'zw: capture cut: write failed: No space left on device' "$tmp/full.err" &&
        echo "ok: full disk: zw run says the capture was cut by a failed write" ||
        { fail "full disk: zw run does not say the write failed"; cat "$tmp/full.err"; }
    grep -q 'died' "$tmp/full.err" && fail "full disk: zw run speaks of a death"
    grep -q '^ended *exit status 42' "$tmp/full.stat" && grep -q '^allocations *1000001$' "$tmp/full.stat" &&
        echo "ok: full disk: zw stat gives the exit status and every allocation" ||
        { fail "full disk: zw stat"; cat "$tmp/full.stat"; }
else
    echo "note: no mount namespace here: the full-disk case is covered by the file-size limit alone"
fi

# ---- an address space limit: tracing works, and what the tracer could not record is counted ----
sh -c "ulimit -v 4000000 && exec '$zw' run -q -o '$tmp/as.zwc' -- '$die' exit 100000" 2>"$tmp/as.err"
expect "ulimit -v 4000000: the program's status" "$?" 42
expect "ulimit -v 4000000: allocations" "$(stat allocations "$tmp/as.zwc" 2>&1)" 100001
expect "ulimit -v 4000000: untraced" "$(stat untraced "$tmp/as.zwc" 2>&1)" 0

# ---- a small stack limit: the end (the symboliser reads DWARF line tables) is written on a stack
# of zw's own, mapped at start: the program ends with its own status and the capture is whole ----
sh -c "ulimit -s 64 && exec '$zw' run -q -o '$tmp/stack.zwc' -- '$die' exit 1000" 2>"$tmp/stack.err"
expect "ulimit -s 64: the program's status (139: died writing the end)" "$?" 42
expect "ulimit -s 64: capture complete" "$(stat complete "$tmp/stack.zwc" 2>&1)" true
expect "ulimit -s 64: allocations" "$(stat allocations "$tmp/stack.zwc" 2>&1)" 1001
"$zw" leaks "$tmp/stack.zwc" 2>&1 | grep -q 'die\.c:[0-9]* (main)' &&
    echo "ok: ulimit -s 64: the leaks are symbolised to file:line" ||
    fail "ulimit -s 64: the leaks are not symbolised: $("$zw" leaks "$tmp/stack.zwc" 2>&1 | head -12)"

# ---- the tracer out of memory: what it could not record is counted and reported ----
# whether the tracer's table or the program's malloc meets the limit first depends on the address
# space's layout (which the bookkeeping thread's arena and stack change); with samples written
# every 10 ms, some of these limits are layouts where the tracer's does (which ones moves with any
# mapping the library makes; a grid of 20 MB steps has held several). Each run must count every
# allocation, traced or not; in each bookkeeping mode one must have untraced ones, and say so.
for mode in thread inline; do
    seen=0
    for lim in $(seq 200000 20000 400000); do
        got=$(sh -c "ulimit -v $lim && ZW_BOOKKEEPING=$mode ZW_FLUSH_MS=10 exec '$zw' run -o '$tmp/oom.zwc' -- '$die' fill 20000000" 2>"$tmp/oom.err")
        rc=$?
        a=$(stat allocations "$tmp/oom.zwc")
        u=$(stat untraced "$tmp/oom.zwc")
        [ "$rc" = 0 ] && [ $((a + u)) = "$got" ] ||
            { fail "tracer out of memory ($mode, ulimit -v $lim): status $rc, $a + $u allocations, the program made $got"; continue; }
        grep -q 'died' "$tmp/oom.err" && fail "tracer out of memory ($mode): zw run speaks of a death"
        [ "$u" -gt 0 ] || continue
        seen=1
        grep -q "^zw: $u allocations not traced: the tracer ran out of memory" "$tmp/oom.err" &&
            echo "ok: tracer out of memory ($mode, ulimit -v $lim): traced + untraced = the program's $got, and zw run says how many were not traced" ||
            { fail "tracer out of memory ($mode): zw run does not say it"; cat "$tmp/oom.err"; }
        expect "tracer out of memory ($mode): ended" "$(stat end "$tmp/oom.zwc") $(stat end_code "$tmp/oom.zwc")" '"exit" 0'
        break
    done
    [ "$seen" = 1 ] || fail "tracer out of memory ($mode): no limit tried left allocations untraced"
done

# ---- allocations before zw's constructor ran (a library initialised first) are traced ----
"$zw" run -q -o "$tmp/early.zwc" -- "$dir/zwp_early" || fail "zw run early"
"$zw" leaks --json --group lineno "$tmp/early.zwc" | grep -q '"bytes": 999, "blocks": 3, .*"function": "early"' &&
    echo "ok: a library constructor's 3 blocks, made before zw's constructor, are traced" ||
    fail "a library constructor's allocations before zw's constructor are not traced"

# ---- exit() inside dlopen (a library's constructor ends the program, the loader's lock held): the
# end, which needs that lock, is written by the ending thread itself ----
timeout -s KILL 30 "$zw" run -q -o "$tmp/dlexit.zwc" -- "$dir/zwp_dlexit" "$dir/libzwp_dlexit_lib.so" \
    2>"$tmp/dlexit.err"
expect "exit() inside dlopen: the program's status (137: hung, killed after 30 s)" "$?" 43
ended dlexit exit 43 && echo "ok: exit() inside dlopen: the capture ends with exit 43"
"$zw" top --at exit --json --group lineno "$tmp/dlexit.zwc" | grep -q '"bytes": 4321, "blocks": 1' &&
    echo "ok: exit() inside dlopen: the constructor's block is in the exit set" ||
    fail "exit() inside dlopen: the constructor's block is not in the exit set"

# ---- an exit does not wait for the next sample: with a sample an hour, at once ----
timeout -s KILL 30 "$zw" run -q --interval 3600000 -o "$tmp/hour.zwc" -- "$die" exit 1000 \
    2>"$tmp/hour.err"
expect "an exit with --interval 3600000: the program's status (137: hung, killed after 30 s)" "$?" 42
ended hour exit 42 && echo "ok: an exit with --interval 3600000: the capture ends with exit 42"

# ---- no capture (a static program): said even with -q, never a silent success ----
"$zw" run -q -o "$tmp/static.zwc" -- "$dir/zwp_die_static" fill 10 >/dev/null 2>"$tmp/static.err"
expect "no capture, the program exits 0: zw run's status" "$?" 1
grep -q 'no capture written' "$tmp/static.err" && echo "ok: no capture: said with -q" ||
    fail "no capture: not said with -q"
"$zw" run -q -o "$tmp/static.zwc" -- "$dir/zwp_die_static" exit 10 >/dev/null 2>&1
expect "no capture, the program exits 42: zw run's status" "$?" 42

finish "never hang, never lie"

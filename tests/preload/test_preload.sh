#!/bin/sh
# tests/preload/test_preload.sh ZW TESTDIR DEMO - runs programs under `zw run` and checks their
# captures: the known-lines program against the in-process API, the demo's figures, 8 threads
# (their counts, and their interleaved peaks against the program's own exact peak),
# fork, exec, crashes (SIGSEGV, abort, _exit, SIGKILL), 10M allocations (timed), zw_mark.
set -u
zw=$1
dir=$2
demo=$3
. "$(dirname "$0")/../lib.sh"

# stat KEY FILE: the value of KEY in `zw stat --json --only FILE` (that file alone)
stat() {
    "$zw" stat --json --only "$2" | sed -E "s/^\{[^{]*\"$1\": (null|true|false|[0-9.]+|\"[a-z_]*\").*/\1/"
}
# setstat KEY FILE: the same of the whole capture set FILE, FILE.1, ...
setstat() {
    "$zw" stat --json "$2" | sed -E "s/^\{[^{]*\"$1\": (null|true|false|[0-9.]+|\"[a-z_]*\").*/\1/"
}

# entries KIND FILE ARGS...: "bytes blocks function" of each entry of a top/leaks JSON array
entries() {
    kind=$1
    shift
    "$zw" "$kind" --json --limit 0 --group traceback "$@" |
        sed -nE 's/.*"bytes": ([0-9]+), "blocks": ([0-9]+), .*"function": "([^"]*)".*/\1 \2 \3/p' |
        sort
}

# LINE BYTES BLOCKS of a set of a capture, lines of known_lines.c only, sorted by line
lines_of() { # lines_of WHEN FILE
    "$zw" top --json --group lineno --limit 0 --at "$1" "$2" |
        grep 'known_lines.c' |
        sed -E 's/.*"bytes": ([0-9]+), "blocks": ([0-9]+), .*"line": ([0-9]+).*/\3 \1 \2/' |
        sort -n | sed "s/^/$1 /"
}

# ---- the known-lines program: zw run gives what the in-process API gives ----
"$dir/zwp_known_lines" inproc >"$tmp/inproc.txt" || fail "known_lines inproc"
"$zw" run -q -o "$tmp/kl.zwc" -- "$dir/zwp_known_lines" || fail "zw run known_lines"
{ lines_of middle "$tmp/kl.zwc"; lines_of exit "$tmp/kl.zwc"; } >"$tmp/zw.txt"
if diff "$tmp/inproc.txt" "$tmp/zw.txt" >/dev/null && [ -s "$tmp/inproc.txt" ]; then
    echo "ok: known lines: zw run = in-process API ($(wc -l <"$tmp/inproc.txt") lines)"
else
    fail "known lines differ (< in-process, > zw run)"
    diff "$tmp/inproc.txt" "$tmp/zw.txt"
fi

# ---- the demo: the figures docs/zw.md shows ----
"$zw" run -q -o "$tmp/demo.zwc" -- "$demo" >/dev/null || fail "zw run demo"
"$zw" leaks --json --group lineno "$tmp/demo.zwc" | grep -q '"bytes": 56000, "blocks": 1000, .*"function": "remember"' ||
    fail "demo: the leak of 1000 blocks of 56 bytes in remember()"
"$zw" top --json "$tmp/demo.zwc" | head -2 | grep -q '"bytes": 6400000, "blocks": 1, .*"function": "smoothed_sum"' ||
    fail "demo: the peak's largest block in smoothed_sum()"
"$zw" compare --json "$tmp/demo.zwc" --from start --to grown | head -2 |
    grep -q '"bytes_diff": 2097152, .*"function": "push"' || fail "demo: the growth in push()"
"$zw" top --at exit --group traceback --json "$tmp/demo.zwc" | grep '__GI__IO_file_doallocate' |
    grep -q '"function": "main"' &&
    echo "ok: demo: printf's buffer traced through the C library to main" ||
    fail "demo: the DWARF fallback did not reach main through printf"
t=$(stat temporary "$tmp/demo.zwc")
[ "$t" -ge 10000 ] && echo "ok: demo temporary $t >= 10000" || fail "demo temporary $t < 10000"

# ---- the live set at any time, rebuilt from the steps ----
# steps_match WHAT FILE: at the capture's end it is the exit set, site by site
steps_match() {
    end=$(awk -v d="$(stat duration_s "$2")" 'BEGIN { print d + 0.000001 }')
    entries top --only "$2" --at exit >"$tmp/exit.txt"
    entries top --only "$2" --at "$end" >"$tmp/at-end.txt"
    if [ -s "$tmp/exit.txt" ] && diff "$tmp/exit.txt" "$tmp/at-end.txt" >/dev/null; then
        echo "ok: $1: live set at $end s = exit set ($(wc -l <"$tmp/exit.txt") tracebacks)"
    else
        fail "$1: live set at the end differs from the exit set (< exit, > at $end s)"
        diff "$tmp/exit.txt" "$tmp/at-end.txt"
    fi
}
steps_match demo "$tmp/demo.zwc"
# between the marks grown and end the vector (2 MiB) is live, the scratch copy is not
"$zw" top --json --limit 0 --at 0 "$tmp/demo.zwc" | grep -q '"function": "push"' &&
    fail "demo: the vector is live at 0 s" || echo "ok: demo: nothing of push() live at 0 s"
# the running totals stream with the samples: the last sample's are the totals
last=$("$zw" stat --series --only "$tmp/demo.zwc" | tail -1 | cut -f5-8)
expect "demo: the last sample's totals" "$last" "$(for k in allocations frees temporary bytes_allocated; do stat $k "$tmp/demo.zwc"; done | paste -s)"

# ---- 8 threads ----
"$zw" run -q -o "$tmp/threads.zwc" -- "$dir/zwp_threads" >/dev/null || fail "zw run threads"
a=$(stat allocations "$tmp/threads.zwc")
[ "$a" -ge 800800 ] && [ "$a" -lt 800900 ] && echo "ok: threads: $a allocations" ||
    fail "threads: $a allocations, want 800800 and a few of libc's"
"$zw" leaks --json --group lineno "$tmp/threads.zwc" | grep -q '"bytes": 80000, "blocks": 800, ' ||
    fail "threads: 800 blocks of 100 bytes leaked"
steps_match threads "$tmp/threads.zwc"

# ---- 8 threads that first ask for their own attributes (glibc allocates there holding the
# thread's lock, which making zw's state for the thread would wait on): no hang, same counts ----
timeout -s KILL 60 "$zw" run -q -o "$tmp/getattr.zwc" -- "$dir/zwp_threads" getattr >/dev/null
expect "threads asking for their attributes first: status (137: hung, killed after 60 s)" "$?" 0
a=$(stat allocations "$tmp/getattr.zwc")
[ "$a" -ge 800800 ] && [ "$a" -lt 800900 ] && echo "ok: threads asking for their attributes first: $a allocations" ||
    fail "threads asking for their attributes first: $a allocations, want 800800 and a few of libc's"
"$zw" leaks --json --group lineno "$tmp/getattr.zwc" | grep -q '"bytes": 80000, "blocks": 800, ' &&
    echo "ok: threads asking for their attributes first: 800 blocks of 100 bytes leaked, at their line" ||
    fail "threads asking for their attributes first: 800 blocks of 100 bytes leaked"

# ---- 8 threads whose peaks interleave: the peak figure and the peak set are the program's own
# exact peak (counted with atomics, printed at the end) plus libc's blocks of that moment ----
for run in 1 2 3; do
    out=$("$zw" run -q -o "$tmp/peaks.zwc" -- "$dir/zwp_peaks") || fail "zw run peaks"
    true_peak=$(echo "$out" | sed -nE 's/^true peak ([0-9]+) bytes.*/\1/p')
    figure=$(stat peak_bytes "$tmp/peaks.zwc")
    "$zw" peak --json --limit 0 --group traceback "$tmp/peaks.zwc" |
        sed -nE 's/.*"bytes": ([0-9]+), "blocks": [0-9]+, "traceback": \[\{"function": "([^"]*)".*/\1 \2/p' \
        >"$tmp/peaks.set"
    set_total=$(awk '{s += $1} END {print s + 0}' "$tmp/peaks.set")
    program=$(awk '$2 == "take" {s += $1} END {print s + 0}' "$tmp/peaks.set")
    if [ -n "$true_peak" ] && [ "$program" = "$true_peak" ] && [ "$figure" = "$set_total" ]; then
        echo "ok: peaks run $run: the peak set holds the program's exact peak ($true_peak bytes), the figure is the set ($figure)"
    else
        fail "peaks run $run: program's peak '$true_peak', its blocks in the peak set $program, peak figure $figure, peak set $set_total"
    fi
done

# ---- C++: operator new's caller found, one site for 100000 new ----
"$zw" run -q -o "$tmp/cxx.zwc" -- "$dir/zwp_cxx" >/dev/null || fail "zw run cxx"
"$zw" top --at allocations --group traceback --json --limit 1 "$tmp/cxx.zwc" >"$tmp/cxx.json"
grep -q '"blocks": 100000, "traceback": \[{"function": "operator new(unsigned long)", "symbol": "_Znwm".*{"function": "make(int)", "symbol": "_ZL4makei", "file": "[^"]*cxx.cc", "line": 11,.*{"function": "churn(int)".*{"function": "main"' "$tmp/cxx.json" &&
    echo "ok: cxx: 100000 new in one site, at make() line 11, through churn() and main()" ||
    { fail "cxx: the new in make() is not one site with its callers"; cat "$tmp/cxx.json"; }

# check_counts ERR: from check mode's last words in ERR, `checked` (walks that agreed with
# libunwind's) and `reused` (frames of them taken from the walk before), empty if not said
check_counts() {
    line=$(grep '^zw: preload: ZW_UNWIND=check: [0-9]* walks agreed' "$1" | head -1)
    checked=$(echo "$line" | sed -n 's/.*check: \([0-9]*\) walks agreed.*/\1/p')
    reused=$(echo "$line" | sed -n 's/.*(\([0-9]*\) frames of them reused.*/\1/p')
}

# ---- the unwinder's hard cases without frame pointers, every walk checked ----
# exceptions, longjmp, coroutines, signal handlers, threads, fork, return addresses read, and the
# cases that break a walk reused from the thread's last one; at the default limit and a deeper one
for nframe in 16 64; do
    ZW_NFRAME=$nframe ZW_UNWIND=check "$zw" run -q --follow-fork -o "$tmp/hazards.zwc" -- \
        "$dir/zwp_hazards" >"$tmp/hazards.out" 2>"$tmp/hazards.err" ||
        { cat "$tmp/hazards.err"; fail "zw run hazards"; }
    grep -q '^hazards ok 587$' "$tmp/hazards.out" || fail "hazards: $(cat "$tmp/hazards.out")"
    check_counts "$tmp/hazards.err"
    [ "${checked:-0}" -ge 1000 ] && [ "${reused:-0}" -ge 1000 ] &&
        echo "ok: hazards (ZW_NFRAME=$nframe): $checked walks equal libunwind's, $reused frames reused" ||
        { cat "$tmp/hazards.err"; fail "hazards: ${checked:-no} walks checked, ${reused:-no} frames reused, want 1000 or more of each"; }
done
# the same under the shadow-stack unwinder (return addresses replaced by a trampoline), its walks
# compared with libunwind's (shadow-check) and not (shadow: the program's own results only); at
# ZW_NFRAME=4 walks cut short inside a coroutine on a stack inside the thread's would patch its
# frames (makecontext turns patching off there: without it, the program aborts)
for mode in shadow-check shadow; do
    for nframe in 4 16 64; do
        ZW_NFRAME=$nframe ZW_UNWIND=$mode "$zw" run -q --follow-fork -o "$tmp/hazards_sh.zwc" -- \
            "$dir/zwp_hazards" >"$tmp/hazards_sh.out" 2>"$tmp/hazards_sh.err" ||
            { cat "$tmp/hazards_sh.err"; fail "zw run hazards (ZW_UNWIND=$mode)"; }
        grep -q '^hazards ok 587$' "$tmp/hazards_sh.out" ||
            fail "hazards (ZW_UNWIND=$mode): $(cat "$tmp/hazards_sh.out")"
        [ "$mode" = shadow ] && { echo "ok: hazards (ZW_UNWIND=shadow, ZW_NFRAME=$nframe)"; continue; }
        check_counts "$tmp/hazards_sh.err"
        [ "${checked:-0}" -ge 1000 ] && [ "${reused:-0}" -ge 1000 ] &&
            echo "ok: hazards (ZW_UNWIND=$mode, ZW_NFRAME=$nframe): $checked walks equal libunwind's, $reused frames from the shadow stack" ||
            { cat "$tmp/hazards_sh.err"; fail "hazards ($mode): ${checked:-no} walks checked, ${reused:-no} frames from the shadow stack, want 1000 or more of each"; }
    done
done
# code with an unwinder of its own (-static-libstdc++ -static-libgcc, as GCC's compilers are
# built) throwing through frames that allocated: in the program, and in a library loaded after
# the program's frames were patched. Each module is screened before a frame returning into it is
# patched; one that carries an unwinder turns patching off (without that: std::terminate)
for prog in zwp_own_unwinder zwp_own_unwinder_dl; do
    for mode in "" shadow; do
        ZW_UNWIND=$mode "$zw" run -q -o "$tmp/own.zwc" -- "$dir/$prog" >"$tmp/own.out" 2>"$tmp/own.err" ||
            { cat "$tmp/own.err"; fail "$prog (ZW_UNWIND=$mode): status $?"; }
        grep -q '^caught 100$' "$tmp/own.out" || fail "$prog (ZW_UNWIND=$mode): $(cat "$tmp/own.out")"
        said=$(grep -c 'has an unwinder of its own' "$tmp/own.err")
        if [ "$mode" = shadow ]; then
            want="$prog" # its argv[0], the path zw ran
            [ $prog = zwp_own_unwinder_dl ] && want=libzwp_own_unwinder_lib.so
            grep -q "ZW_UNWIND=shadow: .*$want has an unwinder of its own" "$tmp/own.err" ||
                { cat "$tmp/own.err"; fail "$prog: ZW_UNWIND=shadow does not name $want"; }
        elif [ "$said" -ne 0 ]; then
            cat "$tmp/own.err"; fail "$prog: the default said which unwinder it chose"
        fi
        "$zw" top --at allocations --json --group traceback "$tmp/own.zwc" |
            grep -q "\"function\": \"deep(int, int)[ \"]" ||
            fail "$prog (ZW_UNWIND=$mode): no traceback through deep()"
        echo "ok: $prog (ZW_UNWIND=${mode:-default}): 100 exceptions caught, allocations traced through deep()"
    done
done
# a program walking its own stack with libunwind (unw_step, allocating between steps too, and
# unw_backtrace) after its frames were patched: the walks count what they count untraced
if [ -x "$dir/zwp_libunwind_self" ]; then
    want=$("$dir/zwp_libunwind_self")
    for mode in "" shadow incremental; do
        got=$(ZW_UNWIND=$mode "$zw" run -q -o "$tmp/lu.zwc" -- "$dir/zwp_libunwind_self") ||
            fail "zwp_libunwind_self (ZW_UNWIND=$mode): status $?"
        [ "$got" = "$want" ] &&
            echo "ok: libunwind's own walks (ZW_UNWIND=${mode:-default}): $(echo "$got" | head -1)" ||
            fail "libunwind's own walks (ZW_UNWIND=${mode:-default}): '$got', untraced '$want'"
    done
fi
# with frame pointers and a short limit: the frames past it are counted from the thread's last
# walk where the stack still holds it, and check mode counts them again by a walk
ZW_NFRAME=4 ZW_UNWIND=check "$zw" run -q --follow-fork -o "$tmp/hazards_fp.zwc" -- \
    "$dir/zwp_hazards_fp" >"$tmp/hazards_fp.out" 2>"$tmp/hazards_fp.err" ||
    { cat "$tmp/hazards_fp.err"; fail "zw run hazards_fp"; }
grep -q '^hazards ok 587$' "$tmp/hazards_fp.out" || fail "hazards_fp: $(cat "$tmp/hazards_fp.out")"
tails=$(sed -n 's/^zw: preload: ZW_UNWIND=check: \([0-9]*\) frame-pointer chains past the limit.*/\1/p' \
    "$tmp/hazards_fp.err" | head -1)
[ "${tails:-0}" -ge 1000 ] &&
    echo "ok: hazards with frame pointers (ZW_NFRAME=4): $tails counts past the limit equal a walk's" ||
    { cat "$tmp/hazards_fp.err"; fail "hazards_fp: ${tails:-no} counts past the limit checked, want 1000 or more"; }
"$zw" top --at allocations --json --group traceback "$tmp/hazards.zwc" | grep -q '"function": "deep_throw(int)"' &&
    echo "ok: hazards: allocations found in deep_throw" || fail "hazards: no site in deep_throw"

# ---- fork: followed, the child writes FILE.1 with its parent's pid ----
"$zw" run -q --follow-fork -o "$tmp/fork.zwc" -- "$dir/zwp_fork" || fail "zw run fork"
ppid=$(stat ppid "$tmp/fork.zwc.1")
pid=$(stat pid "$tmp/fork.zwc")
expect "fork: child's parent pid" "$ppid" "$pid"
expect "fork: child's allocations" "$(stat bytes_allocated "$tmp/fork.zwc.1")" 2000
expect "fork: parent's allocations" "$(stat bytes_allocated "$tmp/fork.zwc")" 1000
steps_match "fork child (inherited blocks)" "$tmp/fork.zwc.1"
expect "fork: the set's allocations" "$(setstat bytes_allocated "$tmp/fork.zwc")" 3000
expect "fork: --pid picks the parent" \
    "$("$zw" stat --json --pid "$ppid" "$tmp/fork.zwc" | sed -E 's/^\{[^{]*"bytes_allocated": ([0-9]+).*/\1/')" 1000
"$zw" stat "$tmp/fork.zwc" | grep -q '^capture set .*: 2 processes' &&
    echo "ok: fork: zw stat lists 2 processes" || fail "fork: zw stat does not list the set"
"$zw" run -q -o "$tmp/nofork.zwc" -- "$dir/zwp_fork" || fail "zw run fork (not followed)"
[ ! -e "$tmp/nofork.zwc.1" ] && echo "ok: fork not followed by default" || fail "unfollowed fork wrote a capture"

# ---- children started every way: system(), popen() (read and write), posix_spawn[p], fork
# then execve with an environment of its own or execl. The program no longer has zw's variables
# (tests/preload/test_env.sh): each way gives them back to the child, so all are traced ----
"$zw" run -q -o "$tmp/spawn.zwc" -- "$dir/zwp_spawn" >/dev/null || fail "zw run spawn"
"$zw" stat "$tmp/spawn.zwc" >"$tmp/spawn.txt"
missing=
for how in system popen-r popen-w fds posix_spawn execve-env execl; do
    grep -q "/zwp_spawn child $how\$" "$tmp/spawn.txt" || missing="$missing $how"
    grep -q " sh -c .*zwp_spawn.* child $how'\$" "$tmp/spawn.txt" ||
        case $how in system | popen-*| fds) missing="$missing sh-for-$how" ;; esac
done
for cmd in " sh -c 'exit 0'" " sh -c 'exit 3'" " sh -c 'exit 7'" " true"; do
    grep -q "$cmd\$" "$tmp/spawn.txt" || missing="$missing '$cmd'"
done
# the program, 3 shells of system() and 4 of popen(), and 8 children (true and 7 of its own)
if [ -z "$missing" ] && grep -q '^capture set .*: 16 processes' "$tmp/spawn.txt"; then
    echo "ok: spawn: every child of system, popen, posix_spawn[p], execve and execl is traced (16 processes)"
else
    fail "spawn: children not traced:${missing:- (the count)}"
    cat "$tmp/spawn.txt"
fi
# top over a set sums each process's own peak: it says so and gives no single time
"$zw" top "$tmp/spawn.zwc" 2>/dev/null | head -1 | grep -q ': peak sets of 16 of 16 processes, each at its own moment, summed: ' &&
    echo "ok: top over a set names its sum of peaks" || fail "top over a set: $("$zw" top "$tmp/spawn.zwc" 2>&1 | head -1)"
# not followed: the children run the same, untraced
"$zw" run -q --no-follow-exec -o "$tmp/nospawn.zwc" -- "$dir/zwp_spawn" >/dev/null ||
    fail "zw run --no-follow-exec spawn"
[ -s "$tmp/nospawn.zwc" ] && [ ! -e "$tmp/nospawn.zwc.1" ] &&
    echo "ok: spawn: no child traced with --no-follow-exec" || fail "spawn: --no-follow-exec traced a child"
# the program's environment has none of zw's variables (they are the children's only)
env_seen=$("$zw" run -q -o "$tmp/env.zwc" -- env | grep -c -E '^(LD_PRELOAD=|ZW_)')
expect "env: the program sees neither LD_PRELOAD nor zw's variables" "$env_seen" 0

# ---- exec: followed by default, not with --no-follow-exec ----
"$zw" run -q -o "$tmp/exec.zwc" -- "$dir/zwp_exec" || fail "zw run exec"
expect "exec: the new image's leak" "$(stat leaked_bytes "$tmp/exec.zwc.1")" 3000
expect "exec: the old image's capture ends with exec" "$(stat end "$tmp/exec.zwc")" '"exec"'
expect "exec: the old image's live bytes" "$(stat leaked_bytes "$tmp/exec.zwc")" 1000
"$zw" run -q -o "$tmp/vfork.zwc" -- "$dir/zwp_exec" vfork || fail "zw run exec vfork"
expect "vfork: the parent's capture goes on after the child's exec" \
    "$(stat leaked_bytes "$tmp/vfork.zwc")" 1500
expect "vfork: the child's image" "$(stat leaked_bytes "$tmp/vfork.zwc.1")" 3000
expect "vfork: the parent's image after exec" "$(stat leaked_bytes "$tmp/vfork.zwc.2")" 3000
expect "exec: same pid" "$(stat pid "$tmp/exec.zwc.1")" "$(stat pid "$tmp/exec.zwc")"
expect "exec: the set's leaks, both images" "$(setstat leaked_bytes "$tmp/exec.zwc")" 4000
expect "exec: the set ends as the last image" "$(setstat end "$tmp/exec.zwc")" '"exit"'
entries leaks "$tmp/exec.zwc" | grep -q . && echo "ok: exec: leaks of the set" || fail "exec: no leaks of the set"
"$zw" run -q --no-follow-exec -o "$tmp/noexec.zwc" -- "$dir/zwp_exec" || fail "zw run --no-follow-exec"
[ ! -e "$tmp/noexec.zwc.1" ] && echo "ok: exec not followed with --no-follow-exec" ||
    fail "--no-follow-exec traced the new image"

# ---- crashes: the capture loads, the status is the program's ----
for how in segv:139:signal abort:134:signal _exit:7:_exit; do
    what=${how%%:*}
    rest=${how#*:}
    want_rc=${rest%%:*}
    want_end=${rest#*:}
    "$zw" run -q -o "$tmp/crash-$what.zwc" -- "$dir/zwp_crash" "$what"
    expect "crash $what: exit status" "$?" "$want_rc"
    expect "crash $what: end" "$(stat end "$tmp/crash-$what.zwc")" "\"$want_end\""
    expect "crash $what: live bytes" "$(stat leaked_bytes "$tmp/crash-$what.zwc")" 5000
done
# samples are written every ZW_FLUSH_MS: killed at 100 ms, a capture flushed every 20 ms has
# some (a sample that only repeats the one before it is not written: the program sleeps, so
# there may be few), one flushed every second (the default) only the first (written at once, so
# that zw run's status line knows the process); both have the exact
# counts (LIVE)
ZW_FLUSH_MS=20 "$zw" run -q -o "$tmp/killed.zwc" -- "$dir/zwp_crash" kill
expect "killed: exit status" "$?" 137
expect "killed: capture incomplete" "$(stat complete "$tmp/killed.zwc")" false
n=$(stat samples "$tmp/killed.zwc")
[ "$n" -ge 1 ] && echo "ok: killed: $n samples streamed" || fail "killed: $n samples streamed"
"$zw" run -q -o "$tmp/killed-1s.zwc" -- "$dir/zwp_crash" kill
expect "killed, default flush: exit status" "$?" 137
expect "killed, default flush: only the first sample written" "$(stat samples "$tmp/killed-1s.zwc")" 1
expect "killed, default flush: allocations from LIVE" "$(stat allocations "$tmp/killed-1s.zwc")" \
    "$(stat allocations "$tmp/killed.zwc")"

# ---- signals from outside (SIGTERM, SIGINT, SIGHUP) while the program allocates ----
for sig in TERM:143:15 INT:130:2 HUP:129:1; do
    name=${sig%%:*}
    rest=${sig#*:}
    want_rc=${rest%%:*}
    num=${rest#*:}
    rm -f "$tmp/pid"
    # a background job ignores SIGINT (no job control): env gives the program the default back
    env --default-signal=INT "$zw" run -q -o "$tmp/sig-$name.zwc" -- "$dir/zwp_crash" wait "$tmp/pid" &
    runner=$!
    for i in $(seq 100); do [ -s "$tmp/pid" ] && break; sleep 0.05; done
    sleep 0.1
    kill -s "$name" "$(cat "$tmp/pid")"
    wait "$runner"
    expect "SIG$name: exit status" "$?" "$want_rc"
    expect "SIG$name: capture complete" "$(stat complete "$tmp/sig-$name.zwc")" true
    expect "SIG$name: end" "$(stat end "$tmp/sig-$name.zwc")" '"signal"'
    expect "SIG$name: signal" "$(stat end_code "$tmp/sig-$name.zwc")" "$num"
    "$zw" leaks --json --group lineno "$tmp/sig-$name.zwc" | grep -q '"bytes": 5000, "blocks": 1,' &&
        echo "ok: SIG$name: the 5000-byte block live at the end" || fail "SIG$name: leaks"
done

# ---- a mark taken by a signal (ZW_MARK_SIGNAL) ----
ZW_MARK_SIGNAL=USR1 "$zw" run -q -o "$tmp/mark.zwc" -- "$dir/zwp_crash" mark || fail "zw run mark"
"$zw" top --at "signal 10" --json "$tmp/mark.zwc" | grep -q '"bytes": 5000, "blocks": 1,' &&
    echo "ok: ZW_MARK_SIGNAL mark holds the 5000-byte block" || fail "ZW_MARK_SIGNAL mark"

# ---- 10M allocations, timed ----
start=$(date +%s.%N)
"$dir/zwp_many" >/dev/null
plain=$(date +%s.%N)
"$zw" run -q -o "$tmp/many.zwc" -- "$dir/zwp_many" >/dev/null || fail "zw run many"
traced=$(date +%s.%N)
awk -v s="$start" -v p="$plain" -v t="$traced" \
    'BEGIN { printf "10M allocations: plain %.2f s, zw run %.2f s (%.1fx)\n", p - s, t - p, (t - p) / (p - s) }' 
a=$(stat allocations "$tmp/many.zwc")
[ "$a" -ge 10000001 ] && [ "$a" -lt 10000100 ] && echo "ok: many: $a allocations" ||
    fail "many: $a allocations"
expect "many: temporary" "$(stat temporary "$tmp/many.zwc")" 9990000

finish "preload programs"

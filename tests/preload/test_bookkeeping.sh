#!/bin/sh
# tests/preload/test_bookkeeping.sh ZW DIR - the bookkeeping thread (src/preload/consumer.c) against
# the inline mode (ZW_BOOKKEEPING=inline), on tests/preload/bookkeeping.c, whose counts are known
# by construction: 8 threads freeing each other's blocks (addresses reused across threads), with
# the default ring and with a ring of 16 records (always full); a mark taken while other threads
# allocate; a followed fork child; fork children freeing blocks other threads made just before
# the fork; a crash while other threads allocate; reallocs that fail; a
# thread starting to allocate while another allocates as fast as it can; the tracebacks of threads
# that come and go.
set -u
zw=$1
dir=$2
prog=$dir/zwp_bookkeeping
. "$(dirname "$0")/../lib.sh"
# stat KEY FILE: the value of KEY in `zw stat --json --only FILE`
stat() {
    "$zw" stat --json --only "$2" | sed -E "s/^\{[^{]*\"$1\": (null|true|false|[0-9.]+|\"[^\"]*\").*/\1/"
}
# in_range WHAT GOT LO HI
in_range() {
    [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] && echo "ok: $1: $2" || fail "$1: $2, want $3 to $4"
}

# ---- many threads, addresses reused across them: the counts and the exit set are the program's,
# the same in every mode and ring size ----
first=
for mode in thread:65536 inline:65536 thread:16; do
    m=${mode%%:*}
    ring=${mode#*:}
    name="reuse ($m, ring $ring)"
    if ! ZW_BOOKKEEPING=$m ZW_RING=$ring "$zw" run -q -o "$tmp/reuse.zwc" -- "$prog" reuse \
        >"$tmp/reuse.out" 2>"$tmp/reuse.err"; then
        fail "$name: zw run"
        cat "$tmp/reuse.err"
        continue
    fi
    [ -s "$tmp/reuse.err" ] && { fail "$name: zw run says something"; cat "$tmp/reuse.err"; }
    want_a=$(sed -n 's/^allocations //p' "$tmp/reuse.out")
    want_f=$(sed -n 's/^frees //p' "$tmp/reuse.out")
    want_t=$(sed -n 's/^temporary //p' "$tmp/reuse.out")
    a=$(stat allocations "$tmp/reuse.zwc")
    f=$(stat frees "$tmp/reuse.zwc")
    t=$(stat temporary "$tmp/reuse.zwc")
    # the C library's own few (stdio's buffer, the threads') come on top
    in_range "$name: allocations" "$a" "$want_a" $((want_a + 20))
    in_range "$name: frees" "$f" "$want_f" $((want_f + 20))
    expect "$name: temporary" "$t" "$want_t"
    "$zw" top --at exit --json --group lineno --limit 0 "$tmp/reuse.zwc" |
        grep -q '"bytes": 62160, "blocks": 80, "traceback": \[{"function": "reuse_worker"' &&
        echo "ok: $name: the 80 blocks of 777 bytes leaked, no more, no fewer" ||
        fail "$name: not the 80 blocks of 777 bytes in the exit set"
    leaked=$(stat leaked_blocks "$tmp/reuse.zwc")
    expect "$name: live blocks at exit = allocations - frees" "$leaked" $((a - f))
    if [ -z "$first" ]; then
        first="$a $f $t"
    else
        expect "$name: the counts of the first mode" "$a $f $t" "$first"
    fi
done

# ---- a second thread's first records come while the first thread allocates in a tight loop:
# no record lost or applied twice (the moment is once per process: ten processes) ----
for run in 1 2 3 4 5 6 7 8 9 10; do
    name="handover ($run)"
    if ! "$zw" run -q -o "$tmp/handover.zwc" -- "$prog" handover >"$tmp/handover.out" \
        2>"$tmp/handover.err"; then
        fail "$name: zw run"
        cat "$tmp/handover.err"
        continue
    fi
    want_a=$(sed -n 's/^allocations //p' "$tmp/handover.out")
    want_f=$(sed -n 's/^frees //p' "$tmp/handover.out")
    a=$(stat allocations "$tmp/handover.zwc")
    f=$(stat frees "$tmp/handover.zwc")
    in_range "$name: allocations" "$a" "$want_a" $((want_a + 20))
    in_range "$name: frees" "$f" "$want_f" $((want_f + 20))
    expect "$name: live blocks at exit = allocations - frees" "$(stat leaked_blocks "$tmp/handover.zwc")" \
        $((a - f))
    top=$("$zw" top --at exit --json --group traceback --limit 0 "$tmp/handover.zwc")
    for leak in '"bytes": 13320, "blocks": 40, "traceback": [{"function": "churn_then_leak"' \
        '"bytes": 17760, "blocks": 40, "traceback": [{"function": "churn_then_leak"'; do
        printf '%s\n' "$top" | grep -qF "$leak" &&
            echo "ok: $name: each thread's 40 blocks at exit" ||
            fail "$name: not $leak in the exit set"
    done
done

# ---- a mark taken while other threads allocate holds every block made before it ----
for m in thread inline; do
    ZW_BOOKKEEPING=$m "$zw" run -q -o "$tmp/mark.zwc" -- "$prog" mark || fail "mark ($m): zw run"
    "$zw" top --at mid --json --group lineno --limit 0 "$tmp/mark.zwc" |
        grep -q '"bytes": 1234000, "blocks": 1000, .*"function": "run_mark"' &&
        echo "ok: mark ($m): the mark's set holds the 1000 blocks made before it" ||
        fail "mark ($m): the mark's set lacks blocks made before it"
done

# ---- a followed fork child, forked while other threads allocate: its own counts, exact ----
for mode in thread:65536 thread:16 inline:65536; do
    m=${mode%%:*}
    ring=${mode#*:}
    name="fork ($m, ring $ring)"
    rm -f "$tmp"/fork.zwc*
    ZW_BOOKKEEPING=$m ZW_RING=$ring "$zw" run -q --follow-fork -o "$tmp/fork.zwc" -- "$prog" fork ||
        fail "$name: zw run"
    if [ ! -f "$tmp/fork.zwc.1" ]; then
        fail "$name: no capture of the child"
        continue
    fi
    expect "$name: the child's allocations and frees" \
        "$(stat allocations "$tmp/fork.zwc.1") $(stat frees "$tmp/fork.zwc.1")" "500 250"
    "$zw" top --at exit --json --group lineno --limit 0 "$tmp/fork.zwc.1" |
        grep -q '"bytes": 1080250, "blocks": 250, "traceback": \[{"function": "run_fork"' &&
        echo "ok: $name: the child's 250 blocks left at exit" || fail "$name: the child's exit set"
    expect "$name: the parent's capture loads and ended" "$(stat end "$tmp/fork.zwc")" '"exit"'
done

# ---- fork children freeing the blocks two threads held at each fork, the records of the last ones
# posted while fork held the bookkeeping: each child finds every one (5 children a run, 3 runs) ----
for run in 1 2 3; do
    rm -f "$tmp"/forkheld.zwc*
    "$zw" run -q --follow-fork -o "$tmp/forkheld.zwc" -- "$prog" forkheld >"$tmp/forkheld.out" ||
        fail "forkheld ($run): zw run"
    for k in 1 2 3 4 5; do
        want=$(sed -n "s/^child $k freed //p" "$tmp/forkheld.out")
        if [ -z "$want" ] || [ ! -f "$tmp/forkheld.zwc.$k" ]; then
            fail "forkheld ($run): child $k said nothing or left no capture"
            continue
        fi
        expect "forkheld ($run): child $k's frees of the blocks held at the fork" \
            "$(stat frees "$tmp/forkheld.zwc.$k")" "$want"
    done
done

# ---- a crash while other threads allocate: a capture that loads, with every block made before ----
for m in thread inline; do
    ZW_BOOKKEEPING=$m "$zw" run -q -o "$tmp/crash.zwc" -- "$prog" crash 2>/dev/null
    expect "crash ($m): status" "$?" 139
    expect "crash ($m): ended" "$(stat end "$tmp/crash.zwc") $(stat end_code "$tmp/crash.zwc")" '"signal" 11'
    a=$(stat allocations "$tmp/crash.zwc")
    [ "$a" -ge 20000 ] && echo "ok: crash ($m): $a allocations" || fail "crash ($m): $a allocations, want 20000 or more"
    "$zw" top --at exit --json --group lineno --limit 0 "$tmp/crash.zwc" |
        grep -q '"bytes": 1980000, "blocks": 20000, "traceback": \[{"function": "run_crash"' &&
        echo "ok: crash ($m): the exit set holds the 20000 blocks made before the crash" ||
        fail "crash ($m): the exit set lacks blocks made before the crash"
done

# ---- a realloc that fails: the old block stays, with its traceback, and its free is taken back ----
for mode in thread:65536 thread:16 inline:65536; do
    m=${mode%%:*}
    ring=${mode#*:}
    name="failed realloc ($m, ring $ring)"
    ZW_BOOKKEEPING=$m ZW_RING=$ring "$zw" run -q -o "$tmp/realloc.zwc" -- "$prog" realloc ||
        fail "$name: zw run"
    "$zw" top --at exit --json --group lineno --limit 0 "$tmp/realloc.zwc" |
        grep -q '"bytes": 55500, "blocks": 100, "traceback": \[{"function": "run_realloc"' &&
        echo "ok: $name: the 100 blocks stay in the exit set" || fail "$name: blocks lost"
    a=$(stat allocations "$tmp/realloc.zwc")
    f=$(stat frees "$tmp/realloc.zwc")
    expect "$name: live blocks at exit = allocations - frees" "$(stat leaked_blocks "$tmp/realloc.zwc")" $((a - f))
done

# ---- tracebacks the consumer interns (posted as they differ from the last one of the thread's
# slot) are those the hooks intern: zwp_sites's 4096 paths taken by 16 threads in four waves (each
# wave's threads take the slots of the last one's, and go on from their tracebacks), with the
# default ring, with a ring of 16 records (a record may then take 3 cells more: the longer
# differences are interned by the hooks) and with 8 frames kept (the stack's depth posted too) ----
# groups FILE: every traceback of the exit set with its blocks and bytes, one line each, sorted
groups() {
    "$zw" top --group traceback --json --limit 0 "$1" |
        jq -c '.[] | [.blocks, .bytes, [.traceback[] | [.function, .file, .line]]]' | sort
}
for nf in 64 8; do
    for mode in inline:65536 thread:65536 thread:16; do
        m=${mode%%:*}
        ring=${mode#*:}
        name="waves ($m, ring $ring, $nf frames)"
        ZW_BOOKKEEPING=$m ZW_RING=$ring "$zw" run -q --nframe $nf -o "$tmp/waves.zwc" -- \
            "$dir/zwp_sites" threads >/dev/null || fail "$name: zw run"
        groups "$tmp/waves.zwc" >"$tmp/waves.$m.$ring"
        n=$(grep -c '"a"' "$tmp/waves.$m.$ring")
        if [ "$m" = inline ]; then
            # all of the paths apart with 64 frames, the inner 8 frames of them with 8
            want=$([ $nf = 64 ] && echo 4096 || echo 255)
            expect "$name: tracebacks through a()" "$n" "$want"
        elif cmp -s "$tmp/waves.inline.65536" "$tmp/waves.$m.$ring"; then
            echo "ok: $name: the tracebacks and counts of the inline mode"
        else
            fail "$name: not the tracebacks of the inline mode:"
            diff "$tmp/waves.inline.65536" "$tmp/waves.$m.$ring" | head -6
        fi
    done
done

# ---- the ring's pages: faulted in by the bookkeeping thread, not by the program's hooks ----
# 300k malloc/free pairs of one size (10k at a time, 2 ms apart) post 600k records, more than two
# laps of the default ring (2048 pages): a hook touching a page first took a page fault on the
# program's thread, every page of the first lap (2032 faults of the loop's thread). Now only those
# the loop reaches before the bookkeeping thread gets a processor to make them ready (26 to 265
# here, the machine busy with a test suite).
out=$("$zw" run -q -o "$tmp/ringfaults.zwc" -- "$dir/zwp_sites" ringfaults)
n=${out#ringfaults }
if [ "$n" -ge 0 ] 2>/dev/null && [ "$n" -lt 1024 ]; then
    echo "ok: the ring's pages are made ready off the program's thread: $n page faults in its loop"
else
    fail "the program's thread faults the ring's pages in: $out"
fi

# ---- the variables: a bad value is said, and the default used ----
for v in "ZW_RING=1000" "ZW_RING=8" "ZW_BOOKKEEPING=sometimes"; do
    env "$v" "$zw" run -q -o "$tmp/bad.zwc" -- "$prog" mark 2>"$tmp/bad.err" || fail "$v: zw run"
    grep -q "zw: preload: warning: ${v%%=*}=" "$tmp/bad.err" && echo "ok: $v: a warning" ||
        fail "$v: no warning"
done

finish "the bookkeeping thread"

#!/bin/sh
# tests/preload/test_env.sh ZW TESTDIR - a program run by `zw run` sees the environment it has
# when run plain: LD_PRELOAD without libzwpreload.so (unset if it named nothing else, the user's
# own libraries kept as written), none of the variables the library reads (ZW_OUTPUT, ZW_NFRAME,
# ZW_FOLLOW_*..., whoever set them), the in-process library's (ZW_MALLOC) kept; main's envp is
# environ. A program that copies its environment allocates as much as untraced. A child started
# by the traced program is traced and sees what it sees plain too. The other ways children
# start (system, popen, posix_spawn, execve with an environment of its own...) are in
# tests/preload/test_preload.sh.
set -u
zw=$1
dir=$2
. "$(dirname "$0")/../lib.sh"
show=$dir/zwp_envshow
lib=$dir/libzwp_envlib.so

# stat KEY FILE: the value of KEY in `zw stat --json --only FILE`
stat() {
    "$zw" stat --json --only "$2" | sed -E "s/^\{[^{]*\"$1\": (null|true|false|[0-9.]+|\"[a-z_]*\").*/\1/"
}

# same WHAT: $tmp/plain and $tmp/traced are equal (and not empty)
same() {
    if [ -s "$tmp/plain" ] && diff "$tmp/plain" "$tmp/traced" >/dev/null; then
        echo "ok: $1: the program sees the same under zw run ($(grep -c . "$tmp/plain") lines)"
    else
        fail "$1: the program's environment differs under zw run (< plain, > zw run)"
        diff "$tmp/plain" "$tmp/traced"
    fi
}

# seen WHAT PRELOAD [VAR=VALUE...]: envshow plain with the user's LD_PRELOAD=PRELOAD ("" for none)
# and VARs, against zw run given the same; VARs named ZW_ but ZW_MALLOC are for zw, so the plain
# run has them not
seen() {
    what=$1
    preload=$2
    shift 2
    plain_vars=$(for v in "$@"; do case $v in ZW_MALLOC=*) echo "$v" ;; ZW_*) ;; *) echo "$v" ;; esac; done)
    # shellcheck disable=SC2046,SC2086
    if [ -n "$preload" ]; then
        env -u LD_PRELOAD LD_PRELOAD="$preload" $plain_vars "$show" >"$tmp/plain" || fail "$what: plain run"
        env -u LD_PRELOAD LD_PRELOAD="$preload" "$@" "$zw" run -q -o "$tmp/seen.zwc" -- "$show" >"$tmp/traced" ||
            fail "$what: zw run: status $?"
    else
        env -u LD_PRELOAD $plain_vars "$show" >"$tmp/plain" || fail "$what: plain run"
        env -u LD_PRELOAD "$@" "$zw" run -q -o "$tmp/seen.zwc" -- "$show" >"$tmp/traced" ||
            fail "$what: zw run: status $?"
    fi
    [ -s "$tmp/seen.zwc" ] || fail "$what: no capture written"
    rm -f "$tmp/seen.zwc"*
    same "$what"
}

seen "no LD_PRELOAD" ""
seen "the user's LD_PRELOAD" "$lib"
seen "the user's LD_PRELOAD of two libraries, space-separated" "$lib $lib"
seen "the user's LD_PRELOAD with a separator after it" "$lib:"
seen "the user's own ZW_NFRAME and ZW_FLUSH_MS (zw's) and ZW_MALLOC (the program's)" "$lib" \
    ZW_NFRAME=8 ZW_FLUSH_MS=50 ZW_MALLOC=default
grep -q '^ZW_MALLOC default$' "$tmp/traced" && echo "ok: ZW_MALLOC stays the program's" ||
    fail "ZW_MALLOC was taken from the program"
seen "the user's ZW_DEBUG_CACHE, ZW_DEBUG_CACHE_MAX, ZW_BOOKKEEPING, ZW_RING and ZW_TABLE_AHEAD (zw's)" "" \
    ZW_DEBUG_CACHE="$tmp/cache" ZW_DEBUG_CACHE_MAX=1G ZW_BOOKKEEPING=inline ZW_RING=1024 ZW_TABLE_AHEAD=0

# an empty environment: zw run's variables only, all taken
env -i "$show" >"$tmp/plain" || fail "empty environment: plain run"
env -i "$zw" run -q -o "$tmp/empty.zwc" -- "$show" >"$tmp/traced" || fail "empty environment: zw run"
same "an empty environment"
grep -q '^environ 0$' "$tmp/traced" && echo "ok: an empty environment stays empty" ||
    fail "an empty environment: $(grep '^environ' "$tmp/traced")"

# a child of the traced program (sh runs it: fork, then execve) is traced and sees the same
env -u LD_PRELOAD LD_PRELOAD="$lib" sh -c "'$show'; echo child status \$?" >"$tmp/plain"
env -u LD_PRELOAD LD_PRELOAD="$lib" "$zw" run -q -o "$tmp/child.zwc" -- \
    sh -c "'$show'; echo child status \$?" >"$tmp/traced" || fail "child: zw run"
same "a child of the traced program"
"$zw" stat "$tmp/child.zwc" >"$tmp/child.txt"
grep -q '^capture set .*: 2 processes' "$tmp/child.txt" && grep -q " $show\$" "$tmp/child.txt" &&
    echo "ok: the child is traced" || { fail "the child is not traced"; cat "$tmp/child.txt"; }

# a large environment (2000 more entries: the child's is mapped, not built on the hook's stack)
big=$(seq 2000 | sed 's/^/ZWP_BIG_/; s/$/=some-value/' | tr '\n' ' ')
# shellcheck disable=SC2086
env $big sh -c "'$show'" >"$tmp/plain"
# shellcheck disable=SC2086
env $big "$zw" run -q -o "$tmp/big.zwc" -- sh -c "'$show'" >"$tmp/traced" || fail "large: zw run"
same "a child in a large environment"
"$zw" stat "$tmp/big.zwc" | grep -q '^capture set .*: 2 processes' &&
    echo "ok: a child in a large environment is traced" || fail "a child in a large environment is not traced"

# vfork children executing in it (execl): their environments and argument vectors on their stack,
# nothing left mapped in the parent (each environment would be about 20 KiB) nor allocated in its
# heap (each vector 32 bytes), and each child traced. No flush of samples meanwhile: compressing
# them allocates in the parent's heap, and on a loaded machine the 22 children outlast a second
# shellcheck disable=SC2086
env $big ZW_FLUSH_MS=3600000 "$zw" run -q -o "$tmp/vforks.zwc" -- "$dir/zwp_exec" vforks 20 >"$tmp/vforks.txt"
grew=$(sed -n 's/^grew //p' "$tmp/vforks.txt")
heap=$(sed -n 's/^heap grew //p' "$tmp/vforks.txt")
n=$(ls "$tmp"/vforks.zwc* | wc -l)
if [ -n "$grew" ] && [ "$grew" -lt 65536 ] && [ -n "$heap" ] && [ "$heap" -lt 320 ] && [ "$n" -eq 23 ]; then
    echo "ok: 22 vfork children in a large environment traced, the parent grew by $grew bytes, its heap by $heap"
else
    fail "vfork children in a large environment: the parent grew by '$grew' bytes, its heap by '$heap', $n captures (want < 65536, < 320, 23)"
fi

# a setting the user gave zw reaches the children, though the program does not see it
ZW_LEAK_CHECK=0 "$zw" run -q -o "$tmp/nocheck.zwc" -- sh -c "'$show' >/dev/null" ||
    fail "ZW_LEAK_CHECK=0: zw run"
# (a set none of whose processes scanned its exit set has no leak figures)
"$zw" stat "$tmp/nocheck.zwc" | grep -q '^capture set .*: 2 processes' &&
    "$zw" stat --json "$tmp/nocheck.zwc" | grep -q '"leaks": null, "processes"' &&
    echo "ok: ZW_LEAK_CHECK=0 holds in the child too" ||
    fail "ZW_LEAK_CHECK=0 did not reach the child: $("$zw" stat --json "$tmp/nocheck.zwc" | grep -o '"leaks": {[^}]*')"

# allocations that depend on the environment: one strdup per entry, nothing else
for preload in "" "$lib"; do
    if [ -n "$preload" ]; then set -- env -u LD_PRELOAD LD_PRELOAD="$preload"; else set -- env -u LD_PRELOAD; fi
    plain=$("$@" "$show" copy | sed -n 's/^copied //p')
    traced=$("$@" "$zw" run -q -o "$tmp/copy.zwc" -- "$show" copy | sed -n 's/^copied //p')
    allocs=$(stat allocations "$tmp/copy.zwc")
    rm -f "$tmp/copy.zwc"*
    if [ -n "$plain" ] && [ "$plain" = "$traced" ] && [ "$allocs" = "$plain" ]; then
        echo "ok: copying the environment${preload:+ (user's LD_PRELOAD)}: $allocs allocations, one per entry as plain"
    else
        fail "copying the environment${preload:+ (user's LD_PRELOAD)}: $plain entries plain, $traced under zw run, $allocs allocations traced"
    fi
done

finish "environment"

#!/bin/sh
# tests/preload/test_debug_cache.sh ZW - the debug cache (docs/trace.md#symbols): a library whose
# separate debug file (found by its .gnu_debuglink, beside it) has zlib-compressed sections, as
# Debian's have. Traced with the cache off, then on: the same frame, the copy written once, named
# by the build ID, with no compressed section left; read again, not rewritten; a damaged copy and
# an unwritable cache fall back to the file itself; the size limit; the default directories; the
# variable kept from the program's sight.
zw=$1
cc=${CC:-cc}
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1

cat >dbglib.c <<'EOF'
#include <stdlib.h>
void *dbg_make(size_t n)
{
    return malloc(n); /* line 4 */
}
EOF
cat >prog.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
void *dbg_make(size_t n);
static void *kept;
int main(void)
{
    kept = dbg_make(4242);
    const char *v = getenv("ZW_DEBUG_CACHE");
    printf("%s\n", v != NULL ? v : "unset");
    return 0;
}
EOF
if ! "$cc" -g -O0 -fPIC -shared -Wl,--build-id -o libdbg.so dbglib.c ||
    ! objcopy --only-keep-debug --compress-debug-sections=zlib libdbg.so libdbg.debug ||
    ! objcopy --strip-debug --add-gnu-debuglink=libdbg.debug libdbg.so ||
    ! "$cc" -g -O0 -o prog prog.c -L. -ldbg -Wl,-rpath,'$ORIGIN'; then
    fail "could not build the test library and program with $cc and objcopy"
    finish test_debug_cache
fi
id=$(readelf -n libdbg.so | awk '/Build ID/ { print $3 }')
[ -n "$id" ] || fail "libdbg.so has no build ID"
readelf -S -W libdbg.debug | grep ' \.debug_info ' | grep -q ' C ' ||
    fail "objcopy left libdbg.debug's .debug_info uncompressed"

# the frame of the leaked block, as zw leaks prints it
frame() {
    "$zw" leaks "$1" 2>/dev/null | grep -o 'dbglib\.c:[0-9]* (dbg_make)' | head -1
}
# run NAME CACHE: traces prog with ZW_DEBUG_CACHE=CACHE (unset if CACHE is "-")
run() {
    if [ "$2" = - ]; then
        "$zw" run -q -o "$1.zwc" -- ./prog >"$1.out" 2>"$1.err"
    else
        ZW_DEBUG_CACHE=$2 "$zw" run -q -o "$1.zwc" -- ./prog >"$1.out" 2>"$1.err"
    fi || { fail "zw run ($1): status $?"; cat "$1.err"; }
}

run off off
expect "the frame without the cache" "$(frame off.zwc)" "dbglib.c:4 (dbg_make)"
expect "what the program sees of ZW_DEBUG_CACHE" "$(cat off.out)" unset

run first "$tmp/cache"
copy="$tmp/cache/$id.debug"
expect "the frame when the copy is made" "$(frame first.zwc)" "dbglib.c:4 (dbg_make)"
[ -f "$copy" ] || fail "no copy $id.debug in the cache: $(ls "$tmp/cache" 2>&1)"
expect "build ID of the copy" "$(readelf -n "$copy" 2>/dev/null | awk '/Build ID/ { print $3 }')" "$id"
expect "compressed sections left in the copy" \
    "$(readelf -S -W "$copy" | grep -c ' \.debug_[a-z_]* .* C ')" 0
ls -a "$tmp/cache" | grep -q inflating && fail "a temporary file was left in the cache"
stamp=$(stat -c '%i %Y' "$copy")

sleep 1
run again "$tmp/cache"
expect "the frame from the copy" "$(frame again.zwc)" "dbglib.c:4 (dbg_make)"
expect "the copy, read again (inode, mtime)" "$(stat -c '%i %Y' "$copy")" "$stamp"

# a copy that is not the module's debug file: ignored, then made again
cp prog "$copy"
run damaged "$tmp/cache"
expect "the frame past a damaged copy" "$(frame damaged.zwc)" "dbglib.c:4 (dbg_make)"
expect "build ID of the remade copy" \
    "$(readelf -n "$copy" 2>/dev/null | awk '/Build ID/ { print $3 }')" "$id"
printf 'garbage' >"$copy"
run garbage "$tmp/cache"
expect "the frame past a copy that is not ELF" "$(frame garbage.zwc)" "dbglib.c:4 (dbg_make)"

# a cache that cannot be made: the file itself
: >"$tmp/plainfile"
run unwritable "$tmp/plainfile/cache"
expect "the frame when the cache cannot be made" "$(frame unwritable.zwc)" "dbglib.c:4 (dbg_make)"

# ---- the cache's size limit (ZW_DEBUG_CACHE_MAX): after a copy is written, the copies read
# longest ago go until the rest fits; never the one just written; other files stay. A run may
# write more copies than libdbg's (libc's, where libc6-dbg is installed): the limits are set
# from what a run writes into an empty cache ----
export ZW_DEBUG_CACHE_MAX=0
run measure "$tmp/measure"
unset ZW_DEBUG_CACHE_MAX
written=0
for f in "$tmp/measure"/*.debug; do
    written=$((written + $(stat -c %s "$f")))
done
[ "$written" -gt 0 ] || fail "a run into an empty cache wrote no copy"
lim=$tmp/lim
mkdir "$lim"
head -c 300000 /dev/zero >"$lim/aaaa.debug"
head -c 300000 /dev/zero >"$lim/bbbb.debug"
head -c 300000 /dev/zero >"$lim/notes.txt"
touch -a -d 2001-01-01 "$lim/aaaa.debug"
touch -a -d 2002-01-01 "$lim/bbbb.debug"
touch -a -d 2000-01-01 "$lim/notes.txt"
# limited NAME MAX: run NAME in $lim with ZW_DEBUG_CACHE_MAX=MAX, its copies made anew
limited() {
    for f in "$tmp/measure"/*.debug; do
        rm -f "$lim/${f##*/}"
    done
    export ZW_DEBUG_CACHE_MAX="$2"
    run "$1" "$lim"
    unset ZW_DEBUG_CACHE_MAX
    expect "$1: the frame" "$(frame "$1.zwc")" "dbglib.c:4 (dbg_make)"
}
# left: which of the cache's other files are left
left() {
    for f in aaaa.debug bbbb.debug notes.txt; do
        [ -f "$lim/$f" ] && printf '%s ' "$f"
    done
}
limited unlimited 0
expect "no limit (0): every copy stays" "$(left)" "aaaa.debug bbbb.debug notes.txt "
limited big $((written + 700000))
expect "under the limit: every copy stays" "$(left)" "aaaa.debug bbbb.debug notes.txt "
[ -f "$lim/$id.debug" ] || fail "under the limit: the new copy is not in the cache"
limited bad lots
expect "a limit that is not a size (the default, 2G): every copy stays" "$(left)" \
    "aaaa.debug bbbb.debug notes.txt "
grep -q "ZW_DEBUG_CACHE_MAX='lots' is not a size" bad.err &&
    echo "ok: a limit that is not a size: zw run says so" ||
    fail "a limit that is not a size: no warning: $(cat bad.err)"
limited over $((written + 400000))
expect "over the limit: the copy read longest ago went" "$(left)" "bbbb.debug notes.txt "
[ -f "$lim/$id.debug" ] || fail "over the limit: the new copy is not in the cache"
# a copy read has its access time set, whatever the mount's atime policy
touch -a -d 2003-01-01 "$lim/$id.debug"
run hit "$lim"
[ "$(stat -c %X "$lim/$id.debug")" -gt "$(date -d 2020-01-01 +%s)" ] &&
    echo "ok: a copy read has its access time set" ||
    fail "a copy read kept its access time: $(stat -c %x "$lim/$id.debug")"
limited tiny 1K
expect "a limit below what a run writes: every older copy went" "$(left)" "notes.txt "
n=$(ls "$lim" | grep -c '\.debug$')
[ "$n" -ge 1 ] && echo "ok: a limit below what a run writes: the last copy written stays" ||
    fail "a limit below what a run writes: no copy left"

# the default directories
mkdir home xdg
HOME=$tmp/home run home -
[ -f "$tmp/home/.cache/zerowaste/debug/$id.debug" ] || fail "no copy under \$HOME/.cache"
XDG_CACHE_HOME=$tmp/xdg run xdg -
[ -f "$tmp/xdg/zerowaste/debug/$id.debug" ] || fail "no copy under \$XDG_CACHE_HOME"
expect "the frame with the default cache" "$(frame xdg.zwc)" "dbglib.c:4 (dbg_make)"

finish test_debug_cache

#!/bin/sh
# tests/zw/test_report.sh ZW DATADIR NODE_MODULES OUTDIR SANITIZE [ZW_DEMO PROGDIR] - zw report:
# its errors (bad usage, a damaged capture, an unwritable output: a clear message, a non-zero
# status and no file left behind), then its pages opened in headless Chromium (test_report.js):
# the stored capture of examples/zw-demo (data/demo.zwc: nothing is preloaded, so this part also
# runs in the sanitizer build; data/demo-1.1.zwc too, a capture of the format before steps), and
# in the release build a fresh capture of zw-demo, whose screenshot is OUTDIR/report.png
# (docs/report.png is a copy), one of sort (a program without debug information) and a process
# tree (zwp_fork). On each capture but the last, the page's rows must be zw top's and zw compare's.
set -u
zw=$1
data=$2
modules=$3
outdir=$4
sanitize=$5
demo=${6:-}
progdir=${7:-}
here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../lib.sh"
# no_file DIR: nothing but captures in DIR (no report, no temporary file)
no_file() {
    left=$(find "$1" -type f ! -name '*.zwc' ! -name '*.zwc.[0-9]*' ! -name out ! -name err)
    if [ -n "$left" ]; then
        echo "FAIL: a failed report left files behind: $left"
        fails=$((fails + 1))
    else
        echo "ok: no file left behind"
    fi
}
# browser PAGE SHOT ARGS...: the page in Chromium (test_report.js)
browser() {
    page=$1
    shift
    if node "$here/test_report.js" "$modules" "$page" "$@"; then
        echo "ok: $page in Chromium"
    else
        echo "FAIL: $page in Chromium"
        fails=$((fails + 1))
    fi
}

# ---- errors ----
check 0 '' report --help
grep -q '^usage: zw report' "$tmp/out" || { echo "FAIL: zw report --help"; fails=$((fails + 1)); }
check 2 'no capture file given' report
check 2 "unknown option '--bogus'" report --bogus "$data/demo.zwc"
check 2 'one too many' report "$data/demo.zwc" "$data/demo.zwc"
check 2 'needs a value' report "$data/demo.zwc" -o
check 1 "cannot open '$tmp/missing.zwc'" report "$tmp/missing.zwc"
cp "$data/demo.zwc" "$tmp/flip.zwc"
size=$(stat -c %s "$tmp/flip.zwc")
printf '\377\377\377\377' | dd of="$tmp/flip.zwc" bs=1 seek=20 conv=notrunc 2>/dev/null
check 1 "zw: error: cannot read capture '$tmp/flip.zwc': .*damaged" report "$tmp/flip.zwc"
no_file "$tmp"
# a damaged process of a set fails the whole report: one missing would pass for the whole tree
cp "$data/demo.zwc" "$tmp/tree.zwc"
cp "$tmp/flip.zwc" "$tmp/tree.zwc.1"
check 1 "cannot read capture '$tmp/tree.zwc.1'" report "$tmp/tree.zwc" -o "$tmp/tree.html"
no_file "$tmp"
check 1 "cannot create '$tmp/no/such/dir/r.html'" report "$data/demo.zwc" -o "$tmp/no/such/dir/r.html"
# an existing report is replaced only by a whole one
echo keep >"$tmp/old.html"
check 1 'damaged' report "$tmp/flip.zwc" -o "$tmp/old.html"
[ "$(cat "$tmp/old.html")" = keep ] && echo "ok: a failed report leaves the old one alone" ||
    { echo "FAIL: a failed report changed the old one"; fails=$((fails + 1)); }
rm -f "$tmp/old.html" "$tmp"/*.zwc*
# a damaged section is skipped, the page made of the rest, the loss said
cp "$data/demo.zwc" "$tmp/flip2.zwc"
printf '\377\377\377\377' | dd of="$tmp/flip2.zwc" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
check 0 'is damaged: 1 section skipped' report "$tmp/flip2.zwc" -o "$tmp/flip2.html"
# -o -: the page on standard output, no file named '-'
check 0 '' report "$data/demo.zwc" -o -
head -c 15 "$tmp/out" | grep -qi '<!doctype html>' && ok=1 || ok=0
[ "$ok" = 1 ] && [ ! -e ./- ] && echo "ok: report -o - is standard output" ||
    { echo "FAIL: report -o -"; fails=$((fails + 1)); }
rm -f "$tmp/flip2.html" "$tmp"/*.zwc*

# ---- the stored capture of zw-demo, in Chromium ----
check 0 '' report "$data/demo.zwc" -o "$tmp/demo.html"
grep -q "$tmp/demo.html: report of" "$tmp/out" || { echo "FAIL: zw report prints the page's path"; fails=$((fails + 1)); }
grep -q 'src="http\|href="http' "$tmp/demo.html" && { echo "FAIL: the page links outside"; fails=$((fails + 1)); }
lines="main.c:61 main.c:51 main.c:32 main.c:76"
funcs="FUNC=smoothed_sum FUNC=push FUNC=remember FUNC=main"
# shellcheck disable=SC2086
browser "$tmp/demo.html" "$outdir/report-stored.png" $lines $funcs ZW="$zw" CAPTURE="$data/demo.zwc" NODEBUG=none
# a capture of format 1.1: no per-site temporary counts, no steps (a click shows a kept set)
check 0 '' report "$data/demo-1.1.zwc" -o "$tmp/demo-1.1.html"
grep -q '"temporary": null' "$tmp/demo-1.1.html" || { echo "FAIL: 1.1: temporary by site"; fails=$((fails + 1)); }
# shellcheck disable=SC2086
browser "$tmp/demo-1.1.html" "$outdir/report-1.1.png" $lines $funcs ZW="$zw" CAPTURE="$data/demo-1.1.zwc"

# a capture cut short (the process died while writing it) is no error: the page says so
head -c 6000 "$data/demo.zwc" >"$tmp/cut.zwc"
check 0 '' report "$tmp/cut.zwc"
browser "$tmp/cut.html" "$outdir/report-cut.png" INCOMPLETE

# ---- fresh captures (release build: the sanitizer build preloads nothing) ----
if [ "$sanitize" != 1 ] && [ "$sanitize" != ON ] && [ -n "$demo" ]; then
    "$zw" run -q -o "$tmp/zw-demo.zwc" -- "$demo" >/dev/null || { echo "FAIL: zw run zw-demo"; fails=$((fails + 1)); }
    check 0 '' report "$tmp/zw-demo.zwc"
    # shellcheck disable=SC2086
    browser "$tmp/zw-demo.html" "$outdir/report.png" $lines $funcs ZW="$zw" CAPTURE="$tmp/zw-demo.zwc" LEAKS NODEBUG=none
    # a program without debug information: the frames of its module without a line are told
    # apart by their offsets, as zw top tells them apart, and the page agrees with zw; a note names
    # sort's module and how to get its debug information
    seq 1 3000 | sort -r >"$tmp/lines.txt"
    "$zw" run -q -o "$tmp/sort.zwc" -- sort "$tmp/lines.txt" >/dev/null || { echo "FAIL: zw run sort"; fails=$((fails + 1)); }
    n=$("$zw" top --limit 0 "$tmp/sort.zwc" | grep -c '/sort+0x')
    [ "$n" -ge 2 ] && echo "ok: zw top lists $n places of sort without a line" ||
        { echo "FAIL: zw top lists $n places of sort without a line, not 2 or more"; fails=$((fails + 1)); }
    check 0 '' report "$tmp/sort.zwc"
    browser "$tmp/sort.html" "$outdir/report-sort.png" ZW="$zw" CAPTURE="$tmp/sort.zwc" NODEBUG=/sort
    # a program with blocks of each kind of leak (tests/preload/leaky.c): the Leaks panel's kind
    # selector shows each kind's rows, those of zw leaks --kind
    "$zw" run -q -o "$tmp/leaky.zwc" -- "$progdir/zwp_leaky" "$progdir/libzwp_leaky_lib.so" >/dev/null ||
        { echo "FAIL: zw run zwp_leaky"; fails=$((fails + 1)); }
    check 0 '' report "$tmp/leaky.zwc"
    browser "$tmp/leaky.html" "$outdir/report-leaky.png" FUNC=main ZW="$zw" CAPTURE="$tmp/leaky.zwc" LEAKS=all
    "$zw" run -q --follow-fork -o "$tmp/fork.zwc" -- "$progdir/zwp_fork" >/dev/null ||
        { echo "FAIL: zw run zwp_fork"; fails=$((fails + 1)); }
    check 0 '' report "$tmp/fork.zwc" -o "$tmp/fork.html"
    grep -q '(2 processes, ' "$tmp/out" || { echo "FAIL: the fork's report has 2 processes"; fails=$((fails + 1)); }
    browser "$tmp/fork.html" "$outdir/report-fork.png" PROCESSES=2 FUNC=main
    # a shell whose command holds the memory, with a command line of 600 characters: the page
    # opens on the command (the largest peak) and stays as wide as the window
    long=$(printf 'word%.0s ' $(seq 1 120))
    "$zw" run -q -o "$tmp/shell.zwc" -- sh -c "$progdir/zwp_readable >/dev/null; : $long" ||
        { echo "FAIL: zw run sh -c"; fails=$((fails + 1)); }
    check 0 '' report "$tmp/shell.zwc" -o "$tmp/shell.html"
    browser "$tmp/shell.html" "$outdir/report-shell.png" PROCESSES=2 LARGEST=zwp_readable
else
    echo "skipped: fresh captures (the sanitizer build does not preload libzwpreload.so)"
fi

finish "zw report"

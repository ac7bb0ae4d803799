#!/bin/sh
# tests/zw/test_cli.sh ZW DATADIR SANITIZE - every error path of the zw command: each gets a
# "zw: error: ..." line and status 2 (bad usage) or 1 (failure); every subcommand has --help.
# Works on stored captures (data/demo.zwc from examples/zw-demo, data/snapshot.zws), so it runs
# in the sanitizer build too; the `zw run` cases that preload a program are skipped there.
set -u
zw=$1
data=$2
sanitize=$3
. "$(dirname "$0")/../lib.sh"
cap="$data/demo.zwc"

# ---- usage errors: status 2 ----
check 2 'zw: error: no command given'
check 2 "zw: error: unknown command 'frobnicate'" frobnicate
for cmd in run stat top leaks peak compare; do
    check 0 '' "$cmd" --help
    grep -q "^usage: zw $cmd" "$tmp/out" || { echo "FAIL: zw $cmd --help"; fails=$((fails + 1)); }
    check 2 "zw: error: unknown option '--bogus'" "$cmd" --bogus
done
check 0 '' --help
check 2 'zw: error: no program to run' run
check 2 'zw: error: no program to run' run -o x.zwc --
check 2 "needs a value" run -o
check 2 "is not a number" run --nframe 0 -- true
check 2 "is not a number" run --nframe 2000 -- true
check 2 "is not a number" run --interval abc -- true
check 2 'no capture file given' stat
check 2 'one too many' stat "$cap" "$cap"
check 2 'no capture file given' top
check 2 "unknown group 'bogus'" top --group bogus "$cap"
check 2 'cannot be used with --group traceback' top --group traceback --cumulative "$cap"
check 2 'is not a number' top --limit -1 "$cap"
check 2 "is neither peak, exit, a mark" top --at nowhere "$cap"
grep -q "^try 'zw top --help'" "$tmp/err" || { echo "FAIL: --at's usage error hints at zw --help"; fails=$((fails + 1)); }
check 2 'no capture file given' leaks
check 2 'no capture file given' peak
check 2 'no capture file given' compare
check 2 'one capture needs --from and --to' compare "$cap"
check 2 'one capture needs --from and --to' compare "$cap" --from start
check 2 '--from and --to compare two moments of one capture' compare "$cap" "$cap" --from start
check 2 'at most two captures' compare "$cap" "$cap" "$cap"
check 2 "is neither peak, exit, a mark" compare "$cap" --from start --to nowhere
# one option loop for every command (tools/zw/options.c): each command takes its own options only,
# values as the next argument or after '=', -h anywhere among the options
for cmd in export report; do
    check 0 '' "$cmd" --help
    grep -q "^usage: zw $cmd" "$tmp/out" || { echo "FAIL: zw $cmd --help"; fails=$((fails + 1)); }
    check 2 "zw: error: unknown option '--bogus'" "$cmd" --bogus
done
check 0 '' top --limit 3 -h "$cap"
grep -q '^usage: zw top' "$tmp/out" || { echo "FAIL: zw top -h among options"; fails=$((fails + 1)); }
check 2 "--at takes exit or a mark's label" leaks --at peak "$cap"
check 2 "unknown option '--at=exit'" peak --at=exit "$cap"
check 2 "unknown option '--from'" top --from peak "$cap"
check 2 "unknown option '--json=1'" top --json=1 "$cap"
check 2 "unknown option '--group'" stat --group lineno "$cap"
check 2 "option '--group' needs a value" top "$cap" --group
check 2 "unknown group ''" top --group= "$cap"
check 2 "'' is not a number" top --limit= "$cap"
check 2 "unknown format 'svg' (pprof, folded or massif)" export --format=svg "$cap"
check 2 "unknown option '-'" run - true
check 2 "unknown option '-x'" run -x -- true
check 2 'one capture at a time' report "$cap" "$cap"
# leaks groups by traceback by default: the message does not blame a --group never given
check 2 "--cumulative needs --group lineno or filename ('zw leaks' groups by traceback unless told)" \
    leaks --cumulative "$cap"
grep -q "^try 'zw leaks --help'" "$tmp/err" || { echo "FAIL: leaks --cumulative hint"; fails=$((fails + 1)); }
check 0 '' leaks --cumulative --group lineno "$cap"

# ---- failures: status 1 ----
check 1 "zw: error: cannot open '$tmp/missing.zwc'" stat "$tmp/missing.zwc"
printf 'hello, not a capture at all, just text\n' >"$tmp/text.zwc"
check 1 'not a zerowaste file (bad magic number at offset 0)' stat "$tmp/text.zwc"
check 1 'it is a snapshot' stat "$data/snapshot.zws"
head -c 20 "$cap" >"$tmp/short.zwc"
check 1 'file truncated: 20 bytes' stat "$tmp/short.zwc"
# a flipped byte in the file header refuses the file
cp "$cap" "$tmp/flip.zwc"
printf '\377' | dd of="$tmp/flip.zwc" bs=1 seek=20 conv=notrunc 2>/dev/null
check 1 'header damaged' stat "$tmp/flip.zwc"
# in a section header or a payload: the rest is read, the loss said
for off in 40 200 2000; do
    cp "$cap" "$tmp/flip.zwc"
    printf '\377' | dd of="$tmp/flip.zwc" bs=1 seek=$off conv=notrunc 2>/dev/null
    check 0 "zw: warning: capture '$tmp/flip.zwc' is damaged: 1 section skipped, what it held is missing (section" \
        stat "$tmp/flip.zwc"
done
check 0 'is damaged: 1 section skipped' top "$tmp/flip.zwc"
check 0 'is damaged: 1 section skipped' leaks "$tmp/flip.zwc"
# a file holding its header only: no made-up pid
head -c 32 "$cap" >"$tmp/header.zwc"
check 0 '' stat "$tmp/header.zwc"
grep -q '^pid  *unknown$' "$tmp/out" || { echo "FAIL: header-only capture: pid"; cat "$tmp/out"; fails=$((fails + 1)); }
# a capture cut short loads, says so, and has no exit set
head -c 300 "$cap" >"$tmp/cut.zwc" # the process and sample sections, no live set
check 0 '' stat "$tmp/cut.zwc"
grep -q '(incomplete)' "$tmp/out" || { echo "FAIL: cut capture not said incomplete"; fails=$((fails + 1)); }
check 1 'has no exit set (the capture ends before its end section: the process was killed or the file was cut short)' leaks "$tmp/cut.zwc"
check 1 'has no live set taken at or before' top --at 0 "$tmp/cut.zwc"
# bytes after END
cp "$cap" "$tmp/tail.zwc"
printf 'x' >>"$tmp/tail.zwc"
check 1 'bytes after the end section' stat "$tmp/tail.zwc"

# ---- the good paths print what they should ----
check 0 '' stat --json "$cap"
for key in allocations frees temporary bytes_allocated peak_bytes peak_time_s leaked_bytes \
    leaked_blocks duration_s; do
    grep -q "\"$key\": [0-9]" "$tmp/out" || { echo "FAIL: stat --json lacks $key"; fails=$((fails + 1)); }
done
check 0 '' stat --series "$cap"
head -1 "$tmp/out" | grep -q '^time_s	heap_bytes	heap_blocks	rss_bytes	allocations	frees	temporary	bytes_allocated	mmap_bytes$' ||
    { echo "FAIL: stat --series header"; fails=$((fails + 1)); }
[ "$(wc -l <"$tmp/out")" -gt 10 ] || { echo "FAIL: stat --series samples"; fails=$((fails + 1)); }
check 0 '' stat --series --json "$cap"
# what a capture is made of: the sections' bytes add up to the file's
new15="$(dirname "$0")/../fuzz/corpus/capture/demo-1.5-table-marks.zwc"
for f in "$cap" "$new15"; do
    check 0 '' stat --sections "$f"
    total=$(awk '$1 == "total" { print $2 }' "$tmp/out")
    [ "$total" = "$(wc -c <"$f" | tr -d ' ')" ] || { echo "FAIL: stat --sections total $total"; fails=$((fails + 1)); }
done
for s in table set 'site list' samples steps; do
    grep -q "^$s  " "$tmp/out" || { echo "FAIL: stat --sections of a 1.5 capture lacks $s"; fails=$((fails + 1)); }
done
check 0 '' stat --sections --json "$new15"
grep -q '"section": "table", "count": 1' "$tmp/out" || { echo "FAIL: stat --sections --json"; fails=$((fails + 1)); }
check 2 'cannot be given together' stat --sections --series "$cap"
check 1 "cannot read capture '$data/snapshot.zws': file kind 1" stat --sections "$data/snapshot.zws"
# a capture of format 1.6 (packed: one PACKED section) and one of 1.5 read alike
new16="$(dirname "$0")/../fuzz/corpus/capture/demo-1.6-packed.zwc"
check 0 '' stat --sections "$new16"
grep -q '^packed  ' "$tmp/out" || { echo "FAIL: stat --sections of a 1.6 capture lacks packed"; fails=$((fails + 1)); }
for f in "$new15" "$new16"; do
    check 0 '' stat --json "$f"
    ! grep -q 'damaged' "$tmp/err" || { echo "FAIL: $f: damaged"; cat "$tmp/err"; fails=$((fails + 1)); }
    grep -q '"allocations": 11017' "$tmp/out" || { echo "FAIL: $f: figures"; fails=$((fails + 1)); }
    check 0 '' leaks "$f"
    grep -q 'main.c:32 (remember)' "$tmp/out" || { echo "FAIL: $f: leaks"; fails=$((fails + 1)); }
    check 0 '' top --at 0.02 "$f"
    grep -q 'main.c:51 (push)' "$tmp/out" || { echo "FAIL: $f: a live set rebuilt from its steps"; fails=$((fails + 1)); }
done
# a capture of format 1.1 (before SERIES and the steps) still reads; times pick saved sets
check 0 '' stat --json "$data/demo-1.1.zwc"
grep -q '"allocations": 11017' "$tmp/out" || { echo "FAIL: 1.1 capture figures"; fails=$((fails + 1)); }
check 0 '' top --at 0.02 "$data/demo-1.1.zwc"
grep -q ': end set at 0.017 s' "$tmp/out" || { echo "FAIL: 1.1 capture: --at SECONDS picks a saved set"; fails=$((fails + 1)); }
# the live set at a time between marks, rebuilt from the steps
check 0 '' top --at 0.005 --json "$cap"
# past the end: an error naming the end, not the last set
check 1 "capture '$cap' ends at [0-9.]* s: there is no live set at 1000 s" top --at 1000 "$cap"
check 1 "ends at [0-9.]* s: there is no live set at 1000 s" top --at 1000 "$data/demo-1.1.zwc"
check 1 "ends at" compare "$cap" --from 0.001 --to 1000
check 2 "'-1' is neither peak, exit" top --at -1 "$cap"
check 1 "no capture of process 1 in the capture set" stat --pid 1 "$cap"
check 2 "'x' is not a number" stat --pid x "$cap"
check 0 '' leaks --json "$cap"
grep -q '"function": "remember", "symbol": "remember", "file": "[^"]*main.c", "line": [0-9]*, "module"' "$tmp/out" ||
    { echo "FAIL: leaks --json frame"; fails=$((fails + 1)); }
check 0 '' top --at grown --group filename "$cap"
check 0 '' top --cumulative --at 0.001 "$cap"
check 0 '' peak --limit 1 "$cap"
check 0 '' top --at allocations --json "$cap"
head -2 "$tmp/out" | grep -q '"bytes": 160000, "blocks": 10000, .*"function": "count_digits"' ||
    { echo "FAIL: top --at allocations: the 10000 digit buffers first"; fails=$((fails + 1)); }
check 1 'has no allocation sites' top --at allocations "$tmp/cut.zwc"
check 0 '' compare "$cap" --from start --to end --group traceback
check 0 '' compare "$cap" "$cap" --at peak --json
# the same options with '=' give the same output, and every command's defaults hold
"$zw" top --at grown --group filename --limit 2 --json "$cap" >"$tmp/a.json"
"$zw" top --at=grown --group=filename --limit=2 --json "$cap" >"$tmp/b.json"
cmp -s "$tmp/a.json" "$tmp/b.json" && grep -q '"line": 0' "$tmp/a.json" &&
    echo "ok: options with '=' are the same options" ||
    { echo "FAIL: top --at=grown --group=filename differs from --at grown --group filename"; fails=$((fails + 1)); }
"$zw" leaks --json "$cap" >"$tmp/a.json"
"$zw" top --at exit --group traceback --json "$cap" >"$tmp/b.json"
cmp -s "$tmp/a.json" "$tmp/b.json" && echo "ok: leaks is top --at exit --group traceback" ||
    { echo "FAIL: leaks differs from top --at exit --group traceback"; fails=$((fails + 1)); }
"$zw" peak --limit 0 "$cap" >"$tmp/a.txt"
"$zw" top --at peak --group traceback --limit 0 "$cap" >"$tmp/b.txt"
cmp -s "$tmp/a.txt" "$tmp/b.txt" && echo "ok: peak is top --at peak --group traceback" ||
    { echo "FAIL: peak differs from top --at peak --group traceback"; fails=$((fails + 1)); }
# JSON strings: quotes, backslashes and control characters escaped; '<' left as it is (only the
# report's data escapes it)
name=$(printf 'a"b\\c<d>\te.zwc')
cp "$cap" "$tmp/$name"
(cd "$tmp" && "$zw" stat --json "$name") >"$tmp/out"
grep -qF '{"capture": "a\"b\\c<d>\u0009e.zwc", ' "$tmp/out" && echo "ok: stat --json escapes the path" ||
    { echo "FAIL: stat --json path escaping:"; head -c 300 "$tmp/out"; fails=$((fails + 1)); }

# a capture of 1.4 KB whose one step claims 2^27 live blocks (tests/fuzz/regress): refused at
# once, within 1 GiB of address space (it took 4.2 GB and 25 s), and said so
huge="$data/../../fuzz/regress/capture/step-claims-2p27-blocks.zwc"
if [ "$sanitize" = 1 ] || [ "$sanitize" = ON ]; then
    check 1 'would hold more than 1140800 blocks' top --at 0.000001 "$huge"
else
    (ulimit -v 1048576 && "$zw" top --at 0.000001 "$huge") >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq 1 ] && grep -q 'would hold more than 1140800 blocks, the most zw rebuilds from a capture of this size' "$tmp/err" &&
        grep -q 'zw: warning: .*the peak set was not rebuilt' "$tmp/err"; then
        echo "ok: a step claiming 2^27 blocks is refused within 1 GiB"
    else
        echo "FAIL: a step claiming 2^27 blocks: status $rc"
        cat "$tmp/err"
        fails=$((fails + 1))
    fi
fi

# ---- zw run: output, program and status ----
if [ "$sanitize" = 1 ] || [ "$sanitize" = ON ]; then
    echo "skipped: zw run cases (the sanitizer build does not preload: ASan owns malloc)"
else
    check 1 "cannot create the capture '/nonexistent/dir/x.zwc'" run -o /nonexistent/dir/x.zwc -- true
    check 127 "zw: error: cannot run 'no-such-program-zw'" run -o "$tmp/r.zwc" -- no-such-program-zw
    check 3 'zw: capture' run -o "$tmp/r.zwc" -- sh -c 'exit 3'
    check 143 'zw: capture' run -o "$tmp/r.zwc" -- sh -c 'kill -TERM $$'
    ZW_PRELOAD=/nonexistent/libzwpreload.so check 1 'cannot find libzwpreload.so' run -- true
    # a command line with a newline and spaces stays on one line, as a shell would read it back
    check 0 '' run -q -o "$tmp/nl.zwc" -- sh -c 'x=1
exit 0' "a b" plain
    check 0 '' stat "$tmp/nl.zwc"
    grep -qxF "command          sh -c 'x=1\\nexit 0' 'a b' plain" "$tmp/out" ||
        { echo "FAIL: stat prints the command line on one line:"; cat "$tmp/out"; fails=$((fails + 1)); }
fi

finish "zw cli"

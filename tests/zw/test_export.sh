#!/bin/sh
# tests/zw/test_export.sh ZW DATADIR WORKDIR [SANITIZE] - zw export's three formats, decoded back by the
# peers' own tools, give zw stat's figures:
#   pprof   protoc --decode against Debian's profile.proto, and Go's pprof (built here from
#           golang-github-google-pprof-dev, offline) -raw: sums of alloc_objects, alloc_space,
#           inuse_objects, inuse_space = allocations, bytes_allocated, the set's blocks and bytes
#   massif  ms_print reads it; its peak snapshot and its largest total = peak_bytes
#   folded  an awk parser's sum = the metric's total
# plus inlined frames (data/inline.zwc: one location, several lines) and every error path: a
# usage error exits 2, a failure 1, and a failed export leaves no file behind. Works on stored
# captures only, so it runs in the sanitizer build too. Needs scripts/install-deps test: a
# missing tool fails the test, it never skips.
set -u
zw=$1
data=$2
work=$3
sanitize=${4:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passes=0
fails=0
demo="$data/demo.zwc"
inline="$data/inline.zwc"

ok() {
    echo "ok: $*"
    passes=$((passes + 1))
}
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
# expect WHAT GOT WANT
expect() {
    if [ "$2" = "$3" ]; then ok "$1 = $3"; else fail "$1: got '$2', want '$3'"; fi
}

# ---- the tools ----
proto=/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto
[ -f "$proto" ] || proto=$(dpkg -L golang-github-google-pprof-dev 2>/dev/null | grep '/proto/profile.proto$' | head -n 1)
for t in protoc ms_print go gzip awk; do
    command -v "$t" >/dev/null 2>&1 || { echo "FAIL: '$t' not found (scripts/install-deps test)"; exit 1; }
done
[ -n "$proto" ] && [ -f "$proto" ] ||
    { echo "FAIL: profile.proto not found (golang-github-google-pprof-dev; scripts/install-deps test)"; exit 1; }
# Go's pprof from Debian's sources, GOPATH mode, no network: a few seconds
mkdir -p "$work/gopprof"
work=$(cd "$work" && pwd) # Go wants an absolute GOCACHE
pprof="$work/gopprof/pprof"
if ! GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$work/gopprof/cache" GOFLAGS= GOPROXY=off \
    go build -o "$pprof" github.com/google/pprof >"$tmp/gobuild" 2>&1; then
    cat "$tmp/gobuild"
    echo "FAIL: cannot build Go's pprof from golang-github-google-pprof-dev"
    exit 1
fi

# ---- zw stat's figures ----
# json KEY FILE: the number of KEY in zw stat --json
json() {
    "$zw" stat --json "$2" | sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p"
}
allocations=$(json allocations "$demo")
bytes_allocated=$(json bytes_allocated "$demo")
peak_bytes=$(json peak_bytes "$demo")
leaked_bytes=$(json leaked_bytes "$demo")
leaked_blocks=$(json leaked_blocks "$demo")
peak_blocks=$("$zw" peak --json --limit 0 "$demo" | sed -n 's/.*"blocks": \([0-9]*\).*/\1/p' |
    awk '{ s += $1 } END { print s }')
echo "zw stat: allocations $allocations, bytes_allocated $bytes_allocated, peak $peak_bytes" \
    "in $peak_blocks blocks, leaked $leaked_bytes in $leaked_blocks blocks"
[ -n "$allocations" ] && [ -n "$peak_bytes" ] && [ -n "$leaked_bytes" ] && [ -n "$peak_blocks" ] ||
    { echo "FAIL: zw stat --json of '$demo' lacks figures"; exit 1; }

# ---- pprof ----
# decode FILE.pb.gz: protoc's text of the profile into $tmp/decoded
decode() {
    gzip -dc "$1" >"$tmp/profile.pb" || { fail "$1 is not gzip"; return 1; }
    protoc --proto_path="$(dirname "$proto")" --decode perftools.profiles.Profile \
        "$(dirname "$proto")/profile.proto" <"$tmp/profile.pb" >"$tmp/decoded" 2>"$tmp/protoc.err" ||
        { cat "$tmp/protoc.err"; fail "protoc --decode $1"; return 1; }
    # fields the schema does not know print as bare numbers
    if grep -qE '^ *[0-9]+:' "$tmp/decoded"; then fail "$1 has fields profile.proto lacks"; fi
    return 0
}
# The four sums of the samples' values: alloc_objects alloc_space inuse_objects inuse_space.
protoc_sums() {
    awk '/^sample \{/ { k = 0 } /^  value: / { s[k % 4] += $2; k++ }
        END { printf "%d %d %d %d\n", s[0], s[1], s[2], s[3] }' "$tmp/decoded"
}
pprof_sums() {
    "$pprof" -raw "$1" 2>"$tmp/pprof.err" |
        awk '/^ *[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+:/ { a += $1; b += $2; c += $3; d += $4 }
            END { printf "%d %d %d %d\n", a, b, c, d }'
}

"$zw" export --format pprof -o "$tmp/peak.pb.gz" "$demo" || fail "export pprof"
if decode "$tmp/peak.pb.gz"; then
    expect "pprof (protoc) peak sums" "$(protoc_sums)" \
        "$allocations $bytes_allocated $peak_blocks $peak_bytes"
    expect "pprof string_table[0]" "$(grep -m1 '^string_table:' "$tmp/decoded")" 'string_table: ""'
    grep -q '^sample_type' "$tmp/decoded" && grep -q '^mapping' "$tmp/decoded" &&
        grep -q '^location' "$tmp/decoded" && grep -q '^function' "$tmp/decoded" ||
        fail "pprof lacks sample types, mappings, locations or functions"
fi
expect "pprof (Go pprof -raw) peak sums" "$(pprof_sums "$tmp/peak.pb.gz")" \
    "$allocations $bytes_allocated $peak_blocks $peak_bytes"
"$pprof" -top "$tmp/peak.pb.gz" >"$tmp/top" 2>&1 && grep -q 'smoothed_sum' "$tmp/top" &&
    grep -q 'Type: inuse_space' "$tmp/top" || { cat "$tmp/top"; fail "pprof -top of the export"; }

"$zw" export --format pprof --at exit -o "$tmp/exit.pb.gz" "$demo" || fail "export pprof --at exit"
decode "$tmp/exit.pb.gz" &&
    expect "pprof (protoc) exit sums" "$(protoc_sums)" \
        "$allocations $bytes_allocated $leaked_blocks $leaked_bytes"
expect "pprof (Go pprof -raw) exit sums" "$(pprof_sums "$tmp/exit.pb.gz")" \
    "$allocations $bytes_allocated $leaked_blocks $leaked_bytes"
"$zw" export --format pprof --metric leaked "$demo" >"$tmp/leaked.pb.gz" || fail "pprof to stdout"
cmp -s "$tmp/leaked.pb.gz" "$tmp/exit.pb.gz" || fail "--metric leaked differs from --at exit"
"$zw" export --format pprof --metric allocations -o "$tmp/alloc.pb.gz" "$demo"
"$pprof" -top "$tmp/alloc.pb.gz" 2>&1 | grep -q 'Type: alloc_objects' ||
    fail "--metric allocations: default sample type not alloc_objects"

# inlined frames: make_buffer inlined into fill_buffers inlined into main is one location
"$zw" export --format pprof -o "$tmp/inline.pb.gz" "$inline" || fail "export pprof inline"
if decode "$tmp/inline.pb.gz"; then
    lines=$(awk '/^location \{/ { n = 0 } /^  line \{/ { n++ } /^\}/ { if (n > max) max = n }
        END { print max + 0 }' "$tmp/decoded")
    expect "most lines in one location of inline.zwc" "$lines" 3
fi
"$pprof" -raw "$tmp/inline.pb.gz" >"$tmp/raw" 2>&1
if awk '/ make_buffer .*inline.c:/ { m = NR } / fill_buffers .*inline.c:/ && m == NR - 1 { f = NR }
    / main .*inline.c:/ && f == NR - 1 { ok = 1 } END { exit !ok }' "$tmp/raw"; then
    ok "Go pprof shows make_buffer, fill_buffers, main at one address"
else
    cat "$tmp/raw"
    fail "Go pprof -raw lacks the inlined lines"
fi
grep -q '\[IN\]' "$tmp/raw" || fail "the mapping of inline.zwc is not marked has_inline_frames"

# ---- massif ----
"$zw" export --format massif -o "$tmp/massif.out" "$demo" || fail "export massif"
if ms_print "$tmp/massif.out" >"$tmp/ms" 2>"$tmp/ms.err" && [ ! -s "$tmp/ms.err" ]; then
    ok "ms_print reads the export"
else
    cat "$tmp/ms.err"
    fail "ms_print"
fi
# the snapshot table: "  n  time  total(B)  useful-heap(B) ..."
max_total=$(awk '/^ *[0-9]+ +[0-9,]+ +[0-9,]+ +[0-9,]+ +[0-9,]+ +[0-9,]+$/ {
    gsub(",", "", $3); if ($3 + 0 > m) m = $3 + 0 } END { print m + 0 }' "$tmp/ms")
expect "ms_print's largest snapshot" "$max_total" "$peak_bytes"
peak_num=$(sed -n 's/.*Detailed snapshots: \[.*[ \[]\([0-9]*\) (peak).*/\1/p' "$tmp/ms")
peak_total=$(awk -v n="$peak_num" '$1 == n && NF == 6 { gsub(",", "", $3); print $3; exit }' "$tmp/ms")
expect "ms_print's peak snapshot ($peak_num)" "$peak_total" "$peak_bytes"
ndetailed=$(grep -c '^heap_tree=\(detailed\|peak\)' "$tmp/massif.out")
expect "massif detailed snapshots (3 marks, peak, exit)" "$ndetailed" 5
grep -q '^ n1: 6400000 0x[0-9A-F]*: smoothed_sum (.*main.c:61)$' "$tmp/massif.out" ||
    fail "massif's peak tree lacks smoothed_sum at main.c:61"
# a capture cut short after its time series still has it; cut before, it has nothing to show
# (the first cut, by 500-byte steps, that keeps samples)
size=$(wc -c <"$demo")
cut_samples=0
for n in $(seq 1000 500 "$size"); do
    head -c "$n" "$demo" >"$tmp/cut.zwc"
    cut_samples=$("$zw" stat --json "$tmp/cut.zwc" | sed -E 's/^\{[^{]*"samples": ([0-9]+).*/\1/')
    [ "$cut_samples" -gt 0 ] && break
done
[ "$cut_samples" -gt 10 ] && "$zw" stat --json "$tmp/cut.zwc" | grep -q '^{"capture": [^{]*"complete": false' ||
    fail "no cut of the demo capture keeps samples ($cut_samples)"
"$zw" export --format massif -o "$tmp/cut.out" "$tmp/cut.zwc" && ms_print "$tmp/cut.out" >"$tmp/ms" &&
    grep -q "Number of snapshots: $cut_samples\$" "$tmp/ms" &&
    ok "massif of a capture cut short" || fail "massif of a capture cut short"
head -c 300 "$demo" >"$tmp/cut300.zwc"

# ---- folded ----
# sum FILE: the values of the folded lines, checking each line's shape
sum_folded() {
    awk '{ v = $NF; stack = $0; sub(/ [0-9]+$/, "", stack)
           if (v !~ /^[0-9]+$/ || stack == "" || stack ~ /;;/) { bad++; next } s += v }
         END { if (bad) print "malformed"; else print s + 0 }' "$1"
}
"$zw" export --format folded "$demo" >"$tmp/f.bytes" || fail "export folded"
expect "folded bytes (peak)" "$(sum_folded "$tmp/f.bytes")" "$peak_bytes"
grep -qx '__libc_start_call_main;main;smoothed_sum 6400000' "$tmp/f.bytes" ||
    fail "folded lacks the peak line of smoothed_sum"
"$zw" export --format folded --metric allocations -o "$tmp/f.alloc" "$demo"
expect "folded allocations" "$(sum_folded "$tmp/f.alloc")" "$allocations"
"$zw" export --format folded --metric leaked -o "$tmp/f.leaked" "$demo"
expect "folded leaked" "$(sum_folded "$tmp/f.leaked")" "$leaked_bytes"
"$zw" export --format folded --at exit -o "$tmp/f.exit" "$demo"
cmp -s "$tmp/f.exit" "$tmp/f.leaked" || fail "--at exit differs from --metric leaked"
"$zw" export --format folded --at grown -o "$tmp/f.grown" "$demo"
expect "folded at mark grown" "$(sum_folded "$tmp/f.grown")" 2153152
# the end of the capture, after the last step: the live set rebuilt from the steps is the exit set
end=$("$zw" export --format folded --at 1000 "$demo" 2>&1 | sed -n 's/.* ends at \([0-9.]*\) s: .*/\1/p')
"$zw" export --format folded --at "$end" -o "$tmp/f.secs" "$demo"
cmp -s "$tmp/f.secs" "$tmp/f.exit" || fail "--at $end (the end) is not the exit set"
# past the end: an error, not the last set
check_past=$("$zw" export --format folded --at 1000 "$demo" 2>&1 >/dev/null)
case "$check_past" in
*"ends at 0.0"*"s: there is no live set at 1000 s"*) ok "--at past the end is an error" ;;
*) fail "--at past the end: $check_past" ;;
esac
"$zw" export --format folded --metric temporary -o "$tmp/f.temp" "$demo"
expect "folded temporary" "$(sum_folded "$tmp/f.temp")" "$(json temporary "$demo")"
grep -q ";main;count_digits [0-9]*$" "$tmp/f.temp" || fail "folded temporary lacks count_digits()"
"$zw" export --format folded --at start -o "$tmp/f.start" "$demo" && [ ! -s "$tmp/f.start" ] &&
    [ -f "$tmp/f.start" ] || fail "folded of an empty set is not an empty file"
"$zw" export --format folded "$inline" | grep -q ';main;fill_buffers;make_buffer [0-9]*$' ||
    fail "folded lacks the inlined frames"

# ---- errors: usage 2, failure 1, no file left ----
# check WANT_STATUS PATTERN ARGS...
check() {
    want=$1
    pattern=$2
    shift 2
    "$zw" "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "zw $*: status $got, want $want: $(cat "$tmp/err")"
    elif [ -n "$pattern" ] && ! grep -q -- "$pattern" "$tmp/err"; then
        fail "zw $*: stderr lacks '$pattern': $(cat "$tmp/err")"
    else
        ok "zw $* -> $got"
    fi
}
check 0 '' export --help
grep -q '^usage: zw export' "$tmp/out" || fail "zw export --help"
check 2 'no capture file given' export --format pprof
check 2 'no --format given' export "$demo"
check 2 "unknown format 'svg'" export --format svg "$demo"
check 2 "needs a value" export "$demo" --format
check 2 "unknown metric 'bogus'" export --format folded --metric bogus "$demo"
check 2 "unknown option '--bogus'" export --bogus "$demo"
check 2 'one too many' export --format folded "$demo" "$demo"
check 2 'takes neither --at nor --metric' export --format massif --at exit "$demo"
check 2 'takes neither --at nor --metric' export --format massif --metric allocations "$demo"
check 2 'it takes no --at' export --format folded --metric allocations --at peak "$demo"
check 2 "takes no --at 'peak'" export --format folded --metric leaked --at peak "$demo"
check 2 'is neither peak, exit, a mark' export --format folded --at nowhere "$demo"
check 2 '-o needs a file name' export --format folded -o '' "$demo"
check 1 'no per-site temporary counts' export --format folded --metric temporary "$data/demo-1.1.zwc"
check 2 'for folded stacks only' export --format pprof --metric temporary -o "$tmp/t.pb.gz" "$demo"
check 1 "cannot open '$tmp/missing.zwc'" export --format pprof -o "$tmp/x.pb.gz" "$tmp/missing.zwc"
check 1 "cannot create '$tmp/no/such/dir/x.pb.gz': No such file" export --format pprof \
    -o "$tmp/no/such/dir/x.pb.gz" "$demo"
check 1 'has no peak set (the capture ends before its end section' export --format pprof -o "$tmp/cut.pb.gz" "$tmp/cut.zwc"
check 1 'nothing for massif to show' export --format massif -o "$tmp/cut.out" "$tmp/cut300.zwc"
check 1 'has no exit set' export --format folded --at exit "$tmp/cut.zwc"
# pprof is binary: to a terminal (script(1) gives it one) it is refused
script -qec "'$zw' export --format pprof '$demo'" /dev/null >"$tmp/tty" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "pprof's output is binary" "$tmp/tty"; then
    ok "pprof to a terminal -> 2"
else
    fail "pprof to a terminal: status $rc: $(cat "$tmp/tty")"
fi
# a capture refused (its file header damaged): an error, no output, an older OUT left as it was,
# no temporary file
mkdir "$tmp/outdir"
cp "$demo" "$tmp/flip.zwc"
printf '\377' | dd of="$tmp/flip.zwc" bs=1 seek=20 conv=notrunc 2>/dev/null
for fmt in pprof folded massif; do
    check 1 'damaged' export --format "$fmt" -o "$tmp/outdir/new.$fmt" "$tmp/flip.zwc"
    echo old >"$tmp/outdir/old.$fmt"
    check 1 'damaged' export --format "$fmt" -o "$tmp/outdir/old.$fmt" "$tmp/flip.zwc"
    [ "$(cat "$tmp/outdir/old.$fmt")" = old ] || fail "$fmt: a failed export changed OUT"
    check 1 'damaged' export --format "$fmt" "$tmp/flip.zwc"
    [ -s "$tmp/out" ] && fail "$fmt: a failed export wrote to standard output"
done
# a damaged section: skipped, the export made from the rest, the loss said
cp "$demo" "$tmp/flip2.zwc"
printf '\377' | dd of="$tmp/flip2.zwc" bs=1 seek=2000 conv=notrunc 2>/dev/null
check 0 'is damaged: 1 section skipped' export --format folded -o "$tmp/outdir/salvaged" "$tmp/flip2.zwc"
[ -s "$tmp/outdir/salvaged" ] && rm "$tmp/outdir/salvaged" || fail "no export of a salvaged capture"

# ---- -o: '-' is standard output; only a new or regular file is replaced ----
"$zw" export --format folded "$demo" >"$tmp/plain.folded"
check 0 '' export --format folded -o - "$demo"
cmp -s "$tmp/out" "$tmp/plain.folded" && ok "-o - is standard output" || fail "-o - differs from standard output"
[ -e ./- ] && fail "-o - wrote a file named '-'"
# a symbolic link: its regular target is replaced, the link stays
echo old >"$tmp/target.folded"
ln -s "$tmp/target.folded" "$tmp/link.folded"
check 0 '' export --format folded -o "$tmp/link.folded" "$demo"
[ -L "$tmp/link.folded" ] && cmp -s "$tmp/target.folded" "$tmp/plain.folded" &&
    ok "-o LINK writes its target, the link stays" || fail "-o LINK replaced the link"
# a dangling link: its target is created
ln -s "$tmp/made.folded" "$tmp/dangling.folded"
check 0 '' export --format folded -o "$tmp/dangling.folded" "$demo"
[ -L "$tmp/dangling.folded" ] && cmp -s "$tmp/made.folded" "$tmp/plain.folded" &&
    ok "-o DANGLING-LINK creates its target" || fail "-o DANGLING-LINK"
# a FIFO: written through, still a FIFO
mkfifo "$tmp/fifo"
cat "$tmp/fifo" >"$tmp/from-fifo" &
reader=$!
check 0 '' export --format folded -o "$tmp/fifo" "$demo"
wait "$reader"
[ -p "$tmp/fifo" ] && cmp -s "$tmp/from-fifo" "$tmp/plain.folded" &&
    ok "-o FIFO written through" || fail "-o FIFO was replaced or not written"
# devices (made here, never the system's): written through, never replaced; a full one fails
if mknod "$tmp/null" c 1 3 2>/dev/null && mknod "$tmp/full" c 1 7 2>/dev/null; then
    check 0 '' export --format folded -o "$tmp/null" "$demo"
    [ -c "$tmp/null" ] && ok "-o a null device: still a device" || fail "-o a null device replaced it"
    check 1 "cannot write '$tmp/full': No space left on device" export --format folded -o "$tmp/full" "$demo"
    [ -c "$tmp/full" ] && ok "-o a full device: still a device" || fail "-o a full device replaced it"
else
    echo "skipped: devices (mknod needs root)"
fi
check 1 "cannot write '$tmp/outdir': Is a directory" export --format folded -o "$tmp/outdir" "$demo"

# ---- --metric leaked follows --kind (a fresh capture with leak kinds: release build only) ----
check 0 "leak kinds unknown" export --format folded --metric leaked "$demo"
check 2 "go with --metric leaked" export --format folded --kind definite "$demo"
check 2 "unknown leak kind" export --format folded --metric leaked --kind bogus "$demo"
if [ "$sanitize" != 1 ] && [ "$sanitize" != ON ] && [ -x "$work/zwp_leaky" ]; then
    if "$zw" run -q -o "$tmp/leaky.zwc" -- "$work/zwp_leaky" "$work/libzwp_leaky_lib.so" >/dev/null; then
        # each kind's folded sum is the sum of zw leaks --kind K's rows
        for k in definite indirect possible reachable; do
            want=$("$zw" leaks --kind "$k" --json --limit 0 "$tmp/leaky.zwc" |
                sed -n 's/.*"bytes": \([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
            "$zw" export --format folded --metric leaked --kind "$k" -o "$tmp/f.$k" "$tmp/leaky.zwc" 2>"$tmp/err" ||
                fail "export --kind $k: $(cat "$tmp/err")"
            expect "folded leaked --kind $k" "$(sum_folded "$tmp/f.$k")" "$want"
            [ -s "$tmp/err" ] && fail "export --kind $k says: $(cat "$tmp/err")"
        done
        # the definitely lost bytes of zw stat's LEAK SUMMARY, exact in its JSON
        definite=$("$zw" stat --json "$tmp/leaky.zwc" | tr -d '\n' |
            sed -n 's/.*"definite": *{[^}]*"bytes": *\([0-9]*\).*/\1/p')
        expect "folded --kind definite = the LEAK SUMMARY's definitely lost" \
            "$(sum_folded "$tmp/f.definite")" "$definite"
        [ "${definite:-0}" -gt 0 ] || fail "leaky.c loses no bytes definitely"
        "$zw" export --format folded --metric leaked --kind definite,indirect -o "$tmp/f.di" "$tmp/leaky.zwc"
        expect "folded leaked --kind definite,indirect" "$(sum_folded "$tmp/f.di")" \
            "$(($(sum_folded "$tmp/f.definite") + $(sum_folded "$tmp/f.indirect")))"
        "$zw" export --format folded --metric leaked -o "$tmp/f.all" "$tmp/leaky.zwc"
        "$zw" export --format folded --metric leaked --kind all -o "$tmp/f.kall" "$tmp/leaky.zwc"
        cmp -s "$tmp/f.all" "$tmp/f.kall" || fail "--kind all is not the default"
        expect "folded leaked (every kind)" "$(sum_folded "$tmp/f.all")" \
            "$(($(sum_folded "$tmp/f.di") + $(sum_folded "$tmp/f.possible") + $(sum_folded "$tmp/f.reachable")))"
    else
        fail "zw run zwp_leaky"
    fi
else
    echo "skipped: --kind on a fresh capture (the sanitizer build preloads nothing)"
fi

# every 97th truncation of the demo capture: an export or an error (never a crash), and a
# file only with an export
size=$(wc -c <"$demo")
cut=32
bad=0
while [ "$cut" -lt "$size" ]; do
    head -c "$cut" "$demo" >"$tmp/trunc.zwc"
    for fmt in pprof folded massif; do
        "$zw" export --format "$fmt" -o "$tmp/outdir/trunc" "$tmp/trunc.zwc" 2>"$tmp/err"
        rc=$?
        if [ "$rc" -eq 0 ] && [ -f "$tmp/outdir/trunc" ]; then
            rm "$tmp/outdir/trunc"
        elif [ "$rc" -ne 1 ] || [ -e "$tmp/outdir/trunc" ] || ! grep -q '^zw: error: ' "$tmp/err"; then
            fail "$fmt of the first $cut bytes: status $rc: $(cat "$tmp/err")"
            bad=$((bad + 1))
        fi
    done
    cut=$((cut + 97))
done
[ "$bad" -eq 0 ] && ok "exports of $(((size - 32 + 96) / 97)) truncations of demo.zwc"
left=$(ls "$tmp/outdir" | grep -v '^old\.' || true)
expect "files left by failed exports" "$left" ""
[ -z "$(ls "$tmp/no" 2>/dev/null)" ] || fail "files left in a missing directory"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]

#!/bin/sh
# tests/preload/test_maps.sh ZW TESTDIR - the mmap domain: tests/preload/maps.c maps known sizes
# at known lines (a split, a moved mremap, a file, sbrk, a 1 MiB malloc glibc maps itself), and
# python3's default allocator maps its arenas; zw top --domain, zw stat and an export must give
# the exact figures.
set -u
zw=$1
dir=$2
. "$(dirname "$0")/../lib.sh"

# stat KEY FILE: a number of `zw stat --json --only FILE`
stat() {
    "$zw" stat --json --only "$2" | sed -E "s/^\{[^{]*\"$1\": ([0-9]+).*/\1/"
}

# rows DOMAIN WHEN FILE: "LINE BYTES BLOCKS" of each line of maps.c in that set, by line
rows() {
    "$zw" top --json --group lineno --limit 0 --domain "$1" --at "$2" "$3" |
        grep 'maps.c' |
        sed -E 's/.*"bytes": ([0-9]+), "blocks": ([0-9]+), .*"line": ([0-9]+).*/\3 \1 \2/' |
        sort -n
}

# ---- maps.c: known sizes at known lines ----
"$dir/zwp_maps" "$tmp/file" >"$tmp/plain.txt" || fail "maps alone"
"$zw" run -q -o "$tmp/maps.zwc" -- "$dir/zwp_maps" "$tmp/file" >"$tmp/out.txt" || fail "zw run maps"
cmp -s "$tmp/out.txt" "$tmp/plain.txt" && echo "ok: maps: the same output under zw run" ||
    fail "maps: the output differs under zw run"
expect "maps: mremap moved the mapping" "$(sed -n 's/^moved //p' "$tmp/out.txt")" 1
p=$(sed -n 's/^page //p' "$tmp/out.txt")
line() { sed -n "s/^\([0-9]*\) $1\$/\1/p" "$tmp/out.txt"; }

printf '%s\n' "$(line split) $((8 * p)) 2" "$(line file) $((2 * p)) 1" \
    "$(line sbrk) $((3 * p)) 1" "$(line grown) $((16 * p)) 1" | sort -n >"$tmp/want-exit"
rows mmap exit "$tmp/maps.zwc" >"$tmp/got-exit"
if diff "$tmp/want-exit" "$tmp/got-exit" >/dev/null; then
    echo "ok: mmap domain at exit: split, file, sbrk and grown, exact"
else
    fail "mmap domain at exit (< want, > got)"
    diff "$tmp/want-exit" "$tmp/got-exit"
fi

printf '%s\n' "$(line split) $((8 * p)) 2" "$(line blocker) $p 1" "$(line file) $((2 * p)) 1" \
    "$(line sbrk) $((3 * p)) 1" "$(line grown) $((16 * p)) 1" | sort -n >"$tmp/want-peak"
rows mmap peak "$tmp/maps.zwc" >"$tmp/got-peak"
if diff "$tmp/want-peak" "$tmp/got-peak" >/dev/null; then
    echo "ok: mmap domain at its peak: the blocker too"
else
    fail "mmap domain at its peak (< want, > got)"
    diff "$tmp/want-peak" "$tmp/got-peak"
fi

# a mark holds the mappings too, also when its heap blocks were scanned for leak kinds
expect "mark: the mmap domain" "$(rows mmap end "$tmp/maps.zwc" | tr '\n' ' ')" \
    "$(tr '\n' ' ' <"$tmp/want-exit")"
"$zw" run -q --leak-check-at-marks -o "$tmp/marks.zwc" -- "$dir/zwp_maps" "$tmp/file" >/dev/null ||
    fail "zw run --leak-check-at-marks maps"
expect "scanned mark: the mmap domain" "$(rows mmap end "$tmp/marks.zwc" | tr '\n' ' ')" \
    "$(tr '\n' ' ' <"$tmp/want-exit")"
"$zw" leaks --json --at end --group lineno "$tmp/marks.zwc" >"$tmp/markleaks.json"
grep -q "\"kind\": \"reachable\", \"bytes\": 1048576, \"blocks\": 1," "$tmp/markleaks.json" &&
    echo "ok: scanned mark: the 1 MiB block keeps its kind" ||
    fail "scanned mark kinds: $(cat "$tmp/markleaks.json")"
"$zw" leaks --json --group lineno "$tmp/maps.zwc" >"$tmp/leaks.json"
grep -q "\"kind\": \"reachable\", \"bytes\": 1048576, \"blocks\": 1," "$tmp/leaks.json" &&
    echo "ok: exit set: the 1 MiB block keeps its kind beside the mappings" ||
    fail "exit kinds: $(cat "$tmp/leaks.json")"

# the 1 MiB block glibc maps itself is the heap's, once
expect "heap domain at exit" "$(rows heap exit "$tmp/maps.zwc")" "$(line heap) 1048576 1"
expect "all domains at exit: both" "$(rows all exit "$tmp/maps.zwc" | wc -l)" 5
expect "stat: mmap bytes at exit" "$(stat mmap_bytes "$tmp/maps.zwc")" $((29 * p))
expect "stat: mmap peak" "$(stat mmap_peak_bytes "$tmp/maps.zwc")" $((30 * p))
expect "stat: heap peak stays the heap's" "$(stat peak_bytes "$tmp/maps.zwc")" \
    "$("$zw" top --json --limit 0 --at exit "$tmp/maps.zwc" |
        sed -nE 's/.*"bytes": ([0-9]+), .*/\1/p' | awk '{ s += $1 } END { print s }')"
"$zw" stat "$tmp/maps.zwc" | grep -Eq "^of which +heap [0-9.]+ [KM]iB \+ mmap [0-9.]+ KiB \+ neither -?[0-9.]+ [KM]iB" &&
    echo "ok: stat splits RSS into heap, mmap and neither" || fail "stat: RSS split"
# a capture set: the process table gives each process's mmap peak, the set the largest
"$zw" run -o "$tmp/set.zwc" -- sh -c '"$1" "$2" >/dev/null; true' sh "$dir/zwp_maps" "$tmp/file" \
    2>"$tmp/set.sum" || fail "zw run sh -c maps"
# zw run's summary is the child's, whose peak is the larger: line for line what zw stat reads of
# its capture whole (its leaks the heap's blocks, not the mappings the exit set also holds)
"$zw" stat --only "$tmp/set.zwc.1" >"$tmp/child.txt"
"$zw" stat --only "$tmp/set.zwc" >"$tmp/shell.txt"
field() { sed -n "s/^$1  *//p" "$2"; }
{
    echo "zw: 2 processes; below: pid $(field pid "$tmp/child.txt" | cut -d' ' -f1) ($dir/zwp_maps), the largest peak; pid $(field pid "$tmp/shell.txt" | cut -d' ' -f1) (sh) peaked at $(field peak "$tmp/shell.txt" | sed 's/ at .*//')"
    echo "zw: peak         $(field peak "$tmp/child.txt")"
    echo "zw: mmap peak    $(field mmap "$tmp/child.txt" | sed 's/.*, peak \(.*\) (the program.*/\1/') (mapped by the program itself: zw top --domain mmap)"
    echo "zw: leaks        $(field 'leaked at exit' "$tmp/child.txt") at exit"
    echo "zw: allocations  $(field allocations "$tmp/child.txt") ($(field frees "$tmp/child.txt") frees), $(field 'bytes allocated' "$tmp/child.txt") in all"
    echo "zw: temporary    $(field temporary "$tmp/child.txt" | sed 's/%)/% of allocations)/')"
    echo "zw: capture      $tmp/set.zwc.1 (one of 2 files, one per process: $tmp/set.zwc, $tmp/set.zwc.1 ...)"
} >"$tmp/set.want"
if cmp -s "$tmp/set.want" "$tmp/set.sum"; then
    echo "ok: zw run's summary of a set is its largest peak's capture, as zw stat reads it"
else
    fail "zw run's summary of a set (< from zw stat, > zw run):"
    diff "$tmp/set.want" "$tmp/set.sum"
fi
mappings=$("$zw" top --json --limit 0 --domain mmap --at exit "$tmp/set.zwc.1" |
    sed -nE 's/.*"blocks": ([0-9]+), .*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
[ "$mappings" -gt 0 ] && echo "ok: the child's exit set also holds $mappings mappings" ||
    fail "the child's exit set holds no mapping: the summary's leaks are not put to the test"
"$zw" stat "$tmp/set.zwc" >"$tmp/set.txt"
mp=$(awk -v k=$((30 * p / 1024)) 'BEGIN { print k " KiB" }')
expect "stat of a set: the maps row's mmap peak" \
    "$(grep 'zwp_maps' "$tmp/set.txt" | grep -v ' sh -c ' | awk '{ print $7, $8 }')" "$mp"
expect "stat of a set: the shell's mmap peak" \
    "$(grep " sh -c " "$tmp/set.txt" | awk '{ print $7, $8 }')" "0 B"
grep -Eq "^mmap peak +$mp in process [0-9]+ " "$tmp/set.txt" &&
    echo "ok: stat of a set: the largest mmap peak" || fail "stat of a set: $(cat "$tmp/set.txt")"
# an export follows --domain: the folded stacks of the mmap domain sum to its bytes
expect "export folded --domain mmap" \
    "$("$zw" export --format folded --domain mmap --at exit "$tmp/maps.zwc" |
        awk '{ s += $NF } END { print s }')" $((29 * p))
expect "export folded (heap)" \
    "$("$zw" export --format folded --at exit "$tmp/maps.zwc" | grep -c 'main ')" 1
# and pprof: alloc_* count the mmap calls (split, gone, old, blocker, file, sbrk, grown), inuse_*
# the mappings at exit (protoc decodes it against Debian's profile.proto)
proto=/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto
[ -f "$proto" ] || proto=$(dpkg -L golang-github-google-pprof-dev 2>/dev/null | grep '/proto/profile.proto$' | head -n 1)
if [ -z "$proto" ] || [ ! -f "$proto" ] || ! command -v protoc >/dev/null; then
    fail "protoc or profile.proto not found (scripts/install-deps test)"
elif "$zw" export --format pprof --domain mmap --at exit -o "$tmp/maps.pb.gz" "$tmp/maps.zwc" &&
    gzip -dc "$tmp/maps.pb.gz" | protoc --proto_path="$(dirname "$proto")" \
        --decode perftools.profiles.Profile "$proto" >"$tmp/decoded"; then
    expect "export pprof --domain mmap: alloc_objects alloc_space inuse_objects inuse_space" \
        "$(awk '/^sample \{/ { k = 0 } /^  value: / { s[k % 4] += $2; k++ }
            END { printf "%d %d %d %d\n", s[0], s[1], s[2], s[3] }' "$tmp/decoded")" \
        "7 $((40 * p)) 5 $((29 * p))"
else
    fail "export pprof --domain mmap"
fi
"$zw" top --domain nope "$tmp/maps.zwc" 2>"$tmp/err"
expect "bad --domain: usage status" "$?" 2
grep -q "unknown domain 'nope' (heap, mmap or all)" "$tmp/err" &&
    echo "ok: bad --domain names the choices" || fail "bad --domain message: $(cat "$tmp/err")"

# ---- python3's default allocator: its arenas are mappings of obmalloc's ----
py=$(command -v python3 >/dev/null && python3 -c 'import sys; print(sys.executable)')
if [ -z "$py" ] || [ ! -x "$py" ]; then
    echo "FAIL: python3 is not installed: the arenas of its allocator cannot be checked"
    exit 1
fi
"$zw" run -q -o "$tmp/py.zwc" -- "$py" -c \
    'x = [(i, str(i)) for i in range(300000)]; print(len(x))' >/dev/null || fail "zw run python3"
# arenas: mappings of 256 KiB (before 3.10) or 1 MiB, every one of them a block of a site
"$zw" top --json --group traceback --limit 0 --domain mmap --at peak --only "$tmp/py.zwc" |
    sed -nE 's/.*"bytes": ([0-9]+), "blocks": ([0-9]+),.*/\1 \2/p' >"$tmp/py-rows"
arenas=$(awk '$1 == $2 * 262144 || $1 == $2 * 1048576 { s += $1 } END { print s + 0 }' "$tmp/py-rows")
[ "$arenas" -ge $((16 * 1048576)) ] && echo "ok: python3: $arenas bytes of arenas in the mmap domain" ||
    fail "python3: $arenas bytes of arenas in the mmap domain, want 16 MiB or more"
mpeak=$(stat mmap_peak_bytes "$tmp/py.zwc")
[ "$mpeak" -ge "$arenas" ] && echo "ok: python3: mmap peak $mpeak" || fail "python3: mmap peak $mpeak"
# and not in the heap: the heap's peak set holds no block of an arena's size
"$zw" top --json --group traceback --limit 0 --at peak --only "$tmp/py.zwc" |
    sed -nE 's/.*"bytes": ([0-9]+), "blocks": ([0-9]+),.*/\1 \2/p' >"$tmp/py-heap"
expect "python3: no arena in the heap" \
    "$(awk '$1 == $2 * 1048576 && $2 > 4 { n++ } END { print n + 0 }' "$tmp/py-heap")" 0

finish "mmap domain"

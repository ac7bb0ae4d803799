#!/bin/sh
# tests/preload/test_heaptrack.sh ZW HEAPTRACK_TOTALS_PY - runs Debian programs under `zw run` and
# under heaptrack 1.4 (Debian's) in the same test: allocations, peak and temporary allocations
# must agree within 0.1 % (issue 6, item 5). The programs: sort on a generated file (2 threads),
# xz -9, python3.11 building 200k strings.
#
# Two differences are definitional and normalised here, each one exactly (docs: bench/run/README.md
# "zw against heaptrack"):
#  - heaptrack's preload library links libstdc++, libunwind and libgcc_s; libstdc++'s initialiser
#    allocates its emergency exception pool (72704 bytes) in the traced process, through
#    heaptrack's malloc. Allocations whose innermost frame is in a library that only heaptrack
#    loads are left out of heaptrack's figures (heaptrack_totals.py --exclude-module), and counted.
#  - the program's environment: both tools take their variables out of it before main (zw its
#    LD_PRELOAD entry and ZW_* variables, heaptrack LD_PRELOAD), and heaptrack's script adds PWD.
#    Python copies the environment into a dict, whose table grows at 43 entries: one malloc more
#    or less. Both runs get PWD, and the test checks that the programs see as many variables.
# Exits 77 (skipped) when heaptrack, zstd or python3.11 is missing (scripts/install-deps test).
set -u
zw=$1
totals=$2
python=/usr/bin/python3.11
ht_lib=/usr/lib/heaptrack/libheaptrack_preload.so
ht_interpret=/usr/lib/heaptrack/libexec/heaptrack_interpret
for tool in heaptrack heaptrack_print zstd; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "skipped: $tool not found (scripts/install-deps test installs it)"
        exit 77
    fi
done
if [ ! -x "$python" ] || [ ! -r "$ht_lib" ] || [ ! -x "$ht_interpret" ]; then
    echo "skipped: $python or heaptrack's libraries not found (scripts/install-deps test)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fails=0

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# KEY of a key=value line
field() { # field KEY LINE
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# within WHAT ZW HEAPTRACK: |zw - heaptrack| <= 0.1 % of heaptrack's
within() {
    d=$(($2 - $3))
    [ $d -lt 0 ] && d=$((-d))
    if [ $((d * 1000)) -le "$3" ]; then
        echo "ok: $1: zw $2, heaptrack $3 (difference $d)"
    else
        fail "$1: zw $2, heaptrack $3: differ by $d, more than 0.1 %"
    fi
}

# The same environment for both (see the header): PATH, HOME, LC_ALL, PWD.
base="PATH=/usr/bin:/bin HOME=$tmp LANG=C.UTF-8 PWD=$tmp"
# shellcheck disable=SC2086
n_zw=$(env -i $base "$zw" run -q -o "$tmp/env.zwc" -- /usr/bin/env | wc -l)
# shellcheck disable=SC2086
n_ht=$(env -i $base heaptrack -o "$tmp/env" /usr/bin/env 2>/dev/null | grep -c '^[A-Z_]*=')
[ "$n_zw" -eq "$n_ht" ] && echo "ok: the programs see $n_zw environment variables under both" ||
    fail "environment: $n_zw variables under zw, $n_ht under heaptrack"

# libraries heaptrack brings into the process that PROG does not load
ht_only() { # ht_only PROG
    ldd "$(command -v "$1")" | sed -n 's/.*=> \([^ ]*\) .*/\1/p' | sort >"$tmp/prog.libs"
    ldd "$ht_lib" | sed -n 's/.*=> \([^ ]*\) .*/\1/p' | sort | comm -23 - "$tmp/prog.libs" |
        sed 's/^/--exclude-module /' | tr '\n' ' '
}

# Both run with the address space laid out the same way each time (setarch -R, where the kernel
# allows it): under address space randomisation python3.11's temporary allocations move by up
# to 6 in 4700 between runs of one tool (measured with both; with it off they do not move),
# more than the 0.1 % the comparison allows: the test failed about one run in three.
norand=""
setarch -R true 2>/dev/null && norand="setarch -R"

# compare NAME PROG ARGS...: runs PROG ARGS under both, compares (stdout discarded)
compare() {
    name=$1
    shift
    # shellcheck disable=SC2086
    env -i $base $norand "$zw" run -q -o "$tmp/$name.zwc" -- "$@" >/dev/null ||
        fail "$name: zw run failed"
    z=$("$zw" stat --json "$tmp/$name.zwc")
    zget() { echo "$z" | sed -E "s/.*\"$1\": ([0-9]+).*/\1/"; }
    # shellcheck disable=SC2086
    env -i $base $norand heaptrack --raw -o "$tmp/$name" "$@" >/dev/null 2>"$tmp/$name.ht.log" ||
        fail "$name: heaptrack failed: $(tail -3 "$tmp/$name.ht.log")"
    # shellcheck disable=SC2046
    h=$("$python" "$totals" "$tmp/$name.raw.zst" $(ht_only "$1")) || fail "$name: heaptrack_totals.py"
    # our replay of heaptrack's trace against heaptrack_print's own summary
    zstd -dc "$tmp/$name.raw.zst" | "$ht_interpret" 2>/dev/null | zstd -q >"$tmp/$name.zst"
    p=$(heaptrack_print -f "$tmp/$name.zst" 2>/dev/null)
    calls=$(echo "$p" | sed -n 's/^calls to allocation functions: \([0-9]*\) .*/\1/p')
    temps=$(echo "$p" | sed -n 's/^temporary memory allocations: \([0-9]*\) .*/\1/p')
    if [ "$calls" = "$(field raw_allocations "$h")" ] && [ "$temps" = "$(field info_temporary "$h")" ]; then
        echo "ok: $name: heaptrack_print agrees with the replay ($calls calls, $temps temporary)"
    else
        fail "$name: heaptrack_print says $calls calls, $temps temporary; the replay: $h"
    fi
    echo "   $name: heaptrack's own allocations left out: $(field excluded_allocations "$h")" \
        "($(field excluded_bytes "$h") bytes)"
    within "$name allocations" "$(zget allocations)" "$(field allocations "$h")"
    within "$name peak bytes" "$(zget peak_bytes)" "$(field peak_bytes "$h")"
    within "$name temporary" "$(zget temporary)" "$(field temporary "$h")"
    within "$name frees" "$(zget frees)" "$(field frees "$h")"
}

# inputs: made here, deterministic
seq 1 200000 | awk '{ printf "%08x word%d\n", ($1 * 2654435761) % 4294967296, $1 % 977 }' >lines.txt
head -c 1000000 lines.txt >small.txt

compare sort sort -o /dev/null lines.txt
compare xz xz -9 -T1 -c small.txt
# PYTHONMALLOC=malloc: every object through malloc (about 200k allocations). With pymalloc, CPython
# calls calloc for a 128 KiB node of its arena radix tree for each 16 GiB of address space that
# holds one of its 1 MiB arenas (mmap): where the kernel puts them depends on ASLR and on the
# tracer's own mappings, so about one run in five under zw has one node more (+1 allocation,
# +131072 bytes) than the run under heaptrack, both counted right (bench/run/README.md).
base="$base PYTHONMALLOC=malloc"
compare python "$python" -c 'x = [str(i) for i in range(200000)]; print(len(x))'

[ $fails -eq 0 ] && echo "all ok" || echo "$fails failed"
[ $fails -eq 0 ]

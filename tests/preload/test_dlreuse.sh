#!/bin/sh
# tests/preload/test_dlreuse.sh ZW TESTDIR - tracebacks through modules the program dlcloses:
# zwp_dlreuse loads libzwp_dlreuse_a.so, allocates through it, closes it, then the same with
# libzwp_dlreuse_b.so, which the loader maps at the same address. Both are built without frame
# pointers and their code is the same bytes: only the CFA rules tell them apart, so a rule of the
# first kept for the second skips or loses frames (see dlreuse_lib.c). Each site must be exactly
# lib_alloc, lib_mid, use, main, in its own library, in both orders, under each unwinder.
set -u
zw=$1
dir=$2
. "$(dirname "$0")/../lib.sh"

src=$(dirname "$0")/dlreuse.c
line1=$(grep -n "the first library's site" "$src" | cut -d: -f1)
line2=$(grep -n "the second's" "$src" | cut -d: -f1)
uline=$(grep -n "free(f())" "$src" | cut -d: -f1)

# site FILE LINE: the site of the allocations in the loop of use() called at LINE of main: "BLOCKS func@module ..." for its first
# four frames (module names without their directory)
site() {
    "$zw" top --json --group traceback --at allocations --limit 0 "$1" | jq -r --argjson line "$2" --argjson uline "$uline" '
        .[] | select(.traceback | any(.function == "main" and .line == $line) and
            any(.function == "use" and .line == $uline)) |
        "\(.blocks) " + ([.traceback[:4][] | "\(.function)@\((.module // "?") | split("/") | last)"]
        | join(" "))'
}

a=libzwp_dlreuse_a.so
b=libzwp_dlreuse_b.so
for mode in incremental cfa dwarf check:1; do
    for order in "$a $b" "$b $a"; do
        set -- $order
        # the case needs the second library where the first was: something else mapped in the
        # hole meanwhile (a thread's arena, a flush) moves it, so a moved run is tried again
        for try in 1 2 3 4 5; do
            out=$(ZW_UNWIND=$mode "$zw" run -q -o "$tmp/x.zwc" -- "$dir/zwp_dlreuse" "$dir/$1" \
                "$dir/$2" 2>"$tmp/err.txt") || fail "$mode $1 $2: zw run: $(cat "$tmp/err.txt")"
            [ "$out" = "dlreuse same" ] && break
        done
        expect "$mode $1 $2: both mapped at the same address" "$out" "dlreuse same"
        expect "$mode $1 $2: first site" "$(site "$tmp/x.zwc" "$line1")" \
            "100 lib_alloc@$1 lib_mid@$1 use@zwp_dlreuse main@zwp_dlreuse"
        expect "$mode $1 $2: second site" "$(site "$tmp/x.zwc" "$line2")" \
            "100 lib_alloc@$2 lib_mid@$2 use@zwp_dlreuse main@zwp_dlreuse"
    done
done

finish "dlclose and a reused address"

#!/bin/sh
# tests/build/check_layers.sh MAP ROOT [LAYER: OBJECT ...] - fails on an upward arrow between
# layers. MAP is docs/architecture.md: the table of its section "Layers and what each may call"
# gives each layer's folder, its public headers and the layers it may use. The check reads
#   - every #include of the .c and .h files of each layer's folder under ROOT, and of the public
#     headers (ROOT/include/zerowaste): <zerowaste/x.h> belongs to the layer that owns x.h, a
#     "x.h" to the layer whose folder holds it; a "../" include is refused everywhere;
#   - the symbols of the object files named after LAYER: (a ;-list is split, as ctest passes
#     $<TARGET_OBJECTS:...>): each undefined symbol belongs to
#     the layer whose objects define it (a symbol nobody defines comes from a system library, and
#     so does one a layer exports without the zw prefix: preload's malloc replaces the system's).
# A layer marked `public` may use the public headers and the exported (default visibility)
# symbols of every layer, nothing internal, except the units it names as LAYER/UNIT: the header
# LAYER_UNIT.h (or UNIT.h) of that layer's folder and the symbols of its object UNIT.c.o. Prints one line per violation, naming the file and
# the arrow, and exits 1; exits 2 if the map cannot be read.
set -u
map=$1
root=$2
shift 2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# ---- the map: layer<TAB>folder<TAB>headers<TAB>may use ----
awk -F'|' '
    /^## / { insec = ($0 ~ /^## Layers and what each may call/) ; next }
    !insec || !/^\|/ { next }
    {
        for (i = 2; i <= 5; i++) { gsub(/`/, "", $i); gsub(/^ +| +$/, "", $i); gsub(/  +/, " ", $i) }
        if ($2 == "layer" || $2 ~ /^[-: ]*$/) next
        printf "%s\t%s\t%s\t%s\n", $2, $3, $4, $5
    }' "$map" >"$tmp/map"
if [ ! -s "$tmp/map" ]; then
    echo "check_layers: no table in the section 'Layers and what each may call' of $map" >&2
    exit 2
fi

# ---- includes: file<TAB>line<TAB>layer of the file<TAB>the included name ----
: >"$tmp/includes"
while IFS='	' read -r layer folder headers uses; do
    for h in $headers; do
        [ -f "$root/include/zerowaste/$h" ] && echo "$layer	include/zerowaste/$h"
    done
    [ -d "$root/$folder" ] || continue
    for f in "$root/$folder"/*.c "$root/$folder"/*.h; do
        [ -f "$f" ] && echo "$layer	${f#"$root"/}"
    done
done <"$tmp/map" >"$tmp/files"
while IFS='	' read -r layer rel; do
    awk -v layer="$layer" -v rel="$rel" '
        /^[ \t]*#[ \t]*include[ \t]*[<"]/ {
            s = $0
            sub(/^[ \t]*#[ \t]*include[ \t]*/, "", s)
            q = substr(s, 1, 1)
            s = substr(s, 2)
            sub(q == "<" ? ">.*" : "\".*", "", s)
            printf "%s\t%d\t%s\t%s%s\n", rel, FNR, layer, q, s
        }' "$root/$rel" >>"$tmp/includes"
done <"$tmp/files"

# ---- symbols: layer<TAB>object<TAB>U|D<TAB>visibility<TAB>name ----
: >"$tmp/symbols"
layer=
for arg in $(printf '%s\n' "$@" | tr ';' '\n'); do
    case $arg in
    *:) layer=${arg%:}; continue ;;
    esac
    obj=$arg
    if [ -z "$layer" ]; then
        echo "check_layers: object '$obj' comes before any LAYER:" >&2
        exit 2
    fi
    if ! readelf -sW "$obj" >"$tmp/readelf" 2>"$tmp/readelf.err"; then
        echo "check_layers: cannot read the symbols of '$obj': $(cat "$tmp/readelf.err")" >&2
        exit 2
    fi
    awk -v layer="$layer" -v obj="$obj" '
        $1 ~ /^[0-9]+:$/ && ($5 == "GLOBAL" || $5 == "WEAK") && NF >= 8 {
            printf "%s\t%s\t%s\t%s\t%s\n", layer, obj, ($7 == "UND" ? "U" : "D"), $6, $8
        }' "$tmp/readelf" >>"$tmp/symbols"
done

# ---- the verdict ----
awk -F'\t' '
    FILENAME == ARGV[1] {
        layer = $1; folder[layer] = $2; uses[layer] = " " $4 " "
        n = split($3, hs, " ")
        for (i = 1; i <= n; i++) owner_pub[hs[i]] = layer
        order[++nlayers] = layer
        next
    }
    FILENAME == ARGV[2] { isfile[$2] = 1; next }
    FILENAME == ARGV[3] { inc[++ninc] = $0; next }
    FILENAME == ARGV[4] {
        # a default-visibility symbol without our prefix replaces the system one (the malloc
        # of preload): a reference to it is one to the C library
        if ($3 == "D" && ($4 != "DEFAULT" || $5 ~ /^(zw|ZW)/)) {
            def[$5] = def[$5] " " $1; vis[$1 SUBSEP $5] = $4
            u = $2; sub(/^.*\//, "", u); sub(/\.c\.o$|\.o$/, "", u); unit[$1 SUBSEP $5] = u
        }
        else if ($3 == "D") next
        else und[++nund] = $0
        next
    }
    function allowed(from, to) {
        return from == to || index(uses[from], " " to " ") > 0 || \
            (uses[from] ~ / public / && to != "preload" && to != "zw")
    }
    # a `public` layer may name single units of another layer: LAYER/UNIT in its row
    function unit_ok(from, to, u) { return u != "" && index(uses[from], " " to "/" u " ") > 0 }
    function header_unit(to, name,   u) { u = name; sub(/\.h$/, "", u); sub("^" to "_", "", u); return u }
    function folder_of(path,   d) { d = path; sub(/\/[^\/]*$/, "", d); return d }
    function report(msg) { print msg; bad++ }
    END {
        for (l in folder) layer_of_folder[folder[l]] = l
        layer_of_folder["include/zerowaste"] = "(public)"
        for (i = 1; i <= ninc; i++) {
            split(inc[i], f, "\t")
            file = f[1]; line = f[2]; from = f[3]; q = substr(f[4], 1, 1); name = substr(f[4], 2)
            shown = (q == "<") ? "<" name ">" : "\"" name "\""
            where = file ":" line ": " from
            if (name ~ /(^|\/)\.\.\//) {
                report(where " -> ?: #include " shown " leaves its folder: name the header, the " \
                       "include paths find the layers below")
                continue
            }
            if (q == "<") {
                if (name !~ /^zerowaste\//) continue
                h = substr(name, 11)
                if (!(h in owner_pub)) { report(where ": #include " shown ": no layer owns it"); continue }
                to = owner_pub[h]
                if (!allowed(from, to))
                    report(where " -> " to ": #include " shown " (" from " may use:" uses[from] ")")
                continue
            }
            # "x.h": the folder of the including file first, then the folders of the layers
            here = folder_of(file)
            if ((here "/" name) in isfile) to = layer_of_folder[here]
            else {
                to = ""
                for (k = 1; k <= nlayers; k++)
                    if ((folder[order[k]] "/" name) in isfile) { to = order[k]; break }
                if (to == "") continue # not a layer header (generated, or outside the tree)
            }
            if (to == "(public)") to = owner_pub[name]
            else if (to != from && uses[from] ~ / public /) {
                if (unit_ok(from, to, header_unit(to, name))) continue
                report(where " -> " to ": #include " shown " is internal to " to)
                continue
            }
            if (!allowed(from, to))
                report(where " -> " to ": #include " shown " (" from " may use:" uses[from] ")")
        }
        for (i = 1; i <= nund; i++) {
            split(und[i], f, "\t")
            from = f[1]; obj = f[2]; sym = f[5]
            if (!(sym in def)) continue # a system library symbol
            n = split(def[sym], owners, " ")
            ok = 0; first = ""
            for (k = 1; k <= n; k++) {
                to = owners[k]
                if (first == "") first = to
                if (!allowed(from, to)) continue
                if (to != from && uses[from] ~ / public / && vis[to SUBSEP sym] != "DEFAULT" &&
                    !unit_ok(from, to, unit[to SUBSEP sym]))
                    continue
                ok = 1
            }
            if (ok) continue
            if (uses[from] ~ / public / && allowed(from, first))
                report(obj ": " from " -> " first ": " sym " is internal to " first " (hidden)")
            else
                report(obj ": " from " -> " first ": " sym " (" from " may use:" uses[from] ")")
        }
        if (bad) {
            printf "check_layers: %d upward arrow(s); the allowed map is the table of " \
                   "docs/architecture.md, section \"Layers and what each may call\"\n", bad
            exit 1
        }
        printf "check_layers: %d includes and %d undefined symbols of %d layers: no upward arrow\n",
               ninc, nund, nlayers
    }' "$tmp/map" "$tmp/files" "$tmp/includes" "$tmp/symbols"

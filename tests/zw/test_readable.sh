#!/bin/sh
# tests/zw/test_readable.sh ZW TESTDIR - zw's answers on a C++ program read as a person would
# write them (tests/zw/progs/readable.cc: a class template, a lambda, new in a helper):
#   - names demangled in the table, --json (the raw symbol beside it), folded, pprof (name
#     demangled, system_name raw), massif and the report; Rust's two manglings too
#     (tests/zw/progs/rust_names.c);
#   - grouping by line looks past operator new (a built-in allocation function) to the helper
#     grab(), past grab() too with --alloc-fn 'grab*', and stops at operator new's frame with
#     --no-default-alloc-fns; tracebacks keep every frame;
#   - top --at allocations honours --group;
#   - under `sh -c`, zw run's summary and zw stat's headline are of the command, not the shell;
#   - a stripped program's lines from its .gnu_debuglink file; without it, symbol table names and
#     one note naming the module and how to get its debug information; from a debuginfod server
#     (a stand-in on localhost) named by DEBUGINFOD_URLS;
#   - a lambda's frame names the lambda and the function around it, inlined (from DWARF) or out of
#     line (from the symbol table), not a bare operator();
#   - zw run's status line under a pseudo-terminal, and none when stderr is a file; that of the
#     reading commands (top, report) too, and none with -q or on a short command.
# Needs libzwpreload.so: in the sanitizer build (ASan owns malloc) it exits 77, skipped.
set -u
zw=$1
dir=$2
[ "${3:-0}" = 1 ] && { echo "skipped: the sanitizer build preloads nothing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok: $*"; }
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
# has FILE PATTERN WHAT: grep -E
has() {
    if grep -Eq -- "$2" "$1"; then ok "$3"; else
        fail "$3 (no /$2/ in:)"
        head -20 "$1"
    fi
}
hasnt() {
    if grep -Eq -- "$2" "$1"; then
        fail "$3 (/$2/ in:)"
        head -20 "$1"
    else ok "$3"; fi
}
src=$(cd "$(dirname "$0")" && pwd)/progs/readable.cc
line() { grep -n "// $1\$" "$src" | cut -d: -f1; }
grab_line=$(line GRAB_NEW)
lambda_line=$(line LAMBDA_CALL)
pool_line=$(line POOL_NEW)

cap="$tmp/r.zwc"
"$zw" run -q -o "$cap" -- "$dir/zwp_readable" >/dev/null || fail "zw run zwp_readable"

# ---- grouping past the allocation functions ----
"$zw" leaks --group lineno --limit 3 "$cap" >"$tmp/top"
has "$tmp/top" "^ +1 +definite +1953 KiB +2000 +1000 B +.*readable.cc:$grab_line \\(grab\\(unsigned long\\)\\)\$" \
    "leaks --group lineno: the 2000 blocks at grab()'s new, line $grab_line, not in operator new"
has "$tmp/top" "readable.cc:$pool_line \\(shapes::Pool<Block>::make\\(Block const&\\)\\)\$" \
    "the class template's member function demangled, at its new (line $pool_line)"
"$zw" leaks --group lineno --alloc-fn 'grab*' --limit 1 "$cap" >"$tmp/top"
has "$tmp/top" "^ +1 +definite +1953 KiB +2000 .*readable.cc:$lambda_line \\(" \
    "--alloc-fn 'grab*': the 2000 blocks at the lambda's call of grab(), line $lambda_line"
"$zw" leaks --group lineno --no-default-alloc-fns --limit 1 "$cap" >"$tmp/top"
has "$tmp/top" "^ +1 .*libstdc\\+\\+[^ ]*\\+0x[0-9a-f]+ \\(operator new\\(unsigned long\\)\\)\$" \
    "--no-default-alloc-fns: operator new is a site again (demangled)"
"$zw" leaks --group traceback --limit 1 "$cap" >"$tmp/tb"
has "$tmp/tb" "^ +1 .*readable.cc:$grab_line \\(grab\\(unsigned long\\)\\)\$" "leaks by traceback: the row names grab()"
has "$tmp/tb" "^        .* operator new(\\[\\])?\\(unsigned long\\)\$" \
    "the traceback keeps operator new's frame"
"$zw" compare "$cap" --from peak --to exit --limit 3 >"$tmp/cmp"
hasnt "$tmp/cmp" "operator new" "compare by line looks past operator new"

# ---- lambdas: named with the function around them, not a bare operator() ----
lsrc=$(dirname "$src")/lambda.cc
"$zw" run -q -o "$tmp/l.zwc" -- "$dir/zwp_lambda" >/dev/null || fail "zw run zwp_lambda"
"$zw" leaks --group lineno --limit 3 "$tmp/l.zwc" >"$tmp/lt"
has "$tmp/lt" "^ +1 +definite +18.8 KiB +300 .*lambda.cc:$(grep -n '// INLINED_NEW$' "$lsrc" | cut -d: -f1) \\(ns::build::\\{lambda\\(int\\)\\}::operator\\(\\)\\)\$" \
    "an inlined lambda: ns::build::{lambda(int)}::operator(), from DWARF"
has "$tmp/lt" "^ +2 +definite +6400 B +200 .*lambda.cc:$(grep -n '// OUTLINE_NEW$' "$lsrc" | cut -d: -f1) \\(ns::build\\(int\\)::\\{lambda\\(long\\)#2\\}::operator\\(\\)\\(long\\) const\\)\$" \
    "a lambda out of line: its symbol's name, as c++filt gives it"
has "$tmp/lt" "^ +3 +definite +1600 B +100 .*lambda.cc:$(grep -n '// NESTED_NEW$' "$lsrc" | cut -d: -f1) \\(ns::build::\\{lambda\\(short( int)?\\)\\}::operator\\(\\)\\)\$" \
    "an inlined lambda in a block: ns::build::{lambda(short)}::operator()"
"$zw" export --format folded --metric leaked -o "$tmp/l.folded" "$tmp/l.zwc" || fail "export folded"
hasnt "$tmp/l.folded" "(^|;)operator\\(\\)( |;)" "folded: no bare operator()"

# ---- Rust's two manglings (symbol table names: the program has no debug information) ----
"$zw" run -q -o "$tmp/rn.zwc" -- "$dir/zwp_rust_names" >/dev/null || fail "zw run zwp_rust_names"
"$zw" top --limit 2 "$tmp/rn.zwc" >"$tmp/rn" 2>/dev/null
has "$tmp/rn" "^ +1 +19.5 KiB +200 .*zwp_rust_names\\+0x[0-9a-f]+ \\(mycrate::grab\\)\$" \
    "Rust's legacy mangling demangled, without its hash"
has "$tmp/rn" "^ +2 +5000 B +100 .*zwp_rust_names\\+0x[0-9a-f]+ \\(mycrate::inner::make\\)\$" \
    "Rust's v0 mangling demangled"
"$zw" top --json --limit 2 "$tmp/rn.zwc" >"$tmp/rnj" 2>/dev/null
has "$tmp/rnj" '"function": "mycrate::inner::make", "symbol": "_RNvNtC7mycrate5inner4make"' \
    "--json: the v0 name demangled, the symbol raw"

# ---- top --at allocations groups ----
"$zw" top --at allocations --limit 0 "$cap" >"$tmp/al"
has "$tmp/al" "^ +1 +2000 +1953 KiB +.*readable.cc:$grab_line \\(grab\\(unsigned long\\)\\)\$" \
    "top --at allocations: 2000 allocations at grab()'s line"
"$zw" top --at allocations --group filename --limit 0 "$cap" >"$tmp/alf"
has "$tmp/alf" "^ +1 +2500 +[0-9.]+ [KM]iB +.*readable.cc" \
    "top --at allocations --group filename: the file's 2500 allocations in one row"
[ "$(grep -c readable.cc "$tmp/alf")" = 1 ] && ok "one row for readable.cc" ||
    fail "top --at allocations --group filename: readable.cc in more than one row"

# ---- demangled in every output, raw where a tool wants it ----
"$zw" leaks --json --limit 0 "$cap" >"$tmp/json"
has "$tmp/json" '"function": "shapes::Pool<Block>::make\(Block const&\)", "symbol": "_ZN6shapes4PoolI5BlockE4makeERKS1_"' \
    "--json: function demangled, symbol raw"
has "$tmp/json" '"function": "operator new\(unsigned long\)", "symbol": "_Znwm"' \
    "--json: operator new and _Znwm"
"$zw" export --format folded --metric leaked -o "$tmp/f.folded" "$cap" || fail "export folded"
has "$tmp/f.folded" "shapes::Pool<Block>::make\\(Block const&\\);operator new\\(unsigned long\\) " \
    "folded: demangled frames"
hasnt "$tmp/f.folded" "_Z" "folded: no mangled name"
"$zw" export --format massif -o "$tmp/massif.out" "$cap" || fail "export massif"
has "$tmp/massif.out" ": shapes::Pool<Block>::make\\(Block const&\\) \\(" "massif: demangled"
hasnt "$tmp/massif.out" ": operator new" "massif: operator new folded into its callers (as --alloc-fn)"
"$zw" export --format pprof -o "$tmp/p.pb.gz" "$cap" || fail "export pprof"
gzip -dc "$tmp/p.pb.gz" >"$tmp/p.pb"
has "$tmp/p.pb" "shapes::Pool<Block>::make\\(Block const&\\)" "pprof: the name demangled"
has "$tmp/p.pb" "_ZN6shapes4PoolI5BlockE4makeERKS1_" "pprof: system_name raw"
if "$zw" report -o "$tmp/r.html" "$cap" 2>"$tmp/err"; then
    has "$tmp/r.html" "shapes::Pool&lt;Block&gt;::make|shapes::Pool\\\\u003cBlock\\\\u003e::make|shapes::Pool<Block>::make" \
        "report: demangled names in its data"
else
    grep -q "configured with -DZW_REPORT=OFF" "$tmp/err" && ok "report not built" || fail "zw report"
fi

# ---- a process tree whose child holds the memory: the summary is the child's ----
"$zw" run -o "$tmp/sh.zwc" -- sh -c "$dir/zwp_readable >/dev/null; true" 2>"$tmp/sum" >/dev/null ||
    fail "zw run sh -c"
has "$tmp/sum" "^zw: 2 processes; below: pid [0-9]+ \\([^)]*zwp_readable\\), the largest peak; pid [0-9]+ \\(sh\\) peaked at" \
    "zw run's summary says it shows the child, the largest peak"
has "$tmp/sum" "^zw: peak +2[0-9.]+ [KM]iB" "the summary's peak is the child's (about 2 MiB), not the shell's"
"$zw" stat "$tmp/sh.zwc" >"$tmp/stat"
has "$tmp/stat" "^peak +2[0-9.]+ [KM]iB in process [0-9]+ .*the largest of the processes' peaks" \
    "zw stat's headline peak is the child's"

# ---- debug information in a separate file (.gnu_debuglink), or none ----
mkdir "$tmp/dl"
cp "$dir/zwp_readable" "$tmp/dl/prog"
objcopy --only-keep-debug "$tmp/dl/prog" "$tmp/dl/prog.debug" && strip -g "$tmp/dl/prog" &&
    (cd "$tmp/dl" && objcopy --add-gnu-debuglink=prog.debug prog) || fail "objcopy"
"$zw" run -q -o "$tmp/dl/a.zwc" -- "$tmp/dl/prog" >/dev/null || fail "zw run prog"
"$zw" leaks --group lineno --limit 1 "$tmp/dl/a.zwc" >"$tmp/dl/top" 2>"$tmp/dl/err"
has "$tmp/dl/top" "readable.cc:$grab_line \\(grab\\(unsigned long\\)\\)\$" \
    "a stripped program's lines come from the file its .gnu_debuglink names"
hasnt "$tmp/dl/err" "no debug information" "no note when every printed frame has a line"
rm "$tmp/dl/prog.debug"
"$zw" run -q -o "$tmp/dl/b.zwc" -- "$tmp/dl/prog" >/dev/null || fail "zw run prog"
"$zw" leaks --group lineno --limit 1 "$tmp/dl/b.zwc" >"$tmp/dl/top" 2>"$tmp/dl/err"
has "$tmp/dl/top" "/dl/prog\\+0x[0-9a-f]+ \\(grab\\(unsigned long\\)\\)\$" \
    "without its debug file: the symbol table's name, demangled, at module+offset"
[ "$(grep -c 'no debug information for .*/dl/prog' "$tmp/dl/err")" = 1 ] &&
    ok "one note names the module without debug information" ||
    { fail "no single note naming the module:"; cat "$tmp/dl/err"; }
has "$tmp/dl/err" "dbgsym.*DEBUGINFOD_URLS" "the note says how to get debug information"
# the same debug file from a debuginfod server (a stand-in answering /buildid/ID/debuginfo on
# localhost): with DEBUGINFOD_URLS set for zw run, libdw fetches it and the lines are back
mkdir "$tmp/dl/srv"
cp "$dir/zwp_readable" "$tmp/dl/prog2"
objcopy --only-keep-debug "$tmp/dl/prog2" "$tmp/dl/srv/prog2.debug" && strip -g "$tmp/dl/prog2" ||
    fail "objcopy"
bid=$(readelf -n "$tmp/dl/prog2" | sed -n 's/.*Build ID: //p')
python3 - "$tmp/dl/srv/prog2.debug" "$bid" "$tmp/dl/srv/log" >"$tmp/dl/srv/port" <<'PY' &
import http.server, sys
debug, build_id, log = sys.argv[1:]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log, "a") as f:
            f.write(self.path + "\n")
        if self.path == "/buildid/%s/debuginfo" % build_id:
            data = open(debug, "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_error(404)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
server=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$tmp/dl/srv/port" ] && break; sleep 0.5; done
DEBUGINFOD_URLS="http://127.0.0.1:$(cat "$tmp/dl/srv/port")" DEBUGINFOD_CACHE_PATH="$tmp/dl/cache" \
    "$zw" run -q -o "$tmp/dl/c.zwc" -- "$tmp/dl/prog2" >/dev/null || fail "zw run prog2"
kill "$server"
wait "$server" 2>/dev/null
has "$tmp/dl/srv/log" "^/buildid/$bid/debuginfo\$" "libdw asked the DEBUGINFOD_URLS server for the program's debug file"
"$zw" leaks --group lineno --limit 1 "$tmp/dl/c.zwc" >"$tmp/dl/top" 2>"$tmp/dl/err"
has "$tmp/dl/top" "readable.cc:$grab_line \\(grab\\(unsigned long\\)\\)\$" \
    "with DEBUGINFOD_URLS the stripped program's lines come from the server"
hasnt "$tmp/dl/err" "no debug information for .*/dl/prog2" "and no note names it"

# ---- the status line: on a terminal only (a pseudo-terminal here), about once a second ----
# under_pty OUT PROG ARGS...: what PROG writes to its terminal (stdout and stderr: one
# pseudo-terminal) in OUT, with \r as <CR> and ESC as <ESC>
under_pty() {
    out=$1
    shift
    python3 - "$@" >"$out" <<'PY'
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
text = b""
while True:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    text += d
os.waitpid(pid, 0)
sys.stdout.write(text.decode(errors="replace").replace("\r", "<CR>").replace("\x1b", "<ESC>"))
PY
}
under_pty "$tmp/pty" "$zw" run -o "$tmp/pty.zwc" -- sh -c "$dir/zwp_readable >/dev/null; sleep 2.5"
n=$(grep -o '<CR>zw: [0-9]* s, heap [0-9.]* [KMG]*i*B (peak 2[0-9.]* [KM]iB), [0-9]* allocations, [0-9] processes ([0-9] running)<ESC>\[K' "$tmp/pty" | wc -l)
[ "$n" -ge 2 ] && ok "under a pseudo-terminal zw run refreshed its status line $n times" ||
    { fail "no status line refreshed twice under a pseudo-terminal:"; cat "$tmp/pty"; }
has "$tmp/pty" "<CR><ESC>\\[Kzw: 3 processes; below" "the status line is erased before the summary"
"$zw" run -o "$tmp/nt.zwc" -- sh -c 'sleep 1.5' 2>"$tmp/nt" >/dev/null
if grep -q "$(printf '\r')" "$tmp/nt"; then fail "a status line when stderr is not a terminal"; else
    ok "no status line when stderr is not a terminal"; fi

# ---- reading commands: a status line while they read, once they have run about a second ----
# ZW_PROGRESS_AFTER_MS=0 (for tests) makes the second none: the line the command would show on a
# large capture, shown on these small ones
under_pty "$tmp/rd" env ZW_PROGRESS_AFTER_MS=0 "$zw" top --limit 1 "$tmp/sh.zwc"
has "$tmp/rd" "<CR>zw: top: reading [^ ]*/sh.zwc \\(capture 1 of 2\\): [0-9.]+ [KM]?i?B of [0-9.]+ [KM]?i?B, [0-9]+\\.[0-9] s<ESC>\\[K" \
    "zw top on a terminal: a status line says which capture of the set it reads, bytes read of all"
has "$tmp/rd" "<ESC>\\[K<CR><ESC>\\[K[^<]*sh.zwc: peak set" "the line is erased before the table"
hasnt "$tmp/rd" "<ESC>\\[K[^<]*<CR>zw: top" "the line is never left with the output after it"
under_pty "$tmp/rp" env ZW_PROGRESS_AFTER_MS=0 "$zw" report -o "$tmp/rp.html" "$tmp/sh.zwc"
if ! grep -q "configured with -DZW_REPORT=OFF" "$tmp/rp"; then
    has "$tmp/rp" "<CR>zw: report: writing the page: process 1 of 2, [0-9.]+ s<ESC>\\[K" \
        "zw report on a terminal: the line says which process of the page it writes"
    has "$tmp/rp" "<CR><ESC>\\[K[^<]*rp.html: report of" "and is erased before the report's path"
fi
under_pty "$tmp/rq" env ZW_PROGRESS_AFTER_MS=0 "$zw" top -q --limit 1 "$tmp/sh.zwc"
has "$tmp/rq" "sh.zwc: peak set" "top -q under a pseudo-terminal printed its table"
hasnt "$tmp/rq" "zw: top: reading" "top -q: no status line"
under_pty "$tmp/rs" "$zw" stat "$tmp/sh.zwc"
has "$tmp/rs" "^peak " "zw stat under a pseudo-terminal printed its figures"
hasnt "$tmp/rs" "zw: stat: reading" "a command shorter than a second: no status line"
ZW_PROGRESS_AFTER_MS=0 "$zw" leaks "$tmp/sh.zwc" >/dev/null 2>"$tmp/rn"
if grep -q "$(printf '\r')" "$tmp/rn"; then fail "a reading command's status line when stderr is not a terminal"; else
    ok "no reading command's status line when stderr is not a terminal"; fi

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"

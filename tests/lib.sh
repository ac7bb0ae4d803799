# tests/lib.sh - what the shell tests share. Sourced (`. "$(dirname "$0")/../lib.sh"`) after the
# script has read its arguments: makes $tmp (removed on exit) and the fails counter, and gives
# fail, expect, check (a zw command's status and stderr) and finish (the verdict and status).

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# fail WHAT: one failed check
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# expect WHAT GOT WANT
expect() {
    if [ "$2" = "$3" ]; then echo "ok: $1 = $3"; else fail "$1: got '$2', want '$3'"; fi
}

# check STATUS PATTERN ARGS...: `zw ARGS` exits with STATUS and, unless PATTERN is empty, says
# PATTERN on stderr; its output is left in $tmp/out and $tmp/err ($zw: the zw to run)
check() {
    want=$1
    pattern=$2
    shift 2
    "$zw" "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "zw $*: status $got, want $want"
        cat "$tmp/err"
    elif [ -n "$pattern" ] && ! grep -q -- "$pattern" "$tmp/err"; then
        fail "zw $*: stderr lacks '$pattern':"
        cat "$tmp/err"
    else
        echo "ok: zw $* -> $got"
    fi
}

# finish WHAT: the verdict line, and the script's status
finish() {
    if [ "$fails" -ne 0 ]; then
        echo "$fails check(s) failed"
        exit 1
    fi
    echo "$1: ok"
    exit 0
}

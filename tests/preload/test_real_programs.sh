#!/bin/sh
# tests/preload/test_real_programs.sh ZW - Debian programs nobody here wrote, under `zw run` with
# the default unwinder (on x86-64, the shadow stack: return addresses replaced by a trampoline's)
# and under ZW_UNWIND=shadow-check (every 97th walk compared with libunwind's; the first difference
# aborts the program): each must print what it prints untraced and exit as it does untraced.
# The programs throw and catch (Python and Perl exceptions, JavaScript errors), run threads, and
# allocate from interpreters, a database, a compressor and a sort.
# Exits 77 (skipped) when python3.11 is missing (scripts/install-deps test); the other programs
# come with the test dependencies, and one missing fails the test.
set -u
zw=$1
command -v python3.11 >/dev/null 2>&1 || { echo "skipped: python3.11 not found"; exit 77; }
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1

seq 1 200000 >numbers.txt
cat >exceptions.py <<'EOF'
import json, threading
def deep(n, i):
    if n == 0:
        if i % 3 == 0:
            raise ValueError("x" * (i % 50))
        return [str(i)] * 3
    return deep(n - 1, i)
def work(k, out):
    caught = 0
    for i in range(20000):
        try:
            deep(30, i)
        except ValueError:
            caught += 1
    out[k] = caught
out = [0] * 3
threads = [threading.Thread(target=work, args=(k, out)) for k in range(3)]
[t.start() for t in threads]
[t.join() for t in threads]
print(out, json.dumps({"n": sum(out)}))
EOF
cat >errors.js <<'EOF'
let caught = 0, kept = [];
for (let i = 0; i < 100000; i++) {
    try { if (i % 5 == 0) throw new Error("e" + i); kept.push({k: "x" + i}); } catch (e) { caught++; }
}
console.log(caught, kept.length);
EOF

# name, then the command (a shell line run in $tmp)
programs='python|PYTHONMALLOC=malloc python3.11 exceptions.py
perl|perl -e '"'"'my %h; my $d = 0; for (1..100000) { eval { die "x$_\n" if $_ % 7 == 0; $h{$_} = [$_]; }; $d++ if $@ } print scalar(keys %h), " $d\n"'"'"'
node|node errors.js
gawk|gawk '"'"'{ s[$1 % 1000] += $1 } END { n = 0; for (k in s) n += s[k]; print n, length(s) }'"'"' numbers.txt
sqlite|sqlite3 :memory: "create table t(a, b); with recursive c(x) as (select 1 union all select x + 1 from c where x < 50000) insert into t select x, x * 2 from c; create index i on t(b); select count(*), sum(b) from t where b % 3 = 0;"
xz|xz -T2 -6 -c numbers.txt | xz -d | md5sum
sort|sort -R --random-source=numbers.txt --parallel=2 -S 1M numbers.txt | sort -n --parallel=2 | md5sum'

total=0 # walks compared with libunwind's, all programs (xz and sort allocate too little for some)
while IFS='|' read -r name line; do
    plain=$(sh -c "$line" 2>&1)
    status=$?
    for mode in "" shadow-check:97; do
        rm -f cap.zwc cap.zwc.*
        traced=$(ZW_UNWIND=$mode "$zw" run -q -o cap.zwc -- sh -c "$line" 2>err)
        got=$?
        if [ "$traced" != "$plain" ] || [ "$got" -ne "$status" ]; then
            fail "$name (ZW_UNWIND=${mode:-default}): status $got (untraced $status), printed '$traced', untraced '$plain'"
            head -5 err
            continue
        fi
        checked=""
        if [ -n "$mode" ]; then
            checked=$(sed -n 's/^zw: preload: ZW_UNWIND=check: \([0-9]*\) walks agreed.*/\1/p' err |
                awk '{ n += $1 } END { print n + 0 }')
            total=$((total + checked))
            checked=", $checked walks equal libunwind's"
        fi
        echo "ok: $name (ZW_UNWIND=${mode:-default}): the same output and status ($status)$checked"
    done
done <<END
$programs
END
[ $total -ge 1000 ] || fail "only $total walks compared with libunwind's, want 1000 or more"
finish "Debian programs under the default unwinder and shadow-check"

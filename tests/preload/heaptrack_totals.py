#!/usr/bin/env python3
"""tests/preload/heaptrack_totals.py - totals of a raw heaptrack 1.4 trace, computed exactly.

Usage: heaptrack_totals.py FILE.raw.zst [--exclude-module PATH]...

heaptrack_print rounds its summary (peak "329.39M") and its trace has lost the pointers, so this
reads the raw trace of `heaptrack --raw` (`zstd -dc`; hex numbers; `m` module with its load
address and segments, `t` trace node = instruction pointer + parent, `+` size trace pointer,
`-` pointer; heaptrack 1.4.0 src/track/libheaptrack.cpp) and replays it:
  allocations   one per `+` (malloc, calloc, realloc, posix_memalign, aligned_alloc, valloc);
  frees         `-` of a pointer seen allocated (a realloc writes `-` old, then `+` new);
  peak_bytes    the largest running sum of the live blocks' sizes;
  temporary     a `-` of the pointer of the `+` just before it, no other `-` in between
                (heaptrack_interpret's lastPtr, reset by every free);
  info_temporary the same as heaptrack_print counts it: the freed block's size and trace equal
                those of the last `+` (accumulatedtracedata.cpp; lastAllocationPtr starts at
                and is reset to index 0, so the first size+trace pair is compared after a free
                too). With raw_allocations it must equal heaptrack_print's summary.
An allocation whose innermost frame lies in an --exclude-module (its free too) is left out and
counted in excluded_allocations / excluded_bytes: the test passes the libraries that only
heaptrack brings into the process (libheaptrack_preload.so's dependencies the program does not
load), whose initialisers allocate there: libstdc++'s emergency exception pool, 72704 bytes.
Prints one line of key=value.
"""
import subprocess
import sys


class Modules:
    """The module list of the trace (an `m 1 -` line starts a new one)."""

    def __init__(self):
        self.ranges = []  # (lo, hi, name)

    def line(self, rest):
        f = rest.split()
        name = f[1]
        if name == "-":
            self.ranges = []
            return
        base = int(f[2], 16)
        for i in range(3, len(f) - 1, 2):
            lo = base + int(f[i], 16)
            self.ranges.append((lo, lo + int(f[i + 1], 16), name))

    def name_of(self, ip):
        for lo, hi, name in self.ranges:
            if lo <= ip < hi:
                return name
        return "?"


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    exclude = set()
    i = 1
    while i < len(args):
        if args[i] == "--exclude-module" and i + 1 < len(args):
            exclude.add(args[i + 1])
            i += 2
        else:
            print(f"heaptrack_totals: error: unknown argument '{args[i]}'", file=sys.stderr)
            sys.exit(2)
    text = subprocess.run(["zstd", "-dc", args[0]], capture_output=True, check=True).stdout
    modules = Modules()
    trace_ip = [0]  # trace index (1-based) -> its innermost instruction pointer
    trace_excluded = {}  # trace index -> bool, cached
    infos = {}  # (size, trace) -> allocation info index, as heaptrack_interpret numbers them
    live = {}  # pointer -> (size, info index, excluded)
    t = dict(allocations=0, frees=0, temporary=0, peak_bytes=0, leaked_bytes=0,
             excluded_allocations=0, excluded_bytes=0, raw_allocations=0, info_temporary=0)
    last_ptr = None
    last_info = 0
    for line in text.decode("utf-8", "replace").splitlines():
        if len(line) < 2 or line[1] != " ":
            continue
        mode, rest = line[0], line[2:]
        if mode == "m":
            modules.line(rest)
        elif mode == "t":
            trace_ip.append(int(rest.split()[0], 16))
        elif mode == "+":
            f = rest.split()
            size, trace, ptr = int(f[0], 16), int(f[1], 16), int(f[2], 16)
            info = infos.setdefault((size, trace), len(infos))
            if trace not in trace_excluded:
                trace_excluded[trace] = trace > 0 and modules.name_of(trace_ip[trace]) in exclude
            ex = trace_excluded[trace]
            live[ptr] = (size, info, ex)
            t["raw_allocations"] += 1
            last_info = info
            if ex:
                t["excluded_allocations"] += 1
                t["excluded_bytes"] += size
                continue
            t["allocations"] += 1
            t["leaked_bytes"] += size
            t["peak_bytes"] = max(t["peak_bytes"], t["leaked_bytes"])
            last_ptr = ptr
        elif mode == "-":
            ptr = int(rest, 16)
            block = live.pop(ptr, None)
            temporary = last_ptr == ptr
            last_ptr = None
            if block is None:
                continue  # not seen allocated: heaptrack_interpret drops it too
            size, info, ex = block
            t["info_temporary"] += last_info == info
            last_info = 0
            if ex:
                continue
            t["frees"] += 1
            t["leaked_bytes"] -= size
            t["temporary"] += temporary
    print(" ".join(f"{k}={v}" for k, v in t.items()))


if __name__ == "__main__":
    main()

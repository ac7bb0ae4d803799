"""bench/trace/bench_tracemalloc.py - CPython's tracemalloc on a loop comparable to
bench_trace's: N x (allocate a random small bytes object; drop it) in 3-level-deep calls.

Usage: python3 bench_tracemalloc.py NFRAME [N]      (NFRAME 0: not tracing)
Prints one line: bench=trace workload=loop-3deep impl=cpython-tracemalloc nframe=.. ns_per_op=..
Sizes: the same table of 4096 sizes in 1..256 bytes as bench_trace.c (splitmix64, seed 0x5eed).
bytes(n) asks pymalloc (or malloc above 512 bytes) for n + 33 bytes and frees them on return.
"""
import sys
import time
import tracemalloc

MASK = (1 << 64) - 1


def sizes_table():
    s = 0x5EED
    out = []
    for _ in range(4096):
        s = (s + 0x9E3779B97F4A7C15) & MASK
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(1 + (z ^ (z >> 31)) % 256)
    return out


def level3(n):
    b = bytes(n)
    return len(b)


def level2(n):
    return level3(n)


def level1(n):
    return level2(n)


def loop(sizes, n):
    total = 0
    for i in range(n):
        total += level1(sizes[i & 4095])
    return total


def main():
    nframe = int(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000
    sizes = sizes_table()
    if nframe > 0:
        tracemalloc.start(nframe)
    loop(sizes, n // 10)  # warm-up
    t0 = time.perf_counter()
    loop(sizes, n)
    t1 = time.perf_counter()
    if nframe > 0:
        tracemalloc.stop()
    print(f"bench=trace workload=loop-3deep impl=cpython-tracemalloc nframe={nframe} "
          f"ns_per_op={(t1 - t0) * 1e9 / n:.2f} tracer_bytes_per_block=- ops={n} "
          f"python={sys.version.split()[0]}")


if __name__ == "__main__":
    main()

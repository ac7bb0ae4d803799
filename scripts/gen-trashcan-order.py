#!/usr/bin/env python3
"""gen-trashcan-order.py - the order of __del__ calls when a deep chain of containers dies in
CPython 3.11, for tests/gc/test_trashcan.c.

Level i (0 at the top) of the chain is a list [F(3i), next, F(3i+1)] when i % 3 == 0, a dict
{'a': F(3i), 'b': next, 'c': F(3i+1)} when i % 3 == 1, and an instance of N (__slots__ a, b,
c, d, with a __del__) holding F(3i), next, F(3i+1) and its id 3i+2 otherwise. F has a __del__
that logs its id. Dropping the only reference to level 0 runs every __del__; past depth 50,
CPython's trashcan (Py_TRASHCAN_BEGIN) puts deallocations off, which changes the order. Run
with CPython 3.11 only:

    python3.11 scripts/gen-trashcan-order.py [DEPTH] > tests/gc/data/trashcan-3.11.txt

Output: the depth on the first line, then the logged ids, one per line."""
import sys

events = []


class F:
    __slots__ = ("id",)

    def __init__(self, i):
        self.id = i

    def __del__(self):
        events.append(self.id)


class N:
    __slots__ = ("a", "b", "c", "d")

    def __del__(self):
        events.append(self.d)


def build(depth):
    nxt = None
    for i in reversed(range(depth)):
        a, c = F(3 * i), F(3 * i + 1)
        if i % 3 == 0:
            node = [a, nxt, c]
        elif i % 3 == 1:
            node = {"a": a, "b": nxt, "c": c}
        else:
            node = N()
            node.a, node.b, node.c, node.d = a, nxt, c, 3 * i + 2
        del a, c
        nxt = node
    return nxt


def main():
    if sys.version_info[:2] != (3, 11):
        sys.exit("gen-trashcan-order.py: run it with CPython 3.11")
    depth = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    root = build(depth)
    del root
    print(depth)
    for e in events:
        print(e)


if __name__ == "__main__":
    main()

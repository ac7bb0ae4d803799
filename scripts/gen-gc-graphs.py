#!/usr/bin/env python3
"""gen-gc-graphs.py - random object graphs and what CPython 3.11's collector does with them.

Builds each graph in CPython with automatic collection off, drops every node but the roots,
runs gc.collect() and records its result, the surviving nodes and the order of the __del__
calls and weakref callbacks; tests/gc/test_parity.c replays the same graphs in zerowaste and
compares. Run it with CPython 3.11 only (other versions collect differently):

    python3.11 scripts/gen-gc-graphs.py [--seed S] [--count N] [-o FILE]

(FILE defaults to tests/gc/data/graphs-3.11.txt beside this script; commit it with the script.)

What one graph does, in this order (the C test must do the same, step for step):
  1. creates the nodes in id order (a weakref node right after its callback object);
  2. adds the edges in file order (list append, dict store, setattr);
  3. keeps the roots, then drops the generator's reference to every node in id order: nodes
     no longer referenced die by refcount, their __del__ and weakref callbacks run ("drop");
  4. gc.collect() ("collect", "events", "survivors": reachable from the roots or `saved`);
  5. empties `saved` (in reverse order, as list.clear) and collects again ("collect2",
     "events2", "survivors2": reachable from the roots or `saved`, which a node dying in
     the emptying may join: a node resurrected at refcount death kept its own nodes alive).

Node kinds: L a list; D a dict (keys small ints or short ASCII strs, values nodes); A an
instance of a plain class; F an instance of a class whose __del__ logs "d<id>" and, for the
nodes listed on the "resurrect" line, appends self to the global list `saved`; W a weak
reference to an earlier A or F node, with no callback (-), the module-level function `cbf`
(f: logs "c<id>" of the weakref) or its own callback object (m: types.MethodType(cbm, id),
which logs "c<id>"). Instance attributes are named a0..a7 and set with setattr, never through
__dict__, so 3.11 keeps them in the inline values array and materialises no dict (see
prime() for the other way 3.11 makes one).

How collect() counts (3.11, checked on 3.11.7): each unreachable tracked object once: lists,
dicts that hold something (an empty dict is never tracked, so it is freed but not counted),
instances (no __dict__ object), weakrefs, and an `m` callback object (a bound method: one GC
object; a functools.partial would count 2, the partial and its args tuple; a lambda with a
default 2, the function and its defaults tuple; a closure 3, with its cell and closure
tuple). The `f` callback is reachable from the module and never counts. The C replay uses
zw_func_new for both: one GC object each, as a bound method.

The generator keeps the refcount-death cascades of step 3 under 40 levels (max_cascade()
models them; step 5's are not modelled): CPython's trashcan defers deallocations nested 50
deep, which would reorder the events.

File format: one item per line, tokens separated by single spaces, '#' starts a comment line.
  graph <index> <n nodes>              starts a graph; nodes are numbered 0..n-1
  node <kind>                          kind L, D, A or F, in id order
  node W <referent id> <cb>            cb is -, f or m
  edge <src> <dst> <key>               key: '-' list append, '#<int>' dict int key,
                                       '$<str>' dict str key, '.<k>' attribute a<k>
  roots <id>...                        held by the test until the end (may be empty)
  resurrect <id>...                    F nodes whose __del__ saves self (may be empty)
  drop <event>...                      events while dropping the non-roots (step 3)
  collect <n>                          gc.collect()'s result (step 4)
  events <event>...                    events during that collect, in order
  survivors <id>...                    nodes alive after it, ascending
  collect2 <n>                         step 5's result
  events2 <event>...                   events while emptying `saved` and during that collect
  survivors2 <id>...                   nodes alive after it, ascending
  end
Events: d<id> (__del__ of node id), c<id> (callback of the weakref node id).
"""

import argparse
import gc
import os
import random
import sys
import types
import weakref

if sys.version_info[:2] != (3, 11) or sys.implementation.name != "cpython":
    sys.exit("gen-gc-graphs.py: needs CPython 3.11 (this is %s %s)"
             % (sys.implementation.name, sys.version.split()[0]))

MAX_ATTRS = 8        # a0..a7: well under 3.11's 30 shared keys per class
MAX_CASCADE = 40     # deepest refcount-death chain allowed (the trashcan starts at 50)

# ---- the objects a graph is made of ----

LOG = []             # events, in order
saved = []           # where resurrecting __del__ methods put self
RESURRECT = set()    # node ids whose __del__ resurrects
NID = {}             # id(node) -> node id, for the nodes of the graph being run
RECORDING = False    # false while a graph is torn down


class A:
    pass


class F:
    def __del__(self):
        if not RECORDING:
            return
        nid = NID[id(self)]
        LOG.append("d%d" % nid)
        if nid in RESURRECT:
            saved.append(self)


def prime(cls):
    """Puts a0..a7 in the class's shared keys, in that order, while they have room. 3.11 takes
    one slot of that room away for each instance made (init_inline_values) down to 1, and an
    instance given a name the keys cannot take gets a real __dict__, one more object for
    collect() to count; zerowaste's classes keep room for 30 names, so the graphs must never
    need a new name once instances exist. The C test primes its classes the same way."""
    o = cls()
    for k in range(MAX_ATTRS):
        setattr(o, "a%d" % k, None)


prime(A)
prime(F)


def cbf(wr):
    if RECORDING:
        LOG.append("c%d" % NID[id(wr)])


def cbm(wid, wr):
    if RECORDING:
        LOG.append("c%d" % wid)


# ---- random graphs ----

class Graph:
    def __init__(self, index, n):
        self.index = index
        self.kinds = []      # per node: 'L', 'D', 'A', 'F', 'W'
        self.wref = {}       # W node -> (referent, cb)
        self.edges = []      # (src, dst, key)
        self.roots = []
        self.resurrect = []
        self.n = n


def pick_target(rng, i, n, local):
    r = rng.random()
    if r < 0.08:
        return i
    if r < 0.08 + local:
        return max(0, min(n - 1, i + rng.randint(-6, 6)))
    return rng.randrange(n)


def make_graph(rng, index, n):
    g = Graph(index, n)
    instances = []
    has_plain_ref = set()
    for i in range(n):
        r = rng.random()
        if r < 0.12 and instances:
            target = rng.choice(instances[-20:]) if rng.random() < 0.7 else rng.choice(instances)
            cb = rng.choice("-ffmmm")
            if cb == "-" and target in has_plain_ref:
                cb = "f"  # callback-less refs to one object are one shared object: avoid
            if cb == "-":
                has_plain_ref.add(target)
            g.kinds.append("W")
            g.wref[i] = (target, cb)
            continue
        kind = "L" if r < 0.40 else "D" if r < 0.58 else "A" if r < 0.78 else "F"
        g.kinds.append(kind)
        if kind in "AF":
            instances.append(i)
    local = rng.choice([0.5, 0.8, 0.95])
    density = rng.choice([0.8, 1.2, 1.6, 2.2, 3.0])
    nslots = [0] * n
    for i in range(n):
        if g.kinds[i] == "W":
            continue
        deg = min(int(rng.expovariate(1 / density)), MAX_ATTRS)
        for _ in range(deg):
            j = pick_target(rng, i, n, local)
            if g.kinds[i] == "L":
                key = "-"
            elif g.kinds[i] == "D":
                k = nslots[i]
                key = "#%d" % (k * 3 - 4) if rng.random() < 0.5 else "$k%d" % k
            else:
                key = ".%d" % nslots[i]
            nslots[i] += 1
            g.edges.append((i, j, key))
    if rng.random() < 0.3 and n > 2:  # a long ring through a stretch of the graph
        a = rng.randrange(n)
        b = min(n, a + rng.randint(2, max(2, n // 2)))
        ring = [k for k in range(a, b) if g.kinds[k] != "W" and nslots[k] < MAX_ATTRS]
        for x, y in zip(ring, ring[1:] + ring[:1]):
            key = {"L": "-", "D": "$r%d" % nslots[x]}.get(g.kinds[x], ".%d" % nslots[x])
            nslots[x] += 1
            g.edges.append((x, y, key))
    if rng.random() < 0.5:  # attributes and dict keys then set in no particular order
        rng.shuffle(g.edges)
    root_p = rng.choice([0.0, 0.02, 0.1, 0.25])
    for i in range(n):
        p = 0.5 if g.kinds[i] == "W" else root_p
        if rng.random() < p:
            g.roots.append(i)
    res_p = rng.choice([0.0, 0.1, 0.3])
    g.resurrect = [i for i in range(n) if g.kinds[i] == "F" and rng.random() < res_p]
    return g


def max_cascade(g):
    """The deepest chain of refcount deaths in step 3 (a model of refcounts: one per edge, one
    for the generator's list, one per root; resurrecting nodes stop a cascade)."""
    n = g.n
    refs = [1] * n
    out = [[] for _ in range(n)]
    for s, d, _ in g.edges:
        refs[d] += 1
        out[s].append(d)
    for r in g.roots:
        refs[r] += 1
    res = set(g.resurrect)
    dead = [False] * n
    deepest = 0
    for i in range(n):
        refs[i] -= 1
        stack = [(i, 1)] if refs[i] == 0 else []
        while stack:
            x, depth = stack.pop()
            if x in res:
                continue
            deepest = max(deepest, depth)
            dead[x] = True
            for y in out[x]:
                refs[y] -= 1
                if refs[y] == 0:
                    stack.append((y, depth + 1))
    return deepest


# ---- running a graph in CPython ----

def build(g):
    nodes = []
    for i in range(g.n):
        kind = g.kinds[i]
        if kind == "L":
            o = []
        elif kind == "D":
            o = {}
        elif kind == "A":
            o = A()
        elif kind == "F":
            o = F()
        else:
            target, cb = g.wref[i]
            if cb == "-":
                o = weakref.ref(nodes[target])
            elif cb == "f":
                o = weakref.ref(nodes[target], cbf)
            else:
                o = weakref.ref(nodes[target], types.MethodType(cbm, i))
        NID[id(o)] = i
        nodes.append(o)
        o = None
    for s, d, key in g.edges:
        src = nodes[s]
        if key == "-":
            src.append(nodes[d])
        elif key[0] == "#":
            src[int(key[1:])] = nodes[d]
        elif key[0] == "$":
            src[key[1:]] = nodes[d]
        else:
            setattr(src, "a" + key[1:], nodes[d])
    src = None
    return nodes


def walk(g, starts):
    """Node ids reachable from `starts` (weak references not followed), ascending."""
    seen = set()
    stack = list(starts)
    attrs = {}
    for s, _, key in g.edges:
        if key[0] == ".":
            attrs.setdefault(s, []).append("a" + key[1:])
    while stack:
        o = stack.pop()
        nid = NID[id(o)]
        if nid in seen:
            continue
        seen.add(nid)
        kind = g.kinds[nid]
        if kind == "L":
            stack.extend(o)
        elif kind == "D":
            stack.extend(o.values())
        elif kind in "AF":
            for name in attrs.get(nid, ()):
                stack.append(getattr(o, name))
    return sorted(seen)


def run(g):
    """Steps 1-5 of the module docstring; returns the expected lines."""
    global RECORDING
    NID.clear()
    RESURRECT.clear()
    RESURRECT.update(g.resurrect)
    LOG.clear()
    gc.collect()
    RECORDING = True
    nodes = build(g)
    roots = [nodes[i] for i in g.roots]
    for i in range(g.n):
        nodes[i] = None
    del nodes
    drop = LOG[:]
    LOG.clear()
    n1 = gc.collect()
    events = LOG[:]
    LOG.clear()
    survivors = walk(g, roots + saved)
    saved.clear()
    n2 = gc.collect()
    events2 = LOG[:]
    LOG.clear()
    survivors2 = walk(g, roots + saved)
    RECORDING = False
    del roots
    saved.clear()
    gc.collect()
    assert not gc.garbage and not saved
    return [
        "drop" + "".join(" " + e for e in drop),
        "collect %d" % n1,
        "events" + "".join(" " + e for e in events),
        "survivors" + "".join(" %d" % i for i in survivors),
        "collect2 %d" % n2,
        "events2" + "".join(" " + e for e in events2),
        "survivors2" + "".join(" %d" % i for i in survivors2),
    ]


def sizes(rng, count):
    """Mostly small graphs, some medium ones, a few large ones up to 10,000 nodes."""
    out = [1, 2, 3, 10000, 5000]
    while len(out) < count:
        r = rng.random()
        if r < 0.55:
            out.append(rng.randint(1, 30))
        elif r < 0.85:
            out.append(rng.randint(31, 300))
        elif r < 0.96:
            out.append(rng.randint(301, 2000))
        else:
            out.append(rng.randint(2001, 4000))
    return out


def write_graph(f, g, expected):
    f.write("graph %d %d\n" % (g.index, g.n))
    for i in range(g.n):
        if g.kinds[i] == "W":
            f.write("node W %d %s\n" % g.wref[i])
        else:
            f.write("node %s\n" % g.kinds[i])
    for s, d, key in g.edges:
        f.write("edge %d %d %s\n" % (s, d, key))
    f.write("roots" + "".join(" %d" % i for i in g.roots) + "\n")
    f.write("resurrect" + "".join(" %d" % i for i in g.resurrect) + "\n")
    for line in expected:
        f.write(line + "\n")
    f.write("end\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--count", type=int, default=120)
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests", "gc",
                           "data", "graphs-3.11.txt")
    ap.add_argument("-o", "--output", default=os.path.normpath(default))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    gc.disable()
    graphs = []
    for index, n in enumerate(sizes(rng, args.count)):
        while True:  # the same size again until the cascades are shallow enough
            g = make_graph(rng, index, n)
            if max_cascade(g) <= MAX_CASCADE:
                break
        graphs.append(g)
    with open(args.output, "w", encoding="ascii") as f:
        f.write("# generated by scripts/gen-gc-graphs.py with Python %s, seed %d; do not edit\n"
                % (sys.version.split()[0], args.seed))
        f.write("# format: see the docstring of scripts/gen-gc-graphs.py\n")
        for g in graphs:
            write_graph(f, g, run(g))
    return 0


if __name__ == "__main__":
    sys.exit(main())

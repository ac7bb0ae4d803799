#!/usr/bin/env python3
"""scripts/talk-python.py - the talk's six "destroy" experiments in Python, with the talk's
measure_memory, each variant in a fresh interpreter: the "3.11.7" columns of docs/talk.md.
Usage: python3 scripts/talk-python.py   (prints one measure line per variant; what the
experiments print goes to /dev/null)."""
import os
import subprocess
import sys
import tempfile

MEASURE = r'''
import gc, time, tracemalloc, sys
from contextlib import contextmanager
@contextmanager
def measure_memory(tag=""):
    tracemalloc.start()
    s_1 = tracemalloc.take_snapshot()
    base_object_count = len(gc.get_objects())
    start_time = time.time()
    yield
    s_2 = tracemalloc.take_snapshot()
    exc_time = time.time() - start_time
    top_stats = s_2.compare_to(s_1, "lineno")
    block_count = 0
    mem_count = 0
    for stat in top_stats:
        block_count += stat.count_diff
        mem_count += stat.size_diff
    object_count = len(gc.get_objects()) - base_object_count
    print(f"{tag}New blocks: {block_count}, new allocated bytes: {mem_count}, objects: {object_count}, time: {exc_time}", file=sys.stderr)
    tracemalloc.stop()
'''

SDK = r'''
class Client:
    def __init__(self) -> None:
        self.log: list[str] = []
    def request(self, url: str) -> None:
        self.log.append(f"Called: {url}")
client = Client()
'''

VARIANTS = {    'keep_before': r'''
from mm import measure_memory
def compute_func(v): return v * 2
class A:
    def __init__(self, val: int) -> None:
        self.val: int = val
        self.double: int = compute_func(val)
    def foo(self) -> None:
        print(f"Foo: {self.double}")
    def bar(self) -> None:
        print(f"Bar: {self.double}")
def allocator_a():
    return [A(i) for i in range(1000)]
with measure_memory("keep before: "):
    res_a = allocator_a()
    for i in res_a:
        i.foo()
        i.bar()
''',
    'keep_after': r'''
from mm import measure_memory
def compute_func(v): return v * 2
class A:
    def __init__(self, val: int) -> None:
        self.val: int = val
    def foo(self) -> None:
        print(f"Foo: {compute_func(self.val)}")
    def bar(self) -> None:
        print(f"Bar: {compute_func(self.val)}")
def allocator_a():
    return [A(i) for i in range(1000)]
with measure_memory("keep after: "):
    res_a = allocator_a()
    for i in res_a:
        i.foo()
        i.bar()
''',
    'noglobal_before': r'''
from mm import measure_memory
from sdk import client
def foo(base_url: str) -> None:
    for r in range(100):
        client.request(base_url.format(r))
with measure_memory("noglobal before: "):
    foo("/user/{}")
    foo("/orders/{}")
    foo("/invoices/{}")
''',
    'noglobal_after': r'''
from mm import measure_memory
from sdk import Client
def foo(base_url: str) -> None:
    client = Client()
    for r in range(100):
        client.request(base_url.format(r))
with measure_memory("noglobal after: "):
    foo("/user/{}")
    foo("/orders/{}")
    foo("/invoices/{}")
''',
    'gen_before': r'''
from mm import measure_memory
def get_result() -> list[int]:
    return [4096] * 10_000
with measure_memory("gen before: "):
    result = get_result()
    total = sum(result)
''',
    'gen_range': r'''
from mm import measure_memory
def get_result():
    for _ in range(10_000):
        yield 4096
with measure_memory("gen after (range): "):
    result = get_result()
    total = sum(result)
''',
    'gen_while': r'''
from mm import measure_memory
def get_result():
    count = 0
    while count < 10_000:
        yield 4096
        count += 1
with measure_memory("gen after (while): "):
    result = get_result()
    total = sum(result)
''',
    'slots_before': r'''
from mm import measure_memory
class A:
    def __init__(self, val) -> None:
        self.val = val
def allocator() -> list[A]:
    return [A(i) for i in range(1000)]
with measure_memory("slots before: "):
    res = allocator()
''',
    'slots_after': r'''
from mm import measure_memory
class A:
    __slots__ = ["val"]
    def __init__(self, val) -> None:
        self.val = val
def allocator() -> list[A]:
    return [A(i) for i in range(1000)]
with measure_memory("slots after: "):
    res = allocator()
''',
    'nt_before': r'''
from mm import measure_memory
class A:
    def __init__(self, val) -> None:
        self.val = val
def allocator() -> list[A]:
    return [A(i) for i in range(1000)]
with measure_memory("namedtuple before: "):
    res = allocator()
''',
    'nt_after': r'''
from mm import measure_memory
from collections import namedtuple
A = namedtuple("A", ["val"])
def allocator() -> list[A]:
    return [A(i) for i in range(1000)]
with measure_memory("namedtuple after: "):
    res = allocator()
''',
    'weak_before': r'''
import sys
from mm import measure_memory
class Foo:
    def __init__(self, name: str) -> None:
        self.name = name
        self.observers = []
    def add_observers(self, *args) -> None:
        [self.observers.append(obs) for obs in args]
    def send_info(self, message: str) -> None:
        for s in self.observers:
            print(f"Info for {s.name}: {message}")
with measure_memory("weakref before: "):
    main = Foo("main")
    f2 = Foo("f2")
    f3 = Foo("f3")
    f4 = Foo("f4")
    main.add_observers(f2, f3, f4)
    main.send_info("msg")
    ref_count = sys.getrefcount(f3)
    print(f"{ref_count} = 3")
''',
    'weak_after': r'''
import sys, weakref
from mm import measure_memory
class Foo:
    def __init__(self, name: str) -> None:
        self.name = name
        self.observers = []
    def add_observers(self, *args) -> None:
        [self.observers.append(weakref.ref(obs)) for obs in args]
    def send_info(self, message: str) -> None:
        for s in self.observers:
            if s():
                print(f"Info for {s().name}: {message}")
with measure_memory("weakref after: "):
    main = Foo("main")
    f2 = Foo("f2")
    f3 = Foo("f3")
    f4 = Foo("f4")
    main.add_observers(f2, f3, f4)
    main.send_info("msg")
    ref_count = sys.getrefcount(f3)
    print(f"{ref_count} = 2")
''',
    'lw_before': r'''
import sys
from mm import measure_memory
class Foo:
    def __init__(self, name: str) -> None:
        self.name = name
        self.observers = []
    def add_observers(self, *args) -> None:
        [self.observers.append(obs) for obs in args]
    def send_info(self, message: str) -> None:
        for s in self.observers:
            print(f"Info for {s.name}: {message}")
import tracemalloc
tracemalloc.start(); s0 = tracemalloc.take_snapshot()
if True:
    main = Foo("main")
    f2 = Foo("f2")
    f3 = Foo("f3")
    f4 = Foo("f4")
    main.add_observers(f2, f3, f4)
    main.send_info("msg")
    ref_count = sys.getrefcount(f3)
    print(f"{ref_count} = 3")
del f2, f3, f4
main.send_info("msg")
s1 = tracemalloc.take_snapshot()
st = s1.compare_to(s0, "lineno")
import sys
print("weakref before, del f2-f4: blocks, bytes:", sum(x.count_diff for x in st), sum(x.size_diff for x in st), file=sys.stderr)
''',
    'lw_after': r'''
import sys, weakref
from mm import measure_memory
class Foo:
    def __init__(self, name: str) -> None:
        self.name = name
        self.observers = []
    def add_observers(self, *args) -> None:
        [self.observers.append(weakref.ref(obs)) for obs in args]
    def send_info(self, message: str) -> None:
        for s in self.observers:
            if s():
                print(f"Info for {s().name}: {message}")
import tracemalloc
tracemalloc.start(); s0 = tracemalloc.take_snapshot()
if True:
    main = Foo("main")
    f2 = Foo("f2")
    f3 = Foo("f3")
    f4 = Foo("f4")
    main.add_observers(f2, f3, f4)
    main.send_info("msg")
    ref_count = sys.getrefcount(f3)
    print(f"{ref_count} = 2")
del f2, f3, f4
main.send_info("msg")
s1 = tracemalloc.take_snapshot()
st = s1.compare_to(s0, "lineno")
import sys
print("weakref after, del f2-f4: blocks, bytes:", sum(x.count_diff for x in st), sum(x.size_diff for x in st), file=sys.stderr)
''',
}


def main():
    with tempfile.TemporaryDirectory() as d:
        for name, text in (("mm.py", MEASURE), ("sdk.py", SDK)):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        for name, code in VARIANTS.items():
            path = os.path.join(d, name + ".py")
            with open(path, "w") as f:
                f.write(code)
            # the measure line goes to stderr; what the experiment prints is thrown away
            subprocess.run([sys.executable, path], cwd=d, stdout=subprocess.DEVNULL, check=True)


if __name__ == "__main__":
    main()

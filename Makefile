# A thin front for CMake. Every target installs the Debian packages it needs first
# (scripts/install-deps is idempotent and quiet when nothing is missing).
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_BENCH ?= build-bench
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all demo examples test test-release test-stress asan bench bench-build bench-obj bench-gc \
	bench-trace bench-run format clean install

all:
	@scripts/install-deps build test
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The main job on bundled examples: the allocator's census, then zw on a program with a leak, a
# growth and a peak at known lines (examples/zw-demo, walked through in docs/zw.md).
demo: all
	$(BUILD)/examples/mallocstats
	@echo
	$(BUILD)/zw run -o $(BUILD)/zw-demo.zwc -- $(BUILD)/examples/zw-demo
	$(BUILD)/zw stat $(BUILD)/zw-demo.zwc
	$(BUILD)/zw top $(BUILD)/zw-demo.zwc --limit 5
	$(BUILD)/zw leaks $(BUILD)/zw-demo.zwc --limit 3
	$(BUILD)/zw report $(BUILD)/zw-demo.zwc -o $(BUILD)/zw-demo.html

# The whole suite, the object and collector suites again in GC stress mode (a collection at
# every allocation of a GC object), then the suite under AddressSanitizer + UBSan.
# The talk's "destroy" experiments (docs/talk.md): each prints its variants' measure lines and
# a before/after/delta table.
TALK_EXAMPLES = keep_short no_global generator slots namedtuple weakref_example

examples: all
	@for ex in $(TALK_EXAMPLES); do $(BUILD)/examples/$$ex || exit 1; echo; done

test: test-release test-stress asan

test-release: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-stress: all
	cd $(BUILD) && ZW_GC_STRESS=1 ctest --output-on-failure -j $(JOBS) -R '^(obj|gc)_'

# The sanitizer build also has every assert and invariant check on (ZW_DEBUG_FULL): the suite,
# then the obj and gc suites in GC stress mode, where the collector's checks run at every
# allocation of a GC object.
asan:
	@scripts/install-deps build test
	cmake -S . -B $(BUILD_ASAN) -DZW_SANITIZE=ON -DZW_DEBUG_FULL=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 ZW_GC_STRESS=1 ctest --output-on-failure \
	    -j $(JOBS) -R '^(obj|gc)_'

# Every benchmark (the allocators, the object runtime and the collector against CPython,
# tracing), or one of them.
bench: bench-build
	bench/alloc/run $(BUILD_BENCH)
	bench/obj/run $(BUILD_BENCH)
	bench/gc/run $(BUILD_BENCH)
	bench/trace/run $(BUILD_BENCH)
	$(BUILD_BENCH)/bench/preload/bench_leakscan
	bench/preload/run_depth $(BUILD_BENCH)
	bench/run/run $(BUILD_BENCH)

bench-obj: bench-build
	bench/obj/run $(BUILD_BENCH)

# The collector's benchmark alone (zerowaste against CPython 3.11, embedded).
bench-gc: bench-build
	bench/gc/run $(BUILD_BENCH)

bench-trace: bench-build
	bench/trace/run $(BUILD_BENCH)

# zw run against heaptrack and valgrind's massif on three programs (about 6 minutes)
bench-run: bench-build
	bench/run/run $(BUILD_BENCH)

bench-build:
	@scripts/install-deps build bench
	cmake -S . -B $(BUILD_BENCH) -DZW_BUILD_BENCH=ON -DZW_BUILD_TESTS=OFF \
	    -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_BENCH) -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# PREFIX=DIR installs there instead of the configured prefix (/usr/local by default); DESTDIR
# stages the install, as usual.
install: all
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_BENCH)

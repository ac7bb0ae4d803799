# A thin front for CMake. Every target installs the Debian packages it needs first
# (scripts/install-deps is idempotent and quiet when nothing is missing).
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_BENCH ?= build-bench
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all demo test test-release asan bench bench-build bench-gc format clean install

all:
	@scripts/install-deps build test
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The main job on a bundled example.
demo: all
	$(BUILD)/examples/mallocstats

# The whole suite, then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test: test-release asan

test-release: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan:
	@scripts/install-deps build test
	cmake -S . -B $(BUILD_ASAN) -DZW_SANITIZE=ON -DZW_DEBUG=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

bench: bench-build
	bench/alloc/run $(BUILD_BENCH)
	bench/gc/run $(BUILD_BENCH)

# The collector's benchmark alone (zerowaste against CPython 3.11, embedded).
bench-gc: bench-build
	bench/gc/run $(BUILD_BENCH)

bench-build:
	@scripts/install-deps build bench
	cmake -S . -B $(BUILD_BENCH) -DZW_BUILD_BENCH=ON -DZW_BUILD_TESTS=OFF \
	    -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_BENCH) -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

install: all
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_BENCH)

#!/bin/sh
# tests/build/test_install.sh SRC_DIR BUILD_DIR - installs zerowaste into a scratch prefix and
# builds a consumer against it twice: with pkg-config and with CMake's find_package. Fails if
# either cannot compile, link or run.
set -eu
src=$1
build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cat >"$tmp/consumer.c" <<'C'
#include <stdio.h>
#include <zerowaste/zerowaste.h>
int main(void)
{
    zw_heap *h = zw_heap_new();
    void *p = zw_heap_malloc(h, 100);
    size_t blocks = zw_heap_allocated_blocks(h);
    zw_heap_free(h, p);
    zw_heap_destroy(h);
    printf("zerowaste %s blocks=%zu\n", zw_version(), blocks);
    return blocks == 1 ? 0 : 1;
}
C
libdir=$(find "$tmp/prefix" -name zerowaste.pc -exec dirname {} \; | head -n 1)
[ -n "$libdir" ] || { echo "zerowaste.pc not installed" >&2; exit 1; }
PKG_CONFIG_PATH=$libdir
export PKG_CONFIG_PATH
# shellcheck disable=SC2046
cc -o "$tmp/consumer" "$tmp/consumer.c" $(pkg-config --cflags --libs zerowaste) \
    -Wl,-rpath,"$(pkg-config --variable=libdir zerowaste)"
"$tmp/consumer" | grep -q '^zerowaste 0\.1\.0 blocks=1$'
echo "pkg-config consumer: ok"

mkdir "$tmp/cm"
cat >"$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(zerowaste REQUIRED)
add_executable(consumer ../consumer.c)
target_link_libraries(consumer PRIVATE zerowaste::zerowaste)
CM
cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm/build" >/dev/null
"$tmp/cm/build/consumer" | grep -q '^zerowaste 0\.1\.0 blocks=1$'
echo "cmake find_package consumer: ok"

# zw and libzwpreload.so, installed: zw run finds the library relative to itself
if [ -x "$tmp/prefix/bin/zw" ]; then
    lib=$(find "$tmp/prefix" -name libzwpreload.so | head -n 1)
    [ -n "$lib" ] || { echo "libzwpreload.so not installed" >&2; exit 1; }
    [ -f "$tmp/prefix/share/man/man1/zw.1" ] || { echo "zw.1 not installed" >&2; exit 1; }
    ZW_PRELOAD= "$tmp/prefix/bin/zw" run -q -o "$tmp/true.zwc" -- true
    "$tmp/prefix/bin/zw" stat --json "$tmp/true.zwc" | grep -q '"end": "exit"'
    echo "installed zw run: ok"
fi

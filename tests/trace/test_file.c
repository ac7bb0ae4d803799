/* tests/trace/test_file.c - snapshot files (docs/format.md): dump/load round trips of a raw
 * snapshot and of a traced one, then damage: every truncation length and a byte flip at every
 * offset of a small file must give an error (and no crash, no snapshot), and foreign, newer,
 * unknown-required-section and trailing-garbage files give errors naming what and where. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zerowaste/zerowaste.h>

#include "zwt_trace.h"

/* A file name of this test's own; removed by the caller. */
static void
temp_path(char *path, size_t len)
{
    snprintf(path, len, "/tmp/zwt_file_%d_XXXXXX", (int)getpid());
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    close(fd);
}

/* The bytes of `snap` as a file. */
static unsigned char *
dump_bytes(const zw_snapshot *snap, size_t *len)
{
    char path[64];
    temp_path(path, sizeof(path));
    zw_error err;
    cr_assert_eq(zw_snapshot_dump(snap, path, &err), 0, "%s", err.msg);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *data = malloc(*len + 1);
    cr_assert_eq(fread(data, 1, *len, f), *len);
    fclose(f);
    unlink(path);
    return data;
}

/* Same traces, in the same order, with the same frames. */
static void
assert_same(const zw_snapshot *a, const zw_snapshot *b)
{
    cr_assert_eq(zw_snapshot_len(a), zw_snapshot_len(b));
    cr_assert_eq(zw_snapshot_traceback_limit(a), zw_snapshot_traceback_limit(b));
    for (size_t i = 0; i < zw_snapshot_len(a); i++) {
        zw_trace_info x = zw_snapshot_trace(a, i);
        zw_trace_info y = zw_snapshot_trace(b, i);
        cr_assert(x.domain == y.domain && x.size == y.size, "trace %zu", i);
        cr_assert_eq(zw_traceback_len(x.traceback), zw_traceback_len(y.traceback));
        cr_assert_eq(zw_traceback_total_nframe(x.traceback),
                     zw_traceback_total_nframe(y.traceback));
        for (size_t k = 0; k < zw_traceback_len(x.traceback); k++) {
            const zw_frame *f = zw_traceback_frame(x.traceback, k);
            const zw_frame *g = zw_traceback_frame(y.traceback, k);
            cr_assert_str_eq(f->filename, g->filename);
            cr_assert_eq(f->lineno, g->lineno);
            cr_assert((f->function == NULL) == (g->function == NULL));
            if (f->function != NULL)
                cr_assert_str_eq(f->function, g->function);
            cr_assert((f->module == NULL) == (g->module == NULL));
            if (f->module != NULL)
                cr_assert_str_eq(f->module, g->module);
            cr_assert_eq(f->offset, g->offset);
            cr_assert_eq(f->inlined, g->inlined);
        }
    }
}

Test(trace_file, raw_snapshot_round_trip)
{
    zw_snapshot *a = zwt_fixture_a();
    size_t len;
    unsigned char *data = dump_bytes(a, &len);
    zw_error err;
    zw_snapshot *b = zw_snapshot_load_memory(data, len, &err);
    cr_assert_not_null(b, "%s", err.msg);
    assert_same(a, b);
    /* and the statistics agree */
    zw_stat_list *la = zw_snapshot_statistics(a, ZW_GROUP_TRACEBACK, false, &err);
    zw_stat_list *lb = zw_snapshot_statistics(b, ZW_GROUP_TRACEBACK, false, &err);
    cr_assert_eq(zw_stat_list_len(la), zw_stat_list_len(lb));
    for (size_t i = 0; i < zw_stat_list_len(la); i++) {
        const zw_statistic *x = zw_stat_list_get(la, i);
        const zw_statistic *y = zw_stat_list_get(lb, i);
        cr_assert(x->size == y->size && x->count == y->count);
        cr_assert_eq(zw_traceback_compare(x->traceback, y->traceback), 0);
    }
    zw_stat_list_free(la);
    zw_stat_list_free(lb);
    free(data);
    zw_snapshot_free(a);
    zw_snapshot_free(b);
}

static __attribute__((noinline)) void *
deep(int n)
{
    void *p = n == 0 ? zw_mem_malloc(64) : deep(n - 1);
    __asm__ volatile("" ::: "memory");
    return p;
}

Test(trace_file, traced_snapshot_round_trip_through_a_file)
{
    zw_error err;
    cr_assert_eq(zw_trace_start(16, &err), 0, "%s", err.msg);
    void *p[20];
    for (int i = 0; i < 20; i++)
        p[i] = i % 2 ? deep(i) : zw_mem_raw_malloc((size_t)i * 100 + 1);
    zw_snapshot *a = zw_trace_take_snapshot(&err);
    cr_assert_not_null(a, "%s", err.msg);
    char path[64];
    temp_path(path, sizeof(path));
    cr_assert_eq(zw_snapshot_dump(a, path, &err), 0, "%s", err.msg);
    zw_snapshot *b = zw_snapshot_load(path, &err);
    cr_assert_not_null(b, "%s", err.msg);
    assert_same(a, b);
    unlink(path);
    zw_stat_list *l = zw_snapshot_compare_to(b, a, ZW_GROUP_LINENO, true, &err);
    for (size_t i = 0; i < zw_stat_list_len(l); i++)
        cr_assert(zw_stat_list_get(l, i)->size_diff == 0 &&
                  zw_stat_list_get(l, i)->count_diff == 0);
    zw_stat_list_free(l);
    zw_snapshot_free(a);
    zw_snapshot_free(b);
    for (int i = 0; i < 20; i++)
        i % 2 ? zw_mem_free(p[i]) : zw_mem_raw_free(p[i]);
    zw_trace_stop();
}

Test(trace_file, every_truncation_is_an_error)
{
    zw_snapshot *a = zwt_fixture_a();
    size_t len;
    unsigned char *data = dump_bytes(a, &len);
    for (size_t n = 0; n < len; n++) {
        unsigned char *copy = malloc(n + 1); /* exactly n bytes readable, for ASan */
        memcpy(copy, data, n);
        zw_error err = {{0}};
        zw_snapshot *s = zw_snapshot_load_memory(copy, n, &err);
        cr_assert_null(s, "a file cut at %zu of %zu bytes loaded", n, len);
        cr_assert_neq(err.msg[0], '\0', "no message at length %zu", n);
        free(copy);
    }
    free(data);
    zw_snapshot_free(a);
}

Test(trace_file, a_byte_flip_anywhere_is_an_error)
{
    zw_snapshot *a = zwt_fixture_a();
    size_t len;
    unsigned char *data = dump_bytes(a, &len);
    static const unsigned char masks[] = {0x01, 0x80, 0xff};
    for (size_t m = 0; m < sizeof(masks); m++) {
        for (size_t i = 0; i < len; i++) {
            data[i] ^= masks[m];
            zw_error err = {{0}};
            zw_snapshot *s = zw_snapshot_load_memory(data, len, &err);
            cr_assert_null(s, "flipping byte %zu with 0x%02x went unnoticed", i, masks[m]);
            cr_assert_neq(err.msg[0], '\0');
            data[i] ^= masks[m];
        }
    }
    free(data);
    zw_snapshot_free(a);
}

/* CRC32 as the format has it, to forge headers. */
static uint32_t
crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void
put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void
expect_error(const unsigned char *data, size_t len, const char *needle)
{
    zw_error err = {{0}};
    zw_snapshot *s = zw_snapshot_load_memory(data, len, &err);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
}

Test(trace_file, foreign_newer_and_unknown_files_are_named)
{
    zw_snapshot *a = zwt_fixture_a();
    size_t len;
    unsigned char *data = dump_bytes(a, &len);
    unsigned char *copy = malloc(len + 64);

    expect_error((const unsigned char *)"GIF89a this is not a snapshot at all, no no no", 40,
                 "bad magic number at offset 0");

    memcpy(copy, data, len); /* version 2.0 */
    copy[8] = 2;
    put32(copy + 28, crc32(copy, 28));
    expect_error(copy, len, "format version 2.0 is newer than this reader's 1.0");

    memcpy(copy, data, len); /* a capture, not a snapshot */
    copy[12] = 2;
    put32(copy + 28, crc32(copy, 28));
    expect_error(copy, len, "is not a snapshot");

    memcpy(copy, data, len); /* the first section's type becomes an unknown, required one */
    put32(copy + 32, 99);
    put32(copy + 32 + 28, crc32(copy + 32, 28));
    expect_error(copy, len, "section 0 at offset 32 has type 99 (unknown), required");

    memcpy(copy, data, len); /* a payload damaged, with its header intact */
    copy[32 + 32 + 2] ^= 0x10;
    expect_error(copy, len, "section 0 (info) at offset 32 damaged (payload checksum mismatch)");

    memcpy(copy, data, len); /* garbage after the end */
    memcpy(copy + len, "trailing", 8);
    expect_error(copy, len + 8, "8 bytes after the end section");

    expect_error(data, 20, "truncated");

    /* an unknown optional section is skipped: insert one after the header */
    unsigned char sec[32 + 4] = {0};
    put32(sec, 77);
    put32(sec + 4, 0);
    sec[8] = 4;
    sec[16] = 4;
    memcpy(sec + 32, "abcd", 4);
    put32(sec + 24, crc32(sec + 32, 4));
    put32(sec + 28, crc32(sec, 28));
    memcpy(copy, data, 32);
    memcpy(copy + 32, sec, sizeof(sec));
    memcpy(copy + 32 + sizeof(sec), data + 32, len - 32);
    uint32_t nsections = (uint32_t)copy[20] | (uint32_t)copy[21] << 8;
    put32(copy + 20, nsections + 1);
    put32(copy + 28, crc32(copy, 28));
    zw_error err;
    zw_snapshot *s = zw_snapshot_load_memory(copy, len + sizeof(sec), &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_eq(zw_snapshot_len(s), zw_snapshot_len(a));
    zw_snapshot_free(s);

    cr_assert_null(zw_snapshot_load("/nonexistent/zwt.zws", &err));
    cr_assert_str_eq(err.msg, "cannot open '/nonexistent/zwt.zws': No such file or directory");
    free(copy);
    free(data);
    zw_snapshot_free(a);
}

Test(trace_file, unwritable_and_unreadable_paths_are_errors)
{
    zw_snapshot *a = zwt_fixture_a();
    zw_error err;
    cr_assert_eq(zw_snapshot_dump(a, "/nonexistent-dir/x.zws", &err), -1);
    cr_assert_str_eq(err.msg,
                     "cannot create '/nonexistent-dir/x.zws.tmp': No such file or directory");
    cr_assert_null(zw_snapshot_load("/", &err), "a directory is not a snapshot");
    cr_assert_neq(err.msg[0], '\0');
    /* an empty file */
    char path[64];
    temp_path(path, sizeof(path));
    cr_assert_null(zw_snapshot_load(path, &err));
    cr_assert(strstr(err.msg, "truncated") != NULL, "%s", err.msg);
    unlink(path);
    zw_snapshot_free(a);
}

/* tests/trace/test_capture_summary.c - a summary load (zw_capture_load_summary, what `zw run`
 * reads to print its summary): it counts the exit set's traces by domain as a full load counts
 * exit.snap's, in every version of the format (an embedded snapshot before 1.5, a SET naming the
 * TABLE from 1.5, the records of a PACKED section from 1.6, the packed end of a streamed
 * capture), without reading a traceback; a set whose table is missing is not kept, as in a full
 * load; the decoders it uses refuse every shorter prefix of what they read. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zerowaste/zerowaste.h>

#include "capture_format.h"
#include "zwt_capture.h"
#include "zwt_trace.h"

TestSuite(trace_capture_summary, .init = zwt_capture_setup, .fini = zwt_capture_teardown);

/* The traces of `snap` counted by domain, one at a time. */
static zw_capture_set_size
counted(const zw_snapshot *snap)
{
    zw_capture_set_size s = {.kept = snap != NULL};
    for (size_t i = 0; snap != NULL && i < zw_snapshot_len(snap); i++) {
        zw_trace_info t = zw_snapshot_trace(snap, i);
        if (t.domain == ZW_TRACE_DEFAULT_DOMAIN) {
            s.heap_blocks++;
            s.heap_bytes += t.size;
        } else if (t.domain == ZW_CAPTURE_MMAP_DOMAIN) {
            s.mmap_blocks++;
            s.mmap_bytes += t.size;
        }
    }
    return s;
}

static void
assert_same_size(const zw_capture_set_size *a, const zw_capture_set_size *b, const char *what)
{
    cr_assert(
        a->kept == b->kept && a->heap_blocks == b->heap_blocks && a->heap_bytes == b->heap_bytes &&
            a->mmap_blocks == b->mmap_blocks && a->mmap_bytes == b->mmap_bytes,
        "%s: kept %d/%d, heap %llu blocks %llu B / %llu blocks %llu B, mmap %llu/%llu", what,
        a->kept, b->kept, (unsigned long long)a->heap_blocks, (unsigned long long)a->heap_bytes,
        (unsigned long long)b->heap_blocks, (unsigned long long)b->heap_bytes,
        (unsigned long long)a->mmap_blocks, (unsigned long long)b->mmap_blocks);
}

/* `file` loaded in full, for the summary and (if `brief` is not NULL) briefly, from a temporary
 * file removed after. */
static void
load_all(const zwi_cbuf *file, zw_capture **full, zw_capture **sum, zw_capture **brief)
{
    char path[32];
    snprintf(path, sizeof(path), "/tmp/zw-summary-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, file->data, file->len), (ssize_t)file->len);
    close(fd);
    zw_error err;
    *full = zw_capture_load(path, &err);
    cr_assert_not_null(*full, "%s", err.msg);
    *sum = zw_capture_load_summary(path, &err);
    cr_assert_not_null(*sum, "%s", err.msg);
    if (brief != NULL) {
        *brief = zw_capture_load_brief(path, &err);
        cr_assert_not_null(*brief, "%s", err.msg);
    }
    unlink(path);
}

/* ---- every capture of the corpus: written by zw run in each version of the format ---- */

Test(trace_capture_summary, counts_the_exit_set_as_a_full_load_in_every_version)
{
    DIR *d = opendir(ZW_TEST_CAPTURE_DIR);
    cr_assert_not_null(d, "%s", ZW_TEST_CAPTURE_DIR);
    size_t files = 0;
    size_t kept = 0;
    bool versions[4] = {false}; /* the exit sets of demo-1.1, 1.2, 1.5, 1.6 */
    static const char *const demos[4] = {"demo-1.1-timeseries.zwc", "demo-1.2-steps-marks.zwc",
                                         "demo-1.5-table-marks.zwc", "demo-1.6-packed.zwc"};
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", ZW_TEST_CAPTURE_DIR, e->d_name);
        zw_error err;
        zw_capture *full = zw_capture_load(path, &err);
        zw_capture *sum = zw_capture_load_summary(path, &err);
        cr_assert_eq(full == NULL, sum == NULL, "%s: one load refused it: %s", e->d_name, err.msg);
        if (full == NULL)
            continue;
        files++;
        zw_capture_set_size want = counted(full->exit.snap);
        assert_same_size(&full->exit_size, &want, e->d_name);
        assert_same_size(&sum->exit_size, &want, e->d_name);
        kept += want.kept;
        for (int v = 0; v < 4; v++)
            versions[v] |= strcmp(e->d_name, demos[v]) == 0 && want.kept && want.heap_blocks > 0;
        /* how the run went as the full load has it, and nothing that names a traceback */
        cr_assert(sum->pid == full->pid && sum->complete == full->complete &&
                      memcmp(&sum->totals, &full->totals, sizeof(sum->totals)) == 0 &&
                      sum->nsamples == full->nsamples && sum->write_errno == full->write_errno,
                  "%s", e->d_name);
        cr_assert(sum->exit.snap == NULL && sum->peak.snap == NULL && sum->nmarks == 0 &&
                      sum->sites == NULL && sum->nsteps == 0,
                  "%s", e->d_name);
        /* a brief load does not count it */
        zw_capture *brief = zw_capture_load_brief(path, &err);
        cr_assert_not_null(brief, "%s: %s", e->d_name, err.msg);
        cr_assert(!brief->exit_size.kept && brief->exit_size.heap_blocks == 0, "%s", e->d_name);
        zw_capture_free(brief);
        zw_capture_free(sum);
        zw_capture_free(full);
    }
    closedir(d);
    cr_assert_geq(files, 10, "the corpus has %zu captures", files);
    cr_assert_geq(kept, 5, "%zu captures with an exit set", kept);
    for (int v = 0; v < 4; v++)
        cr_assert(versions[v], "%s: no exit set counted", demos[v]);
}

/* ---- captures made here ---- */

/* A finished capture whose end is a PACKED section as a streamed capture ends: the TABLE (unless
 * not `with_table`), a mark, the exit set (`exit` NULL: not kept), then TOTALS and END. */
static void
streamed_end(zwi_cbuf *file, zw_snapshot *snap, bool with_table, zw_snapshot *exit)
{
    zwi_cbuf pay = {.raw = raw};
    zwi_capture_put_header(file);
    const char *argv[] = {"prog"};
    zwi_encode_process(&pay, &(zwi_process){7, 1, 99, 10, 16, argv, 1});
    zwi_capture_put(file, ZWI_SEC_PROCESS, &pay);
    zwi_cbuf records = {.raw = raw};
    uint32_t map[64];
    zw_snapshot *table = zw_snapshot_new(zw_snapshot_traceback_limit(snap));
    cr_assert_not_null(table);
    cr_assert_eq(zwi_snapshot_absorb(table, snap, map), 0);
    if (with_table) {
        pay.len = 0;
        zwi_encode_table_packed(&pay, table);
        zwi_capture_put_record(&records, ZWI_SEC_TABLE, &pay);
    }
    pay.len = 0;
    zwi_encode_table_set(&pay, ZWI_SET_MARK, &(zw_capture_set){"m", 10, 1000, snap, NULL}, map);
    zwi_capture_put_record(&records, ZWI_SEC_SET, &pay);
    pay.len = 0;
    zwi_encode_table_set(&pay, ZWI_SET_EXIT, &(zw_capture_set){"exit", 30, 3000, exit, NULL}, map);
    zwi_capture_put_record(&records, ZWI_SEC_SET, &pay);
    zwi_container_put_section_level(file, ZWI_SEC_PACKED, ZWI_SECTION_REQUIRED, &records, 3);
    pay.len = 0;
    zwi_encode_totals(&pay, &(zw_capture_totals){60, 50, 7, 3840, 3000, 30, 600000000, 1, 0});
    zwi_capture_put(file, ZWI_SEC_TOTALS, &pay);
    pay.len = 0;
    zwi_encode_end(&pay);
    zwi_capture_put(file, ZWI_SEC_END, &pay);
    zwi_cbuf_release(&records);
    zwi_cbuf_release(&pay);
    zw_snapshot_free(table);
    cr_assert(!file->failed);
}

Test(trace_capture_summary, reads_the_exit_set_in_the_packed_end_of_a_streamed_capture)
{
    zw_snapshot *snap = zwt_fixture_a(); /* domains 0, 0, 0, 1, 2, 3 */
    zwi_cbuf file = {.raw = raw};
    streamed_end(&file, snap, true, snap);
    zw_capture *full, *sum, *brief;
    load_all(&file, &full, &sum, &brief);
    /* the heap's three blocks of 10 bytes and the mmap domain's one of 2: not the mark's twice */
    zw_capture_set_size want = {true, 3, 30, 1, 2};
    assert_same_size(&full->exit_size, &want, "full");
    assert_same_size(&sum->exit_size, &want, "summary");
    cr_assert(sum->complete && sum->damaged == 0 && sum->totals.allocations == 60);
    cr_assert(!brief->exit_size.kept && brief->complete && brief->totals.allocations == 60);
    zw_capture_free(brief);
    zw_capture_free(sum);
    zw_capture_free(full);
    zwi_cbuf_release(&file);
    zw_snapshot_free(snap);
}

Test(trace_capture_summary, an_exit_set_not_kept_or_without_its_table_is_not_counted)
{
    zw_snapshot *snap = zwt_fixture_a();
    for (int without = 0; without < 2; without++) {
        zwi_cbuf file = {.raw = raw};
        /* 0: the table is there, the exit set not kept; 1: the set kept, its table missing */
        streamed_end(&file, snap, without == 0, without == 0 ? NULL : snap);
        zw_capture *full, *sum;
        load_all(&file, &full, &sum, NULL);
        cr_assert(full->exit.label != NULL && full->exit.snap == NULL, "case %d", without);
        zw_capture_set_size none = {0};
        assert_same_size(&full->exit_size, &none, "full");
        assert_same_size(&sum->exit_size, &none, "summary");
        zw_capture_free(sum);
        zw_capture_free(full);
        zwi_cbuf_release(&file);
    }
    zw_snapshot_free(snap);
}

/* The same exit set twice: the second is damage in a summary load as in a full one. */
Test(trace_capture_summary, an_exit_set_stored_twice_is_damage)
{
    zw_snapshot *snap = zwt_fixture_a();
    zw_snapshot *other = zwt_fixture_b();
    zwi_cbuf file = {.raw = raw};
    zwi_cbuf pay = {.raw = raw};
    zwi_capture_put_header(&file);
    zwi_encode_set(&pay, &(zw_capture_set){"exit", 30, 3000, snap, NULL});
    zwi_capture_put(&file, ZWI_SEC_EXIT_SET, &pay);
    pay.len = 0;
    zwi_encode_set(&pay, &(zw_capture_set){"exit", 40, 4000, other, NULL});
    zwi_capture_put(&file, ZWI_SEC_EXIT_SET, &pay);
    pay.len = 0;
    zwi_encode_end(&pay);
    zwi_capture_put(&file, ZWI_SEC_END, &pay);
    zw_capture *full, *sum;
    load_all(&file, &full, &sum, NULL);
    cr_assert(full->damaged == 1 && sum->damaged == 1, "damaged %zu and %zu", full->damaged,
              sum->damaged);
    cr_assert(strstr(sum->damage, "stored twice") != NULL, "%s", sum->damage);
    zw_capture_set_size want = counted(snap); /* the first */
    assert_same_size(&full->exit_size, &want, "full");
    assert_same_size(&sum->exit_size, &want, "summary");
    zw_capture_free(sum);
    zw_capture_free(full);
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&file);
    zw_snapshot_free(other);
    zw_snapshot_free(snap);
}

/* ---- the decoders ---- */

static zw_capture_set_size decoded_size;

static int
decode_set_size(zwi_cursor *c)
{
    return zwi_decode_set_size(c, &decoded_size);
}

static int
decode_table_set_size(zwi_cursor *c)
{
    uint32_t kind;
    int rc = zwi_decode_table_set_size(c, &kind, &decoded_size);
    cr_assert(rc != 0 || kind == ZWI_SET_EXIT);
    return rc;
}

Test(trace_capture_summary, the_set_size_decoders_count_and_refuse_every_prefix)
{
    zw_snapshot *snap = zwt_fixture_a();
    zw_capture_set_size want = counted(snap);
    cr_assert(want.heap_blocks == 3 && want.mmap_blocks == 1);
    zwi_cbuf b = {.raw = raw};
    zwi_encode_set(&b, &(zw_capture_set){"exit", 30, 3000, snap, NULL});
    assert_prefixes_fail(&b, decode_set_size);
    assert_same_size(&decoded_size, &want, "EXIT_SET");
    uint32_t map[64];
    zw_snapshot *table = zw_snapshot_new(zw_snapshot_traceback_limit(snap));
    cr_assert_eq(zwi_snapshot_absorb(table, snap, map), 0);
    b.len = 0;
    zwi_encode_table_set(&b, ZWI_SET_EXIT, &(zw_capture_set){"exit", 30, 3000, snap, NULL}, map);
    assert_prefixes_fail(&b, decode_table_set_size);
    assert_same_size(&decoded_size, &want, "SET");
    /* a set not kept: counted as none */
    b.len = 0;
    zwi_encode_set(&b, &(zw_capture_set){"exit", 30, 3000, NULL, NULL});
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_set_size(&c, &decoded_size), 0);
    cr_assert(!decoded_size.kept && decoded_size.heap_blocks == 0);
    zwi_cbuf_release(&b);
    zw_snapshot_free(table);
    zw_snapshot_free(snap);
}

static void
count_into(void *ctx, uint32_t domain, uint64_t size)
{
    zw_capture_set_size *s = ctx;
    zwi_count_trace(s, domain, size);
}

/* Every snapshot of the corpus: its traces passed over without the tables are those it loads
 * with; cut short or with a damaged byte in its traces, it is refused with a reason. */
Test(trace_capture_summary, the_traces_of_a_snapshot_file_are_read_without_its_tables)
{
    DIR *d = opendir(ZW_TEST_SNAPSHOT_DIR);
    cr_assert_not_null(d, "%s", ZW_TEST_SNAPSHOT_DIR);
    size_t files = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", ZW_TEST_SNAPSHOT_DIR, e->d_name);
        zw_error err;
        zw_snapshot *snap = zw_snapshot_load(path, &err);
        cr_assert_not_null(snap, "%s: %s", e->d_name, err.msg);
        zwi_cbuf file = {.raw = raw};
        cr_assert_eq(zwi_read_file(path, &file, &err), 0, "%s", err.msg);
        zw_capture_set_size got = {.kept = true};
        cr_assert_eq(zwi_snapshot_each_trace(file.data, file.len, count_into, &got, &err), 0,
                     "%s: %s", e->d_name, err.msg);
        zw_capture_set_size want = counted(snap);
        assert_same_size(&got, &want, e->d_name);
        /* cut anywhere: refused, with a reason */
        for (size_t len = 0; len < file.len; len += 1 + file.len / 64) {
            zw_capture_set_size scratch = {0};
            err.msg[0] = '\0';
            cr_assert_eq(zwi_snapshot_each_trace(file.data, len, count_into, &scratch, &err), -1,
                         "%s cut at %zu", e->d_name, len);
            cr_assert_neq(err.msg[0], '\0');
        }
        zwi_cbuf_release(&file);
        zw_snapshot_free(snap);
        files++;
    }
    closedir(d);
    cr_assert_geq(files, 5);
}

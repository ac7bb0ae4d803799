/* tests/fuzz/fuzz_snapshot.c - libFuzzer target for the snapshot file reader
 * (zw_snapshot_load_memory): any input gives a snapshot or an error with a message, never a
 * crash, a leak or undefined behaviour. A loaded snapshot is used (statistics, a dump) so that
 * what the reader accepted is also safe to read. Built with clang by tests/CMakeLists.txt and
 * run for a bounded time by `make test` (tests/fuzz/run_fuzz.sh); seeds in
 * tests/fuzz/corpus/snapshot, found inputs in tests/fuzz/regress/snapshot. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/trace.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zw_error err = {{0}};
    zw_snapshot *snap = zw_snapshot_load_memory(data, size, &err);
    if (snap == NULL) {
        if (err.msg[0] == '\0')
            abort(); /* an error must say what went wrong */
        return 0;
    }
    zw_group groups[] = {ZW_GROUP_FILENAME, ZW_GROUP_LINENO, ZW_GROUP_TRACEBACK};
    for (size_t g = 0; g < 3; g++) {
        zw_stat_list *l = zw_snapshot_statistics(snap, groups[g], false, &err);
        for (size_t i = 0; l != NULL && i < zw_stat_list_len(l); i++) {
            char text[256];
            zw_statistic_str(zw_stat_list_get(l, i), false, text, sizeof(text));
        }
        zw_stat_list_free(l);
    }
    zw_filter f = ZW_FILTER(false, "*.c");
    f.all_frames = true;
    zw_snapshot *kept = zw_snapshot_filter_traces(snap, &f, 1, &err);
    zw_snapshot_free(kept);
    zw_snapshot_free(snap);
    return 0;
}

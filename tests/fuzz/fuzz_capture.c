/* tests/fuzz/fuzz_capture.c - libFuzzer target for the capture reader (zw_capture_load_memory,
 * and the summary load `zw run` makes): any input gives a capture or an error with a message,
 * never a crash, a leak or undefined behaviour, and never more memory than a fixed multiple of
 * the input (the default bound of a rebuilt live set; run_fuzz.sh's RSS limit). Every live set a
 * loaded capture holds is grouped and compared, as `zw` does. Seeds: tests/fuzz/corpus/capture;
 * found inputs: tests/fuzz/regress. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <zerowaste/capture.h>

#include "capture_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
use(const zw_snapshot *snap, const zw_snapshot *old)
{
    if (snap == NULL)
        return;
    zw_stat_list *l = zw_snapshot_statistics(snap, ZW_GROUP_TRACEBACK, false, NULL);
    for (size_t i = 0; l != NULL && i < zw_stat_list_len(l); i++) {
        char text[256];
        zw_statistic_str(zw_stat_list_get(l, i), false, text, sizeof(text));
    }
    zw_stat_list_free(l);
    if (old != NULL)
        zw_stat_list_free(zw_snapshot_compare_to(snap, old, ZW_GROUP_LINENO, true, NULL));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zw_error err = {{0}};
    zw_capture *c = zwi_capture_load_summary_memory(data, size, &err);
    if (c == NULL && err.msg[0] == '\0')
        abort();
    zw_capture_free(c);
    err.msg[0] = '\0';
    c = zw_capture_load_memory(data, size, &err);
    if (c == NULL) {
        if (err.msg[0] == '\0')
            abort(); /* an error must say what went wrong */
        return 0;
    }
    use(c->peak.snap, c->exit.snap);
    use(c->exit.snap, NULL);
    use(c->sites, NULL);
    for (size_t i = 0; i < c->nmarks; i++)
        use(c->marks[i].snap, c->peak.snap);
    if (c->nsteps > 0) { /* as `zw top --at` does */
        zw_snapshot *at = zw_capture_live_at(c, c->steps[c->nsteps - 1].time_ns, &err);
        use(at, NULL);
        zw_snapshot_free(at);
    }
    zw_capture_free(c);
    return 0;
}

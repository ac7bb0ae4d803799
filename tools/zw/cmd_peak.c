/* tools/zw/cmd_peak.c - zw peak: the blocks allocated at the peak of the heap, grouped by
 * allocation traceback, largest first. */
#include <stdio.h>

#include "zw.h"


static const char help[] =
    "usage: zw peak [options] FILE\n"
    "\n"
    "The blocks of capture FILE allocated at the peak of its heap, grouped by the traceback of\n"
    "their allocation, largest first. The peak set is saved each time the heap grows 1% past\n"
    "the last saved one, so it is within 1% of the true peak.\n"
    "\n"
    "options:\n"
    "  --group lineno|filename|traceback   (default traceback)\n"
    "  --limit N    at most N entries (default 10; 0: all)\n"
    "  --pid PID    only that process of a capture set (default: all, merged)\n"
    "  --only       FILE alone, not FILE.1, FILE.2... of the same run\n"
    "  --json       a JSON array of {bytes, blocks, traceback}\n"
    "  -h, --help   this text\n";

int
cmd_peak(int argc, char **argv)
{
    return zw_top_like("peak", help, "peak", ZW_GROUP_TRACEBACK, argc, argv);
}

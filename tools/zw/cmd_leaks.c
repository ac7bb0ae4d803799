/* tools/zw/cmd_leaks.c - zw leaks: the blocks still allocated when the process ended, grouped by
 * allocation traceback, largest first. */
#include <stdio.h>

#include "zw.h"


static const char help[] =
    "usage: zw leaks [options] FILE\n"
    "\n"
    "The blocks of capture FILE still allocated at exit, grouped by the traceback of their\n"
    "allocation, largest first.\n"
    "\n"
    "options:\n"
    "  --group lineno|filename|traceback   (default traceback)\n"
    "  --limit N    at most N entries (default 10; 0: all)\n"
    "  --pid PID    only that process of a capture set (default: all, merged)\n"
    "  --only       FILE alone, not FILE.1, FILE.2... of the same run\n"
    "  --json       a JSON array of {bytes, blocks, traceback}\n"
    "  -h, --help   this text\n";

int
cmd_leaks(int argc, char **argv)
{
    return zw_top_like("leaks", help, "exit", ZW_GROUP_TRACEBACK, argc, argv);
}

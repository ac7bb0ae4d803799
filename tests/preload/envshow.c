/* tests/preload/envshow.c - what a program sees of its environment, to compare under `zw run`
 * with a plain run (tests/preload/test_env.sh):
 *   envshow          prints LD_PRELOAD, each variable libzwpreload.so reads, ZW_MALLOC (the
 *                    in-process library's, which stays), and how many entries environ and
 *                    main's envp have
 *   envshow copy     copies every entry of environ with strdup, and nothing else allocates: its
 *                    allocation count is the number of entries (printed, with write)
 * Exits 1 if environ and envp disagree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static const char *const names[] = {
    "LD_PRELOAD",    "ZW_OUTPUT",      "ZW_NFRAME",     "ZW_INTERVAL_MS", "ZW_FLUSH_MS",
    "ZW_FOLLOW_FORK", "ZW_FOLLOW_EXEC", "ZW_LEAK_CHECK", "ZW_LEAK_MARKS", "ZW_MARK_SIGNAL",
    "ZW_UNWIND",     "ZW_DEBUG_CACHE", "ZW_DEBUG_CACHE_MAX", "ZW_BOOKKEEPING", "ZW_RING",
    "ZW_TABLE_AHEAD",
    "ZW_MALLOC"};

int
main(int argc, char **argv, char **envp)
{
    size_t n = 0, m = 0;
    while (environ[n] != NULL)
        n++;
    while (envp[m] != NULL)
        m++;
    if (argc > 1 && strcmp(argv[1], "copy") == 0) {
        char *copy[4096];
        size_t k = 0;
        for (; k < n && k < sizeof(copy) / sizeof(copy[0]); k++)
            copy[k] = strdup(environ[k]);
        char line[64];
        int len = snprintf(line, sizeof(line), "copied %zu\n", k);
        (void)!write(1, line, (size_t)len);
        for (size_t i = 0; i < k; i++)
            free(copy[i]);
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = getenv(names[i]);
        printf("%s %s\n", names[i], v != NULL ? v : "(unset)");
    }
    printf("environ %zu\nenvp %zu\n", n, m);
    return n == m && environ == envp ? 0 : 1;
}

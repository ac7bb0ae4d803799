/* tests/tsan/runner.c - runs the tests registered by Test() (tests/tsan/include/criterion/
 * criterion.h) under ThreadSanitizer: each in a child process, one after the other, with its
 * name and outcome printed. The run fails if any test fails, crashes or makes TSan report
 * (TSAN_OPTIONS=exitcode=66 halt_on_error=1, set by ctest); a skipped test is said so. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 256
#define SKIPPED   77

static struct {
    const char *suite;
    const char *name;
    zwt_test_fn fn;
} tests[MAX_TESTS];
static int ntests;

void
zwt_register(const char *suite, const char *name, zwt_test_fn fn)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "tsan runner: more than %d tests\n", MAX_TESTS);
        exit(2);
    }
    tests[ntests].suite = suite;
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

void
zwt_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    if (fmt[0] != '\0') {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    fflush(stderr);
    _exit(1);
}

void
zwt_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "skipped: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    _exit(SKIPPED);
}

void
zwt_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int
main(int argc, char **argv)
{
    int failed = 0;
    int ran = 0;
    for (int i = 0; i < ntests; i++) {
        char full[256];
        snprintf(full, sizeof(full), "%s::%s", tests[i].suite, tests[i].name);
        if (argc > 1 && strstr(full, argv[1]) == NULL) /* a filter, as ctest -R */
            continue;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("tsan runner: fork");
            return 2;
        }
        if (pid == 0) {
            tests[i].fn();
            fflush(NULL);
            exit(0); /* through exit: TSan's end-of-run checks (and its exitcode) run */
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) {
            perror("tsan runner: waitpid");
            return 2;
        }
        ran++;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("[PASS] %s\n", full);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == SKIPPED) {
            printf("[SKIP] %s\n", full);
        } else {
            failed++;
            if (WIFEXITED(status))
                printf("[FAIL] %s: exit status %d%s\n", full, WEXITSTATUS(status),
                       WEXITSTATUS(status) == 66 ? " (a ThreadSanitizer report)" : "");
            else
                printf("[FAIL] %s: killed by signal %d\n", full, WTERMSIG(status));
        }
    }
    printf("%d tests, %d failed\n", ran, failed);
    return failed == 0 && ran > 0 ? 0 : 1;
}

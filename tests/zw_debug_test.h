/* tests/zw_debug_test.h - running a fatal error in a child process and reading what it said.
 * A Criterion test that aborts can only assert the signal (`.signal = SIGABRT`); to assert the
 * message too, the test forks a child of its own whose stderr (and any report written to the
 * FILE it is given) goes to a temporary file, waits for it, then reads the file. */
#ifndef ZW_DEBUG_TEST_H
#define ZW_DEBUG_TEST_H

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zw_test.h" /* ZWT_ASAN */

/* How a child ended and what it wrote. */
typedef struct zwt_child {
    int status; /* from waitpid() */
    char *text; /* its stderr and reports, NUL-terminated; zwt_child_release() frees it */
} zwt_child;

/* Runs body(out, arg) in a child process. `out` is a temporary file that is also the child's
 * stderr; the child exits with status 0 if `body` returns. The body must not use cr_assert. */
static inline void
zwt_child_run(zwt_child *c, void (*body)(FILE *out, void *arg), void *arg)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f, "cannot create a temporary file: %s", strerror(errno));
    fflush(NULL); /* or the child would write our buffered output a second time */
    pid_t pid = fork();
    cr_assert(pid >= 0, "cannot fork: %s", strerror(errno));
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core); /* the abort is expected: no core file */
        dup2(fileno(f), STDERR_FILENO);
        body(f, arg);
        fflush(NULL);
        _exit(0);
    }
    while (waitpid(pid, &c->status, 0) < 0)
        cr_assert(errno == EINTR, "waitpid: %s", strerror(errno));
    /* The child wrote through the same open file: read it from the start. */
    long len = (fseek(f, 0, SEEK_END) == 0) ? ftell(f) : -1;
    cr_assert(len >= 0 && fseek(f, 0, SEEK_SET) == 0, "cannot read the child's output");
    c->text = malloc((size_t)len + 1);
    cr_assert_not_null(c->text);
    size_t got = fread(c->text, 1, (size_t)len, f);
    c->text[got] = '\0';
    fclose(f);
}

static inline void
zwt_child_release(zwt_child *c)
{
    free(c->text);
    c->text = NULL;
}

/* Asserts that the child was ended by SIGABRT, showing what it wrote otherwise. */
#define zwt_assert_aborted(c)                                                                      \
    cr_assert(WIFSIGNALED((c)->status) && WTERMSIG((c)->status) == SIGABRT,                        \
              "the child did not abort (wait status 0x%x); it wrote:\n%s", (c)->status, (c)->text)

/* Asserts that `want` occurs in `text`. */
#define zwt_assert_has(text, want)                                                                 \
    cr_assert(strstr((text), (want)) != NULL, "expected \"%s\" in:\n%s", (want), (text))

#define zwt_assert_lacks(text, unwanted)                                                           \
    cr_assert(strstr((text), (unwanted)) == NULL, "did not expect \"%s\" in:\n%s", (unwanted),     \
              (text))

#endif /* ZW_DEBUG_TEST_H */

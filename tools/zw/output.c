/* tools/zw/output.c - where `-o OUT` writes (report, export): "-" is standard output; a new or
 * regular file is written to a temporary file beside it and renamed over it once whole, so that a
 * failed command leaves no file that looks whole; anything else is written through, never
 * replaced: a device (/dev/null, /dev/full), a FIFO, or the target of a symbolic link (a regular
 * target is replaced atomically like any regular file, the link stays). See docs/zw.md#output. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* mkstemp() creates the file for its owner only; give it the mode a new file gets. */
static int
chmod_default(int fd)
{
    mode_t mask = umask(0);
    umask(mask);
    return fchmod(fd, 0666 & ~mask);
}

/* A temporary file beside `final` (which the output takes), to be renamed over it. */
static int
open_replacing(cli_output *o, char *final)
{
    size_t n = strlen(final);
    o->final = final;
    o->tmp = malloc(n + sizeof(".tmp.XXXXXX"));
    if (o->tmp == NULL)
        return cli_fail("cannot create '%s': %s", o->path, strerror(ENOMEM));
    memcpy(o->tmp, final, n);
    memcpy(o->tmp + n, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        int e = errno;
        free(o->tmp);
        o->tmp = NULL;
        return cli_fail("cannot create '%s': %s", o->path, strerror(e));
    }
    if (chmod_default(fd) != 0 || (o->f = fdopen(fd, "wb")) == NULL) {
        int e = errno;
        close(fd);
        unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
        return cli_fail("cannot create '%s': %s", o->path, strerror(e));
    }
    return 0;
}

/* `path` as it is, opened for writing (a device, a FIFO, a dangling link's target). */
static int
open_through(cli_output *o)
{
    int fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return cli_fail("cannot open '%s' for writing: %s", o->path, strerror(errno));
    if ((o->f = fdopen(fd, "wb")) == NULL) {
        int e = errno;
        close(fd);
        return cli_fail("cannot open '%s' for writing: %s", o->path, strerror(e));
    }
    return 0;
}

int
cli_output_open(cli_output *o, const char *path)
{
    *o = (cli_output){.path = path};
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        o->is_stdout = true;
        return 0;
    }
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return cli_fail("cannot write '%s': %s", path, strerror(errno));
        char *final = strdup(path);
        return final != NULL ? open_replacing(o, final)
                             : cli_fail("cannot create '%s': %s", path, strerror(ENOMEM));
    }
    if (S_ISLNK(st.st_mode)) {
        char *target = realpath(path, NULL);
        if (target == NULL)
            return open_through(o); /* a dangling link: its target is created */
        if (stat(target, &st) == 0 && S_ISREG(st.st_mode))
            return open_replacing(o, target);
        free(target);
    }
    if (S_ISDIR(st.st_mode))
        return cli_fail("cannot write '%s': %s", path, strerror(EISDIR));
    if (S_ISREG(st.st_mode)) {
        char *final = strdup(path);
        return final != NULL ? open_replacing(o, final)
                             : cli_fail("cannot create '%s': %s", path, strerror(ENOMEM));
    }
    return open_through(o);
}

int
cli_output_close(cli_output *o, bool ok)
{
    int rc = ok ? 0 : CLI_EXIT_FAILURE;
    if (o->f != NULL) {
        bool bad = ferror(o->f) != 0;
        int e = errno;
        if (o->is_stdout) {
            if (fflush(stdout) != 0) {
                bad = true;
                e = errno;
            }
        } else if (fclose(o->f) != 0) {
            bad = true;
            e = errno;
        }
        if (bad && ok)
            rc = o->is_stdout ? cli_fail("cannot write the output: %s", strerror(e))
                              : cli_fail("cannot write '%s': %s", o->path, strerror(e));
    }
    if (o->tmp != NULL) {
        if (rc == 0 && rename(o->tmp, o->final) != 0)
            rc = cli_fail("cannot replace '%s': %s", o->path, strerror(errno));
        if (rc != 0)
            unlink(o->tmp);
    }
    free(o->tmp);
    free(o->final);
    *o = (cli_output){0};
    return rc;
}

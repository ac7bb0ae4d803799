/* trace/debugfiles.c - where a module's separate debug information comes from, for libdwfl
 * (its find_debuginfo callback):
 *
 *   1. the inflated copy in zw's debug cache, when one was made before (below);
 *   2. the build-id directories (/usr/lib/debug/.build-id/xx/yyyy.debug: Debian's -dbgsym and
 *      -dbg packages), then the module's .gnu_debuglink beside it, in its .debug directory and
 *      under /usr/lib/debug, each checked against the module's build-id;
 *   3. debuginfod, only when DEBUGINFOD_URLS names a server: libdwfl's standard search ends with
 *      it and loads libdebuginfod (with libcurl and its TLS libraries, ~5 ms) for every module
 *      without debug information, even with no server to ask.
 *
 * The debug cache: Debian compresses the sections of its debug files (SHF_COMPRESSED, zlib), and
 * libdw inflates every one of them whole when it opens the file, in each process: libc's 4 MB
 * debug file is 10 MB of DWARF, ~60 ms of zlib per traced process, most of a short program's
 * tracing cost (`ls` under zw: 85 ms against 36 ms with the file inflated). The first time such a
 * file is found its copy with every section inflated is written to the cache as
 * <build-id>.debug (a temporary file renamed into place: processes racing each write a whole
 * copy, one wins), and libdw reads that copy, then and from then on. The cache is
 * $ZW_DEBUG_CACHE, else $XDG_CACHE_HOME/zerowaste/debug, else $HOME/.cache/zerowaste/debug;
 * ZW_DEBUG_CACHE=off (or empty) turns it off. A copy is used only when its build-id is the
 * module's; anything wrong with the cache (no home, read-only, full disk, a damaged copy) falls
 * back to the file itself, silently: the frames are the same either way. A copy read has its
 * access time set (whatever the mount's atime policy); after a copy is written, while the
 * cache's copies hold more than ZW_DEBUG_CACHE_MAX bytes (2 GiB by default; 0: no limit), the one
 * read longest ago goes (never the one just written): a library upgraded leaves its old copy to
 * age out. See docs/trace.md#symbols. */
#include <dirent.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "debugfiles.h"
#include "trace_internal.h"

#define MAX_INFLATED      ((uint64_t)1 << 30) /* a debug file inflating to more is not cached */
#define CACHE_MAX_DEFAULT ((uint64_t)2 << 30) /* the cache's size limit by default */

/* The cache directory as set by zwi_debug_cache_set(), or unset: then ZW_DEBUG_CACHE is read. The
 * same for the size limit and ZW_DEBUG_CACHE_MAX. */
static const char *cache_setting;
static bool cache_set;
static const char *max_setting;
static bool max_set;

void
zwi_debug_cache_set(const char *value)
{
    cache_setting = value;
    cache_set = true;
}

void
zwi_debug_cache_max_set(const char *value)
{
    max_setting = value;
    max_set = true;
}

/* A size as ZW_DEBUG_CACHE_MAX gives it: digits, then K, M or G (binary) or nothing (bytes);
 * 0 is no limit. False if `s` is not one. */
static bool
parse_size(const char *s, uint64_t *bytes)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift != 0)
        end++;
    if (errno != 0 || *end != '\0' || v > (UINT64_MAX >> shift))
        return false;
    *bytes = (uint64_t)v << shift;
    return true;
}

/* The cache's size limit in bytes (0: none): ZW_DEBUG_CACHE_MAX or its setting; a value that is
 * not a size gets a warning (once) and the default. */
static uint64_t
cache_max(void)
{
    const char *v = max_set ? max_setting : getenv("ZW_DEBUG_CACHE_MAX");
    uint64_t bytes = CACHE_MAX_DEFAULT;
    if (v == NULL || *v == '\0' || parse_size(v, &bytes))
        return bytes;
    static bool warned;
    if (!warned) {
        warned = true;
        fprintf(stderr,
                "zw: warning: ZW_DEBUG_CACHE_MAX='%s' is not a size (bytes, or a number with K, "
                "M or G), using 2G\n",
                v);
    }
    return CACHE_MAX_DEFAULT;
}

/* A copy of the cache, for trim_cache(). */
typedef struct cached_copy {
    char name[80]; /* <build-id>.debug: build-ids are at most 32 bytes here */
    uint64_t bytes;
    struct timespec used; /* access time */
} cached_copy;

static int
by_use(const void *a, const void *b)
{
    const struct timespec *x = &((const cached_copy *)a)->used;
    const struct timespec *y = &((const cached_copy *)b)->used;
    if (x->tv_sec != y->tv_sec)
        return x->tv_sec < y->tv_sec ? -1 : 1;
    return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

/* While the copies (*.debug) in `dir` hold more than the limit, removes the one read longest ago,
 * never `keep` (a name in dir). Best effort: what cannot be listed or removed stays. */
static void
trim_cache(const char *dir, const char *keep)
{
    uint64_t limit = cache_max();
    if (limit == 0)
        return;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    cached_copy *all = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 7 || len >= sizeof(all->name) || e->d_name[0] == '.' ||
            strcmp(e->d_name + len - 6, ".debug") != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t ncap = cap != 0 ? 2 * cap : 64;
            cached_copy *grown = realloc(all, ncap * sizeof(*all));
            if (grown == NULL)
                break;
            all = grown;
            cap = ncap;
        }
        memcpy(all[n].name, e->d_name, len + 1);
        all[n].bytes = (uint64_t)st.st_size;
        all[n].used = st.st_atim;
        total += all[n].bytes;
        n++;
    }
    if (total > limit && n > 0) {
        qsort(all, n, sizeof(*all), by_use);
        for (size_t i = 0; i < n && total > limit; i++) {
            if (strcmp(all[i].name, keep) == 0)
                continue;
            if (unlinkat(dirfd(d), all[i].name, 0) == 0)
                total -= all[i].bytes;
        }
    }
    free(all);
    closedir(d);
}

/* The cache directory's path into buf (not created: a lookup needs only open()), or false when
 * the cache is off or has no place. */
static bool
cache_dir(char *buf, size_t cap)
{
    const char *v = cache_set ? cache_setting : getenv("ZW_DEBUG_CACHE");
    int n;
    if (v != NULL) {
        if (v[0] == '\0' || strcmp(v, "off") == 0)
            return false;
        n = snprintf(buf, cap, "%s", v);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME");
        const char *home = getenv("HOME");
        if (xdg != NULL && xdg[0] == '/')
            n = snprintf(buf, cap, "%s/zerowaste/debug", xdg);
        else if (home != NULL && home[0] == '/')
            n = snprintf(buf, cap, "%s/.cache/zerowaste/debug", home);
        else
            return false;
    }
    return n > 0 && (size_t)n < cap;
}

/* Creates each missing component of directory `path`, as mkdir -p; false if one cannot be. */
static bool
make_dirs(char *path)
{
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            int rc = mkdir(path, 0755);
            *p = c;
            if (rc != 0 && errno != EEXIST)
                return false;
            if (c == '\0')
                break;
        }
    }
    return true;
}

/* The build-id of the ELF file open at fd equals bits[0..len). */
static bool
same_build_id(int fd, const unsigned char *bits, int len)
{
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (elf == NULL)
        return false;
    const void *id;
    ssize_t n = dwelf_elf_gnu_build_id(elf, &id);
    bool same = n == len && memcmp(id, bits, (size_t)len) == 0;
    elf_end(elf);
    return same;
}

/* The bytes the ELF file at fd's compressed sections inflate to (0: none is compressed), or
 * UINT64_MAX if it is not an ELF file. */
static uint64_t
inflated_bytes(int fd)
{
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (elf == NULL)
        return UINT64_MAX;
    uint64_t total = 0;
    for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn != NULL; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr sh;
        GElf_Chdr ch;
        if (gelf_getshdr(scn, &sh) != NULL && (sh.sh_flags & SHF_COMPRESSED) &&
            gelf_getchdr(scn, &ch) != NULL)
            total += ch.ch_size;
    }
    elf_end(elf);
    return total;
}

/* Writes the file open at `in` with every compressed section inflated, as `path` (by a temporary
 * file in the same directory, renamed). 0, or -1. */
static int
write_inflated(int in, const char *dir, const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/.inflating.XXXXXX", dir) >= (int)sizeof(tmp))
        return -1;
    int out = mkostemp(tmp, O_CLOEXEC);
    if (out < 0)
        return -1;
    struct stat st;
    int rc = fstat(in, &st);
    for (off_t off = 0; rc == 0 && off < st.st_size;) {
        ssize_t k = sendfile(out, in, &off, (size_t)(st.st_size - off));
        if (k <= 0)
            rc = -1;
    }
    Elf *elf = rc == 0 ? elf_begin(out, ELF_C_RDWR, NULL) : NULL;
    if (elf == NULL)
        rc = -1;
    for (Elf_Scn *scn = NULL; rc == 0 && (scn = elf_nextscn(elf, scn)) != NULL;) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == NULL)
            rc = -1;
        else if ((sh.sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
            rc = -1;
    }
    if (rc == 0 && elf_update(elf, ELF_C_WRITE) < 0)
        rc = -1;
    if (elf != NULL)
        elf_end(elf);
    if (close(out) != 0)
        rc = -1;
    if (rc == 0 && chmod(tmp, 0644) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* Opens `path` if it is an ELF file with the module's build-id: its fd and *name (malloc'd, as
 * libdwfl frees it), or -1. */
static int
open_checked(const char *path, const unsigned char *bits, int len, char **name)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char *copy = same_build_id(fd, bits, len) ? strdup(path) : NULL;
    if (copy == NULL) {
        close(fd);
        return -1;
    }
    free(*name);
    *name = copy;
    return fd;
}

/* The module's .gnu_debuglink file beside it, in its .debug directory, or under /usr/lib/debug
 * (each for the directory as named and as resolved), with the module's build-id: libdwfl's path
 * search for a module that has a build-id, without its debuginfod step. */
static int
find_by_debuglink(const char *file_name, const char *debuglink, const unsigned char *bits,
                  int len, char **name)
{
    if (file_name == NULL || debuglink == NULL || strchr(debuglink, '/') != NULL)
        return -1;
    char dirs[2][PATH_MAX];
    int ndirs = 0;
    const char *slash = strrchr(file_name, '/');
    if (slash != NULL && (size_t)(slash - file_name) < sizeof(dirs[0])) {
        memcpy(dirs[ndirs], file_name, (size_t)(slash - file_name));
        dirs[ndirs++][slash - file_name] = '\0';
    }
    char real[PATH_MAX];
    if (realpath(file_name, real) != NULL && (slash = strrchr(real, '/')) != NULL) {
        *(char *)slash = '\0';
        if (ndirs == 0 || strcmp(real, dirs[0]) != 0)
            memcpy(dirs[ndirs++], real, strlen(real) + 1);
    }
    static const char *const forms[] = {"%s/%s", "%s/.debug/%s", "/usr/lib/debug%s/%s"};
    for (int d = 0; d < ndirs; d++) {
        for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
            char path[PATH_MAX];
            int n = snprintf(path, sizeof(path), forms[f], dirs[d], debuglink);
            if (n <= 0 || (size_t)n >= sizeof(path) || strcmp(path, file_name) == 0)
                continue;
            int fd = open_checked(path, bits, len, name);
            if (fd >= 0)
                return fd;
        }
    }
    return -1;
}

int
zwi_debug_find(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
               const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
               char **debuginfo_file_name)
{
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    int len = dwfl_module_build_id(mod, &bits, &vaddr);
    const char *urls = getenv("DEBUGINFOD_URLS");
    bool debuginfod = urls != NULL && urls[0] != '\0';
    if (len <= 0) /* nothing to check a file against: libdwfl's own search, CRC and all */
        return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name,
                                            debuglink_file, debuglink_crc, debuginfo_file_name);

    char dir[PATH_MAX], cached[PATH_MAX];
    bool cache = cache_dir(dir, sizeof(dir));
    if (cache) {
        int n = snprintf(cached, sizeof(cached), "%s/", dir);
        for (int i = 0; i < len && n > 0 && (size_t)n + 3 < sizeof(cached); i++)
            n += snprintf(cached + n, sizeof(cached) - (size_t)n, "%02x", bits[i]);
        cache = n > 0 && (size_t)n + 7 < sizeof(cached);
        if (cache) {
            memcpy(cached + n, ".debug", 7);
            int fd = open_checked(cached, bits, len, debuginfo_file_name);
            if (fd >= 0) { /* read now: the last to go when the cache is trimmed */
                (void)futimens(fd, (const struct timespec[2]){{0, UTIME_NOW}, {0, UTIME_OMIT}});
                return fd;
            }
        }
    }

    errno = 0;
    int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                          debuglink_crc, debuginfo_file_name);
    if (fd < 0)
        fd = find_by_debuglink(file_name, debuglink_file, bits, len, debuginfo_file_name);
    if (fd < 0) {
        if (!debuginfod)
            return -1;
        /* a server to ask: libdwfl's search again, ending with it */
        return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name,
                                            debuglink_file, debuglink_crc, debuginfo_file_name);
    }
    if (!cache)
        return fd;
    uint64_t inflated = inflated_bytes(fd);
    if (inflated == 0 || inflated > MAX_INFLATED || !make_dirs(dir) ||
        write_inflated(fd, dir, cached) != 0)
        return fd;
    trim_cache(dir, strrchr(cached, '/') + 1);
    int copy = open_checked(cached, bits, len, debuginfo_file_name);
    if (copy < 0)
        return fd;
    close(fd);
    return copy;
}

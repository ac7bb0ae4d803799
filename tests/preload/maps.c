/* tests/preload/maps.c - mappings of known sizes at known lines, for test_maps.sh. With a page of
 * P bytes, at exit the mmap domain holds (lines are printed as "LINE name"):
 *   split    8 P in 2 mappings: 10 P mapped, the middle 2 P unmapped
 *   grown   16 P in 1: 4 P mapped, then grown by mremap, which had to move them (a page of
 *           `blocker` lies right after them); traced at the mremap, as realloc is
 *   file     2 P: a private mapping of a file (file-backed mappings count as anonymous ones)
 *   sbrk     3 P of break, by sbrk
 *   gone     nothing: 3 P mapped and unmapped whole
 *   blocker  nothing: 1 P, unmapped last
 *   heap     a 1 MiB malloc, which glibc serves by mmap: in the heap domain only
 * 29 P in all; the peak, 30 P, was just before the blocker went, with the 1 P of blocker. The
 * mark "end" holds what exit holds. */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RW        (PROT_READ | PROT_WRITE)
#define ANON      (MAP_PRIVATE | MAP_ANONYMOUS)
#define LINE(tag) printf("%d %s\n", __LINE__, tag)

void *keep_heap;                                       /* reachable at exit: not a leak */
void zw_mark(const char *label) __attribute__((weak)); /* libzwpreload.so's, under zw run */

static void
die(const char *what)
{
    perror(what);
    exit(1);
}

/* each LINE() shares its line with the call it names */
/* clang-format off */
int
main(int argc, char **argv)
{
    size_t p = (size_t)sysconf(_SC_PAGESIZE);
    const char *file = argc > 1 ? argv[1] : NULL;

    LINE("split"); char *split = mmap(NULL, 10 * p, RW, ANON, -1, 0);
    if (split == MAP_FAILED)
        die("mmap split");
    memset(split, 1, 10 * p);

    LINE("gone"); char *gone = mmap(NULL, 3 * p, RW, ANON, -1, 0);
    if (gone == MAP_FAILED)
        die("mmap gone");

    /* four pages with one more right after them: growing in place is impossible */
    char *old = mmap(NULL, 5 * p, RW, ANON, -1, 0);
    if (old == MAP_FAILED || munmap(old + 4 * p, p) != 0)
        die("mmap old");
    LINE("blocker"); char *blocker = mmap(old + 4 * p, p, RW, ANON | MAP_FIXED, -1, 0);
    if (blocker == MAP_FAILED)
        die("mmap blocker");

    int fd = file != NULL ? open(file, O_RDWR | O_CREAT | O_TRUNC, 0600) : -1;
    if (fd < 0 || ftruncate(fd, (off_t)(2 * p)) != 0)
        die("file");
    LINE("file"); char *fmap = mmap(NULL, 2 * p, RW, MAP_PRIVATE, fd, 0);
    if (fmap == MAP_FAILED)
        die("mmap file");
    close(fd);

    LINE("sbrk"); void *brk0 = sbrk((intptr_t)(3 * p));
    if (brk0 == (void *)-1)
        die("sbrk");

    LINE("heap"); keep_heap = malloc(1 << 20);
    memset(keep_heap, 2, 1 << 20);

    if (munmap(gone, 3 * p) != 0 || munmap(split + 4 * p, 2 * p) != 0)
        die("munmap");
    LINE("grown"); char *grown = mremap(old, 4 * p, 16 * p, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED)
        die("mremap");
    printf("moved %d\n", grown != old);
    memset(grown, 3, 16 * p);
    if (munmap(blocker, p) != 0) /* after the peak */
        die("munmap blocker");
    if (zw_mark != NULL)
        zw_mark("end"); /* the exit set's mappings and blocks */
    printf("page %zu\n", p);
    return 0;
}
/* clang-format on */

/* preload/modules.c - the modules the program unloads. The symboliser runs at the end, on the
 * modules mapped then: a module dlclosed before is no longer among them, and another may have
 * been mapped at its address since. So dlclose() notes, before the real call, every module loaded
 * (its code range, load bias and file), and after it those that are gone (G.unloaded); a frame
 * taken later where modules were unloaded carries their number in its top bits (the tag of
 * ZWI_FRAME_TAG_SHIFT), which tells the symboliser which of the modules mapped there in turn the
 * frame is of. See docs/zw.md#how-it-works. */
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload_internal.h"
#include "trace_internal.h"

#define MAX_NOTED 2048 /* modules noted before a dlclose; past them, one unloaded is not known */

/* The modules loaded before the real dlclose: entries, then their names, in one mapping. */
typedef struct noted {
    unloaded_module *v;
    size_t n;
    size_t cap;
} noted;

/* The code of a module: its executable segments, from the lowest to the highest. */
static bool
code_range(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi)
{
    *lo = UINTPTR_MAX;
    *hi = 0;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        *lo = a < *lo ? a : *lo;
        *hi = a + ph->p_memsz > *hi ? a + ph->p_memsz : *hi;
    }
    return *lo < *hi;
}

static int
note_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    noted *b = arg;
    uintptr_t lo, hi;
    const char *name = info->dlpi_name;
    size_t len = name != NULL ? strlen(name) : 0;
    if (b->n == b->cap || len == 0 || len >= sizeof(b->v->path) || !code_range(info, &lo, &hi))
        return 0; /* the program itself (no name) is never unloaded */
    unloaded_module *m = &b->v[b->n++];
    m->lo = lo;
    m->hi = hi;
    m->base = info->dlpi_addr;
    memcpy(m->path, name, len + 1);
    return 0;
}

/* Clears the path of each noted module that is still loaded. */
static int
strike_loaded(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    noted *b = arg;
    uintptr_t lo, hi;
    if (!code_range(info, &lo, &hi))
        return 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i].lo == lo && b->v[i].base == info->dlpi_addr)
            b->v[i].path[0] = '\0';
    }
    return 0;
}

/* Appends module `m` to G.unloaded; the caller holds G.unloaded.lock. */
static void
append_locked(const unloaded_module *m)
{
    if (G.unloaded.v == NULL) {
        /* the system call: the preload library's mmap traces the program's mappings */
        void *p = (void *)syscall(SYS_mmap, NULL, MAX_UNLOADED * sizeof(unloaded_module),
                                  PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return;
        G.unloaded.v = p;
        atomic_store_explicit(&G.unloaded.lo, UINTPTR_MAX, memory_order_relaxed);
    }
    size_t n = atomic_load_explicit(&G.unloaded.n, memory_order_relaxed);
    if (n == MAX_UNLOADED)
        return;
    G.unloaded.v[n] = *m;
    char abs[PATH_MAX]; /* a path relative to the directory now: made absolute while it exists */
    if (m->path[0] != '/' && realpath(m->path, abs) != NULL && strlen(abs) < sizeof(m->path))
        strcpy(G.unloaded.v[n].path, abs);
    if (m->lo < atomic_load_explicit(&G.unloaded.lo, memory_order_relaxed))
        atomic_store_explicit(&G.unloaded.lo, m->lo, memory_order_relaxed);
    if (m->hi > atomic_load_explicit(&G.unloaded.hi, memory_order_relaxed))
        atomic_store_explicit(&G.unloaded.hi, m->hi, memory_order_relaxed);
    atomic_store_explicit(&G.unloaded.n, n + 1, memory_order_release);
}

int
zwi_preload_dlclose(void *handle)
{
    static int (*_Atomic real_dlclose)(void *);
    int (*fn)(void *) = atomic_load_explicit(&real_dlclose, memory_order_relaxed);
    if (fn == NULL) {
        fn = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
        if (fn == NULL)
            return -1;
        atomic_store_explicit(&real_dlclose, fn, memory_order_relaxed);
    }
    noted b = {.cap = MAX_NOTED};
    size_t bytes = MAX_NOTED * sizeof(unloaded_module);
    void *p = (void *)syscall(SYS_mmap, NULL, bytes, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
        b.v = p;
        dl_iterate_phdr(note_one, &b);
    }
    int rc = fn(handle);
    if (rc == 0) {
        if (b.v != NULL) {
            dl_iterate_phdr(strike_loaded, &b);
            pthread_mutex_lock(&G.unloaded.lock);
            for (size_t i = 0; i < b.n; i++) {
                if (b.v[i].path[0] != '\0')
                    append_locked(&b.v[i]);
            }
            pthread_mutex_unlock(&G.unloaded.lock);
        }
        zwi_preload_unwind_unloaded(&G.unw);
    }
    if (b.v != NULL)
        syscall(SYS_munmap, b.v, bytes);
    return rc;
}

void
zwi_preload_tag_frames(uintptr_t *frames, unsigned nf)
{
    size_t n = atomic_load_explicit(&G.unloaded.n, memory_order_acquire);
    uintptr_t lo = atomic_load_explicit(&G.unloaded.lo, memory_order_relaxed);
    uintptr_t hi = atomic_load_explicit(&G.unloaded.hi, memory_order_relaxed);
    const unloaded_module *v = G.unloaded.v;
    for (unsigned i = 0; i < nf; i++) {
        uintptr_t pc = frames[i] - 1; /* in the call */
        if (pc - lo >= hi - lo || frames[i] >> ZWI_FRAME_TAG_SHIFT != 0)
            continue;
        uintptr_t k = 0;
        for (size_t j = 0; j < n; j++)
            k += pc - v[j].lo < v[j].hi - v[j].lo;
        if (k > 0xFFFF)
            k = 0xFFFF;
        frames[i] |= k << ZWI_FRAME_TAG_SHIFT;
    }
}

void
zwi_preload_report_unloaded(zwi_symbolizer *sym)
{
    pthread_mutex_lock(&G.unloaded.lock);
    size_t n = atomic_load_explicit(&G.unloaded.n, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        const unloaded_module *m = &G.unloaded.v[i];
        if (zwi_symbolizer_add_unloaded(sym, m->path, m->base, m->lo, m->hi) != 0)
            break; /* out of memory: their frames stay unknown */
    }
    pthread_mutex_unlock(&G.unloaded.lock);
}

/* tools/zw/names.c - what zw prints for a frame's function: the demangled name of a C++ or Rust
 * symbol (libiberty's cplus_demangle, the demangler of binutils' c++filt), and whether it is an
 * allocation function (a wrapper that only allocates for its caller: operator new, xmalloc,
 * g_malloc, PyMem_Malloc...; the built-in list, --alloc-fn GLOB, --no-default-alloc-fns), whose
 * frames grouping by line or file looks past. Captures keep the raw symbol; only the output is
 * demangled. Names are cached by their text. See docs/zw.md#names. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include <libiberty/demangle.h>

#include "cli.h"
#include "trace_util.h"

/* Functions that only allocate for their caller, as globs on the raw or the demangled name. */
static const char *const default_alloc_fns[] = {
    /* C++ */
    "operator new*", "operator new[]*", "std::__new_allocator<*>::allocate*",
    "__gnu_cxx::new_allocator<*>::allocate*", "std::allocator<*>::allocate*",
    "std::allocator_traits<*>::allocate*", "std::_Vector_base<*>::_M_allocate*",
    /* the C library */
    "malloc", "calloc", "realloc", "reallocarray", "aligned_alloc", "memalign", "posix_memalign",
    "valloc", "pvalloc", "__libc_malloc", "__libc_calloc", "__libc_realloc", "__libc_memalign",
    "strdup", "__strdup", "strndup", "__strndup", "wcsdup", "asprintf", "__asprintf*",
    "vasprintf", "__vasprintf*", "___asprintf*", "open_memstream", "getline", "getdelim",
    "__getdelim",
    /* libiberty and gnulib */
    "xmalloc", "xcalloc", "xrealloc", "xzalloc", "xnmalloc", "xnrealloc", "xcharalloc", "x2realloc",
    "x2nrealloc", "xstrdup", "xstrndup", "xmemdup", "ximemdup*", "xasprintf", "xvasprintf",
    "concat", "reconcat", "_obstack_newchunk", "_obstack_begin*", "_objalloc_alloc",
    /* binutils' BFD (the assembler and linker) */
    "bfd_malloc", "bfd_realloc", "bfd_zmalloc", "bfd_alloc", "bfd_zalloc", "bfd_alloc2",
    "bfd_zalloc2", "bfd_malloc2", "bfd_realloc_or_free",
    /* GCC's own collector and tables */
    "ggc_internal_alloc*", "ggc_internal_cleared_alloc*", "ggc_alloc_*", "ggc_cleared_alloc*",
    /* GLib */
    "g_malloc*", "g_try_malloc*", "g_realloc*", "g_try_realloc*", "g_strdup*", "g_strndup",
    "g_memdup*", "g_slice_alloc*", "g_new*",
    /* CPython */
    "PyMem_Malloc", "PyMem_Calloc", "PyMem_Realloc", "PyMem_RawMalloc", "PyMem_RawCalloc",
    "PyMem_RawRealloc", "PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc", "_PyMem_*alloc*",
    "_PyObject_*alloc*", "_PyObject_Malloc", "pymalloc_alloc", "pymalloc_realloc",
    "_PyObject_GC_Alloc", "gc_alloc", "_PyObject_GC_New*", "_PyObject_New*", "PyType_GenericAlloc",
    "_PyType_AllocNoTrack",
    /* Perl */
    "Perl_safesysmalloc", "Perl_safesyscalloc", "Perl_safesysrealloc", "Perl_savepv*",
    /* SQLite */
    "sqlite3_malloc*", "sqlite3_realloc*", "sqlite3Malloc*", "sqlite3Realloc", "sqlite3DbMalloc*",
    "sqlite3DbRealloc*", "sqlite3DbStrDup", "sqlite3DbStrNDup", "sqlite3MemMalloc",
    "sqlite3MemRealloc", "mallocWithAlarm", "dbMallocRawFinish",
    /* OpenSSL (OPENSSL_malloc and friends are macros over these) */
    "CRYPTO_malloc", "CRYPTO_zalloc", "CRYPTO_realloc", "CRYPTO_clear_realloc", "CRYPTO_strdup",
    "CRYPTO_strndup", "CRYPTO_memdup", "CRYPTO_secure_malloc", "CRYPTO_secure_zalloc",
    /* zerowaste's own doors */
    "zw_raw_malloc", "zw_raw_calloc", "zw_raw_realloc", "zw_mem_malloc", "zw_mem_calloc",
    "zw_mem_realloc",
};

/* What is known of one function name. */
typedef struct name {
    const char *raw;       /* the key */
    const char *demangled; /* == raw when it is not a mangled name */
    int alloc_fn;          /* -1 not decided yet, 0 or 1 */
    struct name *next;     /* same hash */
} name;

static struct {
    zwi_map map; /* hash of the text -> chain of names */
    bool ready;
    bool no_defaults;
    const char *const *extra; /* --alloc-fn */
    size_t nextra;
} names;

void
cli_set_alloc_fns(const char *const *globs, size_t n, bool no_defaults)
{
    names.extra = globs;
    names.nextra = n;
    names.no_defaults = no_defaults;
    if (names.ready) { /* forget what was decided under the old list */
        for (size_t i = 0; names.map.slots != NULL && i <= names.map.mask; i++) {
            for (name *e = names.map.slots[i].value; names.map.slots[i].key != 0 && e != NULL;
                 e = e->next)
                e->alloc_fn = -1;
        }
    }
}

static name *
lookup(const char *raw)
{
    if (!names.ready) {
        zwi_map_init(&names.map, cli_raw());
        names.ready = true;
    }
    size_t len = strlen(raw);
    uint64_t h = zwi_hash_bytes(raw, len, 0x5bd1e995);
    h = h == 0 ? 1 : h;
    name *head = zwi_map_get(&names.map, h);
    for (name *e = head; e != NULL; e = e->next) {
        if (strcmp(e->raw, raw) == 0)
            return e;
    }
    name *e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return NULL;
    char *copy = (char *)(e + 1);
    memcpy(copy, raw, len + 1);
    e->raw = copy;
    e->demangled = copy;
    e->alloc_fn = -1;
    /* _Z: C++ and Rust's legacy mangling (its hash suffix dropped, as rustfilt prints it; c++filt
     * keeps it); _R: Rust v0 */
    if (raw[0] == '_' && (raw[1] == 'Z' || raw[1] == 'R')) {
        char *d = cplus_demangle(raw, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
        if (d != NULL) {
            name *keep = realloc(e, sizeof(*e) + len + 1 + strlen(d) + 1);
            if (keep != NULL) {
                e = keep;
                e->raw = (char *)(e + 1);
                e->demangled = strcpy((char *)(e + 1) + len + 1, d);
            }
            free(d);
        }
    }
    e->next = head;
    if (zwi_map_put(&names.map, h, e) != 0) {
        free(e);
        return NULL;
    }
    return e;
}

const char *
cli_demangle(const char *raw)
{
    if (raw == NULL)
        return NULL;
    name *e = lookup(raw);
    return e != NULL ? e->demangled : raw;
}

/* Whether the glob matches the raw or the demangled name (a glob without '(' ignores the
 * parameters: "operator new*" and "xmalloc" both match). */
static bool
glob_matches(const char *glob, const name *e)
{
    if (fnmatch(glob, e->raw, 0) == 0 || fnmatch(glob, e->demangled, 0) == 0)
        return true;
    const char *paren = strchr(e->demangled, '(');
    if (paren == NULL || strchr(glob, '(') != NULL || paren == e->demangled)
        return false;
    size_t n = (size_t)(paren - e->demangled);
    char small[256];
    char *bare = n < sizeof(small) ? small : malloc(n + 1);
    if (bare == NULL)
        return false;
    memcpy(bare, e->demangled, n);
    bare[n] = '\0';
    bool ok = fnmatch(glob, bare, 0) == 0;
    if (bare != small)
        free(bare);
    return ok;
}

bool
cli_is_alloc_fn(const zw_frame *f)
{
    if (f->function == NULL)
        return false;
    name *e = lookup(f->function);
    if (e == NULL)
        return false;
    if (e->alloc_fn < 0) {
        bool yes = false;
        for (size_t i = 0; !yes && !names.no_defaults &&
                           i < sizeof(default_alloc_fns) / sizeof(default_alloc_fns[0]);
             i++)
            yes = glob_matches(default_alloc_fns[i], e);
        for (size_t i = 0; !yes && i < names.nextra; i++)
            yes = glob_matches(names.extra[i], e);
        e->alloc_fn = yes;
    }
    return e->alloc_fn == 1;
}

size_t
cli_site_frame(const zw_traceback *tb)
{
    size_t n = zw_traceback_len(tb);
    size_t i = n;
    while (i > 1 && cli_is_alloc_fn(zw_traceback_frame(tb, i - 1)))
        i--;
    return i - 1; /* n == 0 gives SIZE_MAX */
}

/* trace/symbols.c - native return addresses to frames with elfutils' libdw: the module holding the
 * address (the executable, a shared library, PIE or not), then its DWARF: the innermost line, and
 * one frame per inlined function around it, each at the call site of the one inside it. Without
 * DWARF the ELF symbol table names the function and the frame has no line. Results are cached
 * per address; the module map (/proc/self/maps) is read when the symboliser is made and read again
 * when an address falls in no known module (a library loaded since). See docs/trace.md#symbols. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace_internal.h"

#define MAX_INLINE 64 /* frames one address may expand to */

typedef struct cached {
    size_t n;
    zwi_sym syms[]; /* innermost first */
} cached;

struct zwi_symbolizer {
    zw_raw *raw;     /* where the cache and strings live */
    Dwfl *dwfl;      /* the process's modules */
    zwi_map cache;   /* return address -> cached */
    zwi_strtab strs; /* file, function and module names */
    size_t cache_bytes;
};

static char *debuginfo_path; /* libdw's default search path (NULL), as its callbacks want */

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

static int
report_modules(zwi_symbolizer *s)
{
    dwfl_report_begin(s->dwfl);
    int rc = dwfl_linux_proc_report(s->dwfl, getpid());
    dwfl_report_end(s->dwfl, NULL, NULL);
    return rc;
}

zwi_symbolizer *
zwi_symbolizer_new(void)
{
    zw_raw *raw = zw_raw_new(NULL);
    if (raw == NULL)
        return NULL;
    zwi_symbolizer *s = zwi_alloc(raw, sizeof(*s));
    if (s == NULL) {
        zw_raw_destroy(raw);
        return NULL;
    }
    memset(s, 0, sizeof(*s));
    s->raw = raw;
    zwi_map_init(&s->cache, raw);
    zwi_strtab_init(&s->strs, raw);
    s->dwfl = dwfl_begin(&callbacks);
    if (s->dwfl != NULL)
        report_modules(s); /* a failure leaves every frame unresolved, never the tracer stopped */
    return s;
}

void
zwi_symbolizer_free(zwi_symbolizer *s)
{
    if (s == NULL)
        return;
    if (s->dwfl != NULL)
        dwfl_end(s->dwfl);
    for (size_t i = 0; s->cache.slots != NULL && i <= s->cache.mask; i++) {
        if (s->cache.slots[i].key != 0)
            zwi_free(s->raw, s->cache.slots[i].value);
    }
    zwi_map_release(&s->cache);
    zwi_strtab_release(&s->strs);
    zw_raw *raw = s->raw;
    zwi_free(raw, s);
    zw_raw_destroy(raw);
}

size_t
zwi_symbolizer_memory(const zwi_symbolizer *s)
{
    return s->cache_bytes + s->strs.bytes + (s->cache.mask + 1) * sizeof(struct zwi_map_slot) +
           s->strs.cap * sizeof(char *) + (s->strs.mask + 1) * sizeof(uint32_t);
}

/* ---- one address ---- */

/* DW_AT_name of `die`, following abstract origins and specifications. */
static const char *
die_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
    if (name == NULL)
        name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
    return name;
}

/* The call site (file, line) of inlined subroutine `die`. */
static void
call_site(Dwarf_Die *cudie, Dwarf_Die *die, const char **file, unsigned *line)
{
    Dwarf_Attribute attr;
    Dwarf_Word fileidx = 0;
    Dwarf_Word lineno = 0;
    Dwarf_Files *files;
    size_t nfiles;
    *file = NULL;
    *line = 0;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &lineno) == 0)
        *line = (unsigned)lineno;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &fileidx) == 0 &&
        dwarf_getsrcfiles(cudie, &files, &nfiles) == 0 && fileidx < nfiles)
        *file = dwarf_filesrc(files, fileidx, NULL, NULL);
}

/* Fills `out` (at most MAX_INLINE) for return address `ret`; returns how many. Strings are
 * interned on success; a failure to intern leaves a field NULL. */
static size_t
resolve(zwi_symbolizer *s, uintptr_t ret, zwi_sym *out)
{
    memset(out, 0, MAX_INLINE * sizeof(*out));
    if (ret == 0 || s->dwfl == NULL)
        return 1;            /* <unknown> */
    Dwarf_Addr pc = ret - 1; /* inside the call instruction, not after it */
    Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, pc);
    if (mod == NULL && report_modules(s) == 0)
        mod = dwfl_addrmodule(s->dwfl, pc);
    if (mod == NULL)
        return 1;
    const char *mainfile = NULL;
    const char *name = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &mainfile, NULL);
    GElf_Addr elfbias = 0;
    (void)dwfl_module_getelf(mod, &elfbias);
    const char *module = zwi_strtab_intern(&s->strs, mainfile != NULL ? mainfile : name);
    uint64_t offset = ret - elfbias;
    const unsigned char *bits = NULL;
    GElf_Addr idaddr;
    int idlen = dwfl_module_build_id(mod, &bits, &idaddr);
    const char *build_id = NULL;
    if (idlen > 0 && idlen <= 64) {
        char hex[129];
        for (int i = 0; i < idlen; i++)
            snprintf(hex + 2 * i, 3, "%02x", bits[i]);
        build_id = zwi_strtab_intern(&s->strs, hex);
    }
    for (size_t i = 0; i < MAX_INLINE; i++) {
        out[i].build_id = build_id;
        out[i].bias = elfbias;
    }
    out[0].module = module;
    out[0].offset = offset;
    out[0].function = zwi_strtab_intern(&s->strs, dwfl_module_addrname(mod, pc));

    /* the innermost position: the line table */
    const char *file = NULL;
    int lineno = 0;
    Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
    if (line != NULL)
        file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
    out[0].file = zwi_strtab_intern(&s->strs, file);
    out[0].line = lineno > 0 ? (unsigned)lineno : 0;

    /* the scopes around pc: an inlined subroutine gives a frame of its own, then its call site
     * is the position in the next one out, up to the subprogram */
    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(mod, pc, &bias);
    if (cudie == NULL)
        return 1;
    Dwarf_Die *scopes = NULL;
    int nscopes = dwarf_getscopes(cudie, pc - bias, &scopes);
    if (nscopes > 0) {
        /* dwarf_getscopes() continues into an inlined function's abstract definition; the chain
         * of concrete scopes around the innermost one is what holds the call sites (as
         * eu-addr2line -i does) */
        Dwarf_Die inner;
        Dwarf_Addr dwbias;
        Dwarf *dw = dwfl_module_getdwarf(mod, &dwbias);
        bool ok = dw != NULL && dwarf_offdie(dw, dwarf_dieoffset(&scopes[0]), &inner) != NULL;
        free(scopes);
        scopes = NULL;
        nscopes = ok ? dwarf_getscopes_die(&inner, &scopes) : 0;
    }
    size_t n = 0;
    const char *cur_file = file;
    unsigned cur_line = out[0].line;
    for (int i = 0; i < nscopes && n < MAX_INLINE; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
            continue;
        zwi_sym *f = &out[n++];
        f->module = module;
        f->offset = offset;
        f->file = zwi_strtab_intern(&s->strs, cur_file);
        f->line = cur_line;
        const char *fn = die_name(&scopes[i]);
        if (fn != NULL)
            f->function = zwi_strtab_intern(&s->strs, fn);
        else if (n > 1)
            f->function = NULL;
        if (tag == DW_TAG_subprogram) {
            f->inlined = false;
            break;
        }
        f->inlined = true;
        call_site(cudie, &scopes[i], &cur_file, &cur_line);
    }
    free(scopes); /* libdw's allocation, made with malloc */
    if (n == 0)
        return 1;
    if (out[n - 1].inlined) /* no subprogram found: the outermost is the one the code is in */
        out[n - 1].inlined = false;
    return n;
}

const zwi_sym *
zwi_symbolize(zwi_symbolizer *s, uintptr_t ret, size_t *n)
{
    uint64_t key = (uint64_t)ret + 1; /* 0 is an empty slot; ret 0 is <unknown> */
    cached *c = zwi_map_get(&s->cache, key);
    if (c == NULL) {
        zwi_sym tmp[MAX_INLINE];
        size_t k = resolve(s, ret, tmp);
        size_t bytes = sizeof(cached) + k * sizeof(zwi_sym);
        c = zwi_alloc(s->raw, bytes);
        if (c == NULL)
            return NULL;
        c->n = k;
        memcpy(c->syms, tmp, k * sizeof(zwi_sym));
        if (zwi_map_put(&s->cache, key, c) != 0) {
            zwi_free(s->raw, c);
            return NULL;
        }
        s->cache_bytes += bytes;
    }
    *n = c->n;
    return c->syms;
}

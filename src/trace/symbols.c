/* trace/symbols.c - native return addresses to frames with elfutils' libdw: the module holding the
 * address (the executable, a shared library, PIE or not), then its DWARF: the innermost line, and
 * one frame per inlined function around it, each at the call site of the one inside it. Without
 * DWARF the ELF symbol table names the function and the frame has no line. Results are cached
 * per address; the module map (/proc/self/maps) is read when the symboliser is made and read again
 * when an address falls in no known module (a library loaded since). Function names come from
 * each module's symbol table (.symtab, else .dynsym), read once into an array sorted by address
 * and searched by bisection: libdwfl's own lookup (dwfl_module_addrname) scans every symbol for
 * each address, which on a large program (cc1plus: 31k symbols) was most of the tracer's time.
 * See docs/trace.md#symbols. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <link.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debugfiles.h"
#include "trace_internal.h"

#define MAX_INLINE 64 /* frames one address may expand to */

/* A module's symbols, sorted by address. */
typedef struct modsym {
    uint64_t lo;     /* absolute address */
    uint64_t size;   /* 0: sizeless (an assembly label) */
    uint64_t maxend; /* the highest lo + size of this symbol and every one before it */
    const char *name;
    uint32_t index; /* in the symbol table: ties go to the first */
    uint16_t shndx; /* its section; SHN_ABS and other reserved ones are clipped to 0xffff */
    uint8_t bind;   /* 3 GLOBAL, 2 WEAK, 1 LOCAL, 0 other (libdwfl's order of preference) */
    uint8_t local;  /* searched only when no global symbol matches (.symtab's local part) */
} modsym;

typedef struct modsyms {
    Dwfl_Module *mod;
    modsym *syms; /* NULL if the module has no symbols */
    size_t n;
    int shndx_of_pc; /* cache of section_of(): the section of last_pc, -1 none */
    uint64_t last_pc;
} modsyms;

#define MAX_MODSYMS 512 /* modules whose symbols are kept; beyond, libdwfl's lookup */

typedef struct cached {
    size_t n;
    zwi_sym syms[]; /* innermost first */
} cached;

/* A module the process unloaded (zwi_symbolizer_add_unloaded), reported to a Dwfl of its own when
 * an address first needs it (two of them may have been mapped at the same address in turn). */
typedef struct unloaded {
    uintptr_t lo, hi; /* its code */
    uintptr_t base;   /* its load bias */
    const char *path; /* interned */
    Dwfl *dwfl;       /* NULL until needed, or if its file cannot be read */
    bool tried;
} unloaded;

/* A function's name made by qualify(), kept for the other addresses inlining the function. */
typedef struct qualified {
    const char *build_id;   /* interned: the module's debug information */
    Dwarf_Off decl;         /* the offset of the function's declaration in it */
    const char *name;       /* interned */
    struct qualified *next; /* same hash */
} qualified;

/* The scopes of one compilation unit, walked once the first time a name in it is qualified:
 * libdw has no parent links, and dwarf_getscopes_die walks the unit again at each call (0.7 s of
 * CPU for the 28 lambdas of one unit that includes <regex>, against 4 ms with one walk). */
typedef struct cu_scopes {
    const char *build_id; /* interned: the module's debug information */
    Dwarf_Off cu;         /* the unit's DIE offset */
    zwi_map parent; /* offset + 1 of each namespace, class, structure, union and subprogram DIE
                     * -> offset + 1 of the one it is in (lexical blocks skipped), or of the unit */
    struct cu_scopes *next; /* same hash */
} cu_scopes;

/* A function's code in a unit (DW_TAG_subprogram with code) or an inlined call of one
 * (DW_TAG_inlined_subroutine), and the one around it. */
typedef struct code_scope {
    Dwarf_Die die;
    int32_t parent; /* index of the code scope around it, -1 none */
    uint32_t depth; /* code scopes around it */
} code_scope;

typedef struct code_range {
    Dwarf_Addr lo, hi;
    uint32_t scope;
} code_range;

/* The code scopes of one unit, found by one walk of its DIEs the first time an address falls in
 * it: its addresses cut into segments, each with the innermost scope holding it. libdw's
 * dwarf_getscopes() and dwarf_getscopes_die() walk the whole unit at each call; a traced python
 * built with -g (ceval.c: one unit, thousands of inlined calls) spent 40 % of its run at exit in
 * those two walks, repeated for each of its return addresses. */
typedef struct cu_code {
    const char *build_id; /* interned: the module's debug information */
    Dwarf_Off cu;         /* the unit's DIE offset */
    code_scope *scopes;
    size_t nscopes;
    Dwarf_Addr *seg; /* segment starts, sorted: segment i is [seg[i], seg[i + 1]) */
    int32_t *seg_scope; /* the innermost scope of segment i, -1 none */
    size_t nseg;
    struct cu_code *next; /* same hash */
} cu_code;

struct zwi_symbolizer {
    zw_raw *raw;       /* where the cache and strings live */
    Dwfl *dwfl;        /* the process's modules */
    zwi_map cache;     /* return address -> cached */
    zwi_map qualified; /* hash of (build ID, declaration offset) -> chain of qualified */
    zwi_map units;     /* hash of (build ID, unit offset) -> chain of cu_scopes */
    zwi_map code;      /* hash of (build ID, unit offset) -> chain of cu_code */
    zwi_strtab strs;   /* file, function and module names */
    unloaded *gone;    /* modules unloaded before, in the order they were */
    size_t ngone;
    size_t cap_gone;
    size_t cache_bytes;
    modsyms mods[MAX_MODSYMS]; /* the modules whose symbols were read, in that order */
    size_t nmods;
    size_t mods_bytes;
    uint64_t loads; /* load_count() when the modules were last reported */
};

static char *debuginfo_path; /* libdw's default search path (NULL), as its callbacks want */

/* The files libdwfl keeps open go out of the program's way (zwi_fd_high: 1000 and above, closed
 * on exec): the preload library's sampler symbolises while the program runs (preload/ahead.c),
 * and a low descriptor would be one the program counts on being free, which its children would
 * inherit. */
static int
find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base, char **file_name,
         Elf **elfp)
{
    int fd = dwfl_linux_proc_find_elf(mod, userdata, name, base, file_name, elfp);
    return *elfp == NULL ? zwi_fd_high(fd, true) : fd; /* an Elf made already reads from it */
}

static int
find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
               const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
               char **debuginfo_file_name)
{
    return zwi_fd_high(zwi_debug_find(mod, userdata, modname, base, file_name, debuglink_file,
                                      debuglink_crc, debuginfo_file_name),
                       true);
}

static const Dwfl_Callbacks callbacks = {
    .find_elf = find_elf,
    .find_debuginfo = find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* Forgets the symbol arrays: reporting modules again may free the modules they point into. */
static void
drop_modsyms(zwi_symbolizer *s)
{
    for (size_t i = 0; i < s->nmods; i++)
        zwi_free(s->raw, s->mods[i].syms);
    s->nmods = 0;
    s->mods_bytes = 0;
}

/* The dynamic loader's count of objects loaded and unloaded so far (dl_iterate_phdr's dlpi_adds
 * and dlpi_subs, the same for every object): the modules change only when it does. */
static int
read_load_count(struct dl_phdr_info *info, size_t size, void *arg)
{
    uint64_t *count = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
        *count = ((uint64_t)info->dlpi_adds << 32) ^ (uint64_t)info->dlpi_subs;
    return 1; /* the first object says it */
}

static uint64_t
load_count(void)
{
    uint64_t count = 0;
    dl_iterate_phdr(read_load_count, &count);
    return count;
}

/* Reports the process's modules to libdw: at the start, and again when an address is in no known
 * module and the loader has loaded or unloaded an object since (dlopen, dlclose). Without that
 * check, every return address outside any module (a frame walked into garbage, JIT code) read
 * and parsed the whole of /proc/self/maps again and dropped the symbol tables: 34000 such
 * addresses took minutes under TSan. 0 when reported, -1 when not (failed, or nothing changed). */
static int
report_modules(zwi_symbolizer *s)
{
    uint64_t loads = load_count();
    if (loads != 0 && loads == s->loads)
        return -1;
    s->loads = loads;
    drop_modsyms(s);
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
    zwi_map_init(&s->qualified, raw);
    zwi_map_init(&s->units, raw);
    zwi_map_init(&s->code, raw);
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
    drop_modsyms(s);
    if (s->dwfl != NULL)
        dwfl_end(s->dwfl);
    for (size_t i = 0; i < s->ngone; i++) {
        if (s->gone[i].dwfl != NULL)
            dwfl_end(s->gone[i].dwfl);
    }
    zwi_free(s->raw, s->gone);
    for (size_t i = 0; s->cache.slots != NULL && i <= s->cache.mask; i++) {
        if (s->cache.slots[i].key != 0)
            zwi_free(s->raw, s->cache.slots[i].value);
    }
    zwi_map_release(&s->cache);
    for (size_t i = 0; s->qualified.slots != NULL && i <= s->qualified.mask; i++) {
        qualified *q = s->qualified.slots[i].key != 0 ? s->qualified.slots[i].value : NULL;
        while (q != NULL) {
            qualified *next = q->next;
            zwi_free(s->raw, q);
            q = next;
        }
    }
    zwi_map_release(&s->qualified);
    for (size_t i = 0; s->units.slots != NULL && i <= s->units.mask; i++) {
        cu_scopes *u = s->units.slots[i].key != 0 ? s->units.slots[i].value : NULL;
        while (u != NULL) {
            cu_scopes *next = u->next;
            zwi_map_release(&u->parent);
            zwi_free(s->raw, u);
            u = next;
        }
    }
    zwi_map_release(&s->units);
    for (size_t i = 0; s->code.slots != NULL && i <= s->code.mask; i++) {
        cu_code *u = s->code.slots[i].key != 0 ? s->code.slots[i].value : NULL;
        while (u != NULL) {
            cu_code *next = u->next;
            zwi_free(s->raw, u->scopes);
            zwi_free(s->raw, u->seg);
            zwi_free(s->raw, u->seg_scope);
            zwi_free(s->raw, u);
            u = next;
        }
    }
    zwi_map_release(&s->code);
    zwi_strtab_release(&s->strs);
    zw_raw *raw = s->raw;
    zwi_free(raw, s);
    zw_raw_destroy(raw);
}

int
zwi_symbolizer_add_unloaded(zwi_symbolizer *s, const char *path, uintptr_t base, uintptr_t lo,
                            uintptr_t hi)
{
    const char *p = zwi_strtab_intern(&s->strs, path);
    if (p == NULL ||
        zwi_reserve(s->raw, (void **)&s->gone, &s->cap_gone, s->ngone + 1, sizeof(*s->gone)) != 0)
        return -1;
    s->gone[s->ngone++] = (unloaded){lo, hi, base, p, NULL, false};
    return 0;
}

/* The module holding code address `pc` of a return address tagged `tag` (ZWI_FRAME_TAG_SHIFT):
 * the tag-th of the unloaded modules whose code held pc, or, past them, the one mapped now. */
static Dwfl_Module *
module_at(zwi_symbolizer *s, uintptr_t pc, unsigned tag)
{
    unsigned k = 0;
    for (size_t i = 0; i < s->ngone; i++) {
        unloaded *g = &s->gone[i];
        if (pc - g->lo >= g->hi - g->lo || k++ != tag)
            continue;
        if (!g->tried) {
            g->tried = true;
            g->dwfl = dwfl_begin(&callbacks);
            if (g->dwfl != NULL) {
                dwfl_report_begin(g->dwfl);
                Dwfl_Module *m = dwfl_report_elf(g->dwfl, g->path, g->path, -1, g->base, true);
                dwfl_report_end(g->dwfl, NULL, NULL);
                if (m == NULL) { /* its file is gone or unreadable: the frame stays unknown */
                    dwfl_end(g->dwfl);
                    g->dwfl = NULL;
                }
            }
        }
        return g->dwfl != NULL ? dwfl_addrmodule(g->dwfl, pc) : NULL;
    }
    if (s->dwfl == NULL)
        return NULL;
    Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, pc);
    if (mod == NULL && report_modules(s) == 0)
        mod = dwfl_addrmodule(s->dwfl, pc);
    return mod;
}

size_t
zwi_symbolizer_memory(const zwi_symbolizer *s)
{
    return s->cache_bytes + s->mods_bytes + s->strs.bytes +
           (s->cache.mask + 1) * sizeof(struct zwi_map_slot) + s->strs.cap * sizeof(char *) +
           (s->strs.mask + 1) * sizeof(uint32_t);
}

/* ---- function names: each module's symbols, sorted ---- */

static bool
sym_less(const modsym *a, const modsym *b)
{
    return a->lo != b->lo ? a->lo < b->lo : a->index < b->index;
}

/* Heap sorts: no allocation, O(n log n) (qsort may call malloc, which a hook may be running).
 * HEAP_SORT(name, type, less) defines `static void name(type *v, size_t n)`. */
#define HEAP_SORT(name, type, less)                                                               \
    static void name##_sift(type *v, size_t root, size_t n)                                      \
    {                                                                                             \
        for (;;) {                                                                                \
            size_t child = 2 * root + 1;                                                          \
            if (child >= n)                                                                       \
                return;                                                                           \
            if (child + 1 < n && less(&v[child], &v[child + 1]))                                  \
                child++;                                                                          \
            if (!less(&v[root], &v[child]))                                                       \
                return;                                                                           \
            type t = v[root];                                                                     \
            v[root] = v[child];                                                                   \
            v[child] = t;                                                                         \
            root = child;                                                                         \
        }                                                                                         \
    }                                                                                             \
    static void name(type *v, size_t n)                                                           \
    {                                                                                             \
        for (size_t i = n / 2; i-- > 0;)                                                          \
            name##_sift(v, i, n);                                                                 \
        for (size_t i = n; i-- > 1;) {                                                            \
            type t = v[0];                                                                        \
            v[0] = v[i];                                                                          \
            v[i] = t;                                                                             \
            name##_sift(v, 0, i);                                                                 \
        }                                                                                         \
    }

HEAP_SORT(sort_syms, modsym, sym_less)

/* The symbols of `mod` that libdwfl's lookup considers (named, defined, not a section, file or
 * TLS symbol), sorted by address, read once. */
static modsyms *
module_syms(zwi_symbolizer *s, Dwfl_Module *mod)
{
    for (size_t i = s->nmods; i-- > 0;) {
        if (s->mods[i].mod == mod)
            return &s->mods[i];
    }
    if (s->nmods == MAX_MODSYMS)
        return NULL;
    modsyms *m = &s->mods[s->nmods++];
    *m = (modsyms){mod, NULL, 0, -1, 0};
    int nsyms = dwfl_module_getsymtab(mod);
    int first_global = dwfl_module_getsymtab_first_global(mod);
    if (nsyms <= 1 || first_global < 0)
        return m;
    m->syms = zwi_alloc(s->raw, (size_t)nsyms * sizeof(modsym));
    if (m->syms == NULL)
        return m;
    s->mods_bytes += (size_t)nsyms * sizeof(modsym);
    for (int i = 1; i < nsyms; i++) {
        GElf_Sym sym;
        GElf_Addr addr;
        GElf_Word shndx;
        const char *name = dwfl_module_getsym_info(mod, i, &sym, &addr, &shndx, NULL, NULL);
        int type = GELF_ST_TYPE(sym.st_info);
        if (name == NULL || name[0] == '\0' || sym.st_shndx == SHN_UNDEF || type == STT_SECTION ||
            type == STT_FILE || type == STT_TLS)
            continue;
        int bind = GELF_ST_BIND(sym.st_info);
        m->syms[m->n++] = (modsym){
            .lo = addr,
            .size = sym.st_size,
            .name = name,
            .index = (uint32_t)i,
            .shndx = shndx >= SHN_LORESERVE ? 0xffff : (uint16_t)shndx,
            .bind = bind == STB_GLOBAL  ? 3
                    : bind == STB_WEAK  ? 2
                    : bind == STB_LOCAL ? 1
                                        : 0,
            .local = first_global > 1 && i < first_global,
        };
    }
    sort_syms(m->syms, m->n);
    uint64_t maxend = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (m->syms[i].lo + m->syms[i].size > maxend)
            maxend = m->syms[i].lo + m->syms[i].size;
        m->syms[i].maxend = maxend;
    }
    return m;
}

/* The index of the section of `mod`'s file holding `pc` (SHN_ABS if none), as libdwfl finds it
 * for a sizeless symbol. */
static unsigned
section_of(modsyms *m, uint64_t pc)
{
    if (m->shndx_of_pc >= 0 && m->last_pc == pc)
        return (unsigned)m->shndx_of_pc;
    GElf_Addr bias = 0;
    Elf *elf = dwfl_module_getelf(m->mod, &bias);
    unsigned found = SHN_ABS;
    for (Elf_Scn *scn = NULL; elf != NULL && (scn = elf_nextscn(elf, scn)) != NULL;) {
        GElf_Shdr mem;
        GElf_Shdr *sh = gelf_getshdr(scn, &mem);
        if (sh != NULL && pc - bias >= sh->sh_addr && pc - bias < sh->sh_addr + sh->sh_size) {
            found = (unsigned)elf_ndxscn(scn);
            break;
        }
    }
    m->last_pc = pc;
    m->shndx_of_pc = (int)found;
    return found;
}

/* Is sized symbol `c` a better match for an address it holds than `best`? A global symbol before
 * a local one of .symtab (searched only if no global matches), then a stronger binding, a closer
 * start, a smaller size, the first in the table. */
static bool
sized_better(const modsym *c, const modsym *best)
{
    if (best == NULL)
        return true;
    if (c->local != best->local)
        return !c->local;
    if (c->bind != best->bind)
        return c->bind > best->bind;
    if (c->lo != best->lo)
        return c->lo > best->lo;
    if (c->size != best->size)
        return c->size < best->size;
    return c->index < best->index;
}

/* The name of the symbol holding `pc` in `mod`, by libdwfl's rules (dwfl_module_addrname): the
 * best sized symbol holding pc; if none, a sizeless symbol (an assembly label) in pc's section
 * that no sized symbol below pc reaches past; else NULL. Bisection, then a walk down over the
 * symbols that can reach pc (maxend). Falls back on libdwfl's lookup if the module's symbols
 * could not be kept. */
static const char *
function_name(zwi_symbolizer *s, Dwfl_Module *mod, uint64_t pc)
{
    modsyms *m = module_syms(s, mod);
    if (m == NULL || (m->syms == NULL && dwfl_module_getsymtab(mod) > 1))
        return dwfl_module_addrname(mod, pc);
    size_t lo = 0;
    size_t hi = m->n; /* the first symbol above pc */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->syms[mid].lo <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const modsym *best = NULL;
    for (size_t j = lo; j-- > 0 && m->syms[j].maxend > pc;) {
        const modsym *c = &m->syms[j];
        if (c->size != 0 && pc - c->lo < c->size && sized_better(c, best))
            best = c;
    }
    if (best != NULL)
        return best->name;
    /* sizeless: at or above every sized symbol's end below pc; libdwfl keeps the last one it
     * meets in the table (globals, then the locals unless a global one is at pc exactly) */
    uint64_t min_label = m->syms[lo - 1].maxend;
    const modsym *label = NULL;
    bool exact_global = false;
    for (size_t j = lo; j-- > 0 && m->syms[j].lo >= min_label;) {
        const modsym *c = &m->syms[j];
        if (c->size != 0)
            continue;
        bool same = c->shndx == 0xffff ? c->lo == pc : c->shndx == section_of(m, pc);
        if (!same)
            continue;
        if (!c->local && c->lo == pc)
            exact_global = true;
        if (label == NULL || c->local > label->local ||
            (c->local == label->local && c->index > label->index))
            label = c;
    }
    if (label != NULL && label->local && exact_global) {
        label = NULL; /* the locals are not searched: the last global one */
        for (size_t j = lo; j-- > 0 && m->syms[j].lo >= min_label;) {
            const modsym *c = &m->syms[j];
            if (c->size == 0 && !c->local && c->shndx == section_of(m, pc) &&
                (label == NULL || c->index > label->index))
                label = c;
        }
    }
    return label != NULL ? label->name : NULL;
}

const char *
zwi_symbolizer_function(zwi_symbolizer *s, uintptr_t pc)
{
    if (s->dwfl == NULL)
        return NULL;
    Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, pc);
    return mod != NULL ? function_name(s, mod, pc) : NULL;
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

/* enclosing functions followed to qualify a name (a lambda in a lambda...) */
#define MAX_QUALIFY 8

/* The DIE that declares `die`: the end of its chain of abstract origins and specifications (a
 * member function's declaration sits in its class, a local class's in its function). */
static void
declaration_of(Dwarf_Die *die, Dwarf_Die *out)
{
    *out = *die;
    for (int i = 0; i < 4; i++) {
        Dwarf_Attribute attr;
        Dwarf_Die next;
        if (dwarf_attr(out, DW_AT_abstract_origin, &attr) == NULL &&
            dwarf_attr(out, DW_AT_specification, &attr) == NULL)
            return;
        if (dwarf_formref_die(&attr, &next) == NULL)
            return;
        *out = next;
    }
}

/* Appends the name of type `die` to buf[*len .. cap) as C++ spells it, for the common forms
 * (named types, pointers, references, const); "?" for others. */
static void
append_type(Dwarf_Die *die, char *buf, size_t cap, size_t *len, int depth)
{
    Dwarf_Attribute attr;
    Dwarf_Die inner;
    bool has_inner = dwarf_formref_die(dwarf_attr(die, DW_AT_type, &attr), &inner) != NULL;
    const char *suffix = NULL;
    switch (dwarf_tag(die)) {
    case DW_TAG_pointer_type:
        suffix = "*";
        break;
    case DW_TAG_reference_type:
        suffix = "&";
        break;
    case DW_TAG_rvalue_reference_type:
        suffix = "&&";
        break;
    case DW_TAG_const_type:
        suffix = " const";
        break;
    default: {
        const char *name = dwarf_diename(die);
        if (*len < cap)
            *len += (size_t)snprintf(buf + *len, cap - *len, "%s", name != NULL ? name : "?");
        return;
    }
    }
    if (has_inner && depth < 8)
        append_type(&inner, buf, cap, len, depth + 1);
    else if (*len < cap)
        *len += (size_t)snprintf(buf + *len, cap - *len, "%s",
                                 dwarf_tag(die) == DW_TAG_pointer_type ? "void" : "?");
    if (*len < cap)
        *len += (size_t)snprintf(buf + *len, cap - *len, "%s", suffix);
}

/* A lambda's closure type (GCC gives it no name, and a constructor named "<lambda>"): appends
 * "{lambda(int)}", with the parameter types of its operator(), as c++filt's "{lambda(int)#1}"
 * without the number. false if `die` is no closure type. */
static bool
append_closure(Dwarf_Die *die, char *buf, size_t cap, size_t *len)
{
    Dwarf_Die child, call;
    bool closure = false, has_call = false;
    if (dwarf_child(die, &child) != 0)
        return false;
    do {
        const char *name = dwarf_diename(&child);
        if (dwarf_tag(&child) != DW_TAG_subprogram || name == NULL)
            continue;
        if (strcmp(name, "<lambda>") == 0)
            closure = true;
        else if (strcmp(name, "operator()") == 0 && !has_call) {
            call = child;
            has_call = true;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    if (!closure)
        return false;
    if (*len < cap)
        *len += (size_t)snprintf(buf + *len, cap - *len, "%s{lambda(", *len > 0 ? "::" : "");
    bool first = true;
    if (has_call && dwarf_child(&call, &child) == 0) {
        do {
            Dwarf_Attribute attr;
            Dwarf_Die type;
            if (dwarf_tag(&child) != DW_TAG_formal_parameter ||
                dwarf_hasattr(&child, DW_AT_artificial))
                continue;
            if (*len < cap && !first)
                *len += (size_t)snprintf(buf + *len, cap - *len, ", ");
            first = false;
            if (dwarf_formref_die(dwarf_attr(&child, DW_AT_type, &attr), &type) != NULL)
                append_type(&type, buf, cap, len, 0);
            else if (*len < cap)
                *len += (size_t)snprintf(buf + *len, cap - *len, "?");
        } while (dwarf_siblingof(&child, &child) == 0);
    }
    if (*len < cap)
        *len += (size_t)snprintf(buf + *len, cap - *len, ")}");
    return true;
}

#define MAX_SCOPE_DEPTH 64 /* nesting of scopes walked in a unit */

/* Records in `m` the scope each scope DIE under `parent` is in (`scope`: the offset of the
 * innermost scope around them). */
static void
walk_scopes(zwi_map *m, Dwarf_Die *parent, Dwarf_Off scope, int depth)
{
    Dwarf_Die child;
    if (depth > MAX_SCOPE_DEPTH || dwarf_child(parent, &child) != 0)
        return;
    do {
        int tag = dwarf_tag(&child);
        if (tag == DW_TAG_namespace || tag == DW_TAG_class_type || tag == DW_TAG_structure_type ||
            tag == DW_TAG_union_type || tag == DW_TAG_subprogram) {
            Dwarf_Off off = dwarf_dieoffset(&child);
            if (zwi_map_put(m, off + 1, (void *)(uintptr_t)(scope + 1)) != 0)
                return; /* out of memory: names are qualified less */
            walk_scopes(m, &child, off, depth + 1);
        } else if (tag == DW_TAG_lexical_block) {
            walk_scopes(m, &child, scope, depth + 1);
        }
    } while (dwarf_siblingof(&child, &child) == 0);
}

/* The key of a compilation unit in s->units and s->code (never 0: an empty slot): its module's
 * interned build ID and its DIE offset, hashed with `seed` (one per map). */
static uint64_t
unit_hash(const char *build_id, Dwarf_Off cu, uint64_t seed)
{
    uint64_t key[2] = {(uint64_t)(uintptr_t)build_id, (uint64_t)cu};
    uint64_t h = zwi_hash_bytes(key, sizeof(key), seed);
    return h == 0 ? 1 : h;
}

/* The scopes of the unit holding `die`, walked the first time. NULL if unknown. */
static cu_scopes *
scopes_of(zwi_symbolizer *s, Dwarf_Die *die, const char *build_id)
{
    Dwarf_Die cudie;
    if (build_id == NULL || dwarf_diecu(die, &cudie, NULL, NULL) == NULL)
        return NULL;
    Dwarf_Off cu = dwarf_dieoffset(&cudie);
    uint64_t h = unit_hash(build_id, cu, 0x85ebca6b);
    cu_scopes *head = zwi_map_get(&s->units, h);
    for (cu_scopes *u = head; u != NULL; u = u->next) {
        if (u->build_id == build_id && u->cu == cu)
            return u;
    }
    cu_scopes *u = zwi_alloc(s->raw, sizeof(*u));
    if (u == NULL)
        return NULL;
    *u = (cu_scopes){.build_id = build_id, .cu = cu, .next = head};
    zwi_map_init(&u->parent, s->raw);
    walk_scopes(&u->parent, &cudie, cu, 0);
    if (zwi_map_put(&s->units, h, u) != 0) {
        zwi_map_release(&u->parent);
        zwi_free(s->raw, u);
        return NULL;
    }
    s->cache_bytes += sizeof(*u) + (u->parent.mask + 1) * sizeof(struct zwi_map_slot);
    return u;
}

/* Appends to buf[*len .. cap) the name of `die` qualified by the scopes around its declaration:
 * namespaces, classes and, for a local class (a lambda's closure), the function it is in, itself
 * qualified: "ns::run::{lambda(int)}::operator()". Truncated at `cap` (always terminated). */
static void
qualify(zwi_symbolizer *s, const char *build_id, Dwarf_Die *die, char *buf, size_t cap, size_t *len,
        int depth)
{
    Dwarf_Die decl;
    declaration_of(die, &decl);
    Dwarf_Die scopes[MAX_SCOPE_DEPTH]; /* decl itself first, then the scopes around it */
    int n = 1;
    scopes[0] = decl;
    cu_scopes *u = scopes_of(s, &decl, build_id);
    Dwarf *dw = dwarf_cu_getdwarf(decl.cu);
    uintptr_t up = u != NULL ? (uintptr_t)zwi_map_get(&u->parent, dwarf_dieoffset(&decl) + 1) : 0;
    while (up != 0 && up - 1 != u->cu && n < MAX_SCOPE_DEPTH && dw != NULL &&
           dwarf_offdie(dw, up - 1, &scopes[n]) != NULL) {
        up = (uintptr_t)zwi_map_get(&u->parent, up);
        n++;
    }
    for (int i = n - 1; i >= 0; i--) {
        int tag = dwarf_tag(&scopes[i]);
        const char *name = NULL;
        if (i == 0) {
            Dwarf_Attribute attr; /* its name, not its linkage name (an enclosing function's) */
            name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
            name = name != NULL ? name : "?";
        } else if (tag == DW_TAG_subprogram && depth < MAX_QUALIFY) {
            qualify(s, build_id, &scopes[i], buf, cap, len, depth + 1);
            name = "";
        } else if (tag == DW_TAG_namespace) {
            name = dwarf_diename(&scopes[i]);
            name = name != NULL ? name : "(anonymous namespace)";
        } else if (tag == DW_TAG_class_type || tag == DW_TAG_structure_type ||
                   tag == DW_TAG_union_type) {
            name = dwarf_diename(&scopes[i]);
            if (name == NULL && append_closure(&scopes[i], buf, cap, len))
                continue;
            name = name != NULL ? name : "(anonymous)";
        }
        if (name == NULL)
            continue; /* the CU, a lexical block */
        if (*len < cap)
            *len += (size_t)snprintf(buf + *len, cap - *len, "%s%s",
                                     *len > 0 && name[0] != '\0' ? "::" : "", name);
    }
}

/* qualify()'s name of `die`, made once per function of a module with a build ID (every address
 * that inlines the function shares its declaration). NULL: none, or out of memory. */
static const char *
qualified_name(zwi_symbolizer *s, Dwarf_Die *die, const char *build_id)
{
    Dwarf_Die decl;
    declaration_of(die, &decl);
    Dwarf_Off off = dwarf_dieoffset(&decl);
    uint64_t key[2] = {(uint64_t)(uintptr_t)build_id, (uint64_t)off};
    uint64_t h = zwi_hash_bytes(key, sizeof(key), 0x9e3779b9);
    h = h == 0 ? 1 : h;
    qualified *head = build_id != NULL ? zwi_map_get(&s->qualified, h) : NULL;
    for (qualified *q = head; q != NULL; q = q->next) {
        if (q->build_id == build_id && q->decl == off)
            return q->name;
    }
    char buf[1024];
    size_t len = 0;
    buf[0] = '\0';
    qualify(s, build_id, die, buf, sizeof(buf), &len, 0);
    const char *name = buf[0] != '\0' ? zwi_strtab_intern(&s->strs, buf) : NULL;
    qualified *q = build_id != NULL && name != NULL ? zwi_alloc(s->raw, sizeof(*q)) : NULL;
    if (q != NULL) {
        *q = (qualified){build_id, off, name, head};
        if (zwi_map_put(&s->qualified, h, q) != 0)
            zwi_free(s->raw, q);
        else
            s->cache_bytes += sizeof(*q);
    }
    return name;
}

/* The name of function `die` (a subprogram or an inlined subroutine) in a C++ unit when DWARF
 * gives it no linkage name: GCC gives none to a lambda's operator() (nor to a static function),
 * whose bare DW_AT_name "operator()" says nothing. The symbol table's (mangled) name when the
 * function is the subprogram at pc and has one (`symname`: "_ZZ4mainENKUliE_clEi", which zw shows
 * as "main::{lambda(int)#1}::operator()(int) const"), else the DWARF name qualified by its
 * scopes ("main::{lambda(int)}::operator()": GCC leaves a closure type unnamed; in a module
 * without a build ID, the bare name). NULL: die_name's. */
static const char *
cxx_name(zwi_symbolizer *s, Dwarf_Die *cudie, Dwarf_Die *die, const char *symname,
         const char *build_id)
{
    Dwarf_Attribute attr;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) != NULL)
        return NULL;
    int lang = dwarf_srclang(cudie);
    if (lang != DW_LANG_C_plus_plus && lang != DW_LANG_C_plus_plus_03 &&
        lang != DW_LANG_C_plus_plus_11 && lang != DW_LANG_C_plus_plus_14)
        return NULL;
    if (dwarf_tag(die) == DW_TAG_subprogram && symname != NULL && strncmp(symname, "_Z", 2) == 0)
        return symname;
    return qualified_name(s, die, build_id);
}

/* The call site (file, line) of inlined subroutine `die`. */
/* ---- inlined calls: each unit's code scopes, walked once ---- */

#define MAX_CODE_NESTING 256 /* DIE nesting walked for code scopes */

static inline bool
addr_less(const Dwarf_Addr *a, const Dwarf_Addr *b)
{
    return *a < *b;
}

HEAP_SORT(sort_addrs, Dwarf_Addr, addr_less)

/* What walk_code() gathers. */
typedef struct code_walk {
    zwi_symbolizer *s;
    cu_code *u;
    size_t cap_scopes;
    code_range *ranges;
    size_t nranges, cap_ranges;
    uint32_t max_depth;
    bool failed; /* out of memory */
} code_walk;

/* Adds the code scopes under `parent` (`scope`: the one around them, -1 none; `depth` its
 * nesting), with their address ranges. */
static void
walk_code(code_walk *w, Dwarf_Die *parent, int32_t scope, uint32_t depth, int level)
{
    Dwarf_Die child;
    if (w->failed || level > MAX_CODE_NESTING || dwarf_child(parent, &child) != 0)
        return;
    do {
        int tag = dwarf_tag(&child);
        if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine) {
            int32_t me = scope;
            Dwarf_Addr base, lo, hi;
            ptrdiff_t off = 0;
            while ((off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0) {
                if (lo >= hi)
                    continue;
                if (me == scope) { /* its first range: the scope itself */
                    if (zwi_reserve(w->s->raw, (void **)&w->u->scopes, &w->cap_scopes,
                                    w->u->nscopes + 1, sizeof(code_scope)) != 0) {
                        w->failed = true;
                        return;
                    }
                    me = (int32_t)w->u->nscopes;
                    w->u->scopes[w->u->nscopes++] = (code_scope){child, scope, depth};
                    if (depth > w->max_depth)
                        w->max_depth = depth;
                }
                if (zwi_reserve(w->s->raw, (void **)&w->ranges, &w->cap_ranges, w->nranges + 1,
                                sizeof(code_range)) != 0) {
                    w->failed = true;
                    return;
                }
                w->ranges[w->nranges++] = (code_range){lo, hi, (uint32_t)me};
            }
            walk_code(w, &child, me, me == scope ? depth : depth + 1, level + 1);
        } else if (tag == DW_TAG_lexical_block || tag == DW_TAG_namespace ||
                   tag == DW_TAG_class_type || tag == DW_TAG_structure_type ||
                   tag == DW_TAG_union_type) {
            walk_code(w, &child, scope, depth, level + 1);
        } else if (tag == DW_TAG_imported_unit) { /* a partial unit's DIEs, as if here (dwz) */
            Dwarf_Attribute attr;
            Dwarf_Die unit;
            if (dwarf_formref_die(dwarf_attr(&child, DW_AT_import, &attr), &unit) != NULL)
                walk_code(w, &unit, scope, depth, level + 1);
        }
    } while (dwarf_siblingof(&child, &child) == 0);
}

/* Cuts the unit's addresses at every range's ends and gives each segment its innermost scope:
 * ranges painted outermost first, inner ones over them (a scope's ranges lie inside those of
 * the scope around it). 0, or -1 if out of memory. */
static int
paint_segments(code_walk *w)
{
    cu_code *u = w->u;
    size_t npoints = 2 * w->nranges;
    if (npoints == 0)
        return 0;
    u->seg = zwi_alloc(w->s->raw, npoints * sizeof(Dwarf_Addr));
    size_t *start = zwi_alloc(w->s->raw, (w->max_depth + 2) * sizeof(size_t));
    uint32_t *order = zwi_alloc(w->s->raw, w->nranges * sizeof(uint32_t));
    int rc = -1;
    if (u->seg == NULL || start == NULL || order == NULL)
        goto out;
    for (size_t i = 0; i < w->nranges; i++) {
        u->seg[2 * i] = w->ranges[i].lo;
        u->seg[2 * i + 1] = w->ranges[i].hi;
    }
    sort_addrs(u->seg, npoints);
    size_t n = 0;
    for (size_t i = 0; i < npoints; i++)
        if (n == 0 || u->seg[i] != u->seg[n - 1])
            u->seg[n++] = u->seg[i];
    u->nseg = n;
    u->seg_scope = zwi_alloc(w->s->raw, n * sizeof(int32_t));
    if (u->seg_scope == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        u->seg_scope[i] = -1;
    /* the ranges by depth (a counting sort), then painted in that order */
    memset(start, 0, (w->max_depth + 2) * sizeof(size_t));
    for (size_t i = 0; i < w->nranges; i++)
        start[u->scopes[w->ranges[i].scope].depth + 1]++;
    for (uint32_t d = 0; d <= w->max_depth; d++)
        start[d + 1] += start[d];
    for (size_t i = 0; i < w->nranges; i++)
        order[start[u->scopes[w->ranges[i].scope].depth]++] = (uint32_t)i;
    for (size_t k = 0; k < w->nranges; k++) {
        const code_range *r = &w->ranges[order[k]];
        size_t lo = 0, hi = n; /* the first segment starting at or after r->lo */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (u->seg[mid] < r->lo)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t i = lo; i + 1 < n && u->seg[i] < r->hi; i++)
            u->seg_scope[i] = (int32_t)r->scope;
    }
    rc = 0;
out:
    zwi_free(w->s->raw, start);
    zwi_free(w->s->raw, order);
    return rc;
}

/* The code scopes of the unit `cudie` of the module with `build_id`, walked the first time.
 * NULL if unknown (no build ID, or out of memory): the caller asks libdw instead. */
static cu_code *
code_of(zwi_symbolizer *s, Dwarf_Die *cudie, const char *build_id)
{
    if (build_id == NULL)
        return NULL;
    Dwarf_Off cu = dwarf_dieoffset(cudie);
    uint64_t h = unit_hash(build_id, cu, 0xc2b2ae35);
    cu_code *head = zwi_map_get(&s->code, h);
    for (cu_code *u = head; u != NULL; u = u->next) {
        if (u->build_id == build_id && u->cu == cu)
            return u;
    }
    cu_code *u = zwi_alloc(s->raw, sizeof(*u));
    if (u == NULL)
        return NULL;
    *u = (cu_code){.build_id = build_id, .cu = cu, .next = head};
    code_walk w = {.s = s, .u = u};
    walk_code(&w, cudie, -1, 0, 0);
    bool ok = !w.failed && paint_segments(&w) == 0;
    zwi_free(s->raw, w.ranges);
    if (!ok || zwi_map_put(&s->code, h, u) != 0) {
        zwi_free(s->raw, u->scopes);
        zwi_free(s->raw, u->seg);
        zwi_free(s->raw, u->seg_scope);
        zwi_free(s->raw, u);
        return NULL;
    }
    s->cache_bytes += sizeof(*u) + u->nscopes * sizeof(code_scope) +
                      u->nseg * (sizeof(Dwarf_Addr) + sizeof(int32_t));
    return u;
}

/* The chain of code scopes holding unit address `pc`, innermost first, into out[0 .. max): how
 * many (0: none holds it). */
static int
code_chain(const cu_code *u, Dwarf_Addr pc, Dwarf_Die *out, int max)
{
    size_t lo = 0, hi = u->nseg; /* the last segment starting at or before pc */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->seg[mid] <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || lo >= u->nseg) /* before the first, or at or past the last end */
        return 0;
    int n = 0;
    for (int32_t k = u->seg_scope[lo - 1]; k >= 0 && n < max; k = u->scopes[k].parent)
        out[n++] = u->scopes[k].die;
    return n;
}

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
    unsigned tag = (unsigned)(ret >> ZWI_FRAME_TAG_SHIFT);
    ret &= ((uintptr_t)1 << ZWI_FRAME_TAG_SHIFT) - 1;
    if (ret == 0)
        return 1;            /* <unknown> */
    Dwarf_Addr pc = ret - 1; /* inside the call instruction, not after it */
    Dwfl_Module *mod = module_at(s, pc, tag);
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
    const char *symname = function_name(s, mod, pc);
    out[0].function = zwi_strtab_intern(&s->strs, symname);

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
    Dwarf_Die chain[MAX_INLINE];
    Dwarf_Die *scopes = NULL;
    int nscopes;
    const cu_code *code = code_of(s, cudie, build_id);
    if (code != NULL)
        nscopes = code_chain(code, pc - bias, chain, MAX_INLINE);
    else
        nscopes = dwarf_getscopes(cudie, pc - bias, &scopes);
    if (code == NULL && nscopes > 0) {
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
    if (code != NULL)
        scopes = chain;
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
        const char *fn = cxx_name(s, cudie, &scopes[i], symname, build_id);
        if (fn == NULL)
            fn = die_name(&scopes[i]);
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
    if (code == NULL)
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

/* preload/unwind_cfa.c - a walk through code without frame pointers from .eh_frame's CFA rules,
 * without libgcc or libunwind: for each return address, the rule that gives its caller's frame
 * (CFA = rsp or rbp + N, the return address at CFA - 8, rbp kept or saved at CFA - 8k), read from
 * the module's .eh_frame (found through _dl_find_object and .eh_frame_hdr's sorted table, the
 * FDE's instructions run up to the address) and then kept in a direct-mapped cache of packed
 * rules, one word each, that every thread reads and writes without a lock. A walk costs a cache
 * probe, two loads and a few adds per frame. Anything else (CFA expressions, signal frames, rbp
 * or the return address elsewhere, an address in no module) makes the walk give up: the caller
 * then asks libunwind. Nothing here allocates or locks: a hook calls it. */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "unwinder.h"

/* A rule packed in a cache word: tag (the return address >> CFA_SET_BITS, 34 bits) << 29 |
 * kind (2 bits) << 27 | rbp slot (7 bits) << 20 | via rbp (1 bit) << 19 | CFA offset (19 bits).
 * The cache is two-way: the address's low CFA_SET_BITS bits pick a set of two words, side by side
 * in one line, the one stored last first; addresses above 2^47 are not cached. cc1plus's lookups
 * past a direct-mapped front table (393k of 7.8M, 12k distinct addresses) missed 42.5k times
 * direct-mapped (each miss a read of .eh_frame, ~600 ns), 16.4k times two-way in the same 128
 * KiB. */
#define CFA_SET_BITS 13
#define KIND_RULE      1u /* a rule to follow */
#define KIND_END       2u /* the outermost frame: its return address is undefined */
#define KIND_NONE      3u /* no rule this walker can follow: ask libunwind */
#define MAX_OFF        ((1u << 19) - 1)
#define MAX_SLOT       127u

_Static_assert(sizeof(((zwi_unwinder *)0)->cfa) / sizeof(uint64_t) == 2u << CFA_SET_BITS,
               "cfa cache size");
/* The front table is two-way too: the address's low FRONT_SET_BITS bits pick a set of two words;
 * only addresses below 2^47 are in the cache it copies from, so a tag fits in the 37 bits above
 * the rule's 27. */
#define FRONT_SET_BITS 10
_Static_assert(ZWI_UNWIND_CFA_FRONT == 2u << FRONT_SET_BITS, "cfa front size");

/* What a walk entry's rule does with rbp, and how the walk ends (walk_cache) */
#define ENTRY_READS_RBP 1u  /* the CFA is rbp + offset */
#define ENTRY_LOADS_RBP 2u  /* rbp is reloaded from the stack (the next entry is RELOADED) */
#define ENTRY_END       4u  /* the outermost frame: the walk ends after it */
#define ENTRY_LOW       8u  /* no frame: the return address read was below 4096, the walk ends */
#define ENTRY_LIVE      16u /* the walk from here reads this entry's rbp before reloading it */
#define ENTRY_RELOADED  32u /* this entry's rbp was read from the stack, at sp - 8 * slot */
#define ENTRY_CHECK     64u /* RELOADED and LIVE: reusing the entry compares its rbp too */

typedef struct rule {
    unsigned kind;
    bool via_rbp;  /* CFA = rbp + off, else rsp + off */
    uint32_t off;  /* CFA offset */
    unsigned slot; /* rbp saved at CFA - 8 * slot; 0: kept */
} rule;

/* ---- reading .eh_frame ---- */

typedef struct reader {
    const uint8_t *p, *end;
    bool bad;
} reader;

static uint8_t
u8(reader *r)
{
    if (r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

static uint64_t
uleb(reader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b = u8(r);
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return v;
}

static int64_t
sleb(reader *r)
{
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        b = u8(r);
        v |= (int64_t)(b & 0x7f) << shift;
        shift += 7;
    } while ((b & 0x80) && shift < 64);
    if (shift < 64 && (b & 0x40))
        v |= -((int64_t)1 << shift);
    return v;
}

static uint64_t
fixed(reader *r, unsigned n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, n); /* little-endian */
    r->p += n;
    return v;
}

/* A pointer in DW_EH_PE encoding `enc` (absolute or pc-relative; datarel with `data`). */
static uintptr_t
encoded(reader *r, uint8_t enc, uintptr_t data)
{
    if (enc == 0xff) /* DW_EH_PE_omit */
        return 0;
    uintptr_t at = (uintptr_t)r->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00:
        v = fixed(r, 8);
        break; /* absptr */
    case 0x01:
        v = uleb(r);
        break; /* uleb128 */
    case 0x02:
        v = fixed(r, 2);
        break; /* udata2 */
    case 0x03:
        v = fixed(r, 4);
        break; /* udata4 */
    case 0x04:
        v = fixed(r, 8);
        break; /* udata8 */
    case 0x09:
        v = (uint64_t)sleb(r);
        break; /* sleb128 */
    case 0x0a:
        v = (uint64_t)(int64_t)(int16_t)fixed(r, 2);
        break; /* sdata2 */
    case 0x0b:
        v = (uint64_t)(int64_t)(int32_t)fixed(r, 4);
        break; /* sdata4 */
    case 0x0c:
        v = fixed(r, 8);
        break; /* sdata8 */
    default:
        r->bad = true;
        return 0;
    }
    switch (enc & 0x70) {
    case 0x00:
        break; /* absolute */
    case 0x10:
        v += at;
        break; /* pcrel */
    case 0x30:
        v += data;
        break; /* datarel */
    default:
        r->bad = true;
        return 0;
    }
    return (uintptr_t)v;
}

/* The register rules this walker follows: CFA, rbp's, the return address's. */
typedef struct state {
    int cfa_reg; /* DWARF 7 rsp, 6 rbp; -1 anything else (an expression) */
    int64_t cfa_off;
    int rbp; /* 0 kept, 1 at CFA + rbp_off, -1 elsewhere */
    int64_t rbp_off;
    int ra; /* 1 at CFA + ra_off, 2 undefined, -1 elsewhere */
    int64_t ra_off;
} state;

#define MAX_REMEMBER 8

/* Runs CFA instructions [p, end) from location `loc` while loc <= target. `init` is the state
 * after the CIE's instructions (for DW_CFA_restore), NULL while running those. False if they
 * cannot be read. */
static bool
run_cfa(reader *r, uintptr_t loc, uintptr_t target, uint64_t code_align, int64_t data_align,
        state *st, const state *init, uint8_t fde_enc)
{
    state stack[MAX_REMEMBER];
    unsigned depth = 0;
    while (r->p < r->end && !r->bad) {
        uint8_t op = u8(r);
        uint64_t reg = 0;
        int64_t off = 0;
        uint64_t delta = 0;
        switch (op & 0xc0) {
        case 0x40:
            delta = (op & 0x3f) * code_align;
            goto advance;
        case 0x80:
            reg = op & 0x3f;
            off = (int64_t)uleb(r) * data_align;
            goto offset;
        case 0xc0:
            reg = op & 0x3f;
            goto restore;
        default:
            break;
        }
        switch (op) {
        case 0x00: /* nop */
            continue;
        case 0x01: /* set_loc */
            loc = encoded(r, fde_enc, 0);
            if (loc > target)
                return !r->bad;
            continue;
        case 0x02:
            delta = u8(r) * code_align;
            goto advance;
        case 0x03:
            delta = fixed(r, 2) * code_align;
            goto advance;
        case 0x04:
            delta = fixed(r, 4) * code_align;
            goto advance;
        case 0x05: /* offset_extended */
            reg = uleb(r);
            off = (int64_t)uleb(r) * data_align;
            goto offset;
        case 0x11: /* offset_extended_sf */
            reg = uleb(r);
            off = sleb(r) * data_align;
            goto offset;
        case 0x06: /* restore_extended */
            reg = uleb(r);
            goto restore;
        case 0x07: /* undefined */
        case 0x08: /* same_value */
            reg = uleb(r);
            if (reg == 6)
                st->rbp = op == 0x08 ? 0 : -1;
            else if (reg == 16)
                st->ra = op == 0x07 ? 2 : -1;
            continue;
        case 0x09: /* register */
            reg = uleb(r);
            (void)uleb(r);
            if (reg == 6)
                st->rbp = -1;
            else if (reg == 16)
                st->ra = -1;
            continue;
        case 0x0a: /* remember_state */
            if (depth == MAX_REMEMBER)
                return false;
            stack[depth++] = *st;
            continue;
        case 0x0b: /* restore_state */
            if (depth == 0)
                return false;
            *st = stack[--depth];
            continue;
        case 0x0c: /* def_cfa */
            st->cfa_reg = (int)uleb(r);
            st->cfa_off = (int64_t)uleb(r);
            continue;
        case 0x12: /* def_cfa_sf */
            st->cfa_reg = (int)uleb(r);
            st->cfa_off = sleb(r) * data_align;
            continue;
        case 0x0d: /* def_cfa_register */
            st->cfa_reg = (int)uleb(r);
            continue;
        case 0x0e: /* def_cfa_offset */
            st->cfa_off = (int64_t)uleb(r);
            continue;
        case 0x13: /* def_cfa_offset_sf */
            st->cfa_off = sleb(r) * data_align;
            continue;
        case 0x0f: { /* def_cfa_expression */
            uint64_t n = uleb(r);
            st->cfa_reg = -1;
            if (n > (uint64_t)(r->end - r->p))
                return false;
            r->p += n;
            continue;
        }
        case 0x10:   /* expression */
        case 0x16: { /* val_expression */
            reg = uleb(r);
            uint64_t n = uleb(r);
            if (n > (uint64_t)(r->end - r->p))
                return false;
            r->p += n;
            if (reg == 6)
                st->rbp = -1;
            else if (reg == 16)
                st->ra = -1;
            continue;
        }
        case 0x14: /* val_offset */
        case 0x15: /* val_offset_sf */
            reg = uleb(r);
            if (op == 0x14)
                (void)uleb(r);
            else
                (void)sleb(r);
            if (reg == 6)
                st->rbp = -1;
            else if (reg == 16)
                st->ra = -1;
            continue;
        case 0x2e: /* GNU_args_size */
            (void)uleb(r);
            continue;
        case 0x2f: /* GNU_negative_offset_extended */
            reg = uleb(r);
            off = -(int64_t)uleb(r) * data_align;
            goto offset;
        default:
            return false;
        }
    advance:
        loc += delta;
        if (loc > target)
            return !r->bad;
        continue;
    offset:
        if (reg == 6) {
            st->rbp = 1;
            st->rbp_off = off;
        } else if (reg == 16) {
            st->ra = 1;
            st->ra_off = off;
        }
        continue;
    restore:
        if (init == NULL)
            return false;
        if (reg == 6) {
            st->rbp = init->rbp;
            st->rbp_off = init->rbp_off;
        } else if (reg == 16) {
            st->ra = init->ra;
            st->ra_off = init->ra_off;
        }
        continue;
    }
    return !r->bad;
}

/* The FDE covering `pc` in the module whose .eh_frame_hdr is `hdr`, by its sorted table; NULL if
 * none. *fde_end is set. */
static const uint8_t *
find_fde(const uint8_t *hdr, uintptr_t pc)
{
    if (hdr == NULL || hdr[0] != 1)
        return NULL;
    uint8_t ptr_enc = hdr[1], count_enc = hdr[2], table_enc = hdr[3];
    reader r = {hdr + 4, hdr + 4 + 16, false};
    (void)encoded(&r, ptr_enc, (uintptr_t)hdr);
    uint64_t count = encoded(&r, count_enc, (uintptr_t)hdr);
    if (r.bad || table_enc != 0x3b || count == 0) /* datarel sdata4 pairs: what ld writes */
        return NULL;
    const int32_t *table = (const int32_t *)(const void *)r.p;
    uint64_t lo = 0, hi = count;
    while (lo < hi) { /* the first entry above pc */
        uint64_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)hdr + table[2 * mid] <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    return hdr + table[2 * (lo - 1) + 1];
}

/* ---- modules that carry an unwinder of their own (ZW_UNWIND=shadow) ----
 *
 * The shadow stack replaces walked return addresses by the trampoline's; libgcc's unwinder never
 * reads them (its entry points are interposed and put them back first), but an unwinder linked
 * into a module (g++ -static-libstdc++ -static-libgcc: GCC's own compilers and the JVM are built
 * so) is called from inside that module, and its exceptions stop at the first trampoline:
 * std::terminate. Such a module has exception-handling code (a CIE naming a personality routine)
 * and imports none of libgcc's entry points or personality routines. glibc's libc is the one
 * exception: its cancellation cleanups reach libgcc through pointers of its own, by forced
 * unwinds the trampoline's personality routine follows. The module of every return address is
 * screened when its first rule is read, which is before any frame returning into it is patched:
 * a module that fails turns patching off for the process (zwi_preload_shadow_refuse). */

#define SCREEN_CAP 1024 /* modules remembered as screened; past them, screened again */

static _Atomic uintptr_t screened[SCREEN_CAP]; /* dlfo_map_start of each, open addressing */
ZW_HIDDEN atomic_bool zwi_preload_unwind_screening;

/* Does `lm` import (an undefined dynamic symbol) one of libgcc's entry points or personality
 * routines? Undefined symbols come first in .dynsym, before the hashed ones (DT_GNU_HASH's
 * symoffset), or all of them are counted by DT_HASH. */
static bool
imports_unwinder(const struct link_map *lm)
{
    static const char *const names[] = {"_Unwind_Resume", "_Unwind_RaiseException",
                                        "__gxx_personality_v0", "__gcc_personality_v0"};
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const uint32_t *gnu = NULL, *sysv = NULL;
    size_t strsz = 0;
    for (const ElfW(Dyn) *d = lm->l_ld; d != NULL && d->d_tag != DT_NULL; d++) {
        uintptr_t p = d->d_un.d_ptr;
        if (p != 0 && p < lm->l_addr) /* not relocated by ld.so (the vDSO) */
            p += lm->l_addr;
        if (d->d_tag == DT_SYMTAB)
            symtab = (const ElfW(Sym) *)p;
        else if (d->d_tag == DT_STRTAB)
            strtab = (const char *)p;
        else if (d->d_tag == DT_STRSZ)
            strsz = d->d_un.d_val;
        else if (d->d_tag == DT_GNU_HASH)
            gnu = (const uint32_t *)p;
        else if (d->d_tag == DT_HASH)
            sysv = (const uint32_t *)p;
    }
    if (symtab == NULL || strtab == NULL || (gnu == NULL && sysv == NULL))
        return false;
    size_t nsym = gnu != NULL ? gnu[1] : sysv[1];
    for (size_t i = 1; i < nsym; i++) {
        if (symtab[i].st_shndx != SHN_UNDEF || symtab[i].st_name >= strsz)
            continue;
        const char *name = strtab + symtab[i].st_name;
        for (size_t k = 0; k < sizeof(names) / sizeof(*names); k++) {
            if (strcmp(name, names[k]) == 0)
                return true;
        }
    }
    return false;
}

/* The end of the loaded segment of the module mapped from `start` that holds `p`; 0 if its ELF
 * header is not mapped there, or no segment holds p. */
static uintptr_t
segment_end(uintptr_t start, uintptr_t base, uintptr_t p)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)start;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_phentsize != sizeof(ElfW(Phdr)) ||
        eh->e_phoff + (size_t)eh->e_phnum * sizeof(ElfW(Phdr)) > 4096)
        return 0;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(start + eh->e_phoff);
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        uintptr_t lo = base + ph[i].p_vaddr;
        if (ph[i].p_type == PT_LOAD && p >= lo && p < lo + ph[i].p_filesz)
            return lo + ph[i].p_filesz;
    }
    return 0;
}

/* Does the .eh_frame of the module (its .eh_frame_hdr `hdr`) have a CIE naming a personality
 * routine? Its entries are read in a row, within the segment that holds them. */
static bool
has_personality(const uint8_t *hdr, uintptr_t start, uintptr_t base)
{
    if (hdr == NULL || hdr[0] != 1)
        return false;
    reader r = {hdr + 4, hdr + 4 + 16, false};
    const uint8_t *p = (const uint8_t *)encoded(&r, hdr[1], (uintptr_t)hdr);
    uintptr_t end = r.bad ? 0 : segment_end(start, base, (uintptr_t)p);
    while (end != 0 && (uintptr_t)p + 9 <= end) {
        uint32_t len, id;
        memcpy(&len, p, 4);
        if (len == 0 || len == 0xffffffffu || len > end - (uintptr_t)p - 4)
            break; /* the terminator (or a 64-bit entry, which no linker writes here) */
        memcpy(&id, p + 4, 4);
        if (id == 0 && p[8] != 0) { /* a CIE: version, then its augmentation string */
            const char *aug = (const char *)p + 9;
            size_t n = strnlen(aug, len - 5);
            if (memchr(aug, 'P', n) != NULL)
                return true;
        }
        p += 4 + len;
    }
    return false;
}

/* Screens the module of `dlfo` (see above), once it passed: it is noted only after its check, so
 * that a thread meeting it meanwhile checks it too rather than patch its frames first. */
static void
screen(const struct dl_find_object *dlfo)
{
    uintptr_t key = (uintptr_t)dlfo->dlfo_map_start;
    size_t h = (size_t)((key >> 12) * 0x9E3779B97F4A7C15ULL >> 54) % SCREEN_CAP;
    for (size_t k = 0; k < 8; k++) {
        uintptr_t v = atomic_load_explicit(&screened[(h + k) % SCREEN_CAP], memory_order_relaxed);
        if (v == key)
            return;
        if (v == 0)
            break;
    }
    uintptr_t self = (uintptr_t)screen; /* this library: the trampoline's personality is ours */
    const struct link_map *lm = dlfo->dlfo_link_map;
    const char *name =
        lm != NULL && lm->l_name != NULL && lm->l_name[0] != '\0' ? lm->l_name : NULL;
    const char *slash = name != NULL ? strrchr(name, '/') : NULL;
    bool passes = (self >= key && self < (uintptr_t)dlfo->dlfo_map_end) || lm == NULL ||
                  imports_unwinder(lm) ||
                  (name != NULL && strncmp(slash != NULL ? slash + 1 : name, "libc.so.", 8) == 0) ||
                  !has_personality(dlfo->dlfo_eh_frame, key, lm->l_addr);
    if (!passes) {
        /* the executable's link map has no name: glibc's copy of argv[0] */
        zwi_preload_shadow_refuse(name != NULL ? name : program_invocation_name);
        return; /* and screening stops: patching is off for good */
    }
    for (size_t k = 0; k < 8; k++) {
        uintptr_t empty = 0;
        if (atomic_compare_exchange_strong_explicit(&screened[(h + k) % SCREEN_CAP], &empty, key,
                                                    memory_order_relaxed, memory_order_relaxed) ||
            empty == key)
            return;
    }
}

void
zwi_preload_unwind_forget_screened(void)
{
    for (size_t i = 0; i < SCREEN_CAP; i++)
        atomic_store_explicit(&screened[i], 0, memory_order_relaxed);
}

/* The rule for return address `ret` (the call is at ret - 1). */
static rule
find_rule(uintptr_t ret)
{
    rule none = {KIND_NONE, false, 0, 0};
    uintptr_t pc = ret - 1;
    struct dl_find_object dlfo;
    if (_dl_find_object((void *)pc, &dlfo) != 0)
        return none;
    if (atomic_load_explicit(&zwi_preload_unwind_screening, memory_order_relaxed))
        screen(&dlfo);
    const uint8_t *fde = find_fde(dlfo.dlfo_eh_frame, pc);
    if (fde == NULL)
        return none;
    uint32_t len;
    memcpy(&len, fde, 4);
    if (len == 0 || len == 0xffffffffu)
        return none;
    reader f = {fde + 8, fde + 4 + len, false};
    uint32_t cie_off;
    memcpy(&cie_off, fde + 4, 4);
    const uint8_t *cie = fde + 4 - cie_off;
    uint32_t cie_len;
    memcpy(&cie_len, cie, 4);
    if (cie_len == 0 || cie_len == 0xffffffffu)
        return none;
    reader c = {cie + 8, cie + 4 + cie_len, false};
    uint8_t version = u8(&c);
    const char *aug = (const char *)c.p;
    size_t auglen = strnlen(aug, (size_t)(c.end - c.p));
    c.p += auglen + 1;
    if (version != 1 && version != 3)
        return none;
    uint64_t code_align = uleb(&c);
    int64_t data_align = sleb(&c);
    uint64_t ra_reg = version == 1 ? u8(&c) : uleb(&c);
    uint8_t fde_enc = 0;
    bool has_z = aug[0] == 'z';
    if (ra_reg != 16 || (auglen > 0 && !has_z))
        return none;
    if (has_z) {
        uint64_t n = uleb(&c);
        reader a = {c.p, c.p + n, false};
        if (n > (uint64_t)(c.end - c.p))
            return none;
        c.p += n;
        for (size_t i = 1; i < auglen; i++) {
            switch (aug[i]) {
            case 'R':
                fde_enc = u8(&a);
                break;
            case 'L':
                (void)u8(&a);
                break;
            case 'P': {
                uint8_t enc = u8(&a);
                (void)encoded(&a, enc & 0x7f, 0); /* indirect or not: only skipped */
                break;
            }
            default:
                return none; /* 'S' (a signal frame) and the rest */
            }
        }
        if (a.bad)
            return none;
    }
    uintptr_t begin = encoded(&f, fde_enc, 0);
    uintptr_t range = encoded(&f, fde_enc & 0x0f, 0);
    if (f.bad || pc < begin || pc - begin >= range)
        return none;
    if (has_z) {
        uint64_t n = uleb(&f);
        if (n > (uint64_t)(f.end - f.p))
            return none;
        f.p += n;
    }
    state st = {7, 8, 0, 0, 1, -8};
    if (!run_cfa(&c, begin, UINTPTR_MAX, code_align, data_align, &st, NULL, fde_enc))
        return none;
    state init = st;
    if (!run_cfa(&f, begin, pc, code_align, data_align, &st, &init, fde_enc))
        return none;
    if (st.ra == 2)
        return (rule){KIND_END, false, 0, 0};
    if ((st.cfa_reg != 7 && st.cfa_reg != 6) || st.cfa_off < 0 || st.cfa_off > MAX_OFF ||
        st.ra != 1 || st.ra_off != -8 || st.rbp < 0 ||
        (st.rbp == 1 && (st.rbp_off >= 0 || st.rbp_off % 8 != 0 || -st.rbp_off / 8 > MAX_SLOT)))
        return none;
    return (rule){KIND_RULE, st.cfa_reg == 6, (uint32_t)st.cfa_off,
                  st.rbp == 1 ? (unsigned)(-st.rbp_off / 8) : 0};
}

/* ---- the cache and the walk ---- */

static inline uint64_t
pack(uintptr_t ret, rule r)
{
    return (uint64_t)(ret >> CFA_SET_BITS) << 29 | (uint64_t)r.kind << 27 |
           (uint64_t)r.slot << 20 | (uint64_t)r.via_rbp << 19 | r.off;
}

/* The rule for `ret` in the front table's packing (KIND_RULE only): tag (the return address >>
 * FRONT_SET_BITS, 37 bits) << 27 | the rule's low 27 bits as `cfa` packs them. */
static inline uint64_t
front_pack(uintptr_t ret, uint64_t e)
{
    return (uint64_t)(ret >> FRONT_SET_BITS) << 27 | (e & (((uint64_t)1 << 27) - 1));
}

static inline rule
unpack(uint64_t e, unsigned kind)
{
    return (rule){kind, (e >> 19) & 1, (uint32_t)e & MAX_OFF, (unsigned)(e >> 20) & MAX_SLOT};
}

/* The rule for return address `ret`: from the front table, else the cache (then copied to the
 * front, first in its set), else read from .eh_frame (then cached, first in its set). cc1plus's
 * 7.8M lookups of 12k return addresses: a direct-mapped front of 2048 words held 95 % of them,
 * two-way 97.3 %; the cache's 128 KiB, whose lines are mostly out of the processor's caches by
 * the next allocation, had 40 % of the walk's samples on its one load, 25 % with the front before
 * it (both loads), and the walk took 13 % fewer samples. */
static inline rule
lookup(zwi_unwinder *u, uintptr_t ret)
{
    _Atomic uint64_t *front = &u->cfa_front[2 * (ret & ((1u << FRONT_SET_BITS) - 1))];
    for (unsigned k = 0; k < 2; k++) {
        uint64_t f = atomic_load_explicit(&front[k], memory_order_relaxed);
        if (ZW_LIKELY(f >> 27 == (uint64_t)(ret >> FRONT_SET_BITS) && f != 0))
            return unpack(f, KIND_RULE);
    }
    _Atomic uint64_t *set = &u->cfa[2 * (ret & ((1u << CFA_SET_BITS) - 1))];
    for (unsigned k = 0; k < 2; k++) {
        uint64_t e = atomic_load_explicit(&set[k], memory_order_relaxed);
        if (ZW_LIKELY(e >> 29 == (uint64_t)(ret >> CFA_SET_BITS) && e != 0)) {
            unsigned kind = (unsigned)(e >> 27) & 3;
            if (kind == KIND_RULE) {
                atomic_store_explicit(&front[1],
                                      atomic_load_explicit(&front[0], memory_order_relaxed),
                                      memory_order_relaxed);
                atomic_store_explicit(&front[0], front_pack(ret, e), memory_order_relaxed);
            }
            return unpack(e, kind);
        }
    }
    rule r = find_rule(ret);
    if (ret >> 47 == 0) { /* the set's first word moves to its second: each stays whole */
        atomic_store_explicit(&set[1], atomic_load_explicit(&set[0], memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&set[0], pack(ret, r), memory_order_relaxed);
    }
    return r;
}

/* One step of the walk from the frame that returns to `*pc` (already recorded), with the stack
 * pointer `*sp` and rbp `*rbp` of the frame it returns into: the state of that frame's caller,
 * the new rbp read at the new sp - 8 * *slot (0: kept). Returns the rule's kind (KIND_END: no
 * caller; KIND_NONE: a frame this walker cannot follow) and its flags in *flags. */
static inline __attribute__((always_inline)) unsigned
step(zwi_unwinder *u, uintptr_t *pc, uintptr_t *sp, uintptr_t *rbp, unsigned *slot, uint8_t *flags,
     uintptr_t stack_hi)
{
    rule r = lookup(u, *pc);
    if (r.kind != KIND_RULE)
        return r.kind;
    uintptr_t cfa = (r.via_rbp ? *rbp : *sp) + r.off;
    if (cfa <= *sp || cfa > stack_hi || (cfa & 7) != 0)
        return KIND_NONE; /* not a frame of this stack: let libunwind judge */
    const uintptr_t *top = (const uintptr_t *)cfa;
    *flags = (uint8_t)((r.via_rbp ? ENTRY_READS_RBP : 0) | (r.slot != 0 ? ENTRY_LOADS_RBP : 0));
    *slot = r.slot;
    if (r.slot != 0)
        *rbp = top[-(int)r.slot];
    *pc = top[-1];
    *sp = cfa;
    return KIND_RULE;
}

int
zwi_preload_unwind_cfa(zwi_unwinder *u, uintptr_t *frames, unsigned max, uintptr_t pc, uintptr_t sp,
                       uintptr_t rbp, uintptr_t stack_hi)
{
    unsigned n = 0;
    unsigned slot;
    uint8_t flags;
    while (n < max) {
        if (pc < 4096)
            break;
        frames[n++] = pc;
        unsigned kind = step(u, &pc, &sp, &rbp, &slot, &flags, stack_hi);
        if (kind == KIND_END)
            break;
        if (kind != KIND_RULE)
            return -1;
    }
    return (int)n;
}

int
zwi_preload_unwind_cfa_until(zwi_unwinder *u, uintptr_t *frames, uintptr_t *sps, uintptr_t *rbps,
                             unsigned max, uintptr_t pc, uintptr_t sp, uintptr_t rbp,
                             uintptr_t stack_hi, uintptr_t stop, unsigned *how)
{
    unsigned n = 0;
    unsigned slot;
    uint8_t flags;
    for (;;) {
        if (pc < 4096) {
            *how = ZWI_UNTIL_END;
            return (int)n;
        }
        if (pc == stop && n > 0) {
            sps[n] = sp;
            rbps[n] = rbp;
            *how = ZWI_UNTIL_STOP;
            return (int)n;
        }
        if (n == max) {
            *how = ZWI_UNTIL_LIMIT;
            return (int)n;
        }
        frames[n] = pc;
        sps[n] = sp;
        rbps[n] = rbp;
        n++;
        unsigned kind = step(u, &pc, &sp, &rbp, &slot, &flags, stack_hi);
        if (kind == KIND_END) {
            *how = ZWI_UNTIL_END;
            return (int)n;
        }
        if (kind != KIND_RULE)
            return -1;
    }
}

void
zwi_preload_unwind_forget_cfa(zwi_unwinder *u)
{
    for (size_t i = 0; i < ZWI_UNWIND_CFA_FRONT; i++)
        atomic_store_explicit(&u->cfa_front[i], 0, memory_order_relaxed);
    for (size_t i = 0; i < ZWI_UNWIND_CFA_CACHE; i++)
        atomic_store_explicit(&u->cfa[i], 0, memory_order_relaxed);
    zwi_preload_unwind_forget_screened(); /* before a walk could read a rule again */
    /* each thread drops its last walk at its next (walks_for) */
    atomic_fetch_add_explicit(&u->unloads, 1, memory_order_release);
}

/* ---- the incremental walk: each thread's last walk, reused where the stack still holds it ----
 *
 * A walk is a sequence of states (pc, sp, rbp): a return address, and the stack pointer and rbp of
 * the frame it returns into. Each state follows from the one before by pc's rule (a pure function
 * of the code) and by reading the stack: at sp - 8 (the next pc) and, for a rule that reloads
 * rbp, at sp - 8 * slot. So once a new walk reaches a state equal to an entry of the last walk (the
 * same sp and pc, and the same rbp where a later rule reads it), each entry after it is the new
 * walk's own as long as the stack still holds, where that entry was read, the values it was read as
 * (the return address; the reloaded rbp if a later rule reads it): one compare per frame instead of
 * a rule. The compares read the addresses a fresh walk would read, in the same order, so they are
 * as safe as the walk. Nothing is patched: a frame left by a return, longjmp, an exception or a
 * context switch shows as a value that differs, and the walk goes on fresh from the last entry
 * that held. The entries are kept newest first; a walk with more or fewer new frames than the
 * last one moves the older entries (a memmove, not a walk). */

/* One state of a walk. */
typedef struct walk_entry {
    uintptr_t sp, pc, rbp;
    uint8_t flags; /* ENTRY_* */
    uint8_t slot;  /* ENTRY_RELOADED: rbp was read at sp - 8 * slot */
} walk_entry;

/* A thread's last walk, and room for the new frames of the next. Mapped on the thread's first
 * walk, unmapped at its exit; only that thread reads or writes it (a hook makes one walk at a
 * time per thread: its guard is up). Entries e[0, n): sp strictly increasing; an entry whose
 * flags have ENTRY_END or ENTRY_LOW is the last; flags other than LIVE and CHECK are the rule's.
 * `e` slides in a room of ROOM_CAPS * cap entries: a walk with more or fewer new frames than the
 * last one moves it, not the older entries (place_fresh), which move only when e reaches an end
 * of the room (once per cap entries slid at most). */
typedef struct walk_cache {
    size_t bytes;       /* mapped, this header included */
    unsigned unloads;   /* zwi_unwinder.unloads when the last walk was made */
    unsigned cap;       /* entries of `e` and of `fresh`: the largest walk plus its end */
    unsigned n;         /* entries of the last walk; 0 after a walk that failed */
    unsigned reused;    /* frames the last walk took from the one before (for tests and check) */
    uintptr_t stack_hi; /* the stack bound the last walk was made under */
    walk_entry *e;      /* the last walk, in room[0, ROOM_CAPS * cap) */
    walk_entry *room;
    walk_entry *fresh; /* the new frames of this one, until they are placed */
} walk_cache;

#define ROOM_CAPS 3 /* the room is this many times the largest walk */

static _Thread_local walk_cache *my_walks __attribute__((tls_model("initial-exec")));
static pthread_key_t walks_key; /* its destructor unmaps a thread's walk_cache */
static bool walks_key_ok;
static pthread_once_t walks_once = PTHREAD_ONCE_INIT;

static void
walks_release(void *p)
{
    walk_cache *c = p;
    if (my_walks == c)
        my_walks = NULL;
    syscall(SYS_munmap, c, c->bytes); /* the system call: the preload library's munmap traces */
}

static void
walks_make_key(void)
{
    walks_key_ok = pthread_key_create(&walks_key, walks_release) == 0;
}

/* This thread's walk_cache for walks of up to `max` frames, made or grown now; NULL if it cannot
 * be mapped (then walks are fresh). */
static walk_cache *
walks_for(zwi_unwinder *u, unsigned max, uintptr_t stack_hi)
{
    walk_cache *c = my_walks;
    unsigned unloads = atomic_load_explicit(&u->unloads, memory_order_relaxed);
    if (ZW_LIKELY(c != NULL && c->cap > max)) {
        if (ZW_UNLIKELY(c->stack_hi != stack_hi || c->unloads != unloads)) {
            c->n = 0; /* another stack, or code unloaded since: nothing of the last walk holds */
            c->stack_hi = stack_hi;
            c->unloads = unloads;
        }
        return c;
    }
    unsigned cap = max + 1;
    size_t bytes =
        (sizeof(walk_cache) + (ROOM_CAPS + 1) * (size_t)cap * sizeof(walk_entry) + 4095) &
        ~(size_t)4095;
    /* the system calls: the preload library's mmap and munmap trace the program's mappings */
    void *m = (void *)syscall(SYS_mmap, NULL, bytes, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (c != NULL)
        syscall(SYS_munmap, c, c->bytes);
    c = m;
    c->bytes = bytes;
    c->cap = cap;
    c->stack_hi = stack_hi;
    c->unloads = unloads;
    c->room = (walk_entry *)(c + 1);
    c->e = c->room + cap; /* the middle: room to slide either way */
    c->fresh = c->room + ROOM_CAPS * cap;
    pthread_once(&walks_once, walks_make_key);
    if (walks_key_ok)
        pthread_setspecific(walks_key, c);
    my_walks = c;
    return c;
}

/* Sets ENTRY_LIVE and ENTRY_CHECK on entries [0, n) of `e`, from the end: an entry's rbp is live
 * if its rule reads rbp, or keeps it and the next entry's is live. `live` is the next entry's
 * (for a walk cut at its limit, true: whatever follows may read it). */
static void
mark_live(walk_entry *e, unsigned n, bool live)
{
    for (unsigned k = n; k-- > 0;) {
        unsigned f = e[k].flags & ~(ENTRY_LIVE | ENTRY_CHECK);
        if (f & (ENTRY_END | ENTRY_LOW))
            live = false;
        else
            live = (f & ENTRY_READS_RBP) || (!(f & ENTRY_LOADS_RBP) && live);
        if (live)
            f |= ENTRY_LIVE | (f & ENTRY_RELOADED ? ENTRY_CHECK : 0);
        e[k].flags = (uint8_t)f;
    }
}

/* Places `nf` fresh entries at `base`, before the last walk's entries [j, c->n), which move: the
 * entries are then [0, the return value), at most c->cap (the oldest go: a later walk that needs
 * them walks them). c->e may move (base 0: the start of the entries slides, the older ones stay
 * where they are in memory). */
static unsigned
place_fresh(walk_cache *c, unsigned base, unsigned nf, unsigned j)
{
    unsigned to = base + nf;
    unsigned keep = c->n - j;
    if (to + keep > c->cap)
        keep = c->cap - to;
    if (base == 0 && to != j) {
        size_t head = (size_t)(c->e - c->room); /* slide e by j - nf entries */
        walk_entry *e;
        if (head + j >= nf && head + j - nf + c->cap <= ROOM_CAPS * (size_t)c->cap) {
            e = c->room + head + j - nf;
        } else { /* an end of the room: the entries kept go back to the middle */
            e = c->room + c->cap;
            if (keep > 0)
                memmove(e + nf, c->e + j, keep * sizeof(walk_entry));
        }
        c->e = e;
    } else if (to != j && keep > 0) {
        memmove(c->e + to, c->e + j, keep * sizeof(walk_entry));
    }
    if (nf > 0)
        memcpy(c->e + base, c->fresh, nf * sizeof(walk_entry));
    return to + keep;
}

unsigned
zwi_preload_unwind_reused(void)
{
    return my_walks != NULL ? my_walks->reused : 0;
}

int
zwi_preload_unwind_incremental(zwi_unwinder *u, uintptr_t *frames, unsigned max, uintptr_t pc,
                               uintptr_t sp, uintptr_t rbp, uintptr_t stack_hi)
{
    walk_cache *c = walks_for(u, max, stack_hi);
    if (ZW_UNLIKELY(c == NULL))
        return zwi_preload_unwind_cfa(u, frames, max, pc, sp, rbp, stack_hi);
    walk_entry *e = c->e, *f = c->fresh;
    unsigned base = 0; /* entries [0, base) are this walk's; from base on, the last walk's */
    unsigned j = 0;    /* the first of the last walk's entries whose sp is not below sp */
    unsigned n = 0;    /* frames */
    unsigned from = 0; /* the entry the last reuse started at */
    unsigned nf;       /* fresh entries, in c->fresh */
    unsigned slot = 0; /* rbp was read at sp - 8 * slot; 0: kept */
    unsigned reused = 0;
    bool ended = false;
    for (;;) {
        /* 1. frames pushed since the last walk: fresh, until a state is one of its entries */
        nf = 0;
        for (;;) {
            while (j < c->n && e[j].sp < sp)
                j++;
            if (j < c->n && e[j].sp == sp && e[j].pc == pc &&
                (!(e[j].flags & ENTRY_LIVE) || e[j].rbp == rbp))
                break;
            uint8_t fl = slot != 0 ? ENTRY_RELOADED : 0;
            f[nf] = (walk_entry){sp, pc, rbp, fl, (uint8_t)slot};
            if (pc < 4096) {
                f[nf++].flags = fl | ENTRY_LOW;
                ended = true;
                goto all_fresh;
            }
            if (n == max)
                goto all_fresh;
            frames[n++] = pc;
            uint8_t rl = 0;
            unsigned kind = step(u, &pc, &sp, &rbp, &slot, &rl, stack_hi);
            if (kind == KIND_END) {
                f[nf++].flags = fl | ENTRY_END;
                ended = true;
                goto all_fresh;
            }
            if (kind != KIND_RULE) {
                c->n = 0;
                c->reused = 0;
                return -1;
            }
            f[nf++].flags = fl | rl;
        }
        /* 2. the last walk's entry j is this state: it and the entries after it are placed after
         * the fresh ones, and followed while the stack holds what each was read from */
        c->n = place_fresh(c, base, nf, j);
        e = c->e;
        unsigned k = base + nf;
        from = k;
        e[k].rbp = rbp; /* this walk's own: equal to the last one's where it matters */
        e[k].slot = (uint8_t)slot;
        unsigned fk =
            (e[k].flags & ~(ENTRY_RELOADED | ENTRY_CHECK)) | (slot != 0 ? ENTRY_RELOADED : 0);
        if ((fk & (ENTRY_RELOADED | ENTRY_LIVE)) == (ENTRY_RELOADED | ENTRY_LIVE))
            fk |= ENTRY_CHECK;
        e[k].flags = (uint8_t)fk;
        uintptr_t p = e[k].pc;
        if (p < 4096 || n == max)
            goto reuse_ends;
        frames[n++] = p;
        if ((e[k].flags & ENTRY_END) || n == max)
            goto reuse_ends;
        /* the entries after k: compared, then recorded; those before `lim` all fit in frames
         * (only the last entry can end the walk: ENTRY_END or ENTRY_LOW) */
        unsigned lim = c->n - (k + 1) <= max - n ? c->n : k + 1 + (max - n);
        unsigned x = k + 1;
        for (; x < lim; x++) {
            const uintptr_t *top = (const uintptr_t *)e[x].sp;
            if (top[-1] != e[x].pc ||
                ((e[x].flags & ENTRY_CHECK) && top[-(int)e[x].slot] != e[x].rbp))
                break; /* changed since */
            frames[n++] = e[x].pc;
        }
        reused += x - (k + 1);
        if (x == lim && x > k + 1 && (e[x - 1].flags & ENTRY_LOW)) {
            n--; /* the last walk ended there on a return address that is no frame */
            reused--;
            goto reuse_ends;
        }
        if (x == lim && (lim < c->n || (e[x - 1].flags & ENTRY_END) || n == max))
            goto reuse_ends;
        k = x; /* changed, or beyond the last walk's end (it was cut at its limit) */
        /* 3. on from entry k - 1, the last that held: its rbp as the stack has it now (an
         * entry whose rbp no later rule read was not compared), then one fresh step */
        base = k;
        j = k;
        unsigned m = k - 1;
        rbp = e[from].rbp;
        for (unsigned x = from + 1; x <= m; x++) {
            if (e[x].flags & ENTRY_RELOADED)
                rbp = ((const uintptr_t *)e[x].sp)[-(int)e[x].slot];
            e[x].rbp = rbp;
        }
        pc = e[m].pc;
        sp = e[m].sp;
        uint8_t rl = 0;
        unsigned kind = step(u, &pc, &sp, &rbp, &slot, &rl, stack_hi);
        e[m].flags = (uint8_t)((e[m].flags & ENTRY_RELOADED) | rl);
        if (kind == KIND_END) {
            e[m].flags |= ENTRY_END;
            c->n = m + 1;
            mark_live(e, c->n, false);
            c->reused = reused;
            return (int)n;
        }
        if (kind != KIND_RULE) {
            c->n = 0;
            c->reused = 0;
            return -1;
        }
    }
reuse_ends:
    /* entries from `from` on are the last walk's, with their marks, still right: the rest need
     * theirs anew */
    mark_live(e, from, (e[from].flags & ENTRY_LIVE) != 0);
    c->reused = reused;
    return (int)n;
all_fresh:
    /* the walk ends in fresh entries, after entries [0, base): no entry of the last walk stays */
    c->n = place_fresh(c, base, nf, c->n);
    mark_live(c->e, c->n, !ended);
    c->reused = reused;
    return (int)n;
}

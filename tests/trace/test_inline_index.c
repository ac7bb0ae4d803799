/* tests/trace/test_inline_index.c - the symboliser's index of a unit's inlined calls
 * (src/trace/symbols.c, code_of): every address of two functions full of nested inlined calls
 * (inline_deep.c, -O2 -g) gives the chain of frames libdw's own scope search gives
 * (dwarf_getscopes, then dwarf_getscopes_die from the innermost concrete scope, as
 * eu-addr2line -i): as many frames, the same inlined flags, the same lines (the innermost from
 * the line table, the others at the call sites). The oracle below asks libdw directly. */
#include <criterion/criterion.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "trace_internal.h"

unsigned zwt_deep_a(unsigned x);
unsigned zwt_deep_b(unsigned x);

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

typedef struct oracle_frame {
    unsigned line;
    bool inlined;
} oracle_frame;

/* The frames of code address pc by libdw's scope search: how many, into out[0 .. max). */
static size_t
oracle(Dwfl *dwfl, uintptr_t pc, oracle_frame *out, size_t max)
{
    Dwfl_Module *mod = dwfl_addrmodule(dwfl, pc);
    cr_assert_not_null(mod);
    int lineno = 0;
    Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
    if (line != NULL)
        dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
    Dwarf_Addr bias;
    Dwarf_Die *cudie = dwfl_module_addrdie(mod, pc, &bias);
    cr_assert_not_null(cudie);
    Dwarf_Die *scopes = NULL;
    int n = dwarf_getscopes(cudie, pc - bias, &scopes);
    if (n > 0) {
        Dwarf_Die inner;
        Dwarf_Addr dwbias;
        Dwarf *dw = dwfl_module_getdwarf(mod, &dwbias);
        bool ok = dw != NULL && dwarf_offdie(dw, dwarf_dieoffset(&scopes[0]), &inner) != NULL;
        free(scopes);
        scopes = NULL;
        n = ok ? dwarf_getscopes_die(&inner, &scopes) : 0;
    }
    size_t k = 0;
    unsigned cur = lineno > 0 ? (unsigned)lineno : 0;
    for (int i = 0; i < n && k < max; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
            continue;
        out[k].line = cur;
        out[k++].inlined = tag == DW_TAG_inlined_subroutine;
        if (tag == DW_TAG_subprogram)
            break;
        Dwarf_Attribute attr;
        Dwarf_Word call = 0;
        cur = dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &attr), &call) == 0
                  ? (unsigned)call
                  : 0;
    }
    free(scopes);
    if (k > 0 && out[k - 1].inlined) /* no subprogram: the outermost is the one the code is in */
        out[k - 1].inlined = false;
    return k;
}

/* Compares every address of function f (its ELF symbol's size) with the oracle; the number of
 * addresses whose chain has inlined frames. */
static size_t
check_function(zwi_symbolizer *s, Dwfl *dwfl, void *f)
{
    uintptr_t lo = (uintptr_t)f;
    Dwfl_Module *mod = dwfl_addrmodule(dwfl, lo);
    cr_assert_not_null(mod);
    GElf_Sym sym;
    GElf_Off off = 1;
    cr_assert_not_null(dwfl_module_addrinfo(mod, lo, &off, &sym, NULL, NULL, NULL));
    cr_assert(off == 0 && sym.st_size > 0, "the function's symbol: offset %lu, size %lu",
              (unsigned long)off, (unsigned long)sym.st_size);
    size_t inlined = 0;
    for (uintptr_t pc = lo; pc < lo + sym.st_size; pc++) {
        oracle_frame want[64];
        size_t nwant = oracle(dwfl, pc, want, 64);
        size_t ngot = 0;
        const zwi_sym *got = zwi_symbolize(s, pc + 1, &ngot); /* a return address: pc + 1 */
        cr_assert_not_null(got);
        if (nwant == 0) { /* no scope: the symbol table's frame alone */
            cr_assert_eq(ngot, 1, "pc %#lx: %zu frames, libdw none", (unsigned long)pc, ngot);
            continue;
        }
        cr_assert_eq(ngot, nwant, "pc %#lx (+%#lx): %zu frames, libdw %zu", (unsigned long)pc,
                     (unsigned long)(pc - lo), ngot, nwant);
        for (size_t i = 0; i < nwant; i++) {
            cr_assert_eq(got[i].line, want[i].line, "pc %#lx frame %zu: line %u, libdw %u",
                         (unsigned long)pc, i, got[i].line, want[i].line);
            cr_assert_eq(got[i].inlined, want[i].inlined, "pc %#lx frame %zu: inlined %d",
                         (unsigned long)pc, i, got[i].inlined);
        }
        inlined += nwant > 1;
    }
    return inlined;
}

Test(trace_inline_index, every_address_gives_libdws_chain)
{
    volatile unsigned sink = zwt_deep_a(7) + zwt_deep_b(13); /* they run, as any code traced */
    (void)sink;
    Dwfl *dwfl = dwfl_begin(&callbacks);
    cr_assert_not_null(dwfl);
    dwfl_report_begin(dwfl);
    cr_assert_eq(dwfl_linux_proc_report(dwfl, getpid()), 0);
    dwfl_report_end(dwfl, NULL, NULL);
    zwi_symbolizer *s = zwi_symbolizer_new();
    cr_assert_not_null(s);
    size_t a = check_function(s, dwfl, (void *)zwt_deep_a);
    size_t b = check_function(s, dwfl, (void *)zwt_deep_b);
    /* the unit did inline: most addresses are in inlined calls, some three deep */
    cr_assert_gt(a, 10, "zwt_deep_a: %zu addresses in inlined calls", a);
    cr_assert_gt(b, 10, "zwt_deep_b: %zu addresses in inlined calls", b);
    zwi_symbolizer_free(s);
    dwfl_end(dwfl);
}

/* tests/trace/test_symtab.c - the symboliser's function names from ELF symbol tables (sorted
 * arrays searched by bisection) against elfutils' own lookup, dwfl_module_addrname, at thousands
 * of addresses through the C library's and this program's code: the same name everywhere, or the
 * same absence of one. */
#include <criterion/criterion.h>
#include <elfutils/libdwfl.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#include "trace_internal.h"

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

typedef struct text {
    uintptr_t lo, hi;
} text;

typedef struct texts {
    text t[8];
    unsigned n;
    const char *want; /* path part of the module, "" for the executable */
} texts;

static int
find_text(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    texts *ts = arg;
    bool match = ts->want[0] == '\0' ? info->dlpi_name[0] == '\0'
                                     : strstr(info->dlpi_name, ts->want) != NULL;
    for (unsigned i = 0; match && i < info->dlpi_phnum && ts->n < 8; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X))
            ts->t[ts->n++] =
                (text){info->dlpi_addr + ph->p_vaddr, info->dlpi_addr + ph->p_vaddr + ph->p_memsz};
    }
    return 0;
}

/* Every `step`-th address of the code of the module named `want`: the symboliser's name equals
 * libdwfl's. Returns how many addresses had a name. */
static unsigned
compare_module(const char *want, uintptr_t step)
{
    texts ts = {.want = want};
    dl_iterate_phdr(find_text, &ts);
    cr_assert_gt(ts.n, 0, "no code found for module %s", want);
    Dwfl *dwfl = dwfl_begin(&callbacks);
    cr_assert_not_null(dwfl);
    dwfl_report_begin(dwfl);
    cr_assert_eq(dwfl_linux_proc_report(dwfl, getpid()), 0);
    dwfl_report_end(dwfl, NULL, NULL);
    zwi_symbolizer *s = zwi_symbolizer_new();
    cr_assert_not_null(s);
    unsigned named = 0, total = 0;
    for (unsigned k = 0; k < ts.n; k++) {
        for (uintptr_t pc = ts.t[k].lo; pc < ts.t[k].hi; pc += step) {
            Dwfl_Module *mod = dwfl_addrmodule(dwfl, pc);
            const char *ref = mod != NULL ? dwfl_module_addrname(mod, pc) : NULL;
            const char *got = zwi_symbolizer_function(s, pc);
            total++;
            if (ref == NULL) {
                cr_assert_null(got, "%s+%#lx: libdwfl has no name, we say %s", want,
                               (unsigned long)(pc - ts.t[k].lo), got);
                continue;
            }
            cr_assert_not_null(got, "%s+%#lx: libdwfl says %s, we have none", want,
                               (unsigned long)(pc - ts.t[k].lo), ref);
            cr_assert_str_eq(got, ref, "%s+%#lx: libdwfl says %s, we say %s", want,
                             (unsigned long)(pc - ts.t[k].lo), ref, got);
            named++;
        }
    }
    zwi_symbolizer_free(s);
    dwfl_end(dwfl);
    cr_assert_gt(total, 100);
    return named;
}

Test(trace_symtab, c_library_names_equal_libdwfl)
{
    cr_assert_gt(compare_module("/libc.so", 61), 1000);
}

Test(trace_symtab, program_names_equal_libdwfl)
{
    cr_assert_gt(compare_module("", 7), 100);
}

Test(trace_symtab, every_address_of_a_function_is_named_by_it)
{
    zwi_symbolizer *s = zwi_symbolizer_new();
    cr_assert_not_null(s);
    uintptr_t f = (uintptr_t)&compare_module;
    cr_assert_str_eq(zwi_symbolizer_function(s, f), "compare_module");
    cr_assert_str_eq(zwi_symbolizer_function(s, f + 5), "compare_module");
    cr_assert_null(zwi_symbolizer_function(s, 4096), "an address in no module");
    zwi_symbolizer_free(s);
}

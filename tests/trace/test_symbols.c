/* tests/trace/test_symbols.c - symbolisation: a function of a shared library loaded with dlopen
 * after tracing started (its module, file, line and name), the same library stripped of debug
 * information (module+offset, never a crash), and an always-inlined function in an -O2 unit
 * (inlined.c): a frame for the inlined function at the allocation's line, then one for the
 * function it was inlined into, at the call's line. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <zerowaste/zerowaste.h>

extern const unsigned zwt_inlined_alloc_line;
extern const unsigned zwt_inlined_call_line;
void *zwt_inlined_outer(size_t n);

typedef void *(*alloc_fn)(size_t);
typedef void *(*shlib_alloc_fn)(alloc_fn, size_t);

static bool
ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s);
    size_t k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

static void
start(void)
{
    zw_error err;
    cr_assert_eq(zw_trace_start(6, &err), 0, "%s", err.msg);
}

Test(trace_symbols, function_of_a_shared_library)
{
    start();
    void *lib = dlopen(ZWT_SHLIB, RTLD_NOW);
    cr_assert_not_null(lib, "%s", dlerror());
    shlib_alloc_fn fn = (shlib_alloc_fn)dlsym(lib, "zwt_shlib_alloc");
    unsigned (*line)(void) = (unsigned (*)(void))dlsym(lib, "zwt_shlib_line");
    cr_assert(fn != NULL && line != NULL);
    void *p = fn(zw_mem_malloc, 50);
    zw_traceback *tb = zw_trace_get_traceback(p);
    cr_assert_not_null(tb);
    size_t n = zw_traceback_len(tb);
    cr_assert_geq(n, 2);
    const zw_frame *f = zw_traceback_frame(tb, n - 1);
    cr_assert(ends_with(f->filename, "tests/trace/shlib.c"), "file %s", f->filename);
    cr_assert_eq(f->lineno, line());
    cr_assert_str_eq(f->function, "zwt_shlib_alloc");
    cr_assert(f->module != NULL && ends_with(f->module, "/libzwt_shlib.so"), "module %s",
              f->module ? f->module : "(none)");
    cr_assert_not(f->inlined);
    const zw_frame *caller = zw_traceback_frame(tb, n - 2);
    cr_assert_str_eq(caller->filename, __FILE__);
    cr_assert_str_eq(caller->function, "trace_symbols_function_of_a_shared_library_impl");
    zw_traceback_free(tb);
    zw_mem_free(p);
    zw_trace_stop();
    dlclose(lib);
}

Test(trace_symbols, frame_without_debug_information_is_module_plus_offset)
{
    start();
    void *lib = dlopen(ZWT_SHLIB_NODEBUG, RTLD_NOW);
    cr_assert_not_null(lib, "%s", dlerror());
    shlib_alloc_fn fn = (shlib_alloc_fn)dlsym(lib, "zwt_shlib_alloc");
    cr_assert_not_null(fn);
    void *p = fn(zw_mem_malloc, 70);
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    cr_assert_not_null(snap, "%s", err.msg);
    cr_assert_eq(zw_snapshot_len(snap), 1);
    const zw_traceback *tb = zw_snapshot_trace(snap, 0).traceback;
    const zw_frame *f = zw_traceback_frame(tb, zw_traceback_len(tb) - 1);
    cr_assert_eq(f->lineno, 0);
    cr_assert(f->module != NULL && ends_with(f->module, "/libzwt_shlib_nodebug.so"));
    cr_assert_str_eq(f->filename, f->module);
    cr_assert_str_eq(f->function, "zwt_shlib_alloc", "the dynamic symbol table names it");
    /* the offset lies inside the library's zwt_shlib_alloc */
    Dl_info info;
    cr_assert(dladdr((void *)fn, &info) != 0);
    uintptr_t start_off = (uintptr_t)fn - (uintptr_t)info.dli_fbase;
    cr_assert(f->offset > start_off && f->offset < start_off + 256, "offset 0x%llx, fn at 0x%llx",
              (unsigned long long)f->offset, (unsigned long long)start_off);
    char text[4096];
    char want[4096];
    zw_frame_str(f, text, sizeof(text));
    snprintf(want, sizeof(want), "%s+0x%llx", f->module, (unsigned long long)f->offset);
    cr_assert_str_eq(text, want);
    zw_stat_list *l = zw_snapshot_statistics(snap, ZW_GROUP_LINENO, false, &err);
    zw_statistic_str(zw_stat_list_get(l, 0), false, text, sizeof(text));
    cr_assert(strstr(text, "_nodebug.so+0x") != NULL, "%s", text);
    zw_stat_list_free(l);
    zw_snapshot_free(snap);
    zw_mem_free(p);
    zw_trace_stop();
    dlclose(lib);
}

Test(trace_symbols, inlined_function_has_a_frame_of_its_own)
{
    start();
    void *p = zwt_inlined_outer(10);
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    cr_assert_eq(zw_snapshot_len(snap), 1);
    zw_trace_info t = zw_snapshot_trace(snap, 0);
    cr_assert_eq(t.size, 11);
    size_t n = zw_traceback_len(t.traceback);
    cr_assert_geq(n, 3);
    const zw_frame *inner = zw_traceback_frame(t.traceback, n - 1);
    const zw_frame *outer = zw_traceback_frame(t.traceback, n - 2);
    const zw_frame *test = zw_traceback_frame(t.traceback, n - 3);
    cr_assert(ends_with(inner->filename, "tests/trace/inlined.c"), "%s", inner->filename);
    cr_assert_str_eq(inner->function, "inner_alloc");
    cr_assert_eq(inner->lineno, zwt_inlined_alloc_line);
    cr_assert(inner->inlined);
    cr_assert(ends_with(outer->filename, "tests/trace/inlined.c"));
    cr_assert_str_eq(outer->function, "zwt_inlined_outer");
    cr_assert_eq(outer->lineno, zwt_inlined_call_line);
    cr_assert_not(outer->inlined);
    cr_assert_eq(inner->offset, outer->offset, "one return address, two frames");
    cr_assert_str_eq(test->filename, __FILE__);
    cr_assert_eq(zw_traceback_total_nframe(t.traceback) + 1 >= n, true);
    /* the frames survive a trip through a file */
    char path[] = "/tmp/zwt_inlined_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    close(fd);
    cr_assert_eq(zw_snapshot_dump(snap, path, &err), 0, "%s", err.msg);
    zw_snapshot *back = zw_snapshot_load(path, &err);
    unlink(path);
    cr_assert_not_null(back, "%s", err.msg);
    const zw_traceback *tb2 = zw_snapshot_trace(back, 0).traceback;
    const zw_frame *inner2 = zw_traceback_frame(tb2, n - 1);
    cr_assert_str_eq(inner2->function, "inner_alloc");
    cr_assert(inner2->inlined);
    cr_assert_eq(inner2->lineno, zwt_inlined_alloc_line);
    cr_assert_str_eq(inner2->module, inner->module);
    zw_snapshot_free(back);
    zw_snapshot_free(snap);
    zw_mem_free(p);
    zw_trace_stop();
}

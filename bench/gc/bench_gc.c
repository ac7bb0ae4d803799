/* bench/gc/bench_gc.c - the cycle collector's benchmark: zerowaste's collector against CPython
 * 3.11's (libpython3.11, embedded in the same binary) on identical object graphs built through
 * each side's C API. One workload and one implementation per process; bench/gc/run starts the
 * processes (5 runs each, the implementations' order alternating), takes medians and prints the
 * ratio table with the targets. bench/gc/README.md says what each figure means.
 *
 * Usage: bench_gc <workload> <zw|cpython> [--quick]   one result line on stdout
 *        bench_gc --list                             the workload names (py-*: CPython only)
 *
 * What is timed, on both sides alike: a collection is the interval between the collector's
 * "start" and "stop" callbacks (zw_gc_add_callback; a C function appended to CPython's
 * gc.callbacks), read with CLOCK_THREAD_CPUTIME_ID (CPU time of the thread, page faults
 * included, a neighbour's time slices not), minus the clock's own cost (calibrated at start,
 * printed as clock_ns). Builds (workload 4) are timed with the same clock around the loop. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <zerowaste/gc.h>
#include <zerowaste/obj.h>

/* ---- parameters and results ---- */

typedef struct params {
    long n_objects; /* long-lived / examined objects: 1M */
    long n_short;   /* short-lived tuples of the steady workload: 10M */
    long batch;     /* tuples per batch in the steady workload */
} params;

typedef struct result {
    double ms;           /* the headline: a collection (1, 2), total GC time (3), the build (4) */
    long found;          /* unreachable objects found (collected + uncollectable) */
    double gc_ms;        /* total time in collections */
    double gen_ms[3];    /* ... in collections of each generation */
    double max_pause_us; /* the longest collection */
    unsigned long collections, gen[3];
    unsigned long collected;
    double young_mean_us, young_p99_us, young_max_us;
    int64_t loop_ns;     /* steady / build: the whole loop */
    long minflt;         /* minor page faults in the timed part (this VM: 2-13 us each) */
    double ns_per_obj;
} result;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_gc: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- clock and collection statistics, shared by both sides ---- */

static int64_t
cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long
minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_minflt;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The cost of one clock read as seen between two reads: the median of back-to-back pairs. */
static int64_t clock_cost;

static void
calibrate_clock(void)
{
    enum { N = 1001 };
    static int64_t d[N];
    for (int i = 0; i < N; i++) {
        int64_t a = cpu_ns();
        d[i] = cpu_ns() - a;
    }
    qsort(d, N, sizeof d[0], cmp_i64);
    clock_cost = d[N / 2];
}

#define MAX_SAMPLES (1 << 16)
static struct {
    int64_t t0;
    unsigned long n[3];
    int64_t gen_total[3];
    int64_t total, max;
    unsigned long collected;
    size_t nyoung;
    int64_t young[MAX_SAMPLES]; /* gen-0 pauses, ns */
} st;

static void
stats_reset(void)
{
    memset(&st, 0, offsetof(__typeof__(st), young));
}

static inline void
stats_start(void)
{
    st.t0 = cpu_ns(); /* the last thing the start callback does */
}

/* The first thing the stop callback does: the collection's time, ns. */
static inline int64_t
stats_stop(void)
{
    int64_t d = cpu_ns() - st.t0 - clock_cost;
    return d < 0 ? 0 : d;
}

static void
stats_record(long generation, int64_t d, unsigned long found)
{
    if (generation < 0 || generation > 2)
        die("a collection of generation %ld", generation);
    st.n[generation]++;
    st.gen_total[generation] += d;
    st.total += d;
    if (d > st.max)
        st.max = d;
    st.collected += found;
    if (generation == 0 && st.nyoung < MAX_SAMPLES)
        st.young[st.nyoung++] = d;
}

static void
stats_result(result *r)
{
    r->collections = st.n[0] + st.n[1] + st.n[2];
    memcpy(r->gen, st.n, sizeof r->gen);
    r->gc_ms = (double)st.total / 1e6;
    for (int g = 0; g < 3; g++)
        r->gen_ms[g] = (double)st.gen_total[g] / 1e6;
    r->max_pause_us = (double)st.max / 1e3;
    r->collected = st.collected;
    r->young_mean_us = r->young_p99_us = r->young_max_us = 0;
    if (st.nyoung > 0) {
        int64_t sum = 0;
        for (size_t i = 0; i < st.nyoung; i++)
            sum += st.young[i];
        qsort(st.young, st.nyoung, sizeof st.young[0], cmp_i64);
        r->young_mean_us = (double)sum / (double)st.nyoung / 1e3;
        r->young_p99_us = (double)st.young[(st.nyoung * 99) / 100] / 1e3;
        r->young_max_us = (double)st.young[st.nyoung - 1] / 1e3;
    }
}

/* ---- zerowaste ---- */

static zw_rt *rt;

static void
zw_callback(zw_rt *r, const char *phase, const zw_gc_info *info, void *arg)
{
    if (phase[2] == 'a') /* "start" */
        stats_start();
    else
        stats_record(info->generation, stats_stop(), info->collected + info->uncollectable);
}

static void
zw_setup(void)
{
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .hash_seed = 0};
    rt = zw_rt_new(&cfg);
    if (rt == NULL)
        die("zw_rt_new failed");
    zw_gc_freeze(rt); /* as CPython's side: whatever the runtime tracks at start is set aside */
    if (zw_gc_add_callback(rt, zw_callback, NULL) != 0)
        die("zw_gc_add_callback: %s", zw_errmsg(rt));
}

static inline zw_obj *
zw_checked(zw_obj *o)
{
    if (__builtin_expect(o == NULL, 0))
        die("zerowaste: %s", zw_errmsg(rt));
    return o;
}

static inline void
zw_root_put(zw_obj *root, zw_obj *x)
{
    if (__builtin_expect(zw_list_append(root, x) != 0, 0))
        die("zerowaste: %s", zw_errmsg(rt));
    zw_decref(x);
}

static inline zw_obj *
zw_tuple_ii(long i)
{
    zw_obj *x = zw_checked(zw_int_from_i64(rt, i));
    zw_obj *t = zw_checked(zw_tuple_new(rt, 2));
    zw_tuple_init_item(t, 0, zw_newref(x));
    zw_tuple_init_item(t, 1, x);
    return t;
}

#define W(name)          zw_##name
#define OBJ              zw_obj *
#define PAIR_NEW()       zw_checked(zw_list_repeat(rt, zw_none(rt), 2))
#define SET0_SELF(l)     zw_list_set((l), 0, (l))
#define ROOT_NEW(n)      zw_checked(zw_list_new(rt, (size_t)(n)))
#define ROOT_PUT(r, i, x) zw_root_put((r), (x))
#define GROW_NEW()       zw_checked(zw_list_new(rt, 0))
#define GROW_APPEND(l, x) zw_root_put((l), (x))
#define TUPLE_II(i)      zw_tuple_ii(i)
#define DECREF(o)        zw_decref(o)
#define COLLECT_FULL()   zw_gc_collect(rt, 2)
#define GC_ON()          zw_gc_enable(rt)
#define GC_OFF()         zw_gc_disable(rt)
#include "bench_gc_workloads.h"
#undef W
#undef OBJ
#undef PAIR_NEW
#undef SET0_SELF
#undef ROOT_NEW
#undef ROOT_PUT
#undef GROW_NEW
#undef GROW_APPEND
#undef TUPLE_II
#undef DECREF
#undef COLLECT_FULL
#undef GC_ON
#undef GC_OFF

/* ---- CPython ---- */

static PyObject *py_collect; /* gc.collect: runs even while automatic collection is off */

static PyObject *
py_callback(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        die("gc callback called with %zd arguments", nargs);
    if (PyUnicode_CompareWithASCIIString(args[0], "start") == 0) {
        stats_start();
    } else {
        int64_t d = stats_stop();
        /* the figures are read after the clock */
        PyObject *g = PyDict_GetItemString(args[1], "generation");
        PyObject *c = PyDict_GetItemString(args[1], "collected");
        PyObject *u = PyDict_GetItemString(args[1], "uncollectable");
        if (g == NULL || c == NULL || u == NULL)
            die("gc callback: info without generation, collected or uncollectable");
        stats_record(PyLong_AsLong(g), d, (unsigned long)(PyLong_AsLong(c) + PyLong_AsLong(u)));
    }
    Py_RETURN_NONE;
}

static PyMethodDef py_callback_def = {"bench_gc_callback", (PyCFunction)(void (*)(void))py_callback,
                                      METH_FASTCALL, NULL};

static void
py_check(int failed, const char *what)
{
    if (failed) {
        PyErr_Print();
        die("CPython: %s failed", what);
    }
}

static void
py_setup(void)
{
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.install_signal_handlers = 0;
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status))
        die("Py_InitializeFromConfig: %s", status.err_msg ? status.err_msg : "?");
    PyObject *gc = PyImport_ImportModule("gc");
    py_check(gc == NULL, "import gc");
    py_collect = PyObject_GetAttrString(gc, "collect");
    py_check(py_collect == NULL, "gc.collect");
    /* the interpreter's own objects (modules, types, ~10^4 of them) are set aside: both sides
     * then examine only the benchmark's graph */
    PyObject *r = PyObject_CallMethod(gc, "collect", NULL);
    py_check(r == NULL, "gc.collect()");
    Py_DECREF(r);
    r = PyObject_CallMethod(gc, "freeze", NULL);
    py_check(r == NULL, "gc.freeze()");
    Py_DECREF(r);
    PyObject *cbs = PyObject_GetAttrString(gc, "callbacks");
    PyObject *fn = PyCFunction_New(&py_callback_def, NULL);
    py_check(cbs == NULL || fn == NULL || PyList_Append(cbs, fn) != 0, "gc.callbacks.append");
    Py_DECREF(fn);
    Py_DECREF(cbs);
    Py_DECREF(gc);
}

static inline PyObject *
py_checked(PyObject *o)
{
    if (__builtin_expect(o == NULL, 0))
        py_check(1, "an allocation");
    return o;
}

static inline PyObject *
py_pair(void)
{
    PyObject *l = py_checked(PyList_New(2));
    Py_INCREF(Py_None);
    Py_INCREF(Py_None);
    PyList_SET_ITEM(l, 0, Py_None);
    PyList_SET_ITEM(l, 1, Py_None);
    return l;
}

static inline void
py_set0_self(PyObject *l)
{
    Py_INCREF(l);
    PyList_SetItem(l, 0, l); /* steals; drops None */
}

static inline void
py_append(PyObject *l, PyObject *x)
{
    py_check(PyList_Append(l, x) != 0, "list.append");
    Py_DECREF(x);
}

static inline PyObject *
py_tuple_ii(long i)
{
    PyObject *x = py_checked(PyLong_FromLong(i));
    PyObject *t = py_checked(PyTuple_New(2));
    Py_INCREF(x);
    PyTuple_SET_ITEM(t, 0, x);
    PyTuple_SET_ITEM(t, 1, x);
    return t;
}

static long
py_collect_full(void)
{
    PyObject *r = PyObject_CallNoArgs(py_collect);
    py_check(r == NULL, "gc.collect()");
    long n = PyLong_AsLong(r);
    Py_DECREF(r);
    return n;
}

#define W(name)          cpy_##name
#define OBJ              PyObject *
#define PAIR_NEW()       py_pair()
#define SET0_SELF(l)     py_set0_self(l)
#define ROOT_NEW(n)      py_checked(PyList_New((Py_ssize_t)(n)))
#define ROOT_PUT(r, i, x) PyList_SET_ITEM((r), (i), (x))
#define GROW_NEW()       py_checked(PyList_New(0))
#define GROW_APPEND(l, x) py_append((l), (x))
#define TUPLE_II(i)      py_tuple_ii(i)
#define DECREF(o)        Py_DECREF(o)
#define COLLECT_FULL()   py_collect_full()
#define GC_ON()          PyGC_Enable()
#define GC_OFF()         PyGC_Disable()
#include "bench_gc_workloads.h"

/* (4) again, on CPython only, with the loop written in Python (`l.append([None, None])`), as the
 * reference's 1.82x was measured: the interpreter's cost per object dilutes the collector's. */
static void
py_build_python(const params *p, result *r, bool on)
{
    static const char code[] = "def build(n):\n"
                               "    l = []\n"
                               "    for i in range(n):\n"
                               "        l.append([None, None])\n"
                               "    return l\n";
    PyObject *globals = PyDict_New();
    py_check(globals == NULL || PyDict_SetItemString(globals, "__builtins__",
                                                     PyEval_GetBuiltins()) != 0, "globals");
    PyObject *res = PyRun_String(code, Py_file_input, globals, globals);
    py_check(res == NULL, "compiling the build loop");
    Py_DECREF(res);
    PyObject *build = PyDict_GetItemString(globals, "build");
    PyGC_Disable();
    for (int round = 0; round < 2; round++) {
        py_collect_full();
        if (on)
            PyGC_Enable();
        stats_reset();
        long f0 = minflt();
        int64_t t0 = cpu_ns();
        PyObject *root = PyObject_CallFunction(build, "l", p->n_objects);
        r->loop_ns = cpu_ns() - t0;
        r->minflt = minflt() - f0;
        py_check(root == NULL, "build()");
        PyGC_Disable();
        stats_result(r);
        r->found = (long)r->collected;
        Py_DECREF(root);
    }
    py_collect_full();
    Py_DECREF(globals);
    r->ms = (double)r->loop_ns / 1e6;
    r->ns_per_obj = (double)r->loop_ns / (double)p->n_objects;
}

/* ---- main ---- */

static const char *const workloads[] = {"unreachable-cycles", "reachable",       "steady-young",
                                        "build-gc-on",        "build-gc-off",    "py-build-gc-on",
                                        "py-build-gc-off"};
enum { NWORKLOADS = sizeof workloads / sizeof workloads[0] };

static void
usage(void)
{
    fprintf(stderr, "usage: bench_gc <workload> <zw|cpython> [--quick]\n"
                    "       bench_gc --list\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    static char outbuf[1 << 12];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    const char *workload = NULL, *impl = NULL;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0) {
            for (int w = 0; w < NWORKLOADS; w++)
                printf("%s\n", workloads[w]);
            return 0;
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (workload == NULL) {
            workload = argv[i];
        } else if (impl == NULL) {
            impl = argv[i];
        } else {
            usage();
        }
    }
    if (workload == NULL || impl == NULL)
        usage();
    int w = 0;
    while (w < NWORKLOADS && strcmp(workloads[w], workload) != 0)
        w++;
    if (w == NWORKLOADS)
        die("unknown workload '%s' (--list shows them)", workload);
    bool zw = strcmp(impl, "zw") == 0;
    if (!zw && strcmp(impl, "cpython") != 0)
        die("unknown implementation '%s' (zw or cpython)", impl);
    if (zw && strncmp(workload, "py-", 3) == 0)
        die("workload '%s' is CPython's only (its loop is Python code)", workload);

    params p = {.n_objects = 1000000, .n_short = 10000000, .batch = 10000};
    if (quick) {
        p.n_objects /= 50;
        p.n_short /= 50;
    }
    calibrate_clock();
    int thr[3] = {0, 0, 0};
    const char *version;
    if (zw) {
        zw_setup();
        zw_gc_get_threshold(rt, thr);
        version = zw_version();
    } else {
        py_setup();
        PyObject *gc = PyImport_ImportModule("gc");
        PyObject *t = gc ? PyObject_CallMethod(gc, "get_threshold", NULL) : NULL;
        py_check(t == NULL || !PyArg_ParseTuple(t, "iii", &thr[0], &thr[1], &thr[2]),
                 "gc.get_threshold()");
        Py_DECREF(t);
        Py_DECREF(gc);
        version = Py_GetVersion();
    }
    char ver[64];
    snprintf(ver, sizeof ver, "%s", version);
    ver[strcspn(ver, " ")] = '\0';
    printf("# impl=%s version=%s threshold=%d,%d,%d objects=%ld short=%ld batch=%ld quick=%d "
           "clock=thread_cputime clock_ns=%lld\n",
           zw ? "zw" : "cpython", ver, thr[0], thr[1], thr[2], p.n_objects, p.n_short, p.batch,
           quick, (long long)clock_cost);
    fflush(stdout);

    result r = {0};
    switch (w) {
    case 0: zw ? zw_cycles(&p, &r) : cpy_cycles(&p, &r); break;
    case 1: zw ? zw_reachable(&p, &r) : cpy_reachable(&p, &r); break;
    case 2: zw ? zw_steady(&p, &r) : cpy_steady(&p, &r); break;
    case 3: zw ? zw_build(&p, &r, true) : cpy_build(&p, &r, true); break;
    case 4: zw ? zw_build(&p, &r, false) : cpy_build(&p, &r, false); break;
    case 5: py_build_python(&p, &r, true); break;
    case 6: py_build_python(&p, &r, false); break;
    }
    printf("bench=gc workload=%s impl=%s ms=%.3f found=%ld max_pause_us=%.0f collections=%lu "
           "gen0=%lu gen1=%lu gen2=%lu gc_ms=%.3f gen0_ms=%.3f gen1_ms=%.3f gen2_ms=%.3f young_us=%.2f young_p99_us=%.2f "
           "young_max_us=%.2f loop_ms=%.3f ns_per_obj=%.2f minflt=%ld\n",
           workload, zw ? "zw" : "cpython", r.ms, r.found, r.max_pause_us, r.collections,
           r.gen[0], r.gen[1], r.gen[2], r.gc_ms, r.gen_ms[0], r.gen_ms[1], r.gen_ms[2],
           r.young_mean_us, r.young_p99_us, r.young_max_us,
           (double)r.loop_ns / 1e6, r.ns_per_obj, r.minflt);
    fflush(stdout);
    if (zw) {
        zw_rt_free(rt);
    } else if (Py_FinalizeEx() != 0) {
        die("Py_FinalizeEx failed");
    }
    return 0;
}

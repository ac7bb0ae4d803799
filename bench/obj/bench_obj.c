/* bench/obj/bench_obj.c - the object runtime against CPython 3.11 through its C API: create and
 * destroy one object, 10M times, for each workload. One source, two binaries
 * (bench/CMakeLists.txt): bench_obj_zw calls obj.h on a zw_rt, bench_obj_cpython calls the C API
 * of Debian's libpython3.11 embedded in the process. bench/obj/run starts one process per
 * (workload, impl, run), takes medians and prints the ratio table; bench/obj/README.md says how
 * each figure is measured.
 *
 * Usage: bench_obj_<impl> <workload> [--quick]     one result line on stdout
 *        bench_obj_<impl> --list                   the workload names
 *
 * In each process: bytes_per_obj first (10k objects alive at once, with empty free lists), then
 * a warm-up of 1M create+destroy, then the timed 10M, in the thread's CPU time. Both impls build
 * the same objects from the same values in the same way; the README lists the calls side by side.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(BENCH_IMPL_ZW)
#    include <zerowaste/zerowaste.h>
#    define IMPL_NAME "zw"
typedef zw_obj obj;
#elif defined(BENCH_IMPL_CPYTHON)
#    define PY_SSIZE_T_CLEAN
#    include <Python.h>
#    define IMPL_NAME "cpython"
typedef PyObject obj;
#else
#    error "define BENCH_IMPL_ZW or BENCH_IMPL_CPYTHON"
#endif

#define OPS       10000000ULL        /* create+destroy per timed loop */
#define WARMUP    1000000ULL         /* the same before the clock starts */
#define NLIVE     10000              /* objects alive at once for bytes_per_obj */
#define QUICK_DIV 50                 /* --quick: this many times fewer operations */
#define NKEYS     5                  /* keys of the dict workload */
#define LARGE     ((int64_t)1 << 41) /* large ints are LARGE + i: two 30-bit digits */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_obj: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* What the workloads share: the runtime, the classes, the dict's keys and values. */
typedef struct bench {
#if defined(BENCH_IMPL_ZW)
    zw_rt *rt;
    zw_type *dict_cls;   /* LAYOUT_DICT, one field x */
    zw_type *slots_cls;  /* LAYOUT_SLOTS, one field x */
    zw_type *ntuple_cls; /* LAYOUT_NAMEDTUPLE, one field x */
#else
    PyObject *dict_cls;   /* class A: pass */
    PyObject *slots_cls;  /* class R: __slots__ = ('x',) */
    PyObject *ntuple_cls; /* collections.namedtuple('N', 'x') */
    PyObject *name_x;     /* interned 'x' */
#endif
    obj *keys[NKEYS];   /* interned 'k0' .. 'k4' */
    obj *values[NKEYS]; /* the small ints 0 .. 4 */
} bench;

/* ================================================================================================
 * zerowaste
 * ============================================================================================= */
#if defined(BENCH_IMPL_ZW)

static zw_type *
make_class(zw_rt *rt, const char *name, zw_class_layout layout)
{
    static const char *const fields[] = {"x", NULL};
    zw_class_spec spec = {.name = name, .layout = layout, .fields = fields};
    zw_type *cls = zw_class_new(rt, &spec);
    if (cls == NULL)
        die("zw_class_new(%s): %s", name, zw_errmsg(rt));
    return cls;
}

static void
bench_init(bench *b)
{
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .hash_seed = 0};
    b->rt = zw_rt_new(&cfg);
    if (b->rt == NULL)
        die("zw_rt_new: %s", strerror(errno));
    if (zw_heap_is_debug(zw_rt_heap(b->rt)))
        die("the runtime's heap is in debug mode");
    b->dict_cls = make_class(b->rt, "A", ZW_LAYOUT_DICT);
    b->slots_cls = make_class(b->rt, "R", ZW_LAYOUT_SLOTS);
    b->ntuple_cls = make_class(b->rt, "N", ZW_LAYOUT_NAMEDTUPLE);
    for (int k = 0; k < NKEYS; k++) {
        char name[8];
        snprintf(name, sizeof(name), "k%d", k);
        b->keys[k] = zw_str_intern_utf8(b->rt, name);
        b->values[k] = zw_int_from_i64(b->rt, k);
        if (b->keys[k] == NULL || b->values[k] == NULL)
            die("keys: %s", zw_errmsg(b->rt));
    }
}

static void
bench_fini(bench *b)
{
    for (int k = 0; k < NKEYS; k++) {
        zw_decref(b->keys[k]);
        zw_decref(b->values[k]);
    }
    zw_rt_free(b->rt);
}

/* Bytes the heap counts as allocated (each block rounded to its size class, as pymalloc). */
static size_t
heap_bytes(bench *b)
{
    return zw_heap_allocated_bytes(zw_rt_heap(b->rt));
}

#    define DECREF(o) zw_decref(o)

static inline obj *
make_small_int(bench *b, uint64_t i)
{
    return zw_int_from_i64(b->rt, (int64_t)(i & 255));
}

static inline obj *
make_large_int(bench *b, uint64_t i)
{
    return zw_int_from_i64(b->rt, LARGE + (int64_t)(i & 0xFFFFF));
}

static inline obj *
make_tuple2(bench *b, uint64_t i)
{
    zw_obj *t = zw_tuple_new(b->rt, 2);
    if (t == NULL)
        return NULL;
    zw_tuple_init_item(t, 0, zw_int_from_i64(b->rt, (int64_t)(i & 255)));
    zw_tuple_init_item(t, 1, zw_int_from_i64(b->rt, (int64_t)((i + 1) & 255)));
    return t;
}

static inline obj *
make_list10(bench *b, uint64_t i)
{
    zw_obj *l = zw_list_new(b->rt, 0);
    if (l == NULL)
        return NULL;
    for (uint64_t k = 0; k < 10; k++) {
        zw_obj *v = zw_int_from_i64(b->rt, (int64_t)((i + k) & 255));
        int rc = zw_list_append(l, v);
        zw_decref(v);
        if (rc != 0) {
            zw_decref(l);
            return NULL;
        }
    }
    return l;
}

static inline obj *
make_dict5(bench *b, uint64_t i)
{
    zw_obj *d = zw_dict_new(b->rt);
    if (d == NULL)
        return NULL;
    for (int k = 0; k < NKEYS; k++) {
        if (zw_dict_set(d, b->keys[k], b->values[k]) != 0) {
            zw_decref(d);
            return NULL;
        }
    }
    return d;
}

/* An instance of a one-field class: zw_call with the value fills the field (the attribute x
 * for the dict layout), zerowaste's one call for it. */
static inline obj *
make_instance(zw_type *cls, zw_rt *rt, uint64_t i)
{
    zw_obj *v = zw_int_from_i64(rt, (int64_t)(i & 255));
    zw_obj *o = zw_call(cls, 1, &v);
    zw_decref(v);
    return o;
}

static inline obj *
make_dict_instance(bench *b, uint64_t i)
{
    return make_instance(b->dict_cls, b->rt, i);
}

static inline obj *
make_record(bench *b, uint64_t i)
{
    return make_instance(b->slots_cls, b->rt, i);
}

static inline obj *
make_namedtuple(bench *b, uint64_t i)
{
    return make_instance(b->ntuple_cls, b->rt, i);
}

static const char *
impl_version(void)
{
    return zw_version();
}

/* ================================================================================================
 * CPython 3.11
 * ============================================================================================= */
#else

static void
die_python(const char *what)
{
    if (PyErr_Occurred())
        PyErr_Print();
    die("%s failed (the Python error is above)", what);
}

static PyObject *
eval(const char *code, const char *result)
{
    PyObject *main = PyImport_AddModule("__main__"); /* borrowed */
    PyObject *globals = main != NULL ? PyModule_GetDict(main) : NULL;
    if (globals == NULL)
        die_python("__main__");
    PyObject *r = PyRun_String(code, Py_file_input, globals, globals);
    if (r == NULL)
        die_python(code);
    Py_DECREF(r);
    PyObject *o = PyDict_GetItemString(globals, result); /* borrowed */
    if (o == NULL)
        die_python(result);
    return Py_NewRef(o);
}

static void
bench_init(bench *b)
{
    /* isolated: no PYTHON* variable, no site, no user directory changes what runs */
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    PyStatus st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st))
        die("cannot start Python: %s", st.err_msg ? st.err_msg : "?");
    b->dict_cls = eval("class A:\n    pass\n", "A");
    b->slots_cls = eval("class R:\n    __slots__ = ('x',)\n", "R");
    b->ntuple_cls = eval("import collections\nN = collections.namedtuple('N', 'x')\n", "N");
    b->name_x = PyUnicode_InternFromString("x");
    if (b->name_x == NULL)
        die_python("intern 'x'");
    for (int k = 0; k < NKEYS; k++) {
        char name[8];
        snprintf(name, sizeof(name), "k%d", k);
        b->keys[k] = PyUnicode_InternFromString(name);
        b->values[k] = PyLong_FromLong(k);
        if (b->keys[k] == NULL || b->values[k] == NULL)
            die_python("keys");
    }
}

static void
bench_fini(bench *b)
{
    for (int k = 0; k < NKEYS; k++) {
        Py_DECREF(b->keys[k]);
        Py_DECREF(b->values[k]);
    }
    Py_DECREF(b->name_x);
    Py_DECREF(b->dict_cls);
    Py_DECREF(b->slots_cls);
    Py_DECREF(b->ntuple_cls);
    if (Py_FinalizeEx() != 0)
        die("Py_FinalizeEx failed");
}

#    define DECREF(o) Py_DECREF(o)

static inline obj *
make_small_int(bench *b, uint64_t i)
{
    return PyLong_FromLong((long)(i & 255));
}

static inline obj *
make_large_int(bench *b, uint64_t i)
{
    return PyLong_FromLongLong(LARGE + (long long)(i & 0xFFFFF));
}

static inline obj *
make_tuple2(bench *b, uint64_t i)
{
    PyObject *t = PyTuple_New(2);
    if (t == NULL)
        return NULL;
    PyTuple_SET_ITEM(t, 0, PyLong_FromLong((long)(i & 255)));
    PyTuple_SET_ITEM(t, 1, PyLong_FromLong((long)((i + 1) & 255)));
    return t;
}

static inline obj *
make_list10(bench *b, uint64_t i)
{
    PyObject *l = PyList_New(0);
    if (l == NULL)
        return NULL;
    for (uint64_t k = 0; k < 10; k++) {
        PyObject *v = PyLong_FromLong((long)((i + k) & 255));
        int rc = PyList_Append(l, v);
        Py_DECREF(v);
        if (rc != 0) {
            Py_DECREF(l);
            return NULL;
        }
    }
    return l;
}

static inline obj *
make_dict5(bench *b, uint64_t i)
{
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    for (int k = 0; k < NKEYS; k++) {
        if (PyDict_SetItem(d, b->keys[k], b->values[k]) != 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

/* cls() then o.x = v: the cheapest way the C API has for a class without __init__ (calling a
 * class whose __init__ sets self.x would run bytecode). */
static inline obj *
make_instance(PyObject *cls, PyObject *name, uint64_t i)
{
    PyObject *o = PyObject_CallNoArgs(cls);
    if (o == NULL)
        return NULL;
    PyObject *v = PyLong_FromLong((long)(i & 255));
    int rc = PyObject_SetAttr(o, name, v);
    Py_DECREF(v);
    if (rc != 0) {
        Py_DECREF(o);
        return NULL;
    }
    return o;
}

static inline obj *
make_dict_instance(bench *b, uint64_t i)
{
    return make_instance(b->dict_cls, b->name_x, i);
}

static inline obj *
make_record(bench *b, uint64_t i)
{
    return make_instance(b->slots_cls, b->name_x, i);
}

/* N(v): a namedtuple has no other public constructor (its __new__ is Python code). */
static inline obj *
make_namedtuple(bench *b, uint64_t i)
{
    PyObject *v = PyLong_FromLong((long)(i & 255));
    PyObject *o = PyObject_CallOneArg(b->ntuple_cls, v);
    Py_DECREF(v);
    return o;
}

static const char *
impl_version(void)
{
    static char buf[16];
    snprintf(buf, sizeof(buf), "%s", Py_GetVersion());
    char *space = strchr(buf, ' ');
    if (space != NULL)
        *space = '\0';
    return buf;
}

/* Bytes of the blocks traced by tracemalloc and still alive, each rounded as pymalloc rounds
 * it (16-byte classes up to 512 bytes; larger blocks come from malloc at their size). */
static PyObject *traced_fn;

static void
tracing_start(void)
{
    /* gc.collect() empties the free lists, so every object of the measure is a fresh block */
    traced_fn = eval("import gc, tracemalloc\n"
                     "def _traced():\n"
                     "    snap = tracemalloc.take_snapshot()\n"
                     "    return sum((t.size + 15) // 16 * 16 if t.size <= 512 else t.size\n"
                     "               for t in snap.traces)\n"
                     "gc.collect()\n"
                     "tracemalloc.start()\n",
                     "_traced");
}

static size_t
tracing_stop(void)
{
    PyObject *r = PyObject_CallNoArgs(traced_fn);
    if (r == NULL)
        die_python("tracemalloc snapshot");
    size_t bytes = PyLong_AsSize_t(r);
    Py_DECREF(r);
    PyObject *stop = eval("tracemalloc.stop()\n", "_traced");
    Py_DECREF(stop);
    Py_CLEAR(traced_fn);
    return bytes;
}
#endif

/* ================================================================================================
 * the harness
 * ============================================================================================= */

typedef obj *(*make_fn)(bench *b, uint64_t i);

/* The timed loop of one workload: `make` is a constant at each call site, so it is inlined. */
#define LOOP(make)                                                                                 \
    static void loop_##make(bench *b, uint64_t n)                                                  \
    {                                                                                              \
        for (uint64_t i = 0; i < n; i++) {                                                         \
            obj *o = make(b, i);                                                                   \
            if (o == NULL)                                                                         \
                die("%s failed at %llu", #make, (unsigned long long)i);                            \
            DECREF(o);                                                                             \
        }                                                                                          \
    }
LOOP(make_small_int)
LOOP(make_large_int)
LOOP(make_tuple2)
LOOP(make_list10)
LOOP(make_dict5)
LOOP(make_dict_instance)
LOOP(make_record)
LOOP(make_namedtuple)

typedef struct workload {
    const char *name;
    void (*loop)(bench *b, uint64_t n);
    make_fn make;
} workload;

static const workload workloads[] = {
    {"small-int", loop_make_small_int, make_small_int},
    {"large-int", loop_make_large_int, make_large_int},
    {"tuple-2", loop_make_tuple2, make_tuple2},
    {"list-append-10", loop_make_list10, make_list10},
    {"dict-5-strkeys", loop_make_dict5, make_dict5},
    {"instance-dict-1", loop_make_dict_instance, make_dict_instance},
    {"record-slots-1", loop_make_record, make_record},
    {"namedtuple-1", loop_make_namedtuple, make_namedtuple},
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

static double
cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Heap bytes one live object costs: NLIVE objects alive at once, the heap's growth / NLIVE.
 * Runs first on a fresh runtime (zw) or right after gc.collect() (CPython), so that no object
 * comes from a free list filled before the count started. */
static double
bytes_per_obj(bench *b, const workload *w)
{
    obj **live = calloc(NLIVE, sizeof(*live)); /* glibc's: neither heap under test sees it */
    if (live == NULL)
        die("out of memory");
#if defined(BENCH_IMPL_ZW)
    size_t before = heap_bytes(b);
#else
    tracing_start();
#endif
    for (uint64_t i = 0; i < NLIVE; i++) {
        live[i] = w->make(b, i);
        if (live[i] == NULL)
            die("%s: cannot make object %llu", w->name, (unsigned long long)i);
    }
#if defined(BENCH_IMPL_ZW)
    size_t grown = heap_bytes(b) - before;
#else
    size_t grown = tracing_stop();
#endif
    for (size_t i = 0; i < NLIVE; i++)
        DECREF(live[i]);
    free(live);
    return (double)grown / NLIVE;
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: bench_obj_%s <workload> [--quick] | --list\n", IMPL_NAME);
}

int
main(int argc, char **argv)
{
    static char outbuf[1 << 14];
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t k = 0; k < NWORKLOADS; k++)
            printf("%s\n", workloads[k].name);
        return 0;
    }
    bool quick = argc == 3 && strcmp(argv[2], "--quick") == 0;
    if (argc != 2 && !quick) {
        usage(stderr);
        return 2;
    }
    const workload *w = NULL;
    for (size_t k = 0; k < NWORKLOADS; k++) {
        if (strcmp(argv[1], workloads[k].name) == 0)
            w = &workloads[k];
    }
    if (w == NULL) {
        fprintf(stderr, "bench_obj: error: unknown workload '%s' (--list shows them)\n", argv[1]);
        return 2;
    }
    uint64_t ops = quick ? OPS / QUICK_DIV : OPS;
    bench b = {0};
    bench_init(&b);
    double bytes = bytes_per_obj(&b, w);
    printf("# impl=%s version=%s quick=%d\n", IMPL_NAME, impl_version(), quick);
    w->loop(&b, quick ? WARMUP / QUICK_DIV : WARMUP);
    double t0 = cpu_ns();
    w->loop(&b, ops);
    double ns = (cpu_ns() - t0) / (double)ops;
    bench_fini(&b);
    printf("bench=obj workload=%s impl=%s ns_per_op=%.3f bytes_per_obj=%.1f ops=%llu\n", w->name,
           IMPL_NAME, ns, bytes, (unsigned long long)ops);
    return 0;
}

/* bench/alloc/bench_alloc.c - the allocator benchmark: one workload per process, timed in CPU
 * time, against the allocator chosen at compile time (BENCH_IMPL_*; bench/CMakeLists.txt builds
 * one binary per allocator from this file). bench/alloc/run starts one process per (workload,
 * allocator, run), takes medians and prints the tables; bench/alloc/README.md says what each
 * workload does and what each figure means.
 *
 * Usage: bench_alloc_<impl> <workload> [--quick]     one workload, result lines on stdout
 *        bench_alloc_<impl> --list                   the workload names
 *
 * Rules every workload keeps, so that the allocators are measured alike:
 *   - every block is written once (8 bytes) right after it is handed out, so an allocator that
 *     maps pages lazily pays its page faults inside the timed loop, as a program would;
 *   - the harness's own arrays come from mmap, never from the allocator under test, and are
 *     touched before the first RSS reading; stdout gets a static buffer (stdio never mallocs);
 *   - a warm-up of the same operations runs before each timed loop;
 *   - random choices come from splitmix64 with a fixed seed, printed with the results. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- the allocator under test ---- */

#if defined(BENCH_IMPL_ZEROWASTE)
#    include <zerowaste/mem.h>
/* A private heap, created before the workload and never destroyed: RSS after free-all is read
 * with the heap alive, holding what it keeps (its cache of free arenas). */
static zw_heap *heap;
#    define IMPL_MALLOC(n)     zw_heap_malloc(heap, (n))
#    define IMPL_REALLOC(p, n) zw_heap_realloc(heap, (p), (n))
#    define IMPL_FREE(p)       zw_heap_free(heap, (p))
#    define IMPL_VERSION()     zw_version()
#    define IMPL_MALLOC_LIB    "libc.so" /* big blocks go to glibc's malloc through raw */
#elif defined(BENCH_IMPL_MIMALLOC)
#    include <mimalloc.h>
#    define IMPL_MALLOC(n)     mi_malloc(n)
#    define IMPL_REALLOC(p, n) mi_realloc((p), (n))
#    define IMPL_FREE(p)       mi_free(p)
#    define IMPL_MALLOC_LIB    "libmimalloc" /* Debian's build replaces malloc process-wide */
#elif defined(BENCH_IMPL_TCMALLOC)
#    include <gperftools/tcmalloc.h>
#    define IMPL_MALLOC(n)     tc_malloc(n)
#    define IMPL_REALLOC(p, n) tc_realloc((p), (n))
#    define IMPL_FREE(p)       tc_free(p)
#    define IMPL_VERSION()     tc_version(NULL, NULL, NULL)
#    define IMPL_MALLOC_LIB    "libtcmalloc"
#elif defined(BENCH_IMPL_JEMALLOC) || defined(BENCH_IMPL_GLIBC)
/* Plain malloc: the binary links jemalloc (whose Debian build exports malloc) or nothing. */
#    define IMPL_MALLOC(n)     malloc(n)
#    define IMPL_REALLOC(p, n) realloc((p), (n))
#    define IMPL_FREE(p)       free(p)
#    if defined(BENCH_IMPL_JEMALLOC)
#        include <jemalloc/jemalloc.h>
#        define IMPL_MALLOC_LIB "libjemalloc"
#    else
#        include <gnu/libc-version.h>
#        define IMPL_VERSION()  gnu_get_libc_version()
#        define IMPL_MALLOC_LIB "libc.so"
#    endif
#else
#    error "define one of BENCH_IMPL_ZEROWASTE, _GLIBC, _MIMALLOC, _JEMALLOC, _TCMALLOC"
#endif

#ifndef BENCH_IMPL_NAME
#    error "define BENCH_IMPL_NAME, the allocator's name in the results"
#endif

#define SEED 0x5eed2026u /* every workload's random numbers start here */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_alloc: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void
impl_init(void)
{
#if defined(BENCH_IMPL_ZEROWASTE)
    heap = zw_heap_new();
    if (heap == NULL)
        die("cannot create a heap: %s", strerror(errno));
    if (zw_heap_is_debug(heap))
        die("the heap is in debug mode (unset ZW_MALLOC)");
#endif
}

/* The allocator's version, for the header line. */
static const char *
impl_version(void)
{
#if defined(BENCH_IMPL_MIMALLOC)
    static char buf[32];
    int v = mi_version();
    snprintf(buf, sizeof(buf), "%d.%d.%d", v / 100, v / 10 % 10, v % 10);
    return buf;
#elif defined(BENCH_IMPL_JEMALLOC)
    const char *v = NULL;
    size_t len = sizeof(v);
    return mallctl("version", &v, &len, NULL, 0) == 0 ? v : "?";
#else
    return IMPL_VERSION();
#endif
}

/* The file of the library whose malloc this process calls: the run script checks that each peer
 * binary really uses its allocator (a stray -lmimalloc would silently replace glibc's). */
static const char *
malloc_library(void)
{
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
        return "?";
    const char *slash = strrchr(info.dli_fname, '/');
    return slash != NULL ? slash + 1 : info.dli_fname;
}

/* Hands out a block, or exits: an allocator that fails here has nothing left to measure. */
static inline void *
bench_malloc(size_t n)
{
    void *p = IMPL_MALLOC(n);
    if (p == NULL)
        die("%s: malloc(%zu) failed", BENCH_IMPL_NAME, n);
    return p;
}

static inline void *
bench_realloc(void *p, size_t n)
{
    void *q = IMPL_REALLOC(p, n);
    if (q == NULL)
        die("%s: realloc(%zu) failed", BENCH_IMPL_NAME, n);
    return q;
}

/* The one write each new block gets (volatile: no compiler may drop a store before a free). */
static inline void
touch(void *p, uint64_t v)
{
    *(volatile uint64_t *)p = v;
}

/* ---- measuring: CPU time, page faults, RSS ---- */

static double
cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long
minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), read without stdio (no malloc). */
static long
status_kib(const char *key)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        die("cannot open '/proc/self/status': %s", strerror(errno));
    ssize_t len = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (len <= 0)
        die("cannot read '/proc/self/status'");
    buf[len] = '\0';
    size_t keylen = strlen(key);
    for (const char *line = buf; line != NULL && *line != '\0';) {
        if (strncmp(line, key, keylen) == 0 && line[keylen] == ':')
            return strtol(line + keylen + 1, NULL, 10);
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    die("no '%s' in /proc/self/status", key);
}

/* One timed loop: its result line, minus the process-wide fields added at the end. */
typedef struct phase {
    const char *name; /* the result's workload name, e.g. "bulk-random-free" */
    double ns;        /* CPU time of the loop */
    size_t ops;       /* operations in it (the unit of ns_per_op) */
    long minflt;      /* minor page faults during it */
    char extra[192];  /* further " key=value" fields */
} phase;

#define MAX_PHASES 4

/* What one process reports: its phases and the RSS readings around the workload. */
typedef struct report {
    phase phases[MAX_PHASES];
    unsigned nphases;
    long rss_start_kib;      /* VmRSS before the workload's first block (arrays touched) */
    long rss_after_free_kib; /* VmRSS once every block is freed (allocator still alive) */
} report;

typedef struct stopwatch {
    double t0;
    long flt0;
} stopwatch;

static void
stopwatch_start(stopwatch *sw)
{
    sw->flt0 = minor_faults();
    sw->t0 = cpu_ns();
}

/* Stops the watch into the report's next phase and returns that phase (for extra fields). */
static phase *
stopwatch_stop(stopwatch *sw, report *rep, const char *name, size_t ops)
{
    double t1 = cpu_ns();
    long flt1 = minor_faults();
    if (rep->nphases == MAX_PHASES)
        die("too many phases in one workload");
    phase *ph = &rep->phases[rep->nphases++];
    ph->name = name;
    ph->ns = t1 - sw->t0;
    ph->ops = ops;
    ph->minflt = flt1 - sw->flt0;
    ph->extra[0] = '\0';
    return ph;
}

static void phase_add(phase *ph, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends " key=value" fields to a phase's line. */
static void
phase_add(phase *ph, const char *fmt, ...)
{
    size_t used = strlen(ph->extra);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ph->extra + used, sizeof(ph->extra) - used, fmt, ap);
    va_end(ap);
}

/* Prints one line per phase, in the shape bench/alloc/run parses. */
static void
report_print(const report *rep)
{
    long peak = status_kib("VmHWM");
    for (unsigned i = 0; i < rep->nphases; i++) {
        const phase *ph = &rep->phases[i];
        printf("bench=alloc workload=%s impl=%s ns_per_op=%.3f peak_rss_kib=%ld "
               "rss_after_free_kib=%ld minflt=%ld rss_start_kib=%ld ops=%zu%s\n",
               ph->name, BENCH_IMPL_NAME, ph->ns / (double)ph->ops, peak, rep->rss_after_free_kib,
               ph->minflt, rep->rss_start_kib, ph->ops, ph->extra);
    }
}

/* ---- harness memory and random numbers ---- */

/* Zeroed, touched memory for the harness's arrays, from mmap: no allocator sees it. */
static void *
harness_array(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("cannot map %zu bytes for the harness: %s", bytes, strerror(errno));
    memset(p, 0, bytes);
    return p;
}

/* splitmix64: one multiply-xorshift round per number, ample for choosing slots and sizes. */
static inline uint64_t
rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A number in [0, n) from 32 random bits, by multiply and shift (no division). */
static inline size_t
below(uint32_t bits, size_t n)
{
    return (size_t)(((uint64_t)bits * n) >> 32);
}

/* Fisher-Yates, so that blocks are freed in an order unrelated to their addresses. */
static void
shuffle(void **a, size_t n, uint64_t *rng)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next(rng) % (i + 1));
        void *t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* ---- workloads ---- */

/* Operation counts; --quick divides them for a smoke run. */
typedef struct scale {
    size_t pairs;        /* ping-pong: malloc+free pairs per size */
    size_t lifo_rounds;  /* LIFO batch: rounds of LIFO_BATCH allocations then frees */
    size_t bulk_blocks;  /* bulk: 32-byte blocks allocated then freed */
    size_t churn_live;   /* churn: blocks alive at once */
    size_t churn_steps;  /* churn: replace steps */
    size_t realloc_reps; /* realloc: buffers grown from 16 to 4096 bytes */
} scale;

static const scale full_scale = {10000000, 10000, 10000000, 1000000, 20000000, 100000};
static const scale quick_scale = {200000, 200, 200000, 50000, 400000, 2000};

#define LIFO_BATCH    1000
#define LIFO_SIZE     64
#define BULK_SIZE     32
#define CHURN_MIN     8
#define CHURN_MAX     512
#define REALLOC_START 16
#define REALLOC_END   4096
#define REALLOC_STEP  16
#define REALLOC_CALLS ((REALLOC_END - REALLOC_START) / REALLOC_STEP) /* 255 per buffer */

typedef struct workload {
    const char *name;
    void (*run)(const struct workload *w, const scale *s, report *rep);
    size_t size; /* block size, for ping-pong */
} workload;

/* Allocates and frees one block at a time: the allocator's fastest path, over and over. */
static void
pingpong_loop(size_t size, size_t pairs)
{
    for (size_t i = 0; i < pairs; i++) {
        void *p = bench_malloc(size);
        touch(p, i);
        IMPL_FREE(p);
    }
}

static void
run_pingpong(const workload *w, const scale *s, report *rep)
{
    rep->rss_start_kib = status_kib("VmRSS");
    pingpong_loop(w->size, s->pairs / 10);
    stopwatch sw;
    stopwatch_start(&sw);
    pingpong_loop(w->size, s->pairs);
    phase *ph = stopwatch_stop(&sw, rep, w->name, s->pairs);
    phase_add(ph, " unit=pair size=%zu", w->size);
    rep->rss_after_free_kib = status_kib("VmRSS");
}

/* LIFO_BATCH blocks allocated, then freed last first, `rounds` times (sh6bench's pattern). */
static void
lifo_loop(void **slots, size_t rounds)
{
    for (size_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < LIFO_BATCH; i++) {
            slots[i] = bench_malloc(LIFO_SIZE);
            touch(slots[i], i);
        }
        for (size_t i = LIFO_BATCH; i-- > 0;)
            IMPL_FREE(slots[i]);
    }
}

static void
run_lifo(const workload *w, const scale *s, report *rep)
{
    void **slots = harness_array(LIFO_BATCH * sizeof(void *));
    rep->rss_start_kib = status_kib("VmRSS");
    lifo_loop(slots, s->lifo_rounds / 10);
    stopwatch sw;
    stopwatch_start(&sw);
    lifo_loop(slots, s->lifo_rounds);
    phase *ph = stopwatch_stop(&sw, rep, w->name, s->lifo_rounds * LIFO_BATCH);
    phase_add(ph, " unit=pair size=%d batch=%d", LIFO_SIZE, LIFO_BATCH);
    rep->rss_after_free_kib = status_kib("VmRSS");
}

static void
bulk_alloc(void **blocks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        blocks[i] = bench_malloc(BULK_SIZE);
        touch(blocks[i], i);
    }
}

static void
bulk_free(void **blocks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        IMPL_FREE(blocks[i]);
}

/* One round of the bulk workload: allocate n blocks, free them all (in allocation order, or in
 * the order of a shuffle done before the clock starts); a phase for each half. */
static void
bulk_round(void **blocks, size_t n, bool random_order, uint64_t *rng, report *rep,
           const char *alloc_name, const char *free_name)
{
    stopwatch sw;
    stopwatch_start(&sw);
    bulk_alloc(blocks, n);
    phase *ph = stopwatch_stop(&sw, rep, alloc_name, n);
    long rss = status_kib("VmRSS");
    phase_add(ph, " unit=call rss_kib=%ld bytes_per_block=%.2f", rss,
              (double)(rss - rep->rss_start_kib) * 1024.0 / (double)n);
    if (random_order)
        shuffle(blocks, n, rng);
    stopwatch_start(&sw);
    bulk_free(blocks, n);
    ph = stopwatch_stop(&sw, rep, free_name, n);
    phase_add(ph, " unit=call rss_kib=%ld", status_kib("VmRSS"));
}

/* n 32-byte blocks on a cold heap, freed in order or at random, then a second round on the heap
 * the first one left behind. */
static void
run_bulk(const workload *w, const scale *s, report *rep)
{
    bool random_order = strcmp(w->name, "bulk-random") == 0;
    size_t n = s->bulk_blocks;
    void **blocks = harness_array(n * sizeof(void *));
    uint64_t rng = SEED;
    static char names[4][40]; /* static: the phases point to them until report_print() */
    const char *suffix[4] = {"alloc", "free", "alloc2", "free2"};
    for (int i = 0; i < 4; i++)
        snprintf(names[i], sizeof(names[i]), "%s-%s", w->name, suffix[i]);

    rep->rss_start_kib = status_kib("VmRSS");
    size_t warm = n / 100; /* 1%: warms the code without preparing the heap for the round */
    bulk_alloc(blocks, warm);
    if (random_order)
        shuffle(blocks, warm, &rng);
    bulk_free(blocks, warm);
    bulk_round(blocks, n, random_order, &rng, rep, names[0], names[1]);
    bulk_round(blocks, n, random_order, &rng, rep, names[2], names[3]);
    rep->rss_after_free_kib = status_kib("VmRSS");
    for (unsigned i = 0; i < rep->nphases; i++)
        phase_add(&rep->phases[i], " size=%d seed=%#x", BULK_SIZE, SEED);
}

/* The harness of the churn workload: the live blocks and their requested sizes. */
typedef struct churn {
    void **slot;     /* the live blocks */
    uint16_t *size;  /* bytes requested for each */
    size_t n;        /* blocks alive at once */
    size_t live;     /* bytes requested by the live blocks */
    size_t live_max; /* the most `live` has been */
    uint64_t rng;
} churn;

static inline size_t
churn_size(uint32_t bits)
{
    return CHURN_MIN + below(bits, CHURN_MAX - CHURN_MIN + 1);
}

static void
churn_fill(churn *c)
{
    for (size_t i = 0; i < c->n; i++) {
        size_t n = churn_size((uint32_t)rng_next(&c->rng));
        c->slot[i] = bench_malloc(n);
        touch(c->slot[i], i);
        c->size[i] = (uint16_t)n;
        c->live += n;
    }
    c->live_max = c->live;
}

/* Replaces a random live block by a new one of random size, `steps` times. */
static void
churn_steps(churn *c, size_t steps)
{
    for (size_t s = 0; s < steps; s++) {
        uint64_t r = rng_next(&c->rng);
        size_t i = below((uint32_t)r, c->n);
        size_t n = churn_size((uint32_t)(r >> 32));
        IMPL_FREE(c->slot[i]);
        c->slot[i] = bench_malloc(n);
        touch(c->slot[i], s);
        c->live += n - c->size[i];
        c->size[i] = (uint16_t)n;
        if (c->live > c->live_max)
            c->live_max = c->live;
    }
}

static void
churn_free_all(churn *c)
{
    for (size_t i = 0; i < c->n; i++)
        IMPL_FREE(c->slot[i]);
    c->live = 0;
}

/* A steady state: churn_live blocks of random sizes alive, one replaced per step. */
static void
run_churn(const workload *w, const scale *s, report *rep)
{
    churn c = {.n = s->churn_live, .rng = SEED};
    c.slot = harness_array(c.n * sizeof(*c.slot));
    c.size = harness_array(c.n * sizeof(*c.size));
    rep->rss_start_kib = status_kib("VmRSS");

    double t0 = cpu_ns();
    churn_fill(&c);
    double fill_ns = cpu_ns() - t0;
    churn_steps(&c, s->churn_steps / 100);
    stopwatch sw;
    stopwatch_start(&sw);
    churn_steps(&c, s->churn_steps);
    phase *ph = stopwatch_stop(&sw, rep, w->name, s->churn_steps);
    long peak = status_kib("VmHWM");
    t0 = cpu_ns();
    churn_free_all(&c);
    double free_ns = cpu_ns() - t0;
    rep->rss_after_free_kib = status_kib("VmRSS");
    phase_add(ph, " unit=step live_kib=%zu peak_over_live=%.4f fill_ns=%.1f free_all_ns=%.1f",
              c.live_max / 1024, (double)(peak - rep->rss_start_kib) * 1024.0 / (double)c.live_max,
              fill_ns / (double)c.n, free_ns / (double)c.n);
    phase_add(ph, " blocks=%zu sizes=%d..%d seed=%#x", c.n, CHURN_MIN, CHURN_MAX, SEED);
}

/* A buffer grown 16 bytes at a time, writing each new 16-byte tail, then freed. */
static void
realloc_loop(size_t reps)
{
    for (size_t r = 0; r < reps; r++) {
        char *p = bench_malloc(REALLOC_START);
        touch(p, r);
        for (size_t n = REALLOC_START + REALLOC_STEP; n <= REALLOC_END; n += REALLOC_STEP) {
            p = bench_realloc(p, n);
            touch(p + n - REALLOC_STEP, n);
        }
        IMPL_FREE(p);
    }
}

static void
run_realloc(const workload *w, const scale *s, report *rep)
{
    rep->rss_start_kib = status_kib("VmRSS");
    realloc_loop(s->realloc_reps / 100);
    stopwatch sw;
    stopwatch_start(&sw);
    realloc_loop(s->realloc_reps);
    phase *ph = stopwatch_stop(&sw, rep, w->name, s->realloc_reps * REALLOC_CALLS);
    phase_add(ph, " unit=realloc from=%d to=%d step=%d", REALLOC_START, REALLOC_END, REALLOC_STEP);
    rep->rss_after_free_kib = status_kib("VmRSS");
}

static const workload workloads[] = {
    {"pingpong-16", run_pingpong, 16},    {"pingpong-32", run_pingpong, 32},
    {"pingpong-64", run_pingpong, 64},    {"pingpong-128", run_pingpong, 128},
    {"pingpong-256", run_pingpong, 256},  {"pingpong-512", run_pingpong, 512},
    {"lifo-64", run_lifo, LIFO_SIZE},     {"bulk-inorder", run_bulk, BULK_SIZE},
    {"bulk-random", run_bulk, BULK_SIZE}, {"churn", run_churn, 0},
    {"realloc-grow", run_realloc, 0},
};

#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/* ---- main ---- */

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: bench_alloc_%s <workload> [--quick]\n"
            "       bench_alloc_%s --list\n",
            BENCH_IMPL_NAME, BENCH_IMPL_NAME);
}

int
main(int argc, char **argv)
{
    static char outbuf[1 << 16]; /* stdout's buffer: stdio would malloc one */
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    const char *name = NULL;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--list") == 0) {
            for (size_t k = 0; k < NWORKLOADS; k++)
                printf("%s\n", workloads[k].name);
            return 0;
        } else if (argv[i][0] == '-' || name != NULL) {
            usage(stderr);
            return 2;
        } else {
            name = argv[i];
        }
    }
    if (name == NULL) {
        usage(stderr);
        return 2;
    }
    const workload *w = NULL;
    for (size_t k = 0; k < NWORKLOADS; k++) {
        if (strcmp(workloads[k].name, name) == 0)
            w = &workloads[k];
    }
    if (w == NULL) {
        fprintf(stderr, "bench_alloc: error: unknown workload '%s' (--list shows them)\n", name);
        return 2;
    }

    impl_init();
    printf("# impl=%s version=%s malloc_lib=%s expect=%s quick=%d\n", BENCH_IMPL_NAME,
           impl_version(), malloc_library(), IMPL_MALLOC_LIB, quick);
    report rep = {0};
    w->run(w, quick ? &quick_scale : &full_scale, &rep);
    report_print(&rep);
    return 0;
}

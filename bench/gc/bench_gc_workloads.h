/* bench/gc/bench_gc_workloads.h - the workloads of bench_gc.c, written once and included twice:
 * once with the zerowaste operations (W_ prefix zw_) and once with CPython's C API (cpy_), so
 * that each side builds the identical object graph with direct calls (no function pointers in
 * the timed loops). The including file defines:
 *
 *   W(name)            the prefixed function name
 *   OBJ                the object pointer type
 *   PAIR_NEW()         a new list [None, None] with exactly 2 slots (new reference)
 *   SET0_SELF(l)       l[0] = l (the list takes a reference to itself, None is dropped)
 *   ROOT_NEW(n)        a list with room for n items (CPython: n NULL items, filled by ROOT_PUT)
 *   ROOT_PUT(r, i, x)  item i of a ROOT_NEW list := x (x stolen)
 *   GROW_NEW()         an empty list
 *   GROW_APPEND(l, x)  l.append(x), x stolen
 *   TUPLE_II(i)        the tuple (i, i): one int object referenced twice (new reference)
 *   DECREF(o)
 *   COLLECT_FULL()     a full collection, also when automatic collection is off; returns found
 *   GC_ON() / GC_OFF() automatic collection on / off
 *   GC_COUNT0()        the generation-0 count (for a sanity check) */

/* (1) 1M unreachable self-cycles l = [None, None]; l[0] = l (cpython-memory.md section 7, first
 * row); the full collection that finds and frees them is timed. */
static void
W(cycles)(const params *p, result *r)
{
    GC_OFF();
    for (int round = 0; round < 2; round++) { /* round 0 is the warm-up */
        COLLECT_FULL();
        for (long i = 0; i < p->n_objects; i++) {
            OBJ l = PAIR_NEW();
            SET0_SELF(l);
            DECREF(l);
        }
        stats_reset();
        long f0 = minflt();
        long found = (long)COLLECT_FULL();
        r->minflt = minflt() - f0;
        if (round == 1)
            r->found = found;
    }
    stats_result(r);
    r->ms = r->gc_ms;
    r->ns_per_obj = r->ms * 1e6 / (double)p->n_objects;
}

/* (2) 1M reachable 2-element lists [None, None] held by one root list, all already in gen 2 (a
 * first full collection moved them there); the next full collection is timed. Nothing is freed. */
static void
W(reachable)(const params *p, result *r)
{
    GC_OFF();
    COLLECT_FULL();
    OBJ root = ROOT_NEW(p->n_objects);
    for (long i = 0; i < p->n_objects; i++)
        ROOT_PUT(root, i, PAIR_NEW());
    COLLECT_FULL(); /* the first one after the build: moves everything into gen 2 (warm-up) */
    COLLECT_FULL(); /* and a second warm-up */
    stats_reset();
    long f0 = minflt();
    r->found = (long)COLLECT_FULL();
    r->minflt = minflt() - f0;
    stats_result(r);
    r->ms = r->gc_ms;
    r->ns_per_obj = r->ms * 1e6 / (double)(p->n_objects + 1);
    DECREF(root);
    COLLECT_FULL();
}

/* (3) 1M long-lived lists in gen 2, automatic collection on, then 10M short-lived tuples (i, i)
 * in batches of 10k held by a batch list that is dropped whole: each batch takes 2000 tuples
 * from the free list and allocates 8000, which drives young collections (a tuple made and
 * dropped at once would come from and return to the free list and never trigger one). */
static void
W(steady)(const params *p, result *r)
{
    GC_OFF();
    COLLECT_FULL();
    OBJ root = ROOT_NEW(p->n_objects);
    for (long i = 0; i < p->n_objects; i++)
        ROOT_PUT(root, i, PAIR_NEW());
    COLLECT_FULL(); /* long_lived_total = 1M + 1 */
    GC_ON();
    long batches = p->n_short / p->batch;
    long warm = batches / 10;
    long next = 0;
    for (long b = -warm; b < batches; b++) {
        if (b == 0) {
            stats_reset();
            r->minflt = minflt();
            r->loop_ns = cpu_ns();
        }
        OBJ batch = ROOT_NEW(p->batch);
        for (long j = 0; j < p->batch; j++)
            ROOT_PUT(batch, j, TUPLE_II(next++));
        DECREF(batch);
    }
    r->loop_ns = cpu_ns() - r->loop_ns;
    r->minflt = minflt() - r->minflt;
    GC_OFF();
    stats_result(r);
    r->ms = r->gc_ms;
    r->found = (long)r->collected;
    DECREF(root);
    COLLECT_FULL();
}

/* (4) Building 1M lists [None, None] appended to a growing root list, automatic collection on
 * or off; the whole build is timed (after a warm-up build of the same size, freed). */
static void
W(build)(const params *p, result *r, bool on)
{
    GC_OFF();
    for (int round = 0; round < 2; round++) {
        COLLECT_FULL();
        if (on)
            GC_ON();
        stats_reset();
        long f0 = minflt();
        int64_t t0 = cpu_ns();
        OBJ root = GROW_NEW();
        for (long i = 0; i < p->n_objects; i++)
            GROW_APPEND(root, PAIR_NEW());
        r->loop_ns = cpu_ns() - t0;
        r->minflt = minflt() - f0;
        GC_OFF();
        stats_result(r);
        r->found = (long)r->collected;
        DECREF(root);
    }
    COLLECT_FULL();
    r->ms = (double)r->loop_ns / 1e6;
    r->ns_per_obj = (double)r->loop_ns / (double)p->n_objects;
}

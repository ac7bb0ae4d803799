// tests/preload/hazards.cc - allocations through the places an unwinder can go wrong, built
// without frame pointers so that every traceback comes from the unwinder: C++ exceptions thrown
// through allocating frames and destructors, longjmp out of them, coroutines on stacks of their
// own (makecontext/swapcontext), a signal handler, siglongjmp out of one, threads that come and
// go, fork, and functions that read their own return addresses (__builtin_return_address,
// backtrace(3)). And the cases that break a walk reused from the last one (the default unwinder
// keeps each thread's last walk): a frame replaced at the same stack address by another caller,
// stacks that grow and shrink between allocations, frames whose CFA is rbp-based (alloca), two
// coroutines taking turns on stacks of their own. Under zw run with ZW_UNWIND=check every walk
// is compared with libunwind's; prints "hazards ok N" with the count of checks that held, and
// exits 0.
#include <alloca.h>
#include <cfloat>
#include <csetjmp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>
#include <vector>

static volatile long sink;
static int checks;

static void
expect(bool ok, const char *what)
{
    if (!ok) {
        std::fprintf(stderr, "hazards: %s\n", what);
        std::exit(1);
    }
    checks++;
}

struct Holder {
    std::vector<std::string> v;
    ~Holder()
    {
        std::string *s = new std::string(64, 'd'); // allocates while the exception unwinds
        sink = sink + static_cast<long>(s->size());
        delete s;
    }
};

__attribute__((noinline)) static void
deep_throw(int depth)
{
    Holder h;
    h.v.emplace_back(100, 'x');
    if (depth == 0)
        throw std::runtime_error(std::string(80, 'e'));
    deep_throw(depth - 1);
    sink = sink + 1;
}

static void
exceptions()
{
    for (int i = 0; i < 200; i++) {
        try {
            deep_throw(1 + i % 12);
        } catch (const std::runtime_error &e) {
            std::string copy(e.what()); // allocates in the handler
            expect(copy.size() == 80, "the exception's message");
        }
    }
}

static jmp_buf jump;

__attribute__((noinline)) static void
deep_jump(int depth)
{
    char *p = static_cast<char *>(std::malloc(32 + depth));
    sink = sink + p[0] * 0;
    std::free(p);
    if (depth > 0)
        deep_jump(depth - 1);
    else if (sink >= 0) // always: a path that returns, for the compiler
        std::longjmp(jump, 1);
    sink = sink + 1;
}

static void
longjumps()
{
    for (volatile int i = 0; i < 100; i = i + 1) {
        if (setjmp(jump) == 0)
            deep_jump(i % 10);
        void *p = std::malloc(48); // after the jump
        expect(p != nullptr, "malloc after longjmp");
        std::free(p);
    }
}

static ucontext_t main_ctx, co_ctx;

__attribute__((noinline)) static void
coroutine_body()
{
    for (int i = 0; i < 50; i++) {
        std::vector<int> *v = new std::vector<int>(16 + i);
        sink = sink + static_cast<long>(v->size());
        delete v;
        swapcontext(&co_ctx, &main_ctx);
    }
}

static void
coroutines()
{
    std::vector<char> stack(256 * 1024);
    getcontext(&co_ctx);
    co_ctx.uc_stack.ss_sp = stack.data();
    co_ctx.uc_stack.ss_size = stack.size();
    co_ctx.uc_link = &main_ctx;
    makecontext(&co_ctx, coroutine_body, 0);
    for (int i = 0; i < 50; i++) {
        swapcontext(&main_ctx, &co_ctx);
        void *p = std::malloc(24); // between resumptions, on the main stack
        expect(p != nullptr, "malloc between coroutine steps");
        std::free(p);
    }
    swapcontext(&main_ctx, &co_ctx); // lets the coroutine return, through uc_link
}

static volatile sig_atomic_t handled;

static void
on_signal(int)
{
    void *p = std::malloc(40); // not async-signal-safe in general; raised synchronously here
    std::free(p);
    handled = handled + 1;
}

static void
signals()
{
    std::signal(SIGUSR1, on_signal);
    for (int i = 0; i < 20; i++)
        std::raise(SIGUSR1);
    expect(handled == 20, "every signal handled");
}

static void *
thread_main(void *arg)
{
    long n = reinterpret_cast<long>(arg);
    for (long i = 0; i < 1000; i++) {
        std::string *s = new std::string(static_cast<size_t>(20 + (i + n) % 50), 't');
        sink = sink + static_cast<long>(s->size());
        delete s;
    }
    try {
        deep_throw(3);
    } catch (const std::exception &) {
    }
    return nullptr;
}

static void
threads()
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        expect(pthread_create(&t[i], nullptr, thread_main, reinterpret_cast<void *>(i)) == 0,
               "pthread_create");
    for (auto &x : t)
        pthread_join(x, nullptr);
}

static void
forks()
{
    pid_t pid = fork();
    expect(pid >= 0, "fork");
    if (pid == 0) {
        exceptions();
        std::_Exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's exceptions");
}

__attribute__((noinline)) static void alloc_here(size_t n);

__attribute__((noinline)) static void
alloc_here_fwd(size_t n)
{
    alloc_here(n);
    sink = sink + 1;
}

__attribute__((noinline)) static void *
own_return_address()
{
    void *p = std::malloc(16);
    std::free(p);
    return __builtin_return_address(0);
}

// The module holding `addr`'s code, by dladdr: "" if none.
static std::string
module_of(const void *addr)
{
    Dl_info info;
    if (dladdr(addr, &info) == 0 || info.dli_fname == nullptr)
        return "";
    return info.dli_fname;
}

static bool
is_zw_module(const void *addr)
{
    return module_of(addr).find("libzwpreload") != std::string::npos;
}

// backtrace(3) from a frame whose callers' return addresses were walked (and, under
// ZW_UNWIND=shadow, replaced) by the allocation just before: the real addresses, none of ours.
__attribute__((noinline)) static int
backtrace_after_alloc(void **frames, int max)
{
    alloc_here_fwd(24);
    int n = backtrace(frames, max);
    sink = sink + n;
    return n;
}

__attribute__((noinline)) static int
backtrace_outer(void **frames, int max)
{
    alloc_here_fwd(40);
    int n = backtrace_after_alloc(frames, max);
    sink = sink + 1;
    return n;
}

static void
return_addresses()
{
    void *a = own_return_address();
    void *b = own_return_address();
    expect(a != nullptr && b != nullptr, "__builtin_return_address");
    // the return address into this function, or (ZW_UNWIND=shadow: the frame's return address
    // was replaced when its allocation was walked) the shadow stack's trampoline
    const char *mode = std::getenv("ZW_UNWIND");
    bool shadow = mode != nullptr && std::strncmp(mode, "shadow", 6) == 0;
    expect(module_of(a) == module_of(reinterpret_cast<void *>(return_addresses)) ||
               (shadow && is_zw_module(a)),
           "__builtin_return_address: this program's code, or the trampoline under shadow");
    void *frames[32];
    int n = backtrace(frames, 32);
    expect(n >= 2, "backtrace(3)");
    char **names = backtrace_symbols(frames, n); // allocates
    expect(names != nullptr, "backtrace_symbols");
    std::free(names);
    for (int round = 0; round < 20; round++) {
        n = backtrace_outer(frames, 32);
        expect(n >= 4, "backtrace(3) after allocations");
        bool ours = false, outer = false;
        for (int i = 0; i < n; i++) {
            ours = ours || is_zw_module(frames[i]);
            uintptr_t f = reinterpret_cast<uintptr_t>(frames[i]);
            outer = outer || f - reinterpret_cast<uintptr_t>(backtrace_outer) < 256;
        }
        expect(!ours, "backtrace(3) gives no address of the tracer's");
        expect(outer, "backtrace(3) gives the return address into backtrace_outer");
    }
}

// ---- walks reused from the last one ----

__attribute__((noinline)) static void
alloc_here(size_t n)
{
    __asm__ volatile("" ::: "memory");
    char *p = static_cast<char *>(std::malloc(n));
    sink = sink + (p != nullptr);
    std::free(p);
}

// Two callers with the same frame: alloc_here's frame lands at the same stack address under
// either, with a different return address above it.
__attribute__((noinline)) static void
caller_a(size_t n)
{
    volatile char pad[32];
    pad[0] = 1;
    alloc_here(n + pad[0]);
    sink = sink + 1;
}

__attribute__((noinline)) static void
caller_b(size_t n)
{
    volatile char pad[32];
    pad[0] = 2;
    alloc_here(n + pad[0]);
    sink = sink + 2;
}

// A frame whose CFA is rbp + 16 (alloca: the compiler keeps a frame pointer here alone), reached
// through frames that use rbp as a plain register.
__attribute__((noinline)) static void
rbp_frame(size_t n)
{
    char *buf = static_cast<char *>(alloca(16 + n % 64));
    buf[0] = static_cast<char>(n);
    alloc_here(n + static_cast<size_t>(buf[0] & 1));
    sink = sink + buf[0];
}

// Allocates from a frame that saves its caller's rbp and uses rbp as a plain register.
__attribute__((noinline)) static void
saves_rbp(size_t n)
{
#ifndef ZWP_FRAME_POINTERS // built with frame pointers (zwp_hazards_fp), rbp is the frame's own
    __asm__ volatile("" ::: "rbp");
#endif
    alloc_here(n);
    sink = sink + 1;
}

static volatile uintptr_t probe_buf;

// A frame whose CFA is rbp + 16, with `pad` bytes of alloca under it: the frames it calls land
// where the caller's depth and `pad` put them. `inner` allocates, or is NULL.
__attribute__((noinline)) static void
rbp_probe(size_t pad, void (*inner)(size_t))
{
    char *buf = static_cast<char *>(alloca(pad));
    buf[0] = 1;
    probe_buf = reinterpret_cast<uintptr_t>(buf);
    if (inner != nullptr)
        inner(24);
    sink = sink + buf[0];
}

__attribute__((noinline)) static void
probe_near(size_t pad, void (*inner)(size_t))
{
    rbp_probe(pad, inner);
    sink = sink + 1;
}

__attribute__((noinline)) static void
probe_far(size_t pad, void (*inner)(size_t))
{
    volatile char room[512];
    room[0] = 0;
    rbp_probe(pad, inner);
    sink = sink + room[0];
}

// The same return addresses at the same stack addresses, under a frame whose CFA rule reads rbp
// and whose rbp differs (kept by the frames above it, or saved by one of them): a walk reused
// from the last one must not be taken on return addresses alone.
static void
same_sp_other_rbp()
{
    const size_t pad = 2048;
    probe_near(pad, nullptr);
    uintptr_t near = probe_buf;
    probe_far(pad, nullptr);
    uintptr_t far = probe_buf;
    expect(far < near && near - far < pad, "probe_far's frame is below probe_near's");
    size_t pad_far = pad - (near - far);
    for (int i = 0; i < 10; i++) {
        void (*inner)(size_t) = i % 2 == 0 ? alloc_here : saves_rbp;
        probe_near(pad, inner);
        probe_far(pad_far, inner);
        expect(probe_buf == near, "the frames above at the same stack address under both callers");
    }
}

// Recursion that allocates on the way down and up, its depth changing from call to call.
__attribute__((noinline)) static void
ladder(int depth, int turn)
{
    volatile long keep = depth * 7 + turn; // rbp or another callee-saved register: changes
    if (depth % 3 == 0)
        alloc_here(16 + static_cast<size_t>(depth));
    if (depth > 0) {
        if ((depth + turn) % 4 == 0)
            rbp_frame(static_cast<size_t>(keep));
        else if ((depth + turn) % 2 == 0)
            caller_a(static_cast<size_t>(depth));
        else
            caller_b(static_cast<size_t>(depth));
        ladder(depth - 1, turn);
    }
    alloc_here(8 + static_cast<size_t>(keep % 40));
}

static void
reused_walks()
{
    for (int turn = 0; turn < 60; turn++) {
        ladder(5 + (turn * 7) % 40, turn);
        if (turn % 2 == 0)
            caller_a(static_cast<size_t>(turn));
        else
            caller_b(static_cast<size_t>(turn));
    }
    expect(sink != 0, "the ladder ran");
}

static ucontext_t ping_ctx, pong_ctx, turns_main;

__attribute__((noinline)) static void
player(int who)
{
    for (int i = 0; i < 40; i++) {
        ladder(3 + (i + who) % 9, who);
        swapcontext(who == 0 ? &ping_ctx : &pong_ctx, who == 0 ? &pong_ctx : &ping_ctx);
    }
}

static void
ping()
{
    player(0);
}

static void
pong()
{
    player(1);
}

// Two coroutines running the same code on stacks of their own, taking turns: the same return
// addresses at other stack addresses after each switch.
static void
coroutine_turns()
{
    std::vector<char> s1(256 * 1024), s2(256 * 1024);
    getcontext(&ping_ctx);
    ping_ctx.uc_stack.ss_sp = s1.data();
    ping_ctx.uc_stack.ss_size = s1.size();
    ping_ctx.uc_link = &turns_main;
    makecontext(&ping_ctx, ping, 0);
    getcontext(&pong_ctx);
    pong_ctx.uc_stack.ss_sp = s2.data();
    pong_ctx.uc_stack.ss_size = s2.size();
    pong_ctx.uc_link = &turns_main;
    makecontext(&pong_ctx, pong, 0);
    swapcontext(&turns_main, &ping_ctx); // back here when one of them returns
    alloc_here(40);
    expect(true, "coroutines took turns");
}

static sigjmp_buf sig_jump;

static void
on_signal_jump(int)
{
    alloc_here(24);
    siglongjmp(sig_jump, 1);
}

__attribute__((noinline)) static void
raise_deep(int depth)
{
    alloc_here(32);
    if (depth > 0)
        raise_deep(depth - 1);
    else
        std::raise(SIGUSR2);
    sink = sink + 1;
}

// Out of a signal handler by siglongjmp, from a deep stack, then allocations from shallower ones.
static void
signal_jumps()
{
    std::signal(SIGUSR2, on_signal_jump);
    int jumped = 0;
    for (volatile int i = 0; i < 30; i = i + 1) {
        if (sigsetjmp(sig_jump, 1) == 0)
            raise_deep(i % 8);
        else
            jumped++;
        caller_a(static_cast<size_t>(i));
    }
    expect(jumped == 30, "every siglongjmp");
}

static void *
short_thread(void *arg)
{
    long n = reinterpret_cast<long>(arg);
    ladder(static_cast<int>(4 + n % 10), static_cast<int>(n));
    return nullptr;
}

// Threads that come and go: each one's last walk is made, reused and released at its exit.
static void
thread_churn()
{
    for (long round = 0; round < 10; round++) {
        pthread_t t[3];
        for (long i = 0; i < 3; i++)
            expect(pthread_create(&t[i], nullptr, short_thread,
                                  reinterpret_cast<void *>(round * 3 + i)) == 0,
                   "pthread_create");
        for (auto &x : t)
            pthread_join(x, nullptr);
    }
}

// ---- return values through replaced return addresses ----
// Each function allocates (so that, under ZW_UNWIND=shadow, its return address is replaced by the
// walk) and returns a value in the registers a trampoline must not touch: rax:rdx (__int128),
// xmm0:xmm1 (a struct of two doubles), st0 (long double).

static volatile long seed = 3;

struct two_doubles {
    double a, b;
};

__attribute__((noinline)) static __int128
ret_int128(int depth)
{
    alloc_here_fwd(16);
    if (depth > 0)
        return ret_int128(depth - 1) + 1;
    return (static_cast<__int128>(seed) << 64) | static_cast<unsigned long>(seed * 7);
}

__attribute__((noinline)) static two_doubles
ret_two_doubles(int depth)
{
    alloc_here_fwd(24);
    if (depth > 0) {
        two_doubles d = ret_two_doubles(depth - 1);
        return {d.a + 1.0, d.b - 1.0};
    }
    return {static_cast<double>(seed) * 0.5, static_cast<double>(seed) * 0.25};
}

__attribute__((noinline)) static long double
ret_long_double(int depth)
{
    alloc_here_fwd(32);
    if (depth > 0)
        return ret_long_double(depth - 1) * 2.0L;
    return static_cast<long double>(seed) / 3.0L;
}

static void
return_values()
{
    for (int i = 0; i < 20; i++) {
        int d = i % 6;
        __int128 x = ret_int128(d);
        __int128 want = ((static_cast<__int128>(seed) << 64) | static_cast<unsigned long>(seed * 7)) + d;
        expect(x == want, "rax:rdx through returns");
        two_doubles t = ret_two_doubles(d);
        expect(t.a == seed * 0.5 + d && t.b == seed * 0.25 - d, "xmm0:xmm1 through returns");
        long double l = ret_long_double(d);
        long double lw = static_cast<long double>(seed) / 3.0L;
        for (int k = 0; k < d; k++)
            lw *= 2.0L;
        expect(l == lw, "st0 (long double) through returns");
    }
}

// ---- pthread_exit and pthread_cancel (forced unwinds) from frames whose return addresses were
// walked: glibc runs libgcc's unwinder itself, through frames without cleanups up to the first
// frame whose return address was walked (and, under ZW_UNWIND=shadow, replaced); every destructor
// of the frames above must run ----

static volatile int cleanups;
static volatile int cancel_ready;

struct Cleanup {
    ~Cleanup()
    {
        cleanups = cleanups + 1;
        alloc_here(48); // allocates while the forced unwind runs
    }
};

// Allocates in a loop from two frames without cleanups, then exits (or waits to be cancelled):
// the loop's own frames churn, the ones under it were walked at every allocation.
__attribute__((noinline)) static void
exit_spin(bool cancel)
{
    for (int i = 0;; i++) {
        alloc_here_fwd(8);
        if (!cancel && i == 200)
            pthread_exit(nullptr);
        if (cancel && i >= 200) {
            cancel_ready = 1;
            usleep(1000); // a cancellation point
        }
    }
}

__attribute__((noinline)) static void
exit_plain(bool cancel)
{
    exit_spin(cancel);
    sink = sink + 1;
}

__attribute__((noinline)) static void
exit_deep(int depth, bool cancel)
{
    if (depth < 0)
        return;
    Cleanup c;
    alloc_here_fwd(16 + static_cast<size_t>(depth));
    if (depth == 0)
        exit_plain(cancel);
    else
        exit_deep(depth - 1, cancel);
    sink = sink + 1;
}

static void *
exiting_thread(void *arg)
{
    long n = reinterpret_cast<long>(arg);
    exit_deep(static_cast<int>(n / 2), n % 2 == 1);
    return nullptr;
}

static void
thread_exits()
{
    for (long i = 0; i < 12; i++) {
        cleanups = 0;
        cancel_ready = 0;
        pthread_t t;
        expect(pthread_create(&t, nullptr, exiting_thread, reinterpret_cast<void *>(i + 4)) == 0,
               "pthread_create");
        if (i % 2 == 1) { // i + 4 odd: cancelled
            while (cancel_ready == 0)
                usleep(100);
            expect(pthread_cancel(t) == 0, "pthread_cancel");
        }
        void *ret = nullptr;
        pthread_join(t, &ret);
        expect(ret == (i % 2 == 1 ? PTHREAD_CANCELED : nullptr), "the thread's end");
        expect(cleanups == static_cast<int>((i + 4) / 2) + 1,
               "every destructor ran in pthread_exit's and pthread_cancel's unwinds");
    }
}

// ---- a library called back through, left by longjmp, unloaded, loaded again ----

static jmp_buf lib_jump;
static int lib_calls;

static void
lib_callback(int i)
{
    ladder(3 + i % 4, i);
    lib_calls++;
    if (i == 5)
        std::longjmp(lib_jump, 1); // leaves the library's frame without a return
}

static void
unloaded_library()
{
    for (volatile int round = 0; round < 6; round = round + 1) {
        void *lib = dlopen(ZWP_HAZARDS_LIB, RTLD_NOW | RTLD_LOCAL);
        expect(lib != nullptr, "dlopen the hazards library");
        auto call = reinterpret_cast<void (*)(void (*)(int), int)>(dlsym(lib, "hazards_lib_call"));
        expect(call != nullptr, "dlsym hazards_lib_call");
        call(lib_callback, 3); // returns through the library
        if (setjmp(lib_jump) == 0)
            call(lib_callback, 8);
        expect(dlclose(lib) == 0, "dlclose the hazards library");
        alloc_here(64); // after the unload
    }
    expect(lib_calls == 6 * (3 + 6), "the library's callbacks");
}

// ---- a coroutine whose stack lies inside the thread's own (a buffer of main's frame) ----

static ucontext_t in_stack_main, in_stack_co;

static void
in_stack_body()
{
    for (int i = 0; i < 20; i++) {
        ladder(2 + i % 5, i);
        swapcontext(&in_stack_co, &in_stack_main);
    }
}

__attribute__((noinline)) static void
in_stack_steps(int i)
{
    ladder(3 + i % 6, i); // this context's frames, below the buffer
    swapcontext(&in_stack_main, &in_stack_co);
    alloc_here(40);
}

static void
in_stack_coroutine()
{
    alignas(16) char stack[128 * 1024];
    getcontext(&in_stack_co);
    in_stack_co.uc_stack.ss_sp = stack;
    in_stack_co.uc_stack.ss_size = sizeof(stack);
    in_stack_co.uc_link = &in_stack_main;
    makecontext(&in_stack_co, in_stack_body, 0);
    for (int i = 0; i < 20; i++)
        in_stack_steps(i);
    swapcontext(&in_stack_main, &in_stack_co); // lets the coroutine return
    expect(true, "a coroutine on a stack inside the thread's");
}

int
main()
{
    exceptions();
    longjumps();
    coroutines();
    signals();
    threads();
    forks();
    return_addresses();
    reused_walks();
    same_sp_other_rbp();
    coroutine_turns();
    signal_jumps();
    thread_churn();
    return_values();
    thread_exits();
    unloaded_library();
    in_stack_coroutine(); // last: under ZW_UNWIND=shadow, patching stops for the process here
    std::printf("hazards ok %d\n", checks);
    return 0;
}

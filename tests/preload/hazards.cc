// tests/preload/hazards.cc - allocations through the places an unwinder can go wrong, built
// without frame pointers so that every traceback comes from the unwinder: C++ exceptions thrown
// through allocating frames and destructors, longjmp out of them, coroutines on stacks of their
// own (makecontext/swapcontext), a signal handler, threads, fork, and functions that read their
// own return addresses (__builtin_return_address, backtrace(3)). Under zw run with ZW_UNWIND=check
// every CFA walk is compared with libunwind's; prints "hazards ok N" with the count of checks
// that held, and exits 0.
#include <csetjmp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

__attribute__((noinline)) static void *
own_return_address()
{
    void *p = std::malloc(16);
    std::free(p);
    return __builtin_return_address(0);
}

static void
return_addresses()
{
    void *a = own_return_address();
    void *b = own_return_address();
    expect(a != nullptr && b != nullptr, "__builtin_return_address");
    void *frames[32];
    int n = backtrace(frames, 32);
    expect(n >= 2, "backtrace(3)");
    char **names = backtrace_symbols(frames, n); // allocates
    expect(names != nullptr, "backtrace_symbols");
    std::free(names);
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
    std::printf("hazards ok %d\n", checks);
    return 0;
}

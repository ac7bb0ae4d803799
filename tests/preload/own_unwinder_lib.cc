/* tests/preload/own_unwinder_lib.cc - C++ exceptions thrown through frames that allocated, by
 * code linked with its own copy of the C++ runtime and of libgcc's unwinder (-static-libstdc++
 * -static-libgcc, as GCC's compilers and the JVM are built): its throws never call the shared
 * libgcc's entry points, so the shadow unwinder must not have replaced a return address they
 * read. Linked into zwp_own_unwinder, and built as a library zwp_own_unwinder_dl loads. */
#include <stdexcept>
#include <string>
#include <vector>

static std::vector<std::string *> keep;

/* n + 1 frames deep, each allocating before and after the call below it; the innermost throws
 * every third round */
__attribute__((noinline)) static int
deep(int n, int round)
{
    keep.push_back(new std::string(100 + n, 'x'));
    if (n == 0) {
        if (round % 3 == 0)
            throw std::runtime_error("round " + std::to_string(round));
        return 1;
    }
    int r = deep(n - 1, round) + 1;
    keep.push_back(new std::string(50, 'y'));
    return r;
}

/* The rounds whose exception was caught (one in three), everything freed. */
extern "C" int
own_unwinder_run(int rounds)
{
    int caught = 0;
    for (int round = 0; round < rounds; round++) {
        try {
            deep(20, round);
        } catch (const std::exception &) {
            caught++;
        }
    }
    for (std::string *s : keep)
        delete s;
    keep.clear();
    return caught;
}

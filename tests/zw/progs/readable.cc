// tests/zw/progs/readable.cc - C++ names for zw to demangle and an allocation wrapper for it to look
// past: 2000 blocks of 1000 bytes made by grab() (operator new[] in a helper) called from a lambda,
// 500 blocks of 256 bytes made by a member function of a class template (operator new), all kept to
// the end.
// Without --alloc-fn the largest site is grab's line (operator new[] is a built-in allocation
// function); with --alloc-fn 'grab*' it is the lambda's line that calls grab.
#include <cstddef>
#include <cstdio>
#include <vector>

struct Block {
    char bytes[256];
};

namespace shapes {
template <typename T> struct Pool {
    std::vector<T *> items;
    __attribute__((noinline)) T *make(const T &v)
    {
        T *p = new T(v); // POOL_NEW
        items.push_back(p);
        return p;
    }
};
} // namespace shapes

__attribute__((noinline)) static char *
grab(std::size_t n)
{
    char *p = new char[n]; // GRAB_NEW
    p[0] = 1;
    return p;
}

int
main()
{
    std::vector<char *> keep;
    keep.reserve(2000);
    auto fill = [&keep](int n) {
        for (int i = 0; i < n; i++)
            keep.push_back(grab(1000)); // LAMBDA_CALL
    };
    fill(2000);
    shapes::Pool<Block> pool;
    pool.items.reserve(500);
    for (int i = 0; i < 500; i++)
        pool.make(Block{{static_cast<char>(i)}});
    long sum = 0;
    for (char *p : keep)
        sum += p[0];
    std::printf("%ld %zu\n", sum, pool.items.size());
    return 0;
}

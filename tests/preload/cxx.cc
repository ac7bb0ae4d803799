// tests/preload/cxx.cc - 100000 new/delete pairs through make() and 1000 strings kept in a vector:
// under zw run every one is found at its caller (operator new's frame is repaired from a learnt
// stack slot after the first few are unwound with DWARF) and the allocations make one site.
#include <cstdio>
#include <string>
#include <vector>

__attribute__((noinline)) static int *
make(int i)
{
    return new int(i); // MAKE
}

__attribute__((noinline)) static long
churn(int n)
{
    long s = 0;
    for (int i = 0; i < n; i++) {
        int *p = make(i);
        s += *p;
        delete p;
    }
    return s;
}

int
main()
{
    long s = churn(100000);
    std::vector<std::string> keep;
    for (int i = 0; i < 1000; i++)
        keep.push_back(std::string(40, static_cast<char>('a' + i % 26)));
    std::printf("%ld %zu\n", s, keep.size());
    return 0;
}

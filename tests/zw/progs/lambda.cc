// tests/zw/progs/lambda.cc - allocations made inside lambdas, for zw to name the lambda and the
// function around it rather than a bare operator(): 300 blocks of 64 bytes from a lambda inlined
// into ns::build (its name comes from DWARF), 200 blocks of 32 bytes from a lambda kept out of line
// (its name comes from the symbol table), 100 blocks of 16 bytes from an inlined lambda in a block,
// all kept to the end.
#include <cstdio>
#include <vector>

namespace ns {
__attribute__((noinline)) std::vector<char *>
build(int n)
{
    std::vector<char *> out;
    out.reserve(static_cast<std::size_t>(n) + 300);
    auto inlined = [&out](int size) {
        out.push_back(new char[size]); // INLINED_NEW
    };
    for (int i = 0; i < n; i++)
        inlined(64);
    auto outline = [&out](long size) __attribute__((noinline)) {
        out.push_back(new char[size]); // OUTLINE_NEW
    };
    for (int i = 0; i < 200; i++)
        outline(32);
    if (n > 0) { /* a lambda in a block: the block is no scope of its name */
        auto nested = [&out](short size) {
            out.push_back(new char[size]); // NESTED_NEW
        };
        for (int i = 0; i < 100; i++)
            nested(16);
    }
    return out;
}
} // namespace ns

int
main()
{
    std::vector<char *> keep = ns::build(300);
    std::printf("%zu\n", keep.size());
    return 0;
}

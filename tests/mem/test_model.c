#include <criterion/criterion.h>
#include <zerowaste/zerowaste.h>
Test(placeholder, builds) { cr_assert(zw_version() != NULL); }

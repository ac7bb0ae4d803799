/* tests/preload/hazards_lib.c - a library hazards.cc loads, calls back through and unloads: the
 * callback allocates, so the return address into this library is walked (and, under
 * ZW_UNWIND=shadow, replaced) before the library goes. Built without frame pointers. */
__attribute__((visibility("default"))) void
hazards_lib_call(void (*callback)(int), int n)
{
    for (int i = 0; i < n; i++)
        callback(i);
    __asm__ volatile("" ::: "memory"); /* not a tail call: this frame stays under the callback */
}

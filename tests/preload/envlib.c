/* tests/preload/envlib.c - a library for the user's own LD_PRELOAD (tests/preload/test_env.sh):
 * it does nothing, so a program runs the same with or without it. */
int zwp_envlib_marker(void);

int
zwp_envlib_marker(void)
{
    return 42;
}

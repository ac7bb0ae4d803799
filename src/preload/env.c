/* preload/env.c - zw's variables out of the traced program's sight, and back in each child's.
 *
 *   save:   at start, the variables the library reads (ZW_VARS) and its own entries of LD_PRELOAD
 *           are copied to memory of zw's (mapped, never the program's malloc); the library reads
 *           its settings from there (zwi_preload_env)
 *   scrub:  in the constructor, before main, they are taken out of `environ` in place: their
 *           entries are dropped by shifting the pointer array, and LD_PRELOAD, if it named other
 *           libraries too, points at a copy without ours. No setenv or unsetenv: they allocate,
 *           through the program's malloc. main's envp is the same array, so it sees the same.
 *   child:  each way a program starts another one (the exec family, posix_spawn, and system()
 *           and popen(), which spawn.c rebuilds on posix_spawn) passes an environment made here:
 *           the one the program gave, plus the saved variables it does not set itself, with this
 *           library first in LD_PRELOAD. With ZW_FOLLOW_EXEC=0 nothing is added. A fork child
 *           inherits the scrubbed environment and is followed by the fork handlers (life.c).
 *
 * Only the variables the library reads are taken: the in-process library's own (ZW_MALLOC,
 * ZW_HASHSEED...) stay, as they are the program's settings. See docs/zw.md#environment. */
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "debugfiles.h"
#include "preload_internal.h"

extern char **environ;

#define LD_PRELOAD_EQ     "LD_PRELOAD="
#define LD_PRELOAD_EQ_LEN (sizeof(LD_PRELOAD_EQ) - 1)
#define OURS_PREFIX       "libzwpreload" /* the base name of an LD_PRELOAD entry that is ours */
#define PRELOAD_SEPS      " :"           /* what separates LD_PRELOAD's entries (ld.so's) */

/* The variables libzwpreload.so reads, in the order of G.env.vars. */
static const char *const zw_vars[ZWI_ENV_NVARS] = {
    "ZW_OUTPUT",      "ZW_NFRAME",     "ZW_INTERVAL_MS", "ZW_FLUSH_MS",    "ZW_FOLLOW_FORK",
    "ZW_FOLLOW_EXEC", "ZW_LEAK_CHECK", "ZW_LEAK_MARKS",  "ZW_MARK_SIGNAL", "ZW_UNWIND",
    "ZW_BOOKKEEPING", "ZW_RING",        "ZW_DEBUG_CACHE", "ZW_DEBUG_CACHE_MAX", "ZW_TABLE_AHEAD",
    "ZW_END_THREAD"};

/* Mapped memory of `len` bytes, by the system call (never a hook), or NULL. */
static void *
map_bytes(size_t len)
{
    void *p = (void *)syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* The length of the name of environment entry `e` if it is `name=...`, else 0. */
static size_t
is_named(const char *e, const char *name)
{
    size_t n = strlen(name);
    return strncmp(e, name, n) == 0 && e[n] == '=' ? n : 0;
}

/* Which of zw_vars entry `e` sets, or -1. */
static int
zw_var_of(const char *e)
{
    if (e[0] != 'Z' || e[1] != 'W' || e[2] != '_')
        return -1;
    for (int i = 0; i < ZWI_ENV_NVARS; i++)
        if (is_named(e, zw_vars[i]))
            return i;
    return -1;
}

/* True if LD_PRELOAD's entry s[0, len) is this library: its base name starts with OURS_PREFIX. */
static bool
is_ours(const char *s, size_t len)
{
    size_t base = len;
    while (base > 0 && s[base - 1] != '/')
        base--;
    return len - base >= sizeof(OURS_PREFIX) - 1 &&
           memcmp(s + base, OURS_PREFIX, sizeof(OURS_PREFIX) - 1) == 0;
}

/* LD_PRELOAD's value `v` split: our entries joined by ':' to *ours, the others to *rest exactly
 * as written (separators kept, an entry of ours taken out with the separators after it); each
 * gets at most strlen(v) + 1 bytes. Returns how many entries are ours. */
static int
split_preload(const char *v, char *ours, char *rest)
{
    int n = 0;
    bool last_ours = false;
    size_t o = 0, r = 0;
    size_t lead = strspn(v, PRELOAD_SEPS);
    memcpy(rest, v, lead); /* leading separators, as written */
    r = lead;
    for (const char *s = v + lead; *s != '\0';) {
        size_t len = strcspn(s, PRELOAD_SEPS);
        size_t seps = strspn(s + len, PRELOAD_SEPS);
        if (is_ours(s, len)) {
            if (o > 0)
                ours[o++] = ':';
            memcpy(ours + o, s, len);
            o += len;
            n++;
        } else {
            memcpy(rest + r, s, len + seps);
            r += len + seps;
        }
        last_ours = is_ours(s, len);
        s += len + seps;
    }
    /* ours last ("a:ours"): the separators before it go too */
    while (last_ours && r > lead && strchr(PRELOAD_SEPS, rest[r - 1]) != NULL)
        r--;
    ours[o] = '\0';
    rest[r] = '\0';
    return n;
}

/* True if `s` has an entry that is not a separator. */
static bool
has_entry(const char *s)
{
    return s[strspn(s, PRELOAD_SEPS)] != '\0';
}

void
zwi_preload_env_save(void)
{
    G.env.pid = getpid();
    if (G.env.saved || environ == NULL) {
        G.env.saved = true;
        return;
    }
    size_t need = 0;
    for (char **e = environ; *e != NULL; e++)
        if (zw_var_of(*e) >= 0)
            need += strlen(*e) + 1;
        else if (is_named(*e, "LD_PRELOAD"))
            need += 2 * (strlen(*e) + 1); /* ours, and the program's "LD_PRELOAD=rest" */
    char *block = need > 0 ? map_bytes(need) : NULL;
    if (block == NULL) { /* nothing to save, or no memory: the variables stay where they are */
        G.env.saved = true;
        return;
    }
    size_t used = 0;
    bool preload_seen = false;
    for (char **e = environ; *e != NULL; e++) {
        int i = zw_var_of(*e);
        if (i >= 0 && G.env.vars[i] == NULL) { /* the first, as getenv finds it */
            size_t len = strlen(*e) + 1;
            memcpy(block + used, *e, len);
            G.env.vars[i] = block + used;
            used += len;
        } else if (i < 0 && !preload_seen && is_named(*e, "LD_PRELOAD")) {
            preload_seen = true;
            const char *v = *e + LD_PRELOAD_EQ_LEN;
            size_t len = strlen(v) + 1;
            char *ours = block + used;
            char *rest = ours + len + LD_PRELOAD_EQ_LEN;
            memcpy(rest - LD_PRELOAD_EQ_LEN, LD_PRELOAD_EQ, LD_PRELOAD_EQ_LEN);
            if (split_preload(v, ours, rest) > 0) {
                G.env.ours = ours;
                G.env.preload_rest = has_entry(rest) ? rest - LD_PRELOAD_EQ_LEN : NULL;
                G.env.preload_had_ours = true;
            }
            used += 2 * (len + LD_PRELOAD_EQ_LEN);
        }
    }
    G.env.saved = true;
    /* the symboliser reads it at exit, when it is no longer in the environment */
    zwi_debug_cache_set(zwi_preload_env("ZW_DEBUG_CACHE"));
    zwi_debug_cache_max_set(zwi_preload_env("ZW_DEBUG_CACHE_MAX"));
}

const char *
zwi_preload_env(const char *name)
{
    for (int i = 0; i < ZWI_ENV_NVARS; i++)
        if (strcmp(name, zw_vars[i]) == 0)
            return G.env.vars[i] != NULL ? G.env.vars[i] + strlen(name) + 1 : NULL;
    return NULL;
}

void
zwi_preload_env_scrub(void)
{
    if (!G.env.saved || G.env.scrubbed || environ == NULL)
        return;
    G.env.scrubbed = true;
    bool placed = false;
    char **to = environ;
    for (char **e = environ; *e != NULL; e++) {
        if (zw_var_of(*e) >= 0 && G.env.vars[zw_var_of(*e)] != NULL)
            continue; /* saved: the program does not see it */
        if (G.env.preload_had_ours && is_named(*e, "LD_PRELOAD")) {
            /* every LD_PRELOAD entry goes; the first is replaced by the rest of its libraries */
            if (G.env.preload_rest != NULL && !placed)
                *to++ = (char *)G.env.preload_rest;
            placed = true;
            continue;
        }
        *to++ = *e;
    }
    *to = NULL;
}

/* ---- a child's environment ---- */

/* The entry of `envp` named `name` (first), or NULL. */
static char *const *
find_entry(char *const *envp, const char *name)
{
    for (char *const *e = envp; *e != NULL; e++)
        if (is_named(*e, name))
            return e;
    return NULL;
}

/* True if LD_PRELOAD's value `v` names this library. */
static bool
preload_has_ours(const char *v)
{
    for (const char *s = v + strspn(v, PRELOAD_SEPS); *s != '\0';) {
        size_t len = strcspn(s, PRELOAD_SEPS);
        if (is_ours(s, len))
            return true;
        s += len;
        s += strspn(s, PRELOAD_SEPS);
    }
    return false;
}

size_t
zwi_preload_child_env_plan(char *const *envp, zwi_child_env *ce)
{
    static char *const empty[1] = {NULL};
    *ce = (zwi_child_env){.in = envp != NULL ? envp : empty};
    if (!G.env.saved || !G.follow_exec)
        return 0;
    /* what to add: each saved variable the program does not set itself, and ours in LD_PRELOAD */
    size_t add = 0, bytes = 0;
    while (ce->in[ce->n] != NULL)
        ce->n++;
    for (int i = 0; i < ZWI_ENV_NVARS; i++) {
        ce->want[i] = G.env.vars[i] != NULL && find_entry(ce->in, zw_vars[i]) == NULL;
        add += ce->want[i];
    }
    ce->lp = find_entry(ce->in, "LD_PRELOAD");
    const char *lp_val = ce->lp != NULL ? *ce->lp + LD_PRELOAD_EQ_LEN : NULL;
    ce->merge = G.env.ours != NULL && (lp_val == NULL || !preload_has_ours(lp_val));
    if (add == 0 && !ce->merge)
        return 0; /* the program passes them on itself (or there is nothing of ours) */
    if (ce->merge) {
        add++;
        bytes =
            LD_PRELOAD_EQ_LEN + strlen(G.env.ours) + 1 + (lp_val != NULL ? strlen(lp_val) + 1 : 0);
    }
    ce->ptrs = (ce->n + add + 1) * sizeof(char *);
    ce->need = ce->ptrs + bytes;
    return ce->need;
}

char *const *
zwi_preload_child_env_build(char *const *envp, zwi_child_env *ce, void *buf)
{
    if (ce->need == 0)
        return envp;
    char *mem = buf;
    if (mem == NULL || ((uintptr_t)mem & (sizeof(char *) - 1)) != 0) {
        mem = map_bytes(ce->need);
        if (mem == NULL)
            return envp; /* no memory: the child runs untraced rather than not at all */
        ce->map = mem;
        ce->map_len = ce->need;
    }
    char *const *in = ce->in;
    char **out = (char **)(void *)mem;
    char *merged = mem + ce->ptrs; /* after the pointers: "LD_PRELOAD=ours:theirs" */
    size_t k = 0;
    if (ce->merge) { /* ours first: its malloc must be the one the child's program calls */
        const char *lp_val = ce->lp != NULL ? *ce->lp + LD_PRELOAD_EQ_LEN : NULL;
        size_t len = strlen(G.env.ours);
        memcpy(merged, LD_PRELOAD_EQ, LD_PRELOAD_EQ_LEN);
        memcpy(merged + LD_PRELOAD_EQ_LEN, G.env.ours, len);
        size_t at = LD_PRELOAD_EQ_LEN + len;
        if (lp_val != NULL && has_entry(lp_val)) {
            merged[at++] = ':';
            memcpy(merged + at, lp_val, strlen(lp_val));
            at += strlen(lp_val);
        }
        merged[at] = '\0';
    }
    for (size_t i = 0; i < ce->n; i++) {
        if (ce->merge && is_named(in[i], "LD_PRELOAD")) {
            if (in + i == ce->lp) /* the first stays where it was, merged; ld.so takes the last */
                out[k++] = merged;
            continue;
        }
        out[k++] = in[i];
    }
    if (ce->merge && ce->lp == NULL)
        out[k++] = merged;
    for (int i = 0; i < ZWI_ENV_NVARS; i++)
        if (ce->want[i])
            out[k++] = (char *)G.env.vars[i];
    out[k] = NULL;
    return out;
}

bool
zwi_preload_in_vfork_child(void)
{
    return G.env.saved && getpid() != G.env.pid;
}

void
zwi_preload_env_forked(void)
{
    G.env.pid = getpid();
}

void
zwi_preload_child_env_release(zwi_child_env *ce)
{
    if (ce->map != NULL)
        syscall(SYS_munmap, ce->map, ce->map_len);
    ce->map = NULL;
}

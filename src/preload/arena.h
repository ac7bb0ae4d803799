/* preload/arena.h - the end of a capture's memory: a door (zw_raw) whose blocks come from pages
 * mapped and populated in chunks, never reused, all unmapped at once by zwi_arena_free. Used by
 * one thread at a time, like every door.
 *
 *   zwi_arena_new -> zwi_arena_door (one or more; destroyed with zw_raw_destroy, or by the
 *   snapshot that owns it) -> blocks -> zwi_arena_free */
#ifndef ZW_PRELOAD_ARENA_H
#define ZW_PRELOAD_ARENA_H

#include <zerowaste/raw.h>

#include "zw_assert.h"

typedef struct zwi_arena zwi_arena;

ZW_HIDDEN zwi_arena *zwi_arena_new(void); /* NULL if out of memory */
/* A door handing out the arena's blocks (NULL: out of memory). Its free gives nothing back; its
 * realloc grows the block handed out last in place while its chunk has room. */
ZW_HIDDEN zw_raw *zwi_arena_door(zwi_arena *a);
/* Unmaps every block of every door of `a`; NULL does nothing. */
ZW_HIDDEN void zwi_arena_free(zwi_arena *a);

#endif /* ZW_PRELOAD_ARENA_H */

/* trace/debugfiles.h - where the symboliser finds a module's separate debug information
 * (debugfiles.c): build-id directories and debuglink, debuginfod only when DEBUGINFOD_URLS is
 * set, and the cache of inflated copies of compressed debug files. */
#ifndef ZW_DEBUGFILES_H
#define ZW_DEBUGFILES_H

#include <elfutils/libdwfl.h>

#include "zw_assert.h"

/* libdwfl's find_debuginfo callback (Dwfl_Callbacks). */
ZW_HIDDEN int zwi_debug_find(Dwfl_Module *mod, void **userdata, const char *modname,
                             Dwarf_Addr base, const char *file_name, const char *debuglink_file,
                             GElf_Word debuglink_crc, char **debuginfo_file_name);

/* Where the debug cache is: a directory, "off" or "" for none, NULL for the default. Overrides
 * ZW_DEBUG_CACHE (the preload library reads that variable before taking it out of the program's
 * environment). The string must outlive the process's symbolisers. */
ZW_HIDDEN void zwi_debug_cache_set(const char *value);

/* The cache's size limit: a size as ZW_DEBUG_CACHE_MAX takes it, NULL or "" for the default.
 * Overrides ZW_DEBUG_CACHE_MAX, as zwi_debug_cache_set() does ZW_DEBUG_CACHE. */
ZW_HIDDEN void zwi_debug_cache_max_set(const char *value);

#endif

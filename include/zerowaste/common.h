/* zerowaste/common.h - what every layer's public header shares: the export macro, the version
 * and the caller-held error record. See docs/mem.md for the conventions on errors. */
#ifndef ZEROWASTE_COMMON_H
#define ZEROWASTE_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#    define ZW_API __attribute__((visibility("default")))
#else
#    define ZW_API
#endif

#define ZW_VERSION_MAJOR  0
#define ZW_VERSION_MINOR  1
#define ZW_VERSION_PATCH  0
#define ZW_VERSION_STRING "0.1.0"

/* Returns the version of the library the program runs with, e.g. "0.1.0". */
ZW_API const char *zw_version(void);

/* A message about the last failure, held by the caller: functions that take a `zw_error *` fill
 * it when they return -1 or NULL. NULL may be passed where the caller does not want the text. */
typedef struct zw_error {
    char msg[512]; /* lower case, no final period: "cannot read 'x.zws': truncated at byte 12" */
} zw_error;

/* Formats a message into `err` (if not NULL) and returns -1, so a caller can write
 * `return zw_error_set(err, "...", ...);`. */
ZW_API int zw_error_set(zw_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif /* ZEROWASTE_COMMON_H */

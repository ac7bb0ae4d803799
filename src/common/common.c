/* common/common.c - the version and the error record shared by every layer. */
#include <stdarg.h>
#include <stdio.h>

#include <zerowaste/common.h>

const char *
zw_version(void)
{
    return ZW_VERSION_STRING;
}

int
zw_error_set(zw_error *err, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The convention for errors across the project: a negative errno returned,
 * and the reason, for a person, written into the caller's why[] buffer. */
#ifndef PLAT_WHY_H
#define PLAT_WHY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Format the reason into why[size] (when given) and return `rc`. */
static inline int plat_why(char *why, size_t size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int plat_why(char *why, size_t size, int rc, const char *fmt, ...)
{
    if (why && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

#endif

/*
 * xalloc.h - allocation that never fails.
 *
 * Out of memory aborts the process with a message: the sync state is
 * crash-safe, so there is nothing to save and no caller has to test for NULL.
 * Every heap allocation in ferry goes through this family.
 */
#ifndef FERRY_XALLOC_H
#define FERRY_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Grow an array of `*cap` elements of `size` bytes to hold at least `need`. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Overwrite a secret before it is freed; never optimised away. */
void wipe(void *p, size_t n);
/* wipe(s, strlen(s)) then free(s); NULL is fine. */
void free_secret(char *s);

#endif

/*
 * buf.h - a growable byte buffer with a mandatory size cap.
 *
 * Every buffer that holds data from outside (server, files, commands) is
 * given a cap when it is initialised; appends beyond it fail with ERR_LIMIT
 * and leave the buffer as it was.  The data is always NUL-terminated (the
 * terminator is not counted in len), so buf_cstr() is valid after any call.
 *
 * Ownership: the buffer owns `data`.  buf_release() frees it and leaves the
 * buffer empty and reusable with the same cap; buf_reset() keeps the memory.
 * buf_detach() hands `data` to the caller (free() it) and resets the buffer.
 */
#ifndef FERRY_BUF_H
#define FERRY_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

struct buf {
	char *data;
	size_t len;
	size_t cap;     /* allocated, including the terminator */
	size_t max;     /* largest len allowed */
};

#define BUF_INIT(maxlen) { NULL, 0, 0, (maxlen) }

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
/* As buf_release(), wiping the contents first (for secrets). */
void buf_release_secret(struct buf *b);
char *buf_detach(struct buf *b, size_t *len_out);

/* Make room for `n` more bytes; -1 with ERR_LIMIT if len + n > max. */
int buf_reserve(struct buf *b, size_t n, struct err *e);
int buf_add(struct buf *b, const void *p, size_t n, struct err *e);
int buf_adds(struct buf *b, const char *s, struct err *e);
int buf_addc(struct buf *b, char c, struct err *e);
int buf_addf(struct buf *b, struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int buf_vaddf(struct buf *b, struct err *e, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* Remove the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Shorten to n bytes (n <= len). */
void buf_truncate(struct buf *b, size_t n);

static inline const char *buf_cstr(const struct buf *b)
{
	return b->data ? b->data : "";
}

#endif

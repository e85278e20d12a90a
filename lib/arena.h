/*
 * arena.h - a bump allocator for data that lives and dies together
 * (one parsed response, one mailbox's snapshot and plan).
 *
 * Memory from arena_alloc() stays valid until arena_release() or
 * arena_reset(); individual allocations are never freed.  Allocations are
 * aligned for any type.  Out of memory aborts (see xalloc.h).
 */
#ifndef FERRY_ARENA_H
#define FERRY_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;
	size_t chunk_size;      /* default size of new chunks */
	size_t used;            /* bytes handed out, for accounting */
};

void arena_init(struct arena *a, size_t chunk_size);
/* Free every chunk; the arena is empty and reusable. */
void arena_release(struct arena *a);
/* Keep the first chunk, drop the rest: cheap reuse between responses. */
void arena_reset(struct arena *a);

void *arena_alloc(struct arena *a, size_t n);
void *arena_zalloc(struct arena *a, size_t n);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define ARENA_NEW(a, type) ((type *)arena_zalloc((a), sizeof(type)))
#define ARENA_NEW_ARRAY(a, type, n) ((type *)arena_zalloc((a), sizeof(type) * (n)))

#endif

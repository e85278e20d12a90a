/*
 * maildir_int.h - private helpers shared by the maildir_*.c files.
 */
#ifndef FERRY_MAILDIR_INT_H
#define FERRY_MAILDIR_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "maildir.h"

/* Room for a quoted name in an error message. */
#define MAILDIR_QUOTE_MAX 160

/*
 * Copy `s` into `out` (size MAILDIR_QUOTE_MAX) for an error message: control
 * bytes, '"' and '\' as \xNN, truncated with "..." if long.  Returns out.
 */
const char *maildir_quote(const char *s, char out[MAILDIR_QUOTE_MAX]);

bool maildir_utf8_valid(const char *s, size_t n);

/* Escape `host` for a unique name (xmalloc'd). */
char *maildir_host_escape(const char *host);

/* "SEC.M<usec>P<pid>Q<counter>R<hex>.HOST" (xmalloc'd); bumps md->counter. */
char *maildir_uniq_new(struct maildir *md);

/* Read dovecot-keywords at dir_fd into table (strings xmalloc'd). */
int maildir_keywords_load(int dir_fd, char *table[MAILDIR_KEYWORDS_MAX], struct err *e);
void maildir_keywords_clear(char *table[MAILDIR_KEYWORDS_MAX]);
/* Parse dovecot-keywords text ("N name" lines) into an empty table. */
void maildir_keywords_parse(const char *data, size_t len, char *table[MAILDIR_KEYWORDS_MAX]);

#endif

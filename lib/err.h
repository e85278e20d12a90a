/*
 * err.h - the error record every fallible call in ferry fills.
 *
 * Convention: a fallible function returns 0 on success and -1 on failure,
 * and on failure fills the caller's `struct err`.  "Not found" is a result
 * (return 0 or 1, documented per function), not an error.  Foreign codes
 * (errno, GnuTLS, LMDB, zlib) are converted at module edges; the original
 * code is kept in `sys` / `lib` for diagnostics.
 *
 * Messages are lower case, name the problem first and quote the subject:
 *     cannot open "/home/me/Mail/INBOX/cur": permission denied
 * Context is added on the way up with err_prefix():
 *     account "work": mailbox "Sent": cannot open ...
 *
 * A `struct err` owns no heap memory: it may be copied, and needs no release.
 */
#ifndef FERRY_ERR_H
#define FERRY_ERR_H

#include <stdbool.h>
#include <stddef.h>

enum err_code {
	ERR_NONE = 0,
	ERR_USAGE,      /* bad command line */
	ERR_CONFIG,     /* bad configuration: message names file:line:col */
	ERR_AUTH,       /* authentication refused or impossible */
	ERR_NET,        /* connect, resolve, connection lost */
	ERR_TLS,        /* handshake, certificate, pin */
	ERR_TIMEOUT,    /* an operation took longer than the configured timeout */
	ERR_PROTO,      /* the server broke the protocol (malformed response) */
	ERR_SERVER,     /* the server answered NO or BAD; text kept */
	ERR_LIMIT,      /* a bound was exceeded (line, literal, nesting, size) */
	ERR_IO,         /* local file system */
	ERR_STATE,      /* sync state damaged, foreign or newer */
	ERR_LOCKED,     /* another run holds the account lock */
	ERR_SAFETY,     /* safety stop: mass deletion refused */
	ERR_EXEC,       /* an external command (password_cmd ...) failed */
	ERR_INTERNAL,   /* should not happen; a bug */
};

enum err_scope {
	ERR_SCOPE_MESSAGE = 0,  /* one message failed; the mailbox goes on */
	ERR_SCOPE_MAILBOX,      /* the mailbox failed; other mailboxes go on */
	ERR_SCOPE_ACCOUNT,      /* the account failed; other accounts go on */
	ERR_SCOPE_FATAL,        /* stop the run */
};

#define ERR_MSG_MAX 512

struct err {
	enum err_code code;
	enum err_scope scope;
	bool retry;     /* a later retry may succeed (network, timeouts, locks) */
	int sys;        /* errno, or 0 */
	int lib;        /* GnuTLS / LMDB / zlib / yaml code, or 0 */
	char msg[ERR_MSG_MAX];
};

/* Reset to "no error". */
void err_clear(struct err *e);

/*
 * Fill `e` with `code` and a formatted message; scope defaults to
 * ERR_SCOPE_ACCOUNT, retry to false.  Always returns -1 so that callers
 * can write `return err_set(e, ...)`.  `e` may be NULL (the error is dropped).
 */
int err_set(struct err *e, enum err_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* As err_set(), and append ": strerror(errnum)"; records errnum in e->sys. */
int err_sys(struct err *e, enum err_code code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Prepend "context: " to the message (truncating at ERR_MSG_MAX). Returns -1. */
int err_prefix(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Make text safe for a terminal, in place: control characters (C0, DEL,
 * and C1 as UTF-8) become "?".  Error messages and log lines carry what a
 * server sent (its NO text, a mailbox name); an escape sequence in it must
 * not reach the user's terminal.
 */
void text_scrub(char *s);
/* The process exit code for an error, per SPEC §1. */
int err_exit_code(const struct err *e);

/* A short stable name for a code ("auth", "tls" ...), for --json. */
const char *err_code_name(enum err_code code);

#endif

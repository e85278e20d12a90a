/*
 * cmd.h - pure helpers for encoding IMAP commands: strings (atom, quoted or
 * literal), literal announcements, and sequence / UID sets.
 *
 * No I/O.  Everything appends to a caller's capped struct buf; on failure
 * (-1, ERR_LIMIT when the buf's cap is reached) the buf is left as it was.
 * Arrays returned through _out parameters are heap memory owned by the
 * caller (free()).
 */
#ifndef FERRY_IMAP_CMD_H
#define FERRY_IMAP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

enum imap_str_flags {
	/* The server has LITERAL+ (RFC 7888): literals are sent as {n+}. */
	IMAP_STR_LITERAL_PLUS = 1u << 0,
	/* The server has LITERAL-: {n+} only for literals of <= 4096 bytes. */
	IMAP_STR_LITERAL_MINUS = 1u << 1,
	/* Never an atom (a "string", e.g. a SEARCH or ID value): quoted or literal. */
	IMAP_STR_NO_ATOM = 1u << 2,
	/* 8-bit bytes may go in a quoted string (UTF8=ACCEPT enabled). */
	IMAP_STR_UTF8 = 1u << 3,
	/* imap_cmd_add_literal_prefix(): "~{n}" (literal8, RFC 3516). */
	IMAP_STR_LITERAL8 = 1u << 4,
};

/* The largest literal LITERAL- lets a client send without waiting. */
#define IMAP_LITERAL_MINUS_MAX 4096

/*
 * Append s (len bytes) as an IMAP astring (or string with IMAP_STR_NO_ATOM):
 * an atom when every byte is an ASTRING-CHAR (and s is neither empty nor
 * "NIL" in any case, which is quoted to be safe), else a
 * quoted string when it holds no CR, LF or (without IMAP_STR_UTF8) 8-bit
 * byte, else a literal "{n}\r\n" followed by the bytes.
 *
 * Returns 1 if a synchronising literal was emitted: the client must send
 * out->data up to *wait_at_out (the offset just after "{n}\r\n"), wait for
 * the server's "+", then send the rest.  Returns 0 otherwise (*wait_at_out
 * is then SIZE_MAX); wait_at_out may be NULL.  -1 on error: ERR_LIMIT (cap
 * reached), ERR_USAGE (s contains a NUL byte, which IMAP cannot send in a
 * string).
 */
int imap_cmd_add_string(struct buf *out, const char *s, size_t len, unsigned flags,
			size_t *wait_at_out, struct err *e);

/*
 * Append a literal announcement "{size}\r\n", "{size+}\r\n" or "~{size}\r\n"
 * for data the caller sends itself (APPEND).  Returns 1 if it is
 * synchronising (wait for "+" after sending it), 0 if not, -1 on ERR_LIMIT.
 */
int imap_cmd_add_literal_prefix(struct buf *out, uint64_t size, unsigned flags, struct err *e);

/*
 * Append one set of the sorted (ascending, duplicates allowed, no 0) UIDs
 * as "1:5,7,9:12", using at most max_len bytes; *consumed_out is how many
 * of the n UIDs it covers (all of them, or fewer when the set is full: call
 * again with the rest for the next set).  max_len must be at least 21 (one
 * "a:b" range of 32-bit numbers).  -1 with ERR_INTERNAL if the input is
 * unsorted or holds 0, with ERR_LIMIT if out's cap is reached.
 */
int imap_seqset_format(const uint32_t *uids, size_t n, size_t max_len, struct buf *out,
		       size_t *consumed_out, struct err *e);

/* first <= last; a reversed "5:3" is stored as 3..5. */
struct imap_seq_range {
	uint32_t first;
	uint32_t last;
};

/*
 * Parse a sequence set ("304,319:320", "1:*", "5:3") from len bytes.
 * star is the value "*" stands for (the largest UID or message number);
 * star == 0 means "*" is not allowed.  Ranges are returned in the order
 * written (not sorted or merged), at most max_ranges of them.  Errors:
 * ERR_PROTO (empty, a 0, a number over 2^32-1, stray bytes, "*" when not
 * allowed), ERR_LIMIT (more than max_ranges).  *ranges_out is xmalloc'd.
 */
int imap_seqset_parse(const char *s, size_t len, uint32_t star, size_t max_ranges,
		      struct imap_seq_range **ranges_out, size_t *n_out, struct err *e);

/*
 * As imap_seqset_parse(), expanded into numbers: each range ascending, in
 * the order written (so COPYUID source and destination sets pair up), at
 * most max_count numbers in all (else ERR_LIMIT, checked before any
 * allocation).  *nums_out is xmalloc'd (NULL when *n_out is 0).
 */
int imap_seqset_expand(const char *s, size_t len, uint32_t star, size_t max_count,
		       uint32_t **nums_out, size_t *n_out, struct err *e);

/* Number of values in the ranges (64-bit: cannot overflow for 2^32 ranges). */
uint64_t imap_seq_ranges_count(const struct imap_seq_range *ranges, size_t n);

#endif

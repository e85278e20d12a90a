/*
 * parse.h - incremental parser for IMAP server responses (RFC 3501, RFC 9051).
 *
 * Pure: bytes in, responses out.  No sockets, no clock, no global state, so
 * it can be fed whole, byte by byte or in random chunks, and fuzzed.
 *
 * Everything the server sends is untrusted.  The parser bounds the length of
 * the non-literal part of a response, the size of literals kept in memory,
 * the size of any literal, the nesting depth and the number of arguments;
 * exceeding a bound is an ERR_LIMIT error, malformed input an ERR_PROTO
 * error.  After an error the parser is dead: the connection must be dropped.
 *
 * A literal may be streamed instead of kept: the optional sink decides at
 * the start of each literal (it sees the literal's size, the atom before it,
 * e.g. "BODY[]", and the message number of an untagged "* N FETCH").
 * Streamed bytes go to the sink in pieces as they arrive and never stay in
 * the parser's memory; the tree then holds an IMAP_ARG_LITERAL_STREAMED node.
 *
 * Ownership: a response returned by imap_parser_feed() belongs to the caller
 * and lives until imap_resp_free(); all its strings and arguments live in
 * its arena and die with it.  The parser keeps no pointer into it.
 */
#ifndef FERRY_IMAP_PARSE_H
#define FERRY_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "err.h"

enum imap_arg_type {
	IMAP_ARG_ATOM = 0,          /* includes \Flags, numbers, BODY[...]<n> */
	IMAP_ARG_QUOTED,            /* "..." with escapes removed */
	IMAP_ARG_LITERAL,           /* {n} or ~{n}, kept in memory */
	IMAP_ARG_LITERAL_STREAMED,  /* {n} or ~{n}, delivered to the sink */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,              /* ( ... ) */
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal8;              /* ~{n} */
	/*
	 * ATOM, QUOTED, LITERAL: str points to len bytes followed by a NUL
	 * (a literal may hold NULs: len is authoritative).
	 * LIST: list points to len items.
	 * LITERAL_STREAMED: size is the literal's size, handle what the sink's
	 * begin() returned.  (LITERAL also sets size = len.)
	 */
	size_t len;
	const char *str;
	struct imap_arg *list;
	uint64_t size;
	void *handle;
};

enum imap_resp_kind {
	IMAP_RESP_UNTAGGED = 0,     /* "* ..." */
	IMAP_RESP_TAGGED,           /* "A12 OK ..." */
	IMAP_RESP_CONTINUATION,     /* "+ ..." */
};

enum imap_status {
	IMAP_STATUS_NONE = 0,       /* not a status response (data, continuation) */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_PREAUTH,
	IMAP_STATUS_BYE,
};

struct imap_resp {
	enum imap_resp_kind kind;
	const char *tag;            /* TAGGED: the tag; else NULL */
	enum imap_status status;
	/*
	 * "* 12 FETCH (...)": has_number, number = 12, name = "FETCH".
	 * "* CAPABILITY ...": name = "CAPABILITY".  Status responses: name is
	 * "OK", "NO", ...  Names are upper-cased.  CONTINUATION: name NULL.
	 */
	bool has_number;
	uint32_t number;
	const char *name;
	/*
	 * Status responses and continuations: the optional response code
	 * "[APPENDUID 38505 3955]" as code = "APPENDUID" (upper-cased) and its
	 * arguments; code_raw is the text between the brackets after the code
	 * atom, kept for codes whose arguments are not well-formed IMAP.
	 * text is the human-readable rest of the line ("" if none).
	 * No code: code, code_raw NULL.  A code without arguments ("[CLOSED]"):
	 * code_raw "", code_args NULL, ncode_args 0.  Arguments that do not
	 * parse: code_raw set, code_args NULL, ncode_args 0.
	 * Data responses: code, code_raw and text NULL.
	 */
	const char *code;
	struct imap_arg *code_args;
	size_t ncode_args;
	const char *code_raw;
	const char *text;
	/* Data responses: the arguments after the name. */
	struct imap_arg *args;
	size_t nargs;

	struct arena arena;         /* owns everything above */
};

/*
 * A field left 0 takes its default (so a caller may set only what it cares
 * about).  max_line counts every byte of a response that is not literal
 * data, CRLFs and literal announcements included; it also bounds the
 * parser's working buffer.
 */
struct imap_parser_limits {
	size_t max_line;            /* non-literal bytes in one response */
	size_t max_literal_mem;     /* largest literal kept in memory */
	uint64_t max_literal;       /* largest literal at all (streamed) */
	unsigned max_depth;         /* list nesting */
	size_t max_args;            /* arguments in one response, all levels */
	/* Added: all in-memory literals of one response together. */
	uint64_t max_resp_literal_mem;
};

/*
 * Defaults: 1 MiB line, 1 MiB literal in memory, 4 GiB literal, depth 64,
 * 1,000,000 args, 16 MiB of in-memory literals per response.
 * (Changed from a 64 KiB line: "* SEARCH" / "* VANISHED (EARLIER)" answers
 * for a 100,000-message mailbox are several hundred KiB on one line.)
 */
extern const struct imap_parser_limits imap_parser_default_limits;

/*
 * Where a literal starts, for the sink to decide what to do with it.
 * The strings are valid only during the begin() call.  depth is 0 for a
 * literal among the response's top-level arguments, 1 inside one list ...
 */
struct imap_literal_info {
	uint64_t size;
	bool literal8;
	const char *prev_atom;      /* upper-cased atom just before it at the same level, or NULL */
	bool has_number;            /* untagged "* N NAME": */
	uint32_t number;
	const char *resp_name;      /* "FETCH" ... , or NULL if not yet known */
	unsigned depth;
};

enum imap_sink_choice {
	IMAP_SINK_MEMORY = 0,       /* keep it in the tree (bounded by max_literal_mem) */
	IMAP_SINK_STREAM,           /* deliver to data()/end(); *handle_out is recorded */
};

struct imap_literal_sink {
	void *ctx;
	/* Returns -1 (with e filled) to fail the parse. */
	int (*begin)(void *ctx, const struct imap_literal_info *info,
		     enum imap_sink_choice *choice_out, void **handle_out, struct err *e);
	int (*data)(void *ctx, void *handle, const char *bytes, size_t len, struct err *e);
	int (*end)(void *ctx, void *handle, struct err *e);
	/*
	 * The response the handle belongs to will never be returned (the parse
	 * failed, imap_parser_eof() found it cut short, or the parser was freed
	 * before it was complete): drop the handle.  Called exactly once for
	 * every handle begun in such a response -- the open one, and also those
	 * whose end() already returned (their data is part of a response that
	 * is lost), and one whose data()/end() failed.  Never called for the
	 * handles of a response that was returned: those belong to the caller,
	 * found in the tree as IMAP_ARG_LITERAL_STREAMED.
	 * abort may be NULL.  begin() returning -1 begins no handle.
	 */
	void (*abort)(void *ctx, void *handle);
};

struct imap_parser;

/*
 * limits and sink may be NULL (defaults; no streaming).  Both are copied.
 * A sink whose begin is NULL is no sink; data, end and abort may be NULL.
 */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits,
				    const struct imap_literal_sink *sink);
void imap_parser_free(struct imap_parser *p);

enum imap_parse_result {
	IMAP_PARSE_ERROR = -1,
	IMAP_PARSE_NEED_MORE = 0,
	IMAP_PARSE_DONE = 1,
};

/*
 * Syntax accepted (decisions documented here once):
 * - A line ends only at CRLF.  A bare LF, a CR not followed by LF, and a
 *   NUL byte anywhere outside literal data are ERR_PROTO.
 * - Atoms are runs of bytes > 0x20 other than DEL ( ) " {; 8-bit bytes are
 *   accepted.  Inside [ ] an atom also takes spaces and parentheses, so
 *   BODY[HEADER.FIELDS (A B)]<0> is one atom.  An atom "NIL" (any case) is
 *   IMAP_ARG_NIL.  Numbers are atoms (see imap_arg_u64()).
 * - Quoted strings allow the escapes \" and \\ only; CR/LF inside is ERR_PROTO.
 * - Literals {n}, {n+} and ~{n} (literal8).  A size above max_literal (or
 *   with more than 20 digits) is ERR_LIMIT as soon as it is seen.
 * - Separating spaces are not required between tokens (lenient), and
 *   several spaces are accepted.
 * - Tagged responses must be OK, NO or BAD.  "+" may be followed by a
 *   space and text, or directly by CRLF (text "").
 * - Status responses and continuations: a leading "[...]" is the response
 *   code (the first "]" outside a quoted string closes it; if quotes are
 *   unbalanced, the first "]").  code_raw is always set when code is; if
 *   the arguments are not well formed (unbalanced quotes or parentheses, a
 *   literal) code_args is NULL, ncode_args 0 and the parse still succeeds.
 *   Status responses have no args (args NULL, nargs 0).
 * - Data responses: code, code_raw NULL, text NULL.
 *
 * Feed len bytes.  *consumed_out is how many were used (on DONE possibly
 * fewer than len: feed the rest again).  On DONE *resp_out is a complete
 * response owned by the caller.  On NEED_MORE all bytes were consumed.
 * On ERROR e says why (a failing sink callback's own error is passed on)
 * and the parser refuses all further input.
 */
enum imap_parse_result imap_parser_feed(struct imap_parser *p, const char *data, size_t len,
					size_t *consumed_out, struct imap_resp **resp_out,
					struct err *e);

/*
 * Added: the connection was closed.  Returns 0 if the parser was between
 * responses; otherwise -1 with ERR_PROTO (a response or literal was cut
 * short: the sink's handles of that response are aborted) and the parser is
 * dead.  A dead parser returns its first error again.
 */
int imap_parser_eof(struct imap_parser *p, struct err *e);

/* NULL is fine. */
void imap_resp_free(struct imap_resp *r);

/* Helpers over parsed arguments.  All treat NULL arg as "no". */
bool imap_arg_is_atom(const struct imap_arg *a, const char *word);   /* case-insensitive */
bool imap_arg_is_string(const struct imap_arg *a);                   /* atom, quoted or literal */
/* The bytes of an atom, quoted string or in-memory literal; NULL otherwise (NIL: NULL). */
const char *imap_arg_str(const struct imap_arg *a, size_t *len_out);
/* A number (RFC 3501 number / number64); false if not all digits or too big. */
bool imap_arg_u64(const struct imap_arg *a, uint64_t *out);
bool imap_arg_u32(const struct imap_arg *a, uint32_t *out);
/* In a FETCH response's list of (name value ...) pairs, the value after name. */
const struct imap_arg *imap_fetch_item(const struct imap_arg *list, const char *name);

#endif

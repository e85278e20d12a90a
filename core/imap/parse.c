/*
 * parse.c - incremental IMAP response parser (see parse.h).
 *
 * One state machine over the byte stream.  Every non-literal byte goes
 * through parser_step() exactly once; literal data is copied or streamed in
 * bulk by literal_data().  Nothing already consumed is ever looked at again,
 * except the text of a status response, which is kept (bounded by max_line)
 * and split into code and text once its CRLF arrives.
 *
 * Arguments being built live on a heap stack (p->args); an open list is a
 * mark on p->levels.  When a list closes its items are copied once into the
 * response arena, so the tree is built in O(n).
 */
#include "parse.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "xalloc.h"

const struct imap_parser_limits imap_parser_default_limits = {
	.max_line = 1024 * 1024,
	.max_literal_mem = 1024 * 1024,
	.max_literal = UINT64_C(4) * 1024 * 1024 * 1024,
	.max_depth = 64,
	.max_args = 1000000,
	.max_resp_literal_mem = 16 * 1024 * 1024,
};

#define RESP_ARENA_CHUNK 2048
#define LITERAL_MAX_DIGITS 20

enum parser_state {
	PS_BEGIN,       /* before the first byte of a response */
	PS_CONT,        /* after "+" */
	PS_STAR_SP,     /* after "*" */
	PS_HEAD,        /* in the tag, the number or the name */
	PS_TEXT,        /* status / continuation text up to CR */
	PS_TEXT_LF,
	PS_ARGS,        /* between arguments of a data response */
	PS_ATOM,
	PS_TILDE,       /* "~", maybe the start of "~{" */
	PS_QUOTED,
	PS_QUOTED_ESC,
	PS_LIT_LEN,     /* digits of "{n}" */
	PS_LIT_PLUS,    /* after "{n+" */
	PS_LIT_CR,
	PS_LIT_LF,
	PS_LIT_DATA,
	PS_ARGS_LF,
	PS_COMPLETE,    /* a response is ready to hand out */
	PS_DEAD,
};

enum head_role {
	HEAD_TAG,
	HEAD_FIRST,     /* after "* ": a number or the name */
	HEAD_NAME,
};

struct imap_parser {
	struct imap_parser_limits lim;
	struct imap_literal_sink sink;
	bool has_sink;

	enum parser_state st;
	enum head_role role;
	struct imap_resp *r;        /* the response being built, or NULL */
	struct buf tok;             /* the token being read */
	size_t line_bytes;          /* non-literal bytes of this response */
	size_t bracket;             /* "[" depth inside an atom */

	struct imap_arg *args;      /* arguments of all open levels */
	size_t nargs, cap_args;
	size_t *levels;             /* index in args where each open list starts */
	size_t nlevels, cap_levels;
	size_t total_args;

	/* The current literal. */
	uint64_t lit_size;
	uint64_t lit_left;
	unsigned lit_digits;
	bool lit8;
	bool lit_stream;
	char *lit_mem;
	void *lit_handle;
	uint64_t lit_mem_total;     /* in-memory literals of this response */

	void **handles;             /* sink handles begun in this response */
	size_t nhandles, cap_handles;

	struct err err;             /* the error that killed the parser */
};

static bool is_atom_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != '(' && c != ')' && c != '"' && c != '{';
}

static char *arena_upper(struct arena *a, const char *s, size_t n)
{
	char *u = arena_strndup(a, s, n);
	size_t i;

	for (i = 0; i < n; i++)
		if (u[i] >= 'a' && u[i] <= 'z')
			u[i] = (char)(u[i] - 'a' + 'A');
	return u;
}

static uint64_t limit_or(uint64_t v, uint64_t def)
{
	return v ? v : def;
}

struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits,
				    const struct imap_literal_sink *sink)
{
	const struct imap_parser_limits *d = &imap_parser_default_limits;
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	if (limits == NULL)
		limits = d;
	p->lim.max_line = (size_t)limit_or(limits->max_line, d->max_line);
	p->lim.max_literal_mem = (size_t)limit_or(limits->max_literal_mem, d->max_literal_mem);
	p->lim.max_literal = limit_or(limits->max_literal, d->max_literal);
	p->lim.max_depth = (unsigned)limit_or(limits->max_depth, d->max_depth);
	p->lim.max_args = (size_t)limit_or(limits->max_args, d->max_args);
	p->lim.max_resp_literal_mem = limit_or(limits->max_resp_literal_mem,
					       d->max_resp_literal_mem);
	if (sink != NULL && sink->begin != NULL) {
		p->sink = *sink;
		p->has_sink = true;
	}
	buf_init(&p->tok, p->lim.max_line);
	p->st = PS_BEGIN;
	return p;
}

void imap_resp_free(struct imap_resp *r)
{
	if (r == NULL)
		return;
	arena_release(&r->arena);
	free(r);
}

/* Drop the response being built and every sink handle begun for it. */
static void parser_drop_response(struct imap_parser *p)
{
	size_t i;

	for (i = 0; i < p->nhandles; i++)
		if (p->sink.abort != NULL)
			p->sink.abort(p->sink.ctx, p->handles[i]);
	p->nhandles = 0;
	p->lit_handle = NULL;
	imap_resp_free(p->r);
	p->r = NULL;
}

void imap_parser_free(struct imap_parser *p)
{
	if (p == NULL)
		return;
	parser_drop_response(p);
	buf_release(&p->tok);
	free(p->args);
	free(p->levels);
	free(p->handles);
	free(p);
}

/* Make the parser dead with the error in e; always -1. */
static int parser_fail(struct imap_parser *p, struct err *e)
{
	parser_drop_response(p);
	p->err = *e;
	p->st = PS_DEAD;
	return -1;
}

static int proto_error(struct err *e, const char *what)
{
	return err_set(e, ERR_PROTO, "malformed IMAP response: %s", what);
}

/* Start a fresh response; the per-response state is reset. */
static void response_start(struct imap_parser *p)
{
	struct imap_resp *r = xcalloc(1, sizeof(*r));

	arena_init(&r->arena, RESP_ARENA_CHUNK);
	p->r = r;
	p->line_bytes = 0;
	p->nargs = 0;
	p->nlevels = 0;
	p->total_args = 0;
	p->lit_mem_total = 0;
	p->nhandles = 0;
	buf_reset(&p->tok);
}

static int args_push(struct imap_parser *p, const struct imap_arg *a, bool count, struct err *e)
{
	if (count) {
		if (p->total_args >= p->lim.max_args)
			return err_set(e, ERR_LIMIT, "IMAP response has more than %zu arguments",
				       p->lim.max_args);
		p->total_args++;
	}
	if (p->nargs == p->cap_args)
		p->args = xgrow(p->args, &p->cap_args, p->nargs + 1, sizeof(*p->args));
	p->args[p->nargs++] = *a;
	return 0;
}

static int list_open(struct imap_parser *p, struct err *e)
{
	if (p->nlevels >= p->lim.max_depth)
		return err_set(e, ERR_LIMIT, "IMAP response nests lists deeper than %u",
			       p->lim.max_depth);
	/* The list counts as an argument now; list_close() pushes it uncounted. */
	if (p->total_args >= p->lim.max_args)
		return err_set(e, ERR_LIMIT, "IMAP response has more than %zu arguments",
			       p->lim.max_args);
	p->total_args++;
	if (p->nlevels == p->cap_levels)
		p->levels = xgrow(p->levels, &p->cap_levels, p->nlevels + 1, sizeof(*p->levels));
	p->levels[p->nlevels++] = p->nargs;
	return 0;
}

/* Copy args[start..] into the arena; *n_out is their number. */
static struct imap_arg *args_take(struct imap_parser *p, size_t start, size_t *n_out)
{
	size_t n = p->nargs - start;
	struct imap_arg *list = NULL;

	if (n > 0) {
		list = arena_alloc(&p->r->arena, n * sizeof(*list));
		memcpy(list, p->args + start, n * sizeof(*list));
	}
	p->nargs = start;
	*n_out = n;
	return list;
}

static int list_close(struct imap_parser *p, struct err *e)
{
	struct imap_arg a = { .type = IMAP_ARG_LIST };

	if (p->nlevels == 0)
		return proto_error(e, "unexpected \")\"");
	a.list = args_take(p, p->levels[--p->nlevels], &a.len);
	return args_push(p, &a, false, e);
}

/* A string argument from the token buffer. */
static int push_token(struct imap_parser *p, enum imap_arg_type type, struct err *e)
{
	struct imap_arg a = { .type = type };

	if (type == IMAP_ARG_ATOM && p->tok.len == 3 && strncasecmp(p->tok.data, "NIL", 3) == 0) {
		a.type = IMAP_ARG_NIL;
	} else {
		a.len = p->tok.len;
		a.str = arena_strndup(&p->r->arena, buf_cstr(&p->tok), p->tok.len);
	}
	buf_reset(&p->tok);
	return args_push(p, &a, true, e);
}

static int tok_add(struct imap_parser *p, char c, struct err *e)
{
	/* line_bytes already bounds the token; this is a second guard. */
	return buf_addc(&p->tok, c, e);
}

static enum imap_status status_of(const char *name)
{
	static const struct {
		const char *name;
		enum imap_status status;
	} tab[] = {
		{ "OK", IMAP_STATUS_OK }, { "NO", IMAP_STATUS_NO }, { "BAD", IMAP_STATUS_BAD },
		{ "PREAUTH", IMAP_STATUS_PREAUTH }, { "BYE", IMAP_STATUS_BYE },
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(name, tab[i].name) == 0)
			return tab[i].status;
	return IMAP_STATUS_NONE;
}

/* The number after "* ", or false if the word is not all digits. */
static bool word_number(const struct buf *w, uint32_t *out, bool *overflow_out)
{
	uint64_t v = 0;
	size_t i;

	*overflow_out = false;
	for (i = 0; i < w->len; i++) {
		if (w->data[i] < '0' || w->data[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(w->data[i] - '0');
		if (v > UINT32_MAX)
			*overflow_out = true;
		if (*overflow_out)
			v = UINT32_MAX;
	}
	*out = (uint32_t)v;
	return true;
}

/* A head word (tag, number or name) ended with term (' ' or '\r'). */
static int head_done(struct imap_parser *p, char term, struct err *e)
{
	struct imap_resp *r = p->r;
	bool overflow;

	if (p->tok.len == 0)
		return proto_error(e, "empty tag or name");
	if (p->role == HEAD_TAG) {
		if (term != ' ')
			return proto_error(e, "tagged response without a status");
		r->kind = IMAP_RESP_TAGGED;
		r->tag = arena_strndup(&r->arena, p->tok.data, p->tok.len);
		p->role = HEAD_NAME;
		buf_reset(&p->tok);
		return 0;
	}
	if (p->role == HEAD_FIRST && word_number(&p->tok, &r->number, &overflow)) {
		if (overflow)
			return proto_error(e, "message number out of range");
		if (term != ' ')
			return proto_error(e, "message number without a name");
		r->has_number = true;
		p->role = HEAD_NAME;
		buf_reset(&p->tok);
		return 0;
	}
	r->name = arena_upper(&r->arena, p->tok.data, p->tok.len);
	buf_reset(&p->tok);
	r->status = status_of(r->name);
	if (r->kind == IMAP_RESP_TAGGED && r->status != IMAP_STATUS_OK &&
	    r->status != IMAP_STATUS_NO && r->status != IMAP_STATUS_BAD)
		return proto_error(e, "tagged response is not OK, NO or BAD");
	if (r->status != IMAP_STATUS_NONE)
		p->st = term == '\r' ? PS_TEXT_LF : PS_TEXT;
	else
		p->st = term == '\r' ? PS_ARGS_LF : PS_ARGS;
	return 0;
}

/*
 * Parse the arguments of a response code (complete, no literals) onto the
 * argument stack.  Returns false if they are not well formed; the stack is
 * then left empty.
 */
static bool code_args_parse(struct imap_parser *p, const char *s, size_t n)
{
	struct err ignored;
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ') {
			i++;
		} else if (c == '(') {
			if (list_open(p, &ignored) < 0)
				goto bad;
			i++;
		} else if (c == ')') {
			if (list_close(p, &ignored) < 0)
				goto bad;
			i++;
		} else if (c == '"') {
			for (i++; i < n && s[i] != '"'; i++) {
				if (s[i] == '\\') {
					if (++i >= n || (s[i] != '"' && s[i] != '\\'))
						goto bad;
				}
				if (tok_add(p, s[i], &ignored) < 0)
					goto bad;
			}
			if (i >= n)
				goto bad;
			i++;
			if (push_token(p, IMAP_ARG_QUOTED, &ignored) < 0)
				goto bad;
		} else if (is_atom_char(c)) {
			size_t start = i;

			while (i < n && is_atom_char((unsigned char)s[i]))
				i++;
			if (buf_add(&p->tok, s + start, i - start, &ignored) < 0 ||
			    push_token(p, IMAP_ARG_ATOM, &ignored) < 0)
				goto bad;
		} else {
			goto bad;       /* "{" (a literal) or a control byte */
		}
	}
	if (p->nlevels == 0)
		return true;
bad:
	p->nargs = 0;
	p->nlevels = 0;
	buf_reset(&p->tok);
	return false;
}

/* Where the response code that starts s closes, or 0 if there is none. */
static size_t code_end(const char *s, size_t n)
{
	bool quoted = false;
	size_t i;
	const char *close;

	for (i = 1; i < n; i++) {
		if (quoted) {
			if (s[i] == '\\' && i + 1 < n)
				i++;
			else if (s[i] == '"')
				quoted = false;
		} else if (s[i] == '"') {
			quoted = true;
		} else if (s[i] == ']') {
			return i;
		}
	}
	close = memchr(s, ']', n);
	return close ? (size_t)(close - s) : 0;
}

/* The status / continuation line in tok is complete: split code and text. */
static void text_done(struct imap_parser *p)
{
	struct imap_resp *r = p->r;
	char *line = arena_strndup(&r->arena, buf_cstr(&p->tok), p->tok.len);
	size_t n = p->tok.len;
	size_t close, word = 0;
	const char *text = line;

	buf_reset(&p->tok);
	close = n > 0 && line[0] == '[' ? code_end(line, n) : 0;
	if (close > 1) {
		for (word = 1; word < close && line[word] != ' '; word++)
			;
	}
	if (close > 1 && word > 1) {
		r->code = arena_upper(&r->arena, line + 1, word - 1);
		if (word < close) {
			r->code_raw = arena_strndup(&r->arena, line + word + 1, close - word - 1);
			if (code_args_parse(p, r->code_raw, close - word - 1))
				r->code_args = args_take(p, 0, &r->ncode_args);
		} else {
			r->code_raw = "";
		}
		text = line + close + 1;
		if (*text == ' ')
			text++;
	}
	r->text = text;
	p->total_args = 0;
	p->st = PS_COMPLETE;
}

/* A sink callback returned -1: make sure e says something. */
static int sink_failed(struct err *e, const char *what)
{
	if (e->code == ERR_NONE)
		err_set(e, ERR_INTERNAL, "literal sink %s() failed without saying why", what);
	return -1;
}

static int literal_end(struct imap_parser *p, struct err *e)
{
	struct imap_arg a = { .literal8 = p->lit8 };

	if (p->lit_stream) {
		a.type = IMAP_ARG_LITERAL_STREAMED;
		a.size = p->lit_size;
		a.handle = p->lit_handle;
		p->lit_handle = NULL;
		if (p->sink.end != NULL) {
			err_clear(e);
			if (p->sink.end(p->sink.ctx, a.handle, e) < 0)
				return sink_failed(e, "end");
		}
	} else {
		a.type = IMAP_ARG_LITERAL;
		a.str = p->lit_mem;
		a.len = (size_t)p->lit_size;
		a.size = p->lit_size;
	}
	p->lit_mem = NULL;
	p->st = PS_ARGS;
	return args_push(p, &a, true, e);
}

/* The CRLF after "{n}" arrived: decide where the data goes. */
static int literal_begin(struct imap_parser *p, struct err *e)
{
	enum imap_sink_choice choice = IMAP_SINK_MEMORY;
	struct imap_resp *r = p->r;

	if (p->total_args >= p->lim.max_args)
		return err_set(e, ERR_LIMIT, "IMAP response has more than %zu arguments",
			       p->lim.max_args);
	p->lit_stream = false;
	if (p->has_sink) {
		struct imap_literal_info info = {
			.size = p->lit_size,
			.literal8 = p->lit8,
			.has_number = r->has_number,
			.number = r->number,
			.resp_name = r->name,
			.depth = (unsigned)p->nlevels,
		};
		size_t start = p->nlevels ? p->levels[p->nlevels - 1] : 0;
		void *handle = NULL;

		if (p->nargs > start && p->args[p->nargs - 1].type == IMAP_ARG_ATOM) {
			const struct imap_arg *prev = &p->args[p->nargs - 1];

			info.prev_atom = arena_upper(&r->arena, prev->str, prev->len);
		}
		err_clear(e);
		if (p->sink.begin(p->sink.ctx, &info, &choice, &handle, e) < 0)
			return sink_failed(e, "begin");
		if (choice == IMAP_SINK_STREAM) {
			if (p->nhandles == p->cap_handles)
				p->handles = xgrow(p->handles, &p->cap_handles, p->nhandles + 1,
						   sizeof(*p->handles));
			p->handles[p->nhandles++] = handle;
			p->lit_handle = handle;
			p->lit_stream = true;
		}
	}
	if (!p->lit_stream) {
		if (p->lit_size > p->lim.max_literal_mem)
			return err_set(e, ERR_LIMIT,
				       "IMAP literal of %" PRIu64 " bytes exceeds the in-memory limit of %zu",
				       p->lit_size, p->lim.max_literal_mem);
		if (p->lit_size > p->lim.max_resp_literal_mem - p->lit_mem_total)
			return err_set(e, ERR_LIMIT,
				       "IMAP response holds more than %" PRIu64 " bytes of literals",
				       p->lim.max_resp_literal_mem);
		p->lit_mem_total += p->lit_size;
		p->lit_mem = arena_alloc(&r->arena, (size_t)p->lit_size + 1);
		p->lit_mem[p->lit_size] = '\0';
	}
	p->lit_left = p->lit_size;
	if (p->lit_left == 0)
		return literal_end(p, e);
	p->st = PS_LIT_DATA;
	return 0;
}

/* Bulk literal data; returns the bytes used or -1. */
static ptrdiff_t literal_data(struct imap_parser *p, const char *data, size_t len, struct err *e)
{
	size_t take = p->lit_left < len ? (size_t)p->lit_left : len;

	if (p->lit_stream) {
		if (p->sink.data != NULL) {
			err_clear(e);
			if (p->sink.data(p->sink.ctx, p->lit_handle, data, take, e) < 0)
				return sink_failed(e, "data");
		}
	} else {
		memcpy(p->lit_mem + (p->lit_size - p->lit_left), data, take);
	}
	p->lit_left -= take;
	if (p->lit_left == 0 && literal_end(p, e) < 0)
		return -1;
	return (ptrdiff_t)take;
}

static int args_byte(struct imap_parser *p, char c, struct err *e);

/*
 * Whether a "[" after the token so far opens a section that may hold
 * spaces and parentheses (BODY[HEADER.FIELDS (From)], BINARY[1]), or one
 * at the start of an argument.  Elsewhere "[" is an atom character like
 * any other: a keyword "a[b" is a valid atom (RFC 3501 atom-specials hold
 * "]", not "[").
 */
static bool opens_section(const struct buf *tok)
{
	static const char *const items[] = { "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
					     "BINARY.SIZE" };

	if (tok->len == 0)
		return true;
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++)
		if (tok->len == strlen(items[i]) && strncasecmp(tok->data, items[i], tok->len) == 0)
			return true;
	return false;
}

static int atom_byte(struct imap_parser *p, char c, struct err *e)
{
	unsigned char u = (unsigned char)c;

	if (p->bracket > 0) {
		if (c == '\r' || c == '\n' || c == '\0')
			return proto_error(e, "unterminated \"[\" in an atom");
		if (c == '[')
			p->bracket++;
		else if (c == ']')
			p->bracket--;
		return tok_add(p, c, e);
	}
	if (c == '[') {
		if (opens_section(&p->tok))
			p->bracket = 1;
		return tok_add(p, c, e);
	}
	if (is_atom_char(u))
		return tok_add(p, c, e);
	if (push_token(p, IMAP_ARG_ATOM, e) < 0)
		return -1;
	p->st = PS_ARGS;
	return args_byte(p, c, e);
}

static int args_byte(struct imap_parser *p, char c, struct err *e)
{
	switch (c) {
	case ' ':
		return 0;
	case '(':
		return list_open(p, e);
	case ')':
		return list_close(p, e);
	case '"':
		p->st = PS_QUOTED;
		return 0;
	case '{':
		p->lit8 = false;
		p->lit_size = 0;
		p->lit_digits = 0;
		p->st = PS_LIT_LEN;
		return 0;
	case '~':
		p->st = PS_TILDE;
		return 0;
	case '\n':
		return proto_error(e, "bare LF");
	case '\r':
		if (p->nlevels > 0)
			return proto_error(e, "unterminated list");
		p->st = PS_ARGS_LF;
		return 0;
	default:
		if (!is_atom_char((unsigned char)c))
			return proto_error(e, "unexpected control byte");
		p->bracket = 0;
		p->st = PS_ATOM;
		return atom_byte(p, c, e);
	}
}

static int lit_len_byte(struct imap_parser *p, char c, struct err *e)
{
	if (c >= '0' && c <= '9') {
		uint64_t d = (uint64_t)(c - '0');

		if (p->lit_digits >= LITERAL_MAX_DIGITS || p->lit_size > (UINT64_MAX - d) / 10)
			return err_set(e, ERR_LIMIT, "IMAP literal size does not fit 64 bits");
		p->lit_size = p->lit_size * 10 + d;
		p->lit_digits++;
		if (p->lit_size > p->lim.max_literal)
			return err_set(e, ERR_LIMIT,
				       "IMAP literal larger than the limit of %" PRIu64 " bytes",
				       p->lim.max_literal);
		return 0;
	}
	if (p->lit_digits == 0)
		return proto_error(e, "literal without a size");
	if (c == '+') {
		p->st = PS_LIT_PLUS;
		return 0;
	}
	if (c == '}') {
		p->st = PS_LIT_CR;
		return 0;
	}
	return proto_error(e, "bad literal size");
}

/* One non-literal byte. */
static int parser_step(struct imap_parser *p, char c, struct err *e)
{
	if (c == '\0')
		return proto_error(e, "NUL byte outside a literal");
	switch (p->st) {
	case PS_BEGIN:
		response_start(p);
		if (c == '+') {
			p->r->kind = IMAP_RESP_CONTINUATION;
			p->st = PS_CONT;
			return 0;
		}
		if (c == '*') {
			p->r->kind = IMAP_RESP_UNTAGGED;
			p->st = PS_STAR_SP;
			return 0;
		}
		if (!is_atom_char((unsigned char)c))
			return proto_error(e, "response does not start with a tag");
		p->role = HEAD_TAG;
		p->st = PS_HEAD;
		return tok_add(p, c, e);
	case PS_CONT:
		p->st = PS_TEXT;
		return c == ' ' ? 0 : parser_step(p, c, e);
	case PS_STAR_SP:
		if (c != ' ')
			return proto_error(e, "no space after \"*\"");
		p->role = HEAD_FIRST;
		p->st = PS_HEAD;
		return 0;
	case PS_HEAD:
		if (c == ' ' || c == '\r')
			return head_done(p, c, e);
		if (!is_atom_char((unsigned char)c))
			return proto_error(e, "bad byte in a tag or name");
		return tok_add(p, c, e);
	case PS_TEXT:
		if (c == '\r') {
			p->st = PS_TEXT_LF;
			return 0;
		}
		if (c == '\n')
			return proto_error(e, "bare LF");
		return tok_add(p, c, e);
	case PS_TEXT_LF:
		if (c != '\n')
			return proto_error(e, "CR not followed by LF");
		text_done(p);
		return 0;
	case PS_ARGS:
		return args_byte(p, c, e);
	case PS_ATOM:
		return atom_byte(p, c, e);
	case PS_TILDE:
		if (c == '{') {
			p->lit8 = true;
			p->lit_size = 0;
			p->lit_digits = 0;
			p->st = PS_LIT_LEN;
			return 0;
		}
		p->bracket = 0;
		p->st = PS_ATOM;
		if (tok_add(p, '~', e) < 0)
			return -1;
		return atom_byte(p, c, e);
	case PS_QUOTED:
		if (c == '"') {
			p->st = PS_ARGS;
			return push_token(p, IMAP_ARG_QUOTED, e);
		}
		if (c == '\\') {
			p->st = PS_QUOTED_ESC;
			return 0;
		}
		if (c == '\r' || c == '\n')
			return proto_error(e, "line ends inside a quoted string");
		return tok_add(p, c, e);
	case PS_QUOTED_ESC:
		if (c != '"' && c != '\\')
			return proto_error(e, "bad escape in a quoted string");
		p->st = PS_QUOTED;
		return tok_add(p, c, e);
	case PS_LIT_LEN:
		return lit_len_byte(p, c, e);
	case PS_LIT_PLUS:
		if (c != '}')
			return proto_error(e, "bad literal size");
		p->st = PS_LIT_CR;
		return 0;
	case PS_LIT_CR:
		if (c != '\r')
			return proto_error(e, "no CRLF after a literal size");
		p->st = PS_LIT_LF;
		return 0;
	case PS_LIT_LF:
		if (c != '\n')
			return proto_error(e, "CR not followed by LF");
		return literal_begin(p, e);
	case PS_ARGS_LF:
		if (c != '\n')
			return proto_error(e, "CR not followed by LF");
		p->r->args = args_take(p, 0, &p->r->nargs);
		p->st = PS_COMPLETE;
		return 0;
	case PS_LIT_DATA:
	case PS_COMPLETE:
	case PS_DEAD:
		break;
	}
	assert(!"parser_step in a state that takes no bytes");
	return err_set(e, ERR_INTERNAL, "IMAP parser in a bad state");
}

/*
 * How many bytes from data on are plain content of the current token (no
 * byte that changes state), bounded by what max_line still allows.  They
 * can be appended to the token in one go: the per-byte path would do
 * exactly the same with each of them.
 */
static size_t plain_span(const struct imap_parser *p, const char *data, size_t len)
{
	size_t room = p->lim.max_line - p->line_bytes, i;

	if (len > room)
		len = room;
	switch (p->st) {
	case PS_HEAD:
		for (i = 0; i < len && is_atom_char((unsigned char)data[i]); i++)
			;
		return i;
	case PS_ATOM:
		if (p->bracket > 0) {
			for (i = 0; i < len; i++) {
				char c = data[i];

				if (c == '[' || c == ']' || c == '\r' || c == '\n' || c == '\0')
					break;
			}
			return i;
		}
		for (i = 0; i < len && data[i] != '[' && is_atom_char((unsigned char)data[i]); i++)
			;
		return i;
	case PS_QUOTED:
		for (i = 0; i < len; i++) {
			char c = data[i];

			if (c == '"' || c == '\\' || c == '\r' || c == '\n' || c == '\0')
				break;
		}
		return i;
	case PS_TEXT:
		for (i = 0; i < len; i++) {
			char c = data[i];

			if (c == '\r' || c == '\n' || c == '\0')
				break;
		}
		return i;
	default:
		return 0;
	}
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const char *data, size_t len,
					size_t *consumed_out, struct imap_resp **resp_out,
					struct err *e)
{
	struct err local;
	size_t pos = 0, span;

	if (e == NULL)
		e = &local;
	*consumed_out = 0;
	*resp_out = NULL;
	if (p->st == PS_DEAD) {
		*e = p->err;
		return IMAP_PARSE_ERROR;
	}
	while (pos < len) {
		if (p->st == PS_LIT_DATA) {
			ptrdiff_t n = literal_data(p, data + pos, len - pos, e);

			if (n < 0)
				goto fail;
			pos += (size_t)n;
			continue;
		}
		span = plain_span(p, data + pos, len - pos);
		if (span > 0) {
			if (buf_add(&p->tok, data + pos, span, e) < 0)
				goto fail;
			p->line_bytes += span;
			pos += span;
			continue;
		}
		if (++p->line_bytes > p->lim.max_line) {
			err_set(e, ERR_LIMIT, "IMAP response line longer than %zu bytes",
				p->lim.max_line);
			goto fail;
		}
		if (parser_step(p, data[pos++], e) < 0)
			goto fail;
		if (p->st == PS_COMPLETE) {
			*resp_out = p->r;
			p->r = NULL;
			p->nhandles = 0;        /* the handles now belong to the caller */
			p->st = PS_BEGIN;
			*consumed_out = pos;
			return IMAP_PARSE_DONE;
		}
	}
	*consumed_out = pos;
	return IMAP_PARSE_NEED_MORE;
fail:
	*consumed_out = pos;
	parser_fail(p, e);
	return IMAP_PARSE_ERROR;
}

int imap_parser_eof(struct imap_parser *p, struct err *e)
{
	struct err local;

	if (e == NULL)
		e = &local;
	if (p->st == PS_DEAD) {
		*e = p->err;
		return -1;
	}
	if (p->st == PS_BEGIN)
		return 0;
	if (p->st == PS_LIT_DATA)
		err_set(e, ERR_PROTO,
			"connection closed inside a literal (%" PRIu64 " of %" PRIu64 " bytes missing)",
			p->lit_left, p->lit_size);
	else
		err_set(e, ERR_PROTO, "connection closed in the middle of a response");
	return parser_fail(p, e);
}

bool imap_arg_is_atom(const struct imap_arg *a, const char *word)
{
	return a != NULL && a->type == IMAP_ARG_ATOM && strlen(word) == a->len &&
	       strncasecmp(a->str, word, a->len) == 0;
}

bool imap_arg_is_string(const struct imap_arg *a)
{
	return a != NULL && (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_QUOTED ||
			     a->type == IMAP_ARG_LITERAL);
}

const char *imap_arg_str(const struct imap_arg *a, size_t *len_out)
{
	if (!imap_arg_is_string(a)) {
		if (len_out)
			*len_out = 0;
		return NULL;
	}
	if (len_out)
		*len_out = a->len;
	return a->str;
}

bool imap_arg_u64(const struct imap_arg *a, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (a == NULL || a->type != IMAP_ARG_ATOM || a->len == 0)
		return false;
	for (i = 0; i < a->len; i++) {
		uint64_t d;

		if (a->str[i] < '0' || a->str[i] > '9')
			return false;
		d = (uint64_t)(a->str[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

bool imap_arg_u32(const struct imap_arg *a, uint32_t *out)
{
	uint64_t v;

	if (!imap_arg_u64(a, &v) || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

const struct imap_arg *imap_fetch_item(const struct imap_arg *list, const char *name)
{
	size_t i;

	if (list == NULL || list->type != IMAP_ARG_LIST)
		return NULL;
	for (i = 0; i + 1 < list->len; i += 2)
		if (imap_arg_is_atom(&list->list[i], name))
			return &list->list[i + 1];
	return NULL;
}

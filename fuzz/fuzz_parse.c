/*
 * fuzz_parse.c - libFuzzer target for the IMAP response parser.
 *
 * Input layout: byte 0 picks limits and which literals stream to the sink,
 * bytes 1-4 seed the chunk sizes, the rest is the server's byte stream.
 * The stream is parsed twice, whole and in chunks; both runs must agree
 * (outcome, error code, a hash of every response).  The sink checks that
 * every handle it hands out is ended with exactly its size and is either
 * returned in a response tree or aborted exactly once, never both.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_handle {
	uint64_t size, seen;
	int ended, aborted, returned;
};

struct fz_sink {
	uint64_t stream_from;
	struct fz_handle **h;
	size_t n, cap;
};

static int fz_begin(void *ctx, const struct imap_literal_info *info,
		    enum imap_sink_choice *choice_out, void **handle_out, struct err *e)
{
	struct fz_sink *s = ctx;
	struct fz_handle *h;

	(void)e;
	if (info->size < s->stream_from)
		return 0;
	h = xcalloc(1, sizeof(*h));
	h->size = info->size;
	s->h = xgrow(s->h, &s->cap, s->n + 1, sizeof(*s->h));
	s->h[s->n++] = h;
	*choice_out = IMAP_SINK_STREAM;
	*handle_out = h;
	return 0;
}

static int fz_data(void *ctx, void *handle, const char *bytes, size_t len, struct err *e)
{
	struct fz_handle *h = handle;

	(void)ctx;
	(void)e;
	if (len == 0 || h->ended || h->aborted || h->seen + len > h->size)
		abort();
	/* Touch the bytes so ASan sees any over-read. */
	if (bytes[0] == 0x7f && bytes[len - 1] == 0x7e)
		h->seen += 0;
	h->seen += len;
	return 0;
}

static int fz_end(void *ctx, void *handle, struct err *e)
{
	struct fz_handle *h = handle;

	(void)ctx;
	(void)e;
	if (h->ended || h->aborted || h->seen != h->size)
		abort();
	h->ended = 1;
	return 0;
}

static void fz_abort(void *ctx, void *handle)
{
	struct fz_handle *h = handle;

	(void)ctx;
	if (h->aborted)
		abort();
	h->aborted = 1;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
	return h;
}

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
	size_t i;

	if (s == NULL)
		return mix(h, 0xdead);
	for (i = 0; i < n; i++)
		h = mix(h, (unsigned char)s[i]);
	return mix(h, n);
}

static uint64_t hash_args(uint64_t h, const struct imap_arg *a, size_t n);

static uint64_t hash_arg(uint64_t h, const struct imap_arg *a)
{
	h = mix(h, (uint64_t)a->type * 2 + a->literal8);
	switch (a->type) {
	case IMAP_ARG_LIST:
		return hash_args(h, a->list, a->len);
	case IMAP_ARG_LITERAL_STREAMED:
		((struct fz_handle *)a->handle)->returned++;
		return mix(h, a->size);
	case IMAP_ARG_NIL:
		return h;
	default:
		if (a->str[a->len] != '\0')
			abort();
		return hash_bytes(h, a->str, a->len);
	}
}

static uint64_t hash_args(uint64_t h, const struct imap_arg *a, size_t n)
{
	size_t i;

	h = mix(h, n);
	for (i = 0; i < n; i++)
		h = hash_arg(h, &a[i]);
	return h;
}

static uint64_t hash_resp(const struct imap_resp *r)
{
	uint64_t h = mix(r->kind, r->status);

	h = mix(h, r->has_number ? r->number : UINT64_C(1) << 40);
	h = hash_bytes(h, r->tag, r->tag ? strlen(r->tag) : 0);
	h = hash_bytes(h, r->name, r->name ? strlen(r->name) : 0);
	h = hash_bytes(h, r->code, r->code ? strlen(r->code) : 0);
	h = hash_bytes(h, r->code_raw, r->code_raw ? strlen(r->code_raw) : 0);
	h = hash_bytes(h, r->text, r->text ? strlen(r->text) : 0);
	h = hash_args(h, r->code_args, r->ncode_args);
	return hash_args(h, r->args, r->nargs);
}

struct fz_result {
	int failed;
	enum err_code code;
	size_t responses;
	uint64_t hash;
};

static void fz_run(const char *in, size_t len, uint32_t seed, bool whole,
		   const struct imap_parser_limits *lim, uint64_t stream_from,
		   struct fz_result *out)
{
	struct fz_sink s = { .stream_from = stream_from };
	struct imap_literal_sink k = { &s, fz_begin, fz_data, fz_end, fz_abort };
	struct imap_parser *p = imap_parser_new(lim, &k);
	struct err e;
	size_t off = 0, i;

	memset(out, 0, sizeof(*out));
	while (off < len && !out->failed) {
		size_t chunk = len - off;

		if (!whole) {
			seed = seed * 1103515245u + 12345u;
			chunk = 1 + (seed >> 16) % ((seed & 1) ? 4 : 64);
			if (chunk > len - off)
				chunk = len - off;
		}
		while (chunk > 0) {
			struct imap_resp *r = NULL;
			size_t used = 0;
			enum imap_parse_result res =
				imap_parser_feed(p, in + off, chunk, &used, &r, &e);

			if (used > chunk)
				abort();
			off += used;
			chunk -= used;
			if (res == IMAP_PARSE_ERROR) {
				out->failed = 1;
				out->code = e.code;
				break;
			}
			if (res == IMAP_PARSE_DONE) {
				out->hash = mix(out->hash, hash_resp(r));
				out->responses++;
				imap_resp_free(r);
			} else if (chunk != 0) {
				abort();
			}
		}
	}
	if (!out->failed)
		out->hash = mix(out->hash, imap_parser_eof(p, &e) == 0);
	imap_parser_free(p);
	for (i = 0; i < s.n; i++) {
		struct fz_handle *h = s.h[i];

		/* Each handle: returned once (ended) or aborted once, never both. */
		if (h->aborted ? h->returned != 0 : (h->returned != 1 || !h->ended))
			abort();
		free(h);
	}
	free(s.h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser_limits lim = { 0 };
	struct fz_result a, b;
	uint64_t stream_from;
	uint32_t seed;

	if (size < 5)
		return 0;
	if (data[0] & 1) {
		lim.max_line = 256;
		lim.max_literal_mem = 64;
		lim.max_literal = 4096;
		lim.max_depth = 8;
		lim.max_args = 100;
		lim.max_resp_literal_mem = 200;
	}
	stream_from = (data[0] >> 1) & 0x7f;   /* 0: every literal streams */
	if (data[0] & 0x80)
		stream_from = UINT64_MAX;       /* no literal streams */
	memcpy(&seed, data + 1, sizeof(seed));
	fz_run((const char *)data + 5, size - 5, seed, true, &lim, stream_from, &a);
	fz_run((const char *)data + 5, size - 5, seed, false, &lim, stream_from, &b);
	if (a.failed != b.failed || a.code != b.code || a.responses != b.responses ||
	    a.hash != b.hash)
		abort();
	return 0;
}

/*
 * fp.c - the sync fingerprint (see fp.h).
 */
#include "fp.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "crlf.h"

static const char fp_magic[] = "ferry-fp1\n";

int sync_fp_init(struct sync_fp_ctx *c, struct err *e)
{
	gnutls_hash_hd_t h;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = gnutls_hash_init(&h, GNUTLS_DIG_SHA256);
	if (rc < 0)
		return err_set(e, ERR_INTERNAL, "cannot start a SHA-256 hash: %s",
			       gnutls_strerror(rc));
	c->hash = h;
	buf_init(&c->header, SYNC_FP_HEADER_SCAN);
	gnutls_hash(h, fp_magic, sizeof(fp_magic) - 1);
	return 0;
}

static void fp_flush(struct sync_fp_ctx *c)
{
	if (c->nout > 0)
		gnutls_hash((gnutls_hash_hd_t)c->hash, c->out, c->nout);
	if (c->nout > 0 && c->header.len < c->header.max) {
		size_t room = c->header.max - c->header.len;

		(void)buf_add(&c->header, c->out, c->nout < room ? c->nout : room, NULL);
	}
	c->nout = 0;
}

/* One byte of the normalised header goes to the hash. */
static void fp_emit(struct sync_fp_ctx *c, unsigned char ch)
{
	if (c->nout == sizeof(c->out))
		fp_flush(c);
	c->out[c->nout++] = ch;
}

/* A line ending (CRLF or bare LF) in the header. */
static void fp_line_end(struct sync_fp_ctx *c)
{
	fp_emit(c, '\r');
	fp_emit(c, '\n');
	if (c->line_len == 0)
		c->header_done = true;
	c->line_len = 0;
}

static void fp_content(struct sync_fp_ctx *c, unsigned char ch)
{
	fp_emit(c, ch);
	c->line_len++;
}

/*
 * After the header only the CRLF size is kept: every byte, plus one for
 * each bare LF (crlf_count_bare_lf: this runs over every downloaded byte).
 */
static void fp_count_body(struct sync_fp_ctx *c, const unsigned char *p, size_t n)
{
	c->size += n + crlf_count_bare_lf((const char *)p, n, c->last_cr);
	c->last_cr = n > 0 ? p[n - 1] == '\r' : c->last_cr;
	c->pending_cr = false;
}

/* The header's bytes of p[0..n), hashed; returns how many there were (n while it lasts). */
static size_t fp_header(struct sync_fp_ctx *c, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = p[i];
		bool had_cr = c->pending_cr;

		if (c->header_done)
			return i;
		c->pending_cr = false;
		c->size++;
		if (ch == '\n' && !c->last_cr)
			c->size++;      /* a bare LF becomes CR LF */
		c->last_cr = (ch == '\r');
		if (had_cr && ch != '\n')
			fp_content(c, '\r');
		if (ch == '\n')
			fp_line_end(c);
		else if (ch == '\r')
			c->pending_cr = true;
		else
			fp_content(c, ch);
	}
	return n;
}

void sync_fp_update(struct sync_fp_ctx *c, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t k = fp_header(c, p, n);

	if (k < n)
		fp_count_body(c, p + k, n - k);
}

void sync_fp_update_header(struct sync_fp_ctx *c, const void *data, size_t n)
{
	(void)fp_header(c, data, n);
}

/* The first Message-ID header of the kept header block; `out` has room
 * for SYNC_FP_MSGID_MAX bytes and a NUL. */
static void fp_find_message_id(const struct buf *hdr, char *out)
{
	const char *p = buf_cstr(hdr), *end = p + hdr->len;
	size_t o = 0;
	bool in_msgid = false, found = false;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end, *v = p;

		if (nl == NULL)
			break;          /* a line cut by the cap or unfinished */
		if (le > p && le[-1] == '\r')
			le--;
		if (le == p)
			break;
		if (*p == ' ' || *p == '\t') {
			if (!in_msgid)
				goto next;
		} else {
			if (found)
				break;
			in_msgid = (size_t)(le - p) >= 11 && strncasecmp(p, "Message-ID:", 11) == 0;
			if (!in_msgid)
				goto next;
			found = true;
			v = p + 11;
		}
		for (; v < le && o < SYNC_FP_MSGID_MAX; v++)
			out[o++] = (*v == '\t') ? ' ' : *v;
next:
		p = nl + 1;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	size_t lead = strspn(out, " ");

	memmove(out, out + lead, o - lead + 1);
}

void sync_fp_final_size(struct sync_fp_ctx *c, uint64_t size, struct sync_fp_value *out)
{
	char tail[32];
	int len;

	if (c->pending_cr && !c->header_done)
		fp_content(c, '\r');
	c->pending_cr = false;
	fp_flush(c);
	len = snprintf(tail, sizeof(tail), "\n%" PRIu64, size);
	gnutls_hash((gnutls_hash_hd_t)c->hash, tail, (size_t)len);
	gnutls_hash_deinit((gnutls_hash_hd_t)c->hash, out->bytes);
	c->hash = NULL;
	out->size = size;
	fp_find_message_id(&c->header, out->message_id);
	buf_release(&c->header);
}

void sync_fp_final(struct sync_fp_ctx *c, struct sync_fp_value *out)
{
	sync_fp_final_size(c, c->size, out);
}

void sync_fp_abort(struct sync_fp_ctx *c)
{
	if (c->hash != NULL)
		gnutls_hash_deinit((gnutls_hash_hd_t)c->hash, NULL);
	c->hash = NULL;
	buf_release(&c->header);
}

int sync_fp_fd(int fd, struct sync_fp_value *out, struct err *e)
{
	struct sync_fp_ctx c;
	char chunk[65536];

	if (sync_fp_init(&c, e) < 0)
		return -1;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sync_fp_abort(&c);
			return err_sys(e, ERR_IO, errno, "cannot read a message to fingerprint it");
		}
		sync_fp_update(&c, chunk, (size_t)n);
	}
	sync_fp_final(&c, out);
	return 0;
}

/*
 * maildir_fp.c - message fingerprints (Message-ID and a SHA-256 over the
 * message with CRLF line ends), identical for a message read from disk
 * (often bare LF) and the same message as a server sends it (CRLF).
 */
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "maildir.h"
#include "xalloc.h"

int maildir_fp_init(struct maildir_fp_ctx *c, struct err *e)
{
	gnutls_hash_hd_t h;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = gnutls_hash_init(&h, GNUTLS_DIG_SHA256);
	if (rc < 0) {
		err_set(e, ERR_INTERNAL, "cannot start a SHA-256 hash: %s", gnutls_strerror(rc));
		e->lib = rc;
		return -1;
	}
	c->hash = h;
	buf_init(&c->header, MAILDIR_FP_HEADER_MAX);
	return 0;
}

/* Keep the header block (up to its blank line or the cap). */
static void header_feed(struct maildir_fp_ctx *c, const char *p, size_t n)
{
	size_t room = c->header.max - c->header.len, from, i;
	struct err ignore;

	if (c->header_done)
		return;
	if (n > room) {
		n = room;
		c->header_done = true;  /* truncated: what we have is all we look at */
	}
	from = c->header.len > 2 ? c->header.len - 2 : 0;
	if (n > 0)
		buf_add(&c->header, p, n, &ignore);
	for (i = from; i < c->header.len; i++) {
		const char *s = c->header.data + i;
		size_t left = c->header.len - i;

		if (s[0] != '\n')
			continue;
		if (i == 0 || (left >= 2 && s[1] == '\n') ||
		    (left >= 3 && s[1] == '\r' && s[2] == '\n')) {
			c->header_done = true;
			break;
		}
	}
	/* A message that starts with a blank line has an empty header. */
	if (c->header.len > 0 && (c->header.data[0] == '\n' ||
				  (c->header.len > 1 && c->header.data[0] == '\r' && c->header.data[1] == '\n')))
		c->header_done = true;
}

void maildir_fp_update(struct maildir_fp_ctx *c, const void *data, size_t n)
{
	gnutls_hash_hd_t h = c->hash;
	const char *p = data, *end = p + n;

	header_feed(c, p, n);
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t seg = lf != NULL ? (size_t)(lf - p) : (size_t)(end - p);
		bool cr_before;

		if (lf == NULL) {
			gnutls_hash(h, p, seg);
			c->size += seg;
			c->last_cr = p[seg - 1] == '\r';
			break;
		}
		cr_before = seg > 0 ? lf[-1] == '\r' : c->last_cr;
		if (seg > 0)
			gnutls_hash(h, p, seg);
		if (cr_before) {
			gnutls_hash(h, "\n", 1);
			c->size += seg + 1;
		} else {
			gnutls_hash(h, "\r\n", 2);
			c->size += seg + 2;
		}
		c->last_cr = false;
		p = lf + 1;
	}
}

/* Find the Message-ID header in the kept header block. */
static void find_message_id(const struct maildir_fp_ctx *c, char *out)
{
	const char *p = buf_cstr(&c->header), *end = p + c->header.len;
	size_t o = 0;
	bool in_msgid = false, found = false;

	out[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end, *v = p;

		if (nl == NULL && c->header.len == c->header.max)
			break;          /* a line cut by the cap: not trusted */
		if (le > p && le[-1] == '\r')
			le--;
		if (le == p)
			break;          /* the blank line: end of the header */
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
		for (; v < le && o < MAILDIR_FP_MSGID_MAX; v++)
			out[o++] = *v;
next:
		p = nl != NULL ? nl + 1 : end;
	}
	out[o] = '\0';
	/* Trim blanks on both ends. */
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		out[--o] = '\0';
	size_t lead = strspn(out, " \t");

	memmove(out, out + lead, o - lead + 1);
}

void maildir_fp_final(struct maildir_fp_ctx *c, struct maildir_fingerprint *fp)
{
	memset(fp, 0, sizeof(*fp));
	gnutls_hash_deinit((gnutls_hash_hd_t)c->hash, fp->sha256);
	c->hash = NULL;
	fp->size = c->size;
	find_message_id(c, fp->message_id);
	buf_release(&c->header);
}

int maildir_fp_fd(int fd, struct maildir_fingerprint *fp, struct err *e)
{
	struct maildir_fp_ctx c;
	char *chunk;

	if (maildir_fp_init(&c, e) < 0)
		return -1;
	chunk = xmalloc(65536);
	for (;;) {
		ssize_t r = read(fd, chunk, 65536);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;

			maildir_fp_final(&c, fp);
			free(chunk);
			return err_sys(e, ERR_IO, err, "cannot read a message");
		}
		if (r == 0)
			break;
		maildir_fp_update(&c, chunk, (size_t)r);
	}
	maildir_fp_final(&c, fp);
	free(chunk);
	return 0;
}

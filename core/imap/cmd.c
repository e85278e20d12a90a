/*
 * cmd.c - encoding helpers for IMAP commands (see cmd.h).
 */
#include "cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

/* RFC 3501 ASTRING-CHAR: ATOM-CHAR or "]". */
static bool is_astring_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\", c) == NULL;
}

enum str_form { FORM_ATOM, FORM_QUOTED, FORM_LITERAL };

static int string_form(const char *s, size_t len, unsigned flags, enum str_form *form_out,
		       struct err *e)
{
	bool atom = len > 0 && !(flags & IMAP_STR_NO_ATOM);
	bool quoted = true;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0')
			return err_set(e, ERR_USAGE, "string contains a NUL byte and cannot be sent");
		if (!is_astring_char(c))
			atom = false;
		if (c == '\r' || c == '\n' || (c >= 0x80 && !(flags & IMAP_STR_UTF8)))
			quoted = false;
	}
	/* "NIL" is a valid astring atom, but a careless server may read it as NIL. */
	if (len == 3 && strncasecmp(s, "NIL", 3) == 0)
		atom = false;
	*form_out = atom ? FORM_ATOM : quoted ? FORM_QUOTED : FORM_LITERAL;
	return 0;
}

static bool literal_is_sync(uint64_t size, unsigned flags)
{
	if (flags & IMAP_STR_LITERAL_PLUS)
		return false;
	if (flags & IMAP_STR_LITERAL_MINUS)
		return size > IMAP_LITERAL_MINUS_MAX;
	return true;
}

int imap_cmd_add_literal_prefix(struct buf *out, uint64_t size, unsigned flags, struct err *e)
{
	bool sync = literal_is_sync(size, flags);

	if (buf_addf(out, e, "%s{%" PRIu64 "%s}\r\n", (flags & IMAP_STR_LITERAL8) ? "~" : "",
		     size, sync ? "" : "+") < 0)
		return -1;
	return sync ? 1 : 0;
}

static int add_quoted(struct buf *out, const char *s, size_t len, struct err *e)
{
	size_t escapes = 0, i;
	char *w;

	for (i = 0; i < len; i++)
		if (s[i] == '"' || s[i] == '\\')
			escapes++;
	if (len > SIZE_MAX - escapes - 2 || buf_reserve(out, len + escapes + 2, e) < 0)
		return err_set(e, ERR_LIMIT, "quoted string exceeds the limit of %zu bytes",
			       out->max);
	w = out->data + out->len;
	*w++ = '"';
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			*w++ = '\\';
		*w++ = s[i];
	}
	*w++ = '"';
	out->len = (size_t)(w - out->data);
	out->data[out->len] = '\0';
	return 0;
}

int imap_cmd_add_string(struct buf *out, const char *s, size_t len, unsigned flags,
			size_t *wait_at_out, struct err *e)
{
	enum str_form form = FORM_ATOM;
	size_t old = out->len;
	int sync;

	if (wait_at_out)
		*wait_at_out = SIZE_MAX;
	if (string_form(s, len, flags, &form, e) < 0)
		return -1;
	if (form == FORM_ATOM)
		return buf_add(out, s, len, e);
	if (form == FORM_QUOTED)
		return add_quoted(out, s, len, e);
	sync = imap_cmd_add_literal_prefix(out, len, flags & ~(unsigned)IMAP_STR_LITERAL8, e);
	if (sync < 0)
		return -1;
	if (sync && wait_at_out)
		*wait_at_out = out->len;
	if (buf_add(out, s, len, e) < 0) {
		buf_truncate(out, old);
		if (wait_at_out)
			*wait_at_out = SIZE_MAX;
		return -1;
	}
	return sync;
}

/* "a" or "a:b" into tmp (at least 22 bytes); returns its length. */
static size_t range_text(char *tmp, size_t size, uint32_t a, uint32_t b)
{
	int n = a == b ? snprintf(tmp, size, "%" PRIu32, a)
		       : snprintf(tmp, size, "%" PRIu32 ":%" PRIu32, a, b);

	return n < 0 ? 0 : (size_t)n;
}

int imap_seqset_format(const uint32_t *uids, size_t n, size_t max_len, struct buf *out,
		       size_t *consumed_out, struct err *e)
{
	size_t old = out->len, used = 0, i = 0;

	*consumed_out = 0;
	if (max_len < 21)
		return err_set(e, ERR_INTERNAL, "sequence set length cap %zu is below 21", max_len);
	while (i < n) {
		char tmp[32];
		size_t j = i, tlen;

		if (uids[i] == 0 || (i > 0 && uids[i] < uids[i - 1])) {
			buf_truncate(out, old);
			return err_set(e, ERR_INTERNAL, "UID list is not sorted or holds 0");
		}
		/* Extend the run over consecutive (or repeated) UIDs. */
		while (j + 1 < n && (uids[j + 1] == uids[j] ||
				     (uids[j] != UINT32_MAX && uids[j + 1] == uids[j] + 1)))
			j++;
		tlen = range_text(tmp, sizeof(tmp), uids[i], uids[j]);
		if (used + tlen + (used > 0) > max_len)
			break;
		if ((used > 0 && buf_addc(out, ',', e) < 0) || buf_add(out, tmp, tlen, e) < 0) {
			buf_truncate(out, old);
			return -1;
		}
		used += tlen + (used > 0);
		i = j + 1;
	}
	*consumed_out = i;
	return 0;
}

/* A number or "*" at s[*pos]. */
static int seq_number(const char *s, size_t len, size_t *pos, uint32_t star, uint32_t *out,
		      struct err *e)
{
	uint64_t v = 0;
	size_t i = *pos;

	if (i < len && s[i] == '*') {
		if (star == 0)
			return err_set(e, ERR_PROTO, "sequence set uses \"*\" where it is not allowed");
		*out = star;
		*pos = i + 1;
		return 0;
	}
	if (i >= len || s[i] < '0' || s[i] > '9')
		return err_set(e, ERR_PROTO, "malformed sequence set \"%.*s\"",
			       (int)(len < 64 ? len : 64), s);
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return err_set(e, ERR_PROTO, "number in sequence set out of range");
	}
	if (v == 0)
		return err_set(e, ERR_PROTO, "sequence set contains 0");
	*out = (uint32_t)v;
	*pos = i;
	return 0;
}

int imap_seqset_parse(const char *s, size_t len, uint32_t star, size_t max_ranges,
		      struct imap_seq_range **ranges_out, size_t *n_out, struct err *e)
{
	struct imap_seq_range *r = NULL;
	size_t n = 0, cap = 0, pos = 0;

	*ranges_out = NULL;
	*n_out = 0;
	if (len == 0)
		return err_set(e, ERR_PROTO, "empty sequence set");
	for (;;) {
		uint32_t a = 0, b = 0;

		if (seq_number(s, len, &pos, star, &a, e) < 0)
			goto fail;
		b = a;
		if (pos < len && s[pos] == ':') {
			pos++;
			if (seq_number(s, len, &pos, star, &b, e) < 0)
				goto fail;
		}
		if (n >= max_ranges) {
			err_set(e, ERR_LIMIT, "sequence set has more than %zu ranges", max_ranges);
			goto fail;
		}
		r = xgrow(r, &cap, n + 1, sizeof(*r));
		r[n].first = a < b ? a : b;
		r[n].last = a < b ? b : a;
		n++;
		if (pos == len)
			break;
		if (s[pos] != ',' || pos + 1 == len) {
			err_set(e, ERR_PROTO, "malformed sequence set \"%.*s\"",
				(int)(len < 64 ? len : 64), s);
			goto fail;
		}
		pos++;
	}
	*ranges_out = r;
	*n_out = n;
	return 0;
fail:
	free(r);
	return -1;
}

uint64_t imap_seq_ranges_count(const struct imap_seq_range *ranges, size_t n)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < n; i++)
		total += (uint64_t)ranges[i].last - ranges[i].first + 1;
	return total;
}

int imap_seqset_expand(const char *s, size_t len, uint32_t star, size_t max_count,
		       uint32_t **nums_out, size_t *n_out, struct err *e)
{
	struct imap_seq_range *r;
	size_t nr, i, k = 0;
	uint64_t total;
	uint32_t *nums = NULL;

	*nums_out = NULL;
	*n_out = 0;
	if (imap_seqset_parse(s, len, star, max_count, &r, &nr, e) < 0)
		return -1;
	total = imap_seq_ranges_count(r, nr);
	if (total > max_count) {
		free(r);
		return err_set(e, ERR_LIMIT, "sequence set has more than %zu numbers", max_count);
	}
	if (total > 0)
		nums = xmalloc((size_t)total * sizeof(*nums));
	for (i = 0; i < nr; i++) {
		uint64_t v;

		for (v = r[i].first; v <= r[i].last; v++)
			nums[k++] = (uint32_t)v;
	}
	free(r);
	*nums_out = nums;
	*n_out = k;
	return 0;
}

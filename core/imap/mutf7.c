/*
 * mutf7.c - UTF-8 <-> modified UTF-7 (RFC 3501 §5.1.3).
 *
 * Only the canonical modified UTF-7 form is accepted, so that every name
 * has exactly one wire spelling and decode(encode(x)) == x and
 * encode(decode(y)) == y hold for every accepted x and y.
 */
#include "mutf7.h"

#include <stdbool.h>
#include <stdint.h>

static const char mb64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Value of a modified base64 character, or -1. */
static int mb64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static bool is_printable_ascii(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

/*
 * Decode one UTF-8 sequence at s[*pos] (len bytes in all).  On success
 * stores the code point, advances *pos and returns 0; returns -1 on a
 * truncated, overlong, surrogate or out-of-range sequence.
 */
static int utf8_next(const unsigned char *s, size_t len, size_t *pos, uint32_t *cp_out)
{
	size_t i = *pos;
	unsigned char c = s[i];
	uint32_t cp, min;
	size_t n, k;

	if (c < 0x80) {
		*cp_out = c;
		*pos = i + 1;
		return 0;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return -1;      /* continuation byte, 0xc0/0xc1 overlong lead, or > 0xf4 */
	}
	if (len - i - 1 < n)
		return -1;
	for (k = 1; k <= n; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i + k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*cp_out = cp;
	*pos = i + 1 + n;
	return 0;
}

int utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t pos = 0;
	uint32_t cp;

	while (pos < len) {
		if (utf8_next(u, len, &pos, &cp) < 0)
			return 0;
	}
	return 1;
}

/* Append a code point (already validated) as UTF-8. */
static int utf8_put(struct buf *out, uint32_t cp, struct err *e)
{
	char tmp[4];
	size_t n;

	if (cp < 0x80) {
		tmp[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		tmp[0] = (char)(0xc0 | (cp >> 6));
		tmp[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		tmp[0] = (char)(0xe0 | (cp >> 12));
		tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		tmp[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		tmp[0] = (char)(0xf0 | (cp >> 18));
		tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		tmp[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_add(out, tmp, n, e);
}

/* Bit accumulator of an open base64 shift while encoding. */
struct mb64_enc {
	uint32_t bits;
	unsigned nbits;
};

static int mb64_put16(struct mb64_enc *enc, unsigned unit, struct buf *out, struct err *e)
{
	enc->bits = (enc->bits << 16) | unit;
	enc->nbits += 16;
	while (enc->nbits >= 6) {
		enc->nbits -= 6;
		if (buf_addc(out, mb64_alphabet[(enc->bits >> enc->nbits) & 0x3f], e) < 0)
			return -1;
	}
	enc->bits &= (1u << enc->nbits) - 1;
	return 0;
}

/* Close a shift: flush the remaining bits padded with zeros, then '-'. */
static int mb64_close(struct mb64_enc *enc, struct buf *out, struct err *e)
{
	if (enc->nbits > 0 &&
	    buf_addc(out, mb64_alphabet[(enc->bits << (6 - enc->nbits)) & 0x3f], e) < 0)
		return -1;
	enc->bits = 0;
	enc->nbits = 0;
	return buf_addc(out, '-', e);
}

int mutf7_encode(const char *utf8, size_t len, struct buf *out, struct err *e)
{
	const unsigned char *u = (const unsigned char *)utf8;
	struct mb64_enc enc = { 0, 0 };
	bool shifted = false;
	size_t start_len = out->len;
	size_t pos = 0;
	uint32_t cp;

	while (pos < len) {
		size_t at = pos;

		if (utf8_next(u, len, &pos, &cp) < 0) {
			err_set(e, ERR_CONFIG, "invalid UTF-8 in mailbox name at byte %zu", at);
			goto fail;
		}
		if (cp == 0) {
			err_set(e, ERR_CONFIG, "NUL character in mailbox name at byte %zu", at);
			goto fail;
		}
		if (is_printable_ascii(cp)) {
			if (shifted) {
				if (mb64_close(&enc, out, e) < 0)
					goto fail;
				shifted = false;
			}
			if (buf_addc(out, (char)cp, e) < 0 ||
			    (cp == '&' && buf_addc(out, '-', e) < 0))
				goto fail;
			continue;
		}
		if (!shifted) {
			if (buf_addc(out, '&', e) < 0)
				goto fail;
			shifted = true;
		}
		if (cp >= 0x10000) {
			uint32_t v = cp - 0x10000;

			if (mb64_put16(&enc, 0xd800 | (v >> 10), out, e) < 0 ||
			    mb64_put16(&enc, 0xdc00 | (v & 0x3ff), out, e) < 0)
				goto fail;
		} else if (mb64_put16(&enc, cp, out, e) < 0) {
			goto fail;
		}
	}
	if (shifted && mb64_close(&enc, out, e) < 0)
		goto fail;
	return 0;
fail:
	buf_truncate(out, start_len);
	return -1;
}

/*
 * Decode the base64 run s[*pos..] of a shift (just after '&', which is not
 * followed by '-') up to and including its closing '-'.  Appends the UTF-8
 * and advances *pos past the '-'.
 */
static int mutf7_decode_shift(const unsigned char *s, size_t len, size_t *pos,
			      struct buf *out, struct err *e)
{
	size_t start = *pos - 1;        /* the '&', for messages */
	size_t i = *pos;
	uint32_t bits = 0;
	unsigned nbits = 0;
	unsigned high = 0;              /* pending high surrogate, or 0 */
	size_t units = 0;
	int v;

	for (; i < len && s[i] != '-'; i++) {
		unsigned unit;
		uint32_t cp;

		v = mb64_value(s[i]);
		if (v < 0)
			return err_set(e, ERR_PROTO,
				       "invalid modified UTF-7 in mailbox name: bad base64 "
				       "character at byte %zu", i);
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		unit = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		units++;
		if (high) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return err_set(e, ERR_PROTO,
					       "invalid modified UTF-7 in mailbox name: unpaired "
					       "surrogate in the shift at byte %zu", start);
			cp = 0x10000 + (((uint32_t)high - 0xd800) << 10) + (unit - 0xdc00);
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
			continue;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return err_set(e, ERR_PROTO,
				       "invalid modified UTF-7 in mailbox name: unpaired "
				       "surrogate in the shift at byte %zu", start);
		} else {
			cp = unit;
		}
		if (cp == 0)
			return err_set(e, ERR_PROTO,
				       "invalid modified UTF-7 in mailbox name: encoded NUL "
				       "in the shift at byte %zu", start);
		if (is_printable_ascii(cp))
			return err_set(e, ERR_PROTO,
				       "invalid modified UTF-7 in mailbox name: printable "
				       "ASCII encoded in the shift at byte %zu", start);
		if (utf8_put(out, cp, e) < 0)
			return -1;
	}
	if (i == len)
		return err_set(e, ERR_PROTO,
			       "invalid modified UTF-7 in mailbox name: unterminated shift "
			       "at byte %zu", start);
	if (high)
		return err_set(e, ERR_PROTO,
			       "invalid modified UTF-7 in mailbox name: unpaired surrogate "
			       "in the shift at byte %zu", start);
	/*
	 * A canonical encoder pads the last unit to a whole base64 character
	 * with zero bits: fewer than six bits may remain, and they are zero.
	 */
	if (units == 0 || nbits >= 6 || bits != 0)
		return err_set(e, ERR_PROTO,
			       "invalid modified UTF-7 in mailbox name: bad padding in the "
			       "shift at byte %zu", start);
	*pos = i + 1;
	return 0;
}

int mutf7_decode(const char *mutf7, size_t len, struct buf *out, struct err *e)
{
	const unsigned char *s = (const unsigned char *)mutf7;
	size_t start_len = out->len;
	size_t pos = 0;
	bool after_shift = false;       /* the previous token was a base64 shift */

	while (pos < len) {
		unsigned char c = s[pos];

		if (!is_printable_ascii(c)) {
			err_set(e, ERR_PROTO,
				"invalid modified UTF-7 in mailbox name: byte 0x%02x at %zu",
				c, pos);
			goto fail;
		}
		if (c != '&') {
			if (buf_addc(out, (char)c, e) < 0)
				goto fail;
			pos++;
			after_shift = false;
			continue;
		}
		if (pos + 1 < len && s[pos + 1] == '-') {
			if (buf_addc(out, '&', e) < 0)
				goto fail;
			pos += 2;
			after_shift = false;
			continue;
		}
		if (after_shift) {
			err_set(e, ERR_PROTO,
				"invalid modified UTF-7 in mailbox name: needless shift at "
				"byte %zu (adjacent shifts must be merged)", pos);
			goto fail;
		}
		pos++;
		if (mutf7_decode_shift(s, len, &pos, out, e) < 0)
			goto fail;
		after_shift = true;
	}
	return 0;
fail:
	buf_truncate(out, start_len);
	return -1;
}

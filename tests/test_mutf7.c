/* Unit tests for core/imap/mutf7: UTF-8 <-> modified UTF-7 mailbox names. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "mutf7.h"

#define NAME_MAX_TEST 4096

/* UTF-8 -> mUTF-7 must give `wire`, and mUTF-7 -> UTF-8 must give `utf8` back. */
static void assert_pair(const char *utf8, size_t ulen, const char *wire)
{
	struct buf b = BUF_INIT(NAME_MAX_TEST);
	struct err e;

	cr_assert_eq(mutf7_encode(utf8, ulen, &b, &e), 0, "encode failed: %s", e.msg);
	cr_assert_str_eq(buf_cstr(&b), wire);
	buf_reset(&b);
	cr_assert_eq(mutf7_decode(wire, strlen(wire), &b, &e), 0, "decode of \"%s\" failed: %s",
		     wire, e.msg);
	cr_assert_eq(b.len, ulen);
	cr_assert(memcmp(buf_cstr(&b), utf8, ulen) == 0, "decode of \"%s\" differs", wire);
	buf_release(&b);
}

static void assert_decode_fails(const char *wire, const char *why)
{
	struct buf b = BUF_INIT(NAME_MAX_TEST);
	struct err e;

	cr_assert_eq(buf_adds(&b, "kept", &e), 0);
	cr_assert_eq(mutf7_decode(wire, strlen(wire), &b, &e), -1,
		     "\"%s\" (%s) was accepted as \"%s\"", wire, why, buf_cstr(&b));
	cr_assert_eq(e.code, ERR_PROTO, "\"%s\": wrong code %d", wire, e.code);
	cr_assert_str_eq(buf_cstr(&b), "kept", "output not restored after failure");
	cr_assert(strstr(e.msg, why) != NULL, "\"%s\": message \"%s\" lacks \"%s\"", wire,
		  e.msg, why);
	buf_release(&b);
}

static void assert_encode_fails(const char *utf8, size_t len)
{
	struct buf b = BUF_INIT(NAME_MAX_TEST);
	struct err e;

	cr_assert_eq(buf_adds(&b, "kept", &e), 0);
	cr_assert_eq(mutf7_encode(utf8, len, &b, &e), -1, "invalid UTF-8 was accepted");
	cr_assert_eq(e.code, ERR_CONFIG);
	cr_assert_str_eq(buf_cstr(&b), "kept");
	cr_assert_eq(utf8_valid(utf8, len), 0);
	buf_release(&b);
}

Test(mutf7, rfc3501_example_round_trips)
{
	const char *utf8 = "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
			   "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";

	assert_pair(utf8, strlen(utf8), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
}

Test(mutf7, ascii_passes_through_and_ampersand_is_escaped)
{
	assert_pair("INBOX", 5, "INBOX");
	assert_pair("", 0, "");
	assert_pair("&", 1, "&-");
	assert_pair("a&b", 3, "a&-b");
	assert_pair("&&", 2, "&-&-");
	assert_pair("-&-", 3, "-&--");
	assert_pair(" ~!\"#$%'()*+,-./:;<=>?@[\\]^_`{|}", 32, " ~!\"#$%'()*+,-./:;<=>?@[\\]^_`{|}");
}

Test(mutf7, adjacent_non_ascii_characters_share_one_shift)
{
	assert_pair("\xc3\xa4\xc3\xb6", 4, "&AOQA9g-");
	assert_pair("Entw\xc3\xbcrfe", 9, "Entw&APw-rfe");
	assert_pair("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e&x", 11, "&ZeVnLIqe-&-x");
}

Test(mutf7, non_bmp_characters_use_surrogate_pairs)
{
	assert_pair("\xf0\x9f\x98\x80", 4, "&2D3eAA-");
	assert_pair("a\xf0\x9f\x98\x80" "b", 6, "a&2D3eAA-b");
	assert_pair("\xf4\x8f\xbf\xbf", 4, "&2,,f,w-");
	assert_pair("\xf0\x9d\x84\x9e music", 10, "&2DTdHg- music");
}

Test(mutf7, control_characters_are_base64_encoded)
{
	assert_pair("\x01", 1, "&AAE-");
	assert_pair("\x7f", 1, "&AH8-");
	assert_pair("a\tb", 3, "a&AAk-b");
}

Test(mutf7, decode_rejects_malformed_shifts)
{
	assert_decode_fails("&U,BTFw", "unterminated shift");
	assert_decode_fails("abc&", "unterminated shift");
	assert_decode_fails("&U,BTF*-", "bad base64");
	assert_decode_fails("&U/BTFw-", "bad base64");
	assert_decode_fails("&U,BTFw=-", "bad base64");
	assert_decode_fails("&U,BTFx-", "bad padding");          /* non-zero pad bits */
	assert_decode_fails("&U,BTFwA-", "bad padding");         /* a needless 6-bit group */
	assert_decode_fails("&A-", "bad padding");               /* less than one unit */
	assert_decode_fails("&AAA-", "encoded NUL");
	assert_decode_fails("&AGE-", "printable ASCII");         /* 'a' spelled in base64 */
	assert_decode_fails("&ACY-", "printable ASCII");         /* '&' spelled in base64 */
	assert_decode_fails("&ACA-", "printable ASCII");         /* space */
	assert_decode_fails("&AOQ-&APY-", "needless shift");
}

Test(mutf7, decode_rejects_unpaired_surrogates)
{
	assert_decode_fails("&2D0-", "unpaired surrogate");      /* lone high */
	assert_decode_fails("&3gA-", "unpaired surrogate");      /* lone low */
	assert_decode_fails("&2D3YPQ-", "unpaired surrogate");   /* high, high */
	assert_decode_fails("&2D0AYQ-", "unpaired surrogate");   /* high, then U+0061 */
	assert_decode_fails("&3gDYPQ-", "unpaired surrogate");   /* low before high */
}

Test(mutf7, decode_rejects_raw_bytes_outside_printable_ascii)
{
	assert_decode_fails("\xc3\xa4", "byte 0xc3");
	assert_decode_fails("a\tb", "byte 0x09");
	assert_decode_fails("a\x7f", "byte 0x7f");
}

Test(mutf7, encode_rejects_invalid_utf8)
{
	assert_encode_fails("\xff", 1);
	assert_encode_fails("\x80", 1);                     /* lone continuation */
	assert_encode_fails("\xc0\xaf", 2);                 /* overlong '/' */
	assert_encode_fails("\xc1\xbf", 2);                 /* overlong */
	assert_encode_fails("\xe0\x80\xaf", 3);             /* overlong '/' */
	assert_encode_fails("\xf0\x80\x80\xaf", 4);         /* overlong '/' */
	assert_encode_fails("\xed\xa0\x80", 3);             /* surrogate U+D800 */
	assert_encode_fails("\xed\xbf\xbf", 3);             /* surrogate U+DFFF */
	assert_encode_fails("\xf4\x90\x80\x80", 4);         /* U+110000 */
	assert_encode_fails("\xe6\x97", 2);                 /* truncated */
	assert_encode_fails("a\xe6\x97" "b", 4);            /* bad continuation */
}

Test(mutf7, encode_rejects_nul)
{
	struct buf b = BUF_INIT(64);
	struct err e;

	cr_assert_eq(mutf7_encode("a\0b", 3, &b, &e), -1);
	cr_assert_eq(e.code, ERR_CONFIG);
	cr_assert_eq(b.len, 0);
	buf_release(&b);
}

Test(mutf7, output_over_cap_is_limit_error)
{
	struct buf b = BUF_INIT(8);
	struct err e;

	cr_assert_eq(mutf7_encode("\xe5\x8f\xb0\xe5\x8c\x97\xe5\x8f\xb0", 9, &b, &e), -1);
	cr_assert_eq(e.code, ERR_LIMIT);
	cr_assert_eq(b.len, 0);
	buf_release(&b);
}

Test(mutf7, utf8_valid_accepts_boundaries)
{
	cr_assert_eq(utf8_valid("", 0), 1);
	cr_assert_eq(utf8_valid("\x7f", 1), 1);
	cr_assert_eq(utf8_valid("\xc2\x80", 2), 1);
	cr_assert_eq(utf8_valid("\xdf\xbf", 2), 1);
	cr_assert_eq(utf8_valid("\xe0\xa0\x80", 3), 1);
	cr_assert_eq(utf8_valid("\xed\x9f\xbf", 3), 1);      /* U+D7FF */
	cr_assert_eq(utf8_valid("\xee\x80\x80", 3), 1);      /* U+E000 */
	cr_assert_eq(utf8_valid("\xef\xbf\xbf", 3), 1);
	cr_assert_eq(utf8_valid("\xf0\x90\x80\x80", 4), 1);
	cr_assert_eq(utf8_valid("\xf4\x8f\xbf\xbf", 4), 1);  /* U+10FFFF */
	cr_assert_eq(utf8_valid("\xf5\x80\x80\x80", 4), 0);
	cr_assert_eq(utf8_valid("\xe0\x9f\xbf", 3), 0);      /* overlong U+07FF */
	cr_assert_eq(utf8_valid("\xf0\x8f\xbf\xbf", 4), 0);  /* overlong U+FFFF */
}

/* ---- round trips over generated names ---- */

static uint64_t rng_state;

static uint32_t rng_next(void)
{
	/* xorshift64*: reproducible from the printed seed. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

static uint32_t random_code_point(void)
{
	uint32_t cp;

	switch (rng_next() % 8) {
	case 0:
		return "&-&-"[rng_next() % 4];
	case 1:
	case 2:
		return 0x20 + rng_next() % 0x5f;
	case 3:
		cp = 1 + rng_next() % 0x20;
		return cp == 0x20 ? 0x7f : cp;
	case 4:
		return 0x80 + rng_next() % 0x780;
	case 5:
	case 6:
		do
			cp = 0x800 + rng_next() % 0xf800;
		while (cp >= 0xd800 && cp <= 0xdfff);
		return cp;
	default:
		return 0x10000 + rng_next() % 0x100000;
	}
}

static size_t put_utf8(char *p, uint32_t cp)
{
	if (cp < 0x80) {
		p[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (char)(0xc0 | cp >> 6);
		p[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		p[0] = (char)(0xe0 | cp >> 12);
		p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		p[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	p[0] = (char)(0xf0 | cp >> 18);
	p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	p[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

Test(mutf7, generated_names_round_trip_both_ways)
{
	const char *env = getenv("FERRY_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	struct buf wire = BUF_INIT(NAME_MAX_TEST), back = BUF_INIT(NAME_MAX_TEST);
	struct err e;
	char name[32 * 4];
	int round;

	fprintf(stderr, "mutf7 round trips: seed %llu (set FERRY_TEST_SEED to repeat)\n",
		(unsigned long long)seed);
	rng_state = seed ? seed : 1;
	for (round = 0; round < 5000; round++) {
		size_t len = 0, n = rng_next() % 32, i;

		for (i = 0; i < n; i++)
			len += put_utf8(name + len, random_code_point());
		buf_reset(&wire);
		buf_reset(&back);
		cr_assert_eq(utf8_valid(name, len), 1);
		cr_assert_eq(mutf7_encode(name, len, &wire, &e), 0, "seed %llu round %d: %s",
			     (unsigned long long)seed, round, e.msg);
		for (i = 0; i < wire.len; i++)
			cr_assert(wire.data[i] >= 0x20 && wire.data[i] <= 0x7e,
				  "seed %llu round %d: non-ASCII on the wire",
				  (unsigned long long)seed, round);
		cr_assert_eq(mutf7_decode(buf_cstr(&wire), wire.len, &back, &e), 0,
			     "seed %llu round %d: \"%s\": %s", (unsigned long long)seed, round,
			     buf_cstr(&wire), e.msg);
		cr_assert_eq(back.len, len, "seed %llu round %d", (unsigned long long)seed, round);
		cr_assert(memcmp(buf_cstr(&back), name, len) == 0, "seed %llu round %d: \"%s\"",
			  (unsigned long long)seed, round, buf_cstr(&wire));
	}
	buf_release(&wire);
	buf_release(&back);
}

Test(mutf7, generated_wire_strings_decode_only_if_canonical)
{
	/*
	 * Random strings over the modified UTF-7 alphabet: whenever one is
	 * accepted, encoding the result must give back exactly the same bytes
	 * (one spelling per name), and the result must be valid UTF-8.
	 */
	static const char alphabet[] = "&-&-AaZz09+,/ADgZeVnLIqe2D3";
	const char *env = getenv("FERRY_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) + 1;
	struct buf utf8 = BUF_INIT(NAME_MAX_TEST), again = BUF_INIT(NAME_MAX_TEST);
	struct err e;
	char wire[24];
	int round, accepted = 0;

	fprintf(stderr, "mutf7 canonical check: seed %llu\n", (unsigned long long)seed);
	rng_state = seed ? seed : 1;
	for (round = 0; round < 20000; round++) {
		size_t n = 1 + rng_next() % (sizeof(wire) - 1), i;

		for (i = 0; i < n; i++)
			wire[i] = alphabet[rng_next() % (sizeof(alphabet) - 1)];
		buf_reset(&utf8);
		buf_reset(&again);
		if (mutf7_decode(wire, n, &utf8, &e) < 0)
			continue;
		accepted++;
		cr_assert_eq(utf8_valid(utf8.data ? utf8.data : "", utf8.len), 1);
		cr_assert_eq(mutf7_encode(buf_cstr(&utf8), utf8.len, &again, &e), 0);
		cr_assert(again.len == n && memcmp(buf_cstr(&again), wire, n) == 0,
			  "seed %llu: \"%.*s\" accepted but canonical form is \"%s\"",
			  (unsigned long long)seed, (int)n, wire, buf_cstr(&again));
	}
	cr_assert_gt(accepted, 100, "too few accepted strings to mean anything");
	buf_release(&utf8);
	buf_release(&again);
}

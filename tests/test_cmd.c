/*
 * Unit tests for core/imap/cmd: string encoding (atom / quoted / literal,
 * LITERAL+ and LITERAL-), literal announcements, sequence sets.  Encoded
 * strings are checked by parsing them back with the response parser.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "parse.h"

/* Encode s and return what the buf holds; *rc_out is the call's result. */
static void encode(const char *s, size_t len, unsigned flags, struct buf *out, int *rc_out,
		   size_t *wait_out)
{
	struct err e;

	buf_init(out, 1 << 20);
	*rc_out = imap_cmd_add_string(out, s, len, flags, wait_out, &e);
}

static void expect_encoding(const char *s, unsigned flags, const char *want, int want_rc)
{
	struct buf b;
	size_t wait;
	int rc;

	encode(s, strlen(s), flags, &b, &rc, &wait);
	cr_assert_eq(rc, want_rc, "\"%s\": rc %d", s, rc);
	cr_assert_str_eq(buf_cstr(&b), want);
	if (rc == 1)
		cr_assert_eq(wait, (size_t)(strchr(b.data, '\n') - b.data) + 1);
	else
		cr_assert_eq(wait, SIZE_MAX);
	buf_release(&b);
}

/* Wrap an encoded string as "* X <it>\r\n", parse it, return its bytes. */
static void expect_roundtrip(const char *s, size_t len, unsigned flags)
{
	struct imap_parser *p = imap_parser_new(NULL, NULL);
	struct buf b = BUF_INIT(1 << 20);
	struct imap_resp *r;
	struct err e;
	size_t used, n;
	const char *got;

	cr_assert_eq(buf_adds(&b, "* X ", &e), 0);
	cr_assert_geq(imap_cmd_add_string(&b, s, len, flags, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(buf_adds(&b, "\r\n", &e), 0);
	cr_assert_eq(imap_parser_feed(p, b.data, b.len, &used, &r, &e), IMAP_PARSE_DONE,
		     "%s: %s", b.data, e.msg);
	cr_assert_eq(used, b.len);
	cr_assert_eq(r->nargs, 1);
	got = imap_arg_str(&r->args[0], &n);
	cr_assert_not_null(got, "encoded as NIL: %s", b.data);
	cr_assert_eq(n, len);
	cr_assert_eq(memcmp(got, s, len), 0);
	imap_resp_free(r);
	imap_parser_free(p);
	buf_release(&b);
}

Test(cmd, safe_strings_are_atoms)
{
	expect_encoding("INBOX", 0, "INBOX", 0);
	expect_encoding("Sent.2024]", 0, "Sent.2024]", 0);
	expect_encoding("a-b_c/d.e~f", 0, "a-b_c/d.e~f", 0);
}

Test(cmd, strings_with_specials_are_quoted_with_escapes)
{
	expect_encoding("", 0, "\"\"", 0);
	expect_encoding("Sent Items", 0, "\"Sent Items\"", 0);
	expect_encoding("a\"b\\c", 0, "\"a\\\"b\\\\c\"", 0);
	expect_encoding("50%", 0, "\"50%\"", 0);
	expect_encoding("*", 0, "\"*\"", 0);
	expect_encoding("(x){y}", 0, "\"(x){y}\"", 0);
	expect_encoding("tab\there", 0, "\"tab\there\"", 0);
	expect_encoding("INBOX", IMAP_STR_NO_ATOM, "\"INBOX\"", 0);
	expect_encoding("NIL", 0, "\"NIL\"", 0);
	expect_encoding("nIl", 0, "\"nIl\"", 0);
	expect_encoding("NILS", 0, "NILS", 0);
}

Test(cmd, strings_with_line_breaks_or_8bit_become_literals)
{
	expect_encoding("a\r\nb", 0, "{4}\r\na\r\nb", 1);
	expect_encoding("caf\xc3\xa9", 0, "{5}\r\ncaf\xc3\xa9", 1);
	expect_encoding("caf\xc3\xa9", IMAP_STR_UTF8, "\"caf\xc3\xa9\"", 0);
	expect_encoding("a\nb", IMAP_STR_UTF8, "{3}\r\na\nb", 1);
}

Test(cmd, literal_plus_is_non_synchronising)
{
	expect_encoding("a\r\nb", IMAP_STR_LITERAL_PLUS, "{4+}\r\na\r\nb", 0);
}

Test(cmd, literal_minus_is_non_synchronising_only_up_to_4096_bytes)
{
	char *big = malloc(4098);
	struct buf b;
	size_t wait;
	int rc;

	memset(big, 'x', 4097);
	big[0] = '\n';
	big[4097] = '\0';
	encode(big, 4096, IMAP_STR_LITERAL_MINUS, &b, &rc, &wait);
	cr_assert_eq(rc, 0);
	cr_assert_eq(strncmp(b.data, "{4096+}\r\n", 9), 0);
	cr_assert_eq(b.len, 9 + 4096);
	buf_release(&b);
	encode(big, 4097, IMAP_STR_LITERAL_MINUS, &b, &rc, &wait);
	cr_assert_eq(rc, 1);
	cr_assert_eq(strncmp(b.data, "{4097}\r\n", 8), 0);
	cr_assert_eq(wait, 8);
	buf_release(&b);
	free(big);
}

Test(cmd, sync_literal_wait_offset_is_relative_to_existing_buffer)
{
	struct buf b = BUF_INIT(1024);
	struct err e;
	size_t wait;

	cr_assert_eq(buf_adds(&b, "A1 LOGIN ", &e), 0);
	cr_assert_eq(imap_cmd_add_string(&b, "us\ner", 5, 0, &wait, &e), 1);
	cr_assert_eq(wait, 9 + 5);
	cr_assert_eq(memcmp(b.data + wait, "us\ner", 5), 0);
	buf_release(&b);
}

Test(cmd, nul_byte_cannot_be_encoded)
{
	struct buf b;
	size_t wait;
	int rc;

	encode("a\0b", 3, 0, &b, &rc, &wait);
	cr_assert_eq(rc, -1);
	cr_assert_eq(b.len, 0);
	buf_release(&b);
}

Test(cmd, encoding_over_buffer_cap_fails_and_leaves_buffer_unchanged)
{
	struct buf b = BUF_INIT(12);
	struct err e;
	size_t wait;

	cr_assert_eq(buf_adds(&b, "A1 ", &e), 0);
	cr_assert_eq(imap_cmd_add_string(&b, "a\r\nbcdef", 8, 0, &wait, &e), -1);
	cr_assert_eq(e.code, ERR_LIMIT);
	cr_assert_str_eq(b.data, "A1 ");
	cr_assert_eq(wait, SIZE_MAX);
	cr_assert_eq(imap_cmd_add_string(&b, "a b c d e f", 11, 0, &wait, &e), -1);
	cr_assert_str_eq(b.data, "A1 ");
	cr_assert_eq(imap_cmd_add_string(&b, "abcdefghij", 10, 0, &wait, &e), -1);
	cr_assert_str_eq(b.data, "A1 ");
	buf_release(&b);
}

Test(cmd, encoded_strings_parse_back_to_the_same_bytes)
{
	static const char *const samples[] = {
		"INBOX", "", "Sent Items", "a\"b\\c", "NIL", "nil", "{5}", "~{3}", "(", ")",
		"a\r\nb", "\xff\xfe", "x]y", "[Gmail]/All Mail", "\\Seen", "\r", "\"",
	};
	unsigned flag_sets[] = { 0, IMAP_STR_LITERAL_PLUS, IMAP_STR_NO_ATOM, IMAP_STR_UTF8 };
	size_t i, j;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		for (j = 0; j < sizeof(flag_sets) / sizeof(flag_sets[0]); j++) {
			expect_roundtrip(samples[i], strlen(samples[i]), flag_sets[j]);
		}
}

Test(cmd, literal_prefix_forms)
{
	struct buf b = BUF_INIT(100);
	struct err e;

	cr_assert_eq(imap_cmd_add_literal_prefix(&b, 5000000000ULL, 0, &e), 1);
	cr_assert_eq(imap_cmd_add_literal_prefix(&b, 12, IMAP_STR_LITERAL_PLUS, &e), 0);
	cr_assert_eq(imap_cmd_add_literal_prefix(&b, 7, IMAP_STR_LITERAL8, &e), 1);
	cr_assert_eq(imap_cmd_add_literal_prefix(&b, 7, IMAP_STR_LITERAL8 | IMAP_STR_LITERAL_MINUS,
						 &e), 0);
	cr_assert_str_eq(b.data, "{5000000000}\r\n{12+}\r\n~{7}\r\n~{7+}\r\n");
	buf_release(&b);
}

/* ---- sequence sets ---- */

static void expect_format(const uint32_t *uids, size_t n, size_t max_len, const char *want,
			  size_t want_consumed)
{
	struct buf b = BUF_INIT(1 << 20);
	struct err e;
	size_t consumed;

	cr_assert_eq(imap_seqset_format(uids, n, max_len, &b, &consumed, &e), 0, "%s", e.msg);
	cr_assert_str_eq(buf_cstr(&b), want);
	cr_assert_eq(consumed, want_consumed);
	cr_assert_leq(b.len, max_len);
	buf_release(&b);
}

Test(cmd, uid_set_compresses_runs)
{
	static const uint32_t u[] = { 1, 2, 3, 4, 5, 7, 9, 10, 11, 12 };
	static const uint32_t dup[] = { 3, 3, 4, 4, 8, 8 };
	static const uint32_t top[] = { 4294967294u, 4294967295u };

	expect_format(u, 10, 1000, "1:5,7,9:12", 10);
	expect_format(dup, 6, 1000, "3:4,8", 6);
	expect_format(top, 2, 1000, "4294967294:4294967295", 2);
	expect_format(u, 1, 1000, "1", 1);
	expect_format(u, 0, 1000, "", 0);
}

Test(cmd, uid_set_splits_at_length_cap_and_covers_every_uid)
{
	uint32_t uids[3000];
	uint32_t *back;
	size_t i, off = 0, sets = 0, nback, total = 0;
	struct err e;

	for (i = 0; i < 3000; i++)
		uids[i] = (uint32_t)(1000 + i * 2 + (i % 7 == 0)); /* gaps everywhere, some runs */
	for (i = 1; i < 3000; i++)
		if (uids[i] <= uids[i - 1])
			uids[i] = uids[i - 1] + 1;
	while (off < 3000) {
		struct buf b = BUF_INIT(1 << 20);
		size_t consumed;

		cr_assert_eq(imap_seqset_format(uids + off, 3000 - off, 100, &b, &consumed, &e), 0);
		cr_assert_gt(consumed, 0);
		cr_assert_leq(b.len, 100);
		cr_assert_eq(imap_seqset_expand(b.data, b.len, 0, 100000, &back, &nback, &e), 0,
			     "%s: %s", b.data, e.msg);
		cr_assert_eq(nback, consumed);
		cr_assert_eq(memcmp(back, uids + off, consumed * sizeof(*back)), 0);
		free(back);
		buf_release(&b);
		off += consumed;
		total += consumed;
		sets++;
	}
	cr_assert_eq(total, 3000);
	cr_assert_gt(sets, 10);
}

Test(cmd, uid_set_rejects_unsorted_zero_and_tiny_cap)
{
	static const uint32_t unsorted[] = { 5, 3 };
	static const uint32_t zero[] = { 0, 1 };
	static const uint32_t one[] = { 1 };
	struct buf b = BUF_INIT(100);
	struct err e;
	size_t consumed;

	cr_assert_eq(buf_adds(&b, "UID FETCH ", &e), 0);
	cr_assert_eq(imap_seqset_format(unsorted, 2, 100, &b, &consumed, &e), -1);
	cr_assert_str_eq(b.data, "UID FETCH ");
	cr_assert_eq(imap_seqset_format(zero, 2, 100, &b, &consumed, &e), -1);
	cr_assert_eq(imap_seqset_format(one, 1, 20, &b, &consumed, &e), -1);
	cr_assert_str_eq(b.data, "UID FETCH ");
	buf_release(&b);
}

Test(cmd, seqset_parse_ranges_star_and_reversed)
{
	struct imap_seq_range *r;
	size_t n;
	struct err e;

	cr_assert_eq(imap_seqset_parse("304,319:320", 11, 0, 100, &r, &n, &e), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(r[0].first, 304);
	cr_assert_eq(r[0].last, 304);
	cr_assert_eq(r[1].first, 319);
	cr_assert_eq(r[1].last, 320);
	cr_assert_eq(imap_seq_ranges_count(r, n), 3);
	free(r);
	cr_assert_eq(imap_seqset_parse("1:*", 3, 77, 100, &r, &n, &e), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(r[0].first, 1);
	cr_assert_eq(r[0].last, 77);
	free(r);
	cr_assert_eq(imap_seqset_parse("5:3,*:90", 8, 80, 100, &r, &n, &e), 0);
	cr_assert_eq(r[0].first, 3);
	cr_assert_eq(r[0].last, 5);
	cr_assert_eq(r[1].first, 80);
	cr_assert_eq(r[1].last, 90);
	free(r);
	cr_assert_eq(imap_seqset_parse("1:4294967295", 12, 0, 100, &r, &n, &e), 0);
	cr_assert_eq(imap_seq_ranges_count(r, n), 4294967295ULL);
	free(r);
}

Test(cmd, seqset_expand_keeps_written_order_for_copyuid_pairing)
{
	uint32_t *src, *dst;
	size_t ns, nd;
	struct err e;

	cr_assert_eq(imap_seqset_expand("304,319:320", 11, 0, 100, &src, &ns, &e), 0);
	cr_assert_eq(imap_seqset_expand("3958:3956", 9, 0, 100, &dst, &nd, &e), 0);
	cr_assert_eq(ns, 3);
	cr_assert_eq(nd, 3);
	cr_assert_eq(src[0], 304);
	cr_assert_eq(src[1], 319);
	cr_assert_eq(src[2], 320);
	cr_assert_eq(dst[0], 3956);
	cr_assert_eq(dst[2], 3958);
	free(src);
	free(dst);
	cr_assert_eq(imap_seqset_expand("9,2,5", 5, 0, 100, &src, &ns, &e), 0);
	cr_assert_eq(src[0], 9);
	cr_assert_eq(src[1], 2);
	cr_assert_eq(src[2], 5);
	free(src);
}

Test(cmd, seqset_malformed_input_is_rejected)
{
	static const char *const bad[] = {
		"", ",", "1,", ",1", "1::2", "1:", ":1", "0", "1:0", "a", "1 2", "1,,2",
		"4294967296", "99999999999999999999", "1:*", "*", "1-5", "+1", "1:2:3",
	};
	struct imap_seq_range *r;
	size_t i, n;
	struct err e;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = (struct imap_seq_range *)&e;
		cr_assert_eq(imap_seqset_parse(bad[i], strlen(bad[i]), 0, 100, &r, &n, &e), -1,
			     "\"%s\" accepted", bad[i]);
		cr_assert_eq(e.code, ERR_PROTO, "\"%s\": %s", bad[i], e.msg);
		cr_assert_null(r);
		cr_assert_eq(n, 0);
	}
}

Test(cmd, seqset_count_bounds_are_enforced_before_allocating)
{
	uint32_t *nums;
	struct imap_seq_range *r;
	size_t n;
	struct err e;

	cr_assert_eq(imap_seqset_expand("1:4294967295", 12, 0, 1000000, &nums, &n, &e), -1);
	cr_assert_eq(e.code, ERR_LIMIT);
	cr_assert_null(nums);
	cr_assert_eq(imap_seqset_expand("1:*", 3, 1000, 1000, &nums, &n, &e), 0);
	cr_assert_eq(n, 1000);
	cr_assert_eq(nums[999], 1000);
	free(nums);
	cr_assert_eq(imap_seqset_parse("1,2,3", 5, 0, 2, &r, &n, &e), -1);
	cr_assert_eq(e.code, ERR_LIMIT);
}

Test(cmd, each_sync_literal_reports_its_own_wait_offset)
{
	struct buf b = BUF_INIT(1024);
	struct err e;
	size_t w1, w2;

	cr_assert_eq(buf_adds(&b, "A1 LOGIN ", &e), 0);
	cr_assert_eq(imap_cmd_add_string(&b, "u\r\n", 3, 0, &w1, &e), 1);
	cr_assert_eq(buf_addc(&b, ' ', &e), 0);
	cr_assert_eq(imap_cmd_add_string(&b, "p\xe9", 2, 0, &w2, &e), 1);
	cr_assert_str_eq(b.data, "A1 LOGIN {3}\r\nu\r\n {2}\r\np\xe9");
	cr_assert_eq(w1, strlen("A1 LOGIN {3}\r\n"));
	cr_assert_eq(w2, strlen("A1 LOGIN {3}\r\nu\r\n {2}\r\n"));
	buf_release(&b);
}

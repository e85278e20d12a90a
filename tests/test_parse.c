/*
 * Unit tests for core/imap/parse: every input is fed whole, byte by byte
 * and in seeded random chunks, and must give the same result each way.
 * The seed is printed; FERRY_TEST_SEED=N reproduces a run.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "parse.h"
#include "xalloc.h"

#define RANDOM_ROUNDS 4

/* ---- deterministic randomness ---- */

static uint64_t rng_state;

static unsigned test_seed(void)
{
	const char *env = getenv("FERRY_TEST_SEED");
	static unsigned seed;
	static int done;

	if (!done) {
		seed = env ? (unsigned)strtoul(env, NULL, 10)
			   : (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
		fprintf(stderr, "test_parse: seed %u (set FERRY_TEST_SEED=%u to reproduce)\n",
			seed, seed);
		done = 1;
	}
	return seed;
}

static uint32_t rng_next(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* ---- a sink that records what it sees ---- */

struct rec_sink {
	uint64_t stream_from;   /* stream literals of at least this size */
	int fail_data_after;    /* data() fails on this call (1-based); 0 = never */
	struct buf log;
	size_t begins, ends, aborts, data_calls;
	uint64_t data_total;
	size_t max_piece;
	size_t chunk_now;       /* size of the chunk being fed */
	bool piece_over_chunk;
	int next_handle;
	int handles[64];
};

static int rec_begin(void *ctx, const struct imap_literal_info *info,
		     enum imap_sink_choice *choice_out, void **handle_out, struct err *e)
{
	struct rec_sink *s = ctx;

	buf_addf(&s->log, e, "begin(%" PRIu64 ",%s,%s%" PRIu32 ",%s,d%u)", info->size,
		 info->prev_atom ? info->prev_atom : "-", info->has_number ? "#" : "-",
		 info->number, info->resp_name ? info->resp_name : "-", info->depth);
	s->begins++;
	if (info->size >= s->stream_from) {
		*choice_out = IMAP_SINK_STREAM;
		s->handles[s->next_handle % 64] = s->next_handle;
		*handle_out = &s->handles[s->next_handle % 64];
		s->next_handle++;
	}
	return 0;
}

static int rec_data(void *ctx, void *handle, const char *bytes, size_t len, struct err *e)
{
	struct rec_sink *s = ctx;

	(void)handle;
	(void)bytes;
	s->data_calls++;
	if (s->fail_data_after && (int)s->data_calls == s->fail_data_after)
		return err_set(e, ERR_IO, "disk full");
	s->data_total += len;
	if (len > s->max_piece)
		s->max_piece = len;
	if (len > s->chunk_now)
		s->piece_over_chunk = true;
	return 0;
}

static int rec_end(void *ctx, void *handle, struct err *e)
{
	struct rec_sink *s = ctx;

	s->ends++;
	return buf_addf(&s->log, e, " end(h%d)", *(int *)handle);
}

static void rec_abort(void *ctx, void *handle)
{
	struct rec_sink *s = ctx;

	s->aborts++;
	buf_addf(&s->log, NULL, " abort(h%d)", *(int *)handle);
}

static struct imap_literal_sink rec_sink_of(struct rec_sink *s)
{
	struct imap_literal_sink k = { s, rec_begin, rec_data, rec_end, rec_abort };

	return k;
}

/* ---- dumping a response into a canonical text ---- */

static void dump_arg(struct buf *b, const struct imap_arg *a);

static void dump_args(struct buf *b, const struct imap_arg *args, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i)
			buf_addc(b, ' ', NULL);
		dump_arg(b, &args[i]);
	}
}

static void dump_arg(struct buf *b, const struct imap_arg *a)
{
	size_t i;

	switch (a->type) {
	case IMAP_ARG_ATOM:
		buf_add(b, a->str, a->len, NULL);
		break;
	case IMAP_ARG_QUOTED:
		buf_addf(b, NULL, "\"%.*s\"", (int)a->len, a->str);
		break;
	case IMAP_ARG_LITERAL:
		cr_assert_eq(a->str[a->len], '\0', "literal not NUL-terminated");
		buf_addf(b, NULL, "%s{%zu}", a->literal8 ? "~" : "", a->len);
		for (i = 0; i < a->len; i++) {
			if (a->str[i] == '\0')
				buf_adds(b, "\\0", NULL);
			else
				buf_addc(b, a->str[i], NULL);
		}
		break;
	case IMAP_ARG_LITERAL_STREAMED:
		buf_addf(b, NULL, "<%sstream %" PRIu64 " h%d>", a->literal8 ? "~" : "", a->size,
			 *(int *)a->handle);
		break;
	case IMAP_ARG_NIL:
		buf_adds(b, "NIL", NULL);
		break;
	case IMAP_ARG_LIST:
		buf_addc(b, '(', NULL);
		dump_args(b, a->list, a->len);
		buf_addc(b, ')', NULL);
		break;
	}
}

static void dump_resp(struct buf *b, const struct imap_resp *r)
{
	if (b->len)
		buf_adds(b, "\n", NULL);
	if (r->kind == IMAP_RESP_CONTINUATION)
		buf_adds(b, "+", NULL);
	else if (r->kind == IMAP_RESP_TAGGED)
		buf_addf(b, NULL, "%s", r->tag);
	else
		buf_adds(b, "*", NULL);
	if (r->has_number)
		buf_addf(b, NULL, " #%" PRIu32, r->number);
	if (r->name)
		buf_addf(b, NULL, " %s", r->name);
	if (r->code) {
		buf_addf(b, NULL, " [%s|%s|", r->code, r->code_raw);
		if (r->code_args)
			dump_args(b, r->code_args, r->ncode_args);
		else if (r->code_raw[0] != '\0')
			buf_adds(b, "-", NULL);
		buf_adds(b, "]", NULL);
	}
	if (r->text)
		buf_addf(b, NULL, " text=%s", r->text);
	if (r->nargs) {
		buf_adds(b, " ", NULL);
		dump_args(b, r->args, r->nargs);
	}
}

/* ---- feeding ---- */

enum feed_mode { FEED_WHOLE, FEED_BYTES, FEED_RANDOM };

struct run {
	struct buf dump;            /* all responses, one a line */
	enum imap_parse_result last;
	struct err err;
	size_t responses;
	int eof_rc;                 /* imap_parser_eof() after all input */
	struct err eof_err;
};

static size_t next_chunk(enum feed_mode mode, size_t left)
{
	size_t n;

	if (mode == FEED_WHOLE)
		return left;
	if (mode == FEED_BYTES)
		return 1;
	switch (rng_next() % 4) {
	case 0:
		n = 1 + rng_next() % 3;
		break;
	case 1:
		n = 1 + rng_next() % 16;
		break;
	case 2:
		n = 1 + rng_next() % 200;
		break;
	default:
		n = 1 + rng_next() % 70000;
		break;
	}
	return n < left ? n : left;
}

/* Feed data in the given way; stops at the first error. */
static void run_feed(const char *data, size_t len, enum feed_mode mode,
		     const struct imap_parser_limits *lim, struct rec_sink *sink, struct run *out)
{
	struct imap_literal_sink k;
	struct imap_parser *p;
	size_t off = 0;

	if (sink)
		k = rec_sink_of(sink);
	p = imap_parser_new(lim, sink ? &k : NULL);
	memset(out, 0, sizeof(*out));
	buf_init(&out->dump, SIZE_MAX / 2);
	out->last = IMAP_PARSE_NEED_MORE;
	while (off < len) {
		size_t chunk = next_chunk(mode, len - off), pos = 0;

		if (sink)
			sink->chunk_now = chunk;
		while (pos < chunk) {
			struct imap_resp *r = NULL;
			size_t used = 0;

			out->last = imap_parser_feed(p, data + off + pos, chunk - pos, &used, &r,
						     &out->err);
			cr_assert_leq(used, chunk - pos);
			pos += used;
			if (out->last == IMAP_PARSE_ERROR) {
				cr_assert_null(r);
				goto done;
			}
			if (out->last == IMAP_PARSE_DONE) {
				cr_assert_not_null(r);
				cr_assert_gt(used, 0);
				dump_resp(&out->dump, r);
				out->responses++;
				imap_resp_free(r);
			} else {
				cr_assert_eq(pos, chunk, "NEED_MORE must consume everything");
			}
		}
		off += chunk;
	}
	out->last = IMAP_PARSE_NEED_MORE;      /* all input taken without error */
	out->eof_rc = imap_parser_eof(p, &out->eof_err);
done:
	imap_parser_free(p);
}

/* Run all three ways; the dumps and outcomes must match. */
static void run_all(const char *data, size_t len, const struct imap_parser_limits *lim,
		    struct run *out)
{
	struct run other;
	int i;

	run_feed(data, len, FEED_WHOLE, lim, NULL, out);
	for (i = 0; i < 1 + RANDOM_ROUNDS; i++) {
		run_feed(data, len, i == 0 ? FEED_BYTES : FEED_RANDOM, lim, NULL, &other);
		cr_assert_eq(other.last, out->last, "outcome differs when split (round %d)", i);
		cr_assert_str_eq(buf_cstr(&other.dump), buf_cstr(&out->dump),
				 "responses differ when split (round %d)", i);
		if (out->last == IMAP_PARSE_ERROR)
			cr_assert_eq(other.err.code, out->err.code);
		buf_release(&other.dump);
	}
}

static void seed_rng(void)
{
	rng_state = test_seed();
}

TestSuite(parse, .init = seed_rng);

/* The input parses into exactly the expected dump, however it is split. */
static void expect_parse(const char *input, const char *expected)
{
	struct run r;

	run_all(input, strlen(input), NULL, &r);
	cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE, "error: %s", r.err.msg);
	cr_assert_eq(r.eof_rc, 0, "input ends mid-response: %s", r.eof_err.msg);
	cr_assert_str_eq(buf_cstr(&r.dump), expected);
	buf_release(&r.dump);
}

/* The input fails with code, however it is split. */
static void expect_error_lim(const char *input, size_t len, const struct imap_parser_limits *lim,
			     enum err_code code)
{
	struct run r;

	run_all(input, len, lim, &r);
	cr_assert_eq(r.last, IMAP_PARSE_ERROR, "parsed but should fail: %s", buf_cstr(&r.dump));
	cr_assert_eq(r.err.code, code, "wrong error code %d: %s", r.err.code, r.err.msg);
	cr_assert_neq(r.err.msg[0], '\0');
	buf_release(&r.dump);
}

static void expect_error(const char *input, enum err_code code)
{
	expect_error_lim(input, strlen(input), NULL, code);
}

/* ---- RFC samples ---- */

Test(parse, rfc3501_section8_session_parses_identically_however_split)
{
	static const char header[] =
		"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
		"From: Terry Gray <gray@cac.washington.edu>\r\n"
		"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
		"To: imap@cac.washington.edu\r\n"
		"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
		"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
		"\r\n"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n";
	char input[4096], want[1024];
	struct run r;
	const char *d;

	snprintf(input, sizeof(input),
		 "* OK IMAP4rev1 Service Ready\r\n"
		 "a001 OK LOGIN completed\r\n"
		 "* 18 EXISTS\r\n"
		 "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
		 "* 2 RECENT\r\n"
		 "* OK [UNSEEN 17] Message 17 is the first unseen message\r\n"
		 "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
		 "a002 OK [READ-WRITE] SELECT completed\r\n"
		 "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
		 "RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
		 "\"IMAP4rev1 WG mtg summary and minutes\" "
		 "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		 "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		 "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		 "((NIL NIL \"imap\" \"cac.washington.edu\")) "
		 "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")"
		 "(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
		 "\"<B27397-0100000@cac.washington.edu>\") "
		 "BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n"
		 "a003 OK FETCH completed\r\n"
		 "* 12 FETCH (BODY[HEADER] {%zu}\r\n%s)\r\n"
		 "a004 OK FETCH completed\r\n"
		 "* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\n"
		 "a005 OK +FLAGS completed\r\n"
		 "* BYE IMAP4rev1 server logging out\r\n"
		 "a006 OK LOGOUT completed\r\n",
		 strlen(header), header);
	run_all(input, strlen(input), NULL, &r);
	cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE, "%s", r.err.msg);
	cr_assert_eq(r.responses, 16);
	d = buf_cstr(&r.dump);
	cr_assert(strstr(d, "* OK text=IMAP4rev1 Service Ready\na001 OK text=LOGIN completed\n"
			    "* #18 EXISTS\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\n"
			    "* #2 RECENT\n* OK [UNSEEN|17|17] text=Message 17 is the first unseen message\n"
			    "* OK [UIDVALIDITY|3857529045|3857529045] text=UIDs valid\n"
			    "a002 OK [READ-WRITE||] text=SELECT completed\n") == d, "%s", d);
	cr_assert(strstr(d, "\n* #12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
			    "RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
			    "\"IMAP4rev1 WG mtg summary and minutes\" "
			    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
			    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
			    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
			    "((NIL NIL \"imap\" \"cac.washington.edu\")) "
			    "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\") "
			    "(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
			    "\"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" "
			    "(\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\n"), "%s", d);
	snprintf(want, sizeof(want), "\n* #12 FETCH (BODY[HEADER] {%zu}%s)\n", strlen(header), header);
	cr_assert(strstr(d, want) != NULL, "%s", d);
	cr_assert(strstr(d, "\n* BYE text=IMAP4rev1 server logging out\na006 OK text=LOGOUT completed")
		  != NULL);
	buf_release(&r.dump);
}

Test(parse, rfc9051_examples_parse)
{
	expect_parse("* OK [CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI] Server ready\r\n",
		     "* OK [CAPABILITY|IMAP4rev2 STARTTLS AUTH=GSSAPI|IMAP4rev2 STARTTLS AUTH=GSSAPI]"
		     " text=Server ready");
	expect_parse("* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n",
		     "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800");
	expect_parse("* ESEARCH (TAG \"A284\") MIN 4 ALL 4,10:11\r\n",
		     "* ESEARCH (TAG \"A284\") MIN 4 ALL 4,10:11");
	expect_parse("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
		     "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)");
	expect_parse("* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")"
		     "(\"#public/\" \"/\")(\"#ftp/\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\")))\r\n",
		     "* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\") "
		     "(\"#public/\" \"/\") (\"#ftp/\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\")))");
	expect_parse("* ENABLED CONDSTORE QRESYNC\r\n", "* ENABLED CONDSTORE QRESYNC");
	expect_parse("* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" NIL)\r\n",
		     "* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" NIL)");
	expect_parse("* ID NIL\r\n", "* ID NIL");
	expect_parse("A142 NO [CANNOT] Cannot create mailbox\r\n",
		     "A142 NO [CANNOT||] text=Cannot create mailbox");
	expect_parse("* 44 EXPUNGE\r\n* 3 RECENT\r\n", "* #44 EXPUNGE\n* #3 RECENT");
}

/* ---- tokens ---- */

Test(parse, atoms_flags_numbers_and_bracketed_fetch_items_are_single_atoms)
{
	expect_parse("* 7 FETCH (UID 42 FLAGS (\\Seen \\* $Junk) "
		     "BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)]<0> NIL BODY[] \"\" BINARY[1] NIL "
		     "BODY[1.2.MIME] NIL)\r\n",
		     "* #7 FETCH (UID 42 FLAGS (\\Seen \\* $Junk) "
		     "BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)]<0> NIL BODY[] \"\" BINARY[1] NIL "
		     "BODY[1.2.MIME] NIL)");
}

/* "[" is an atom character outside a section (RFC 3501 atom-specials hold
 * "]" only): a keyword "a[b" is one atom, and the list still closes. */
Test(parse, bracket_in_a_keyword_is_part_of_the_atom)
{
	expect_parse("* 3 FETCH (UID 9 FLAGS (\\Seen a[b x[) BODY[] \"\")\r\n",
		     "* #3 FETCH (UID 9 FLAGS (\\Seen a[b x[) BODY[] \"\")");
	expect_parse("* FLAGS (\\Answered a[b)\r\n", "* FLAGS (\\Answered a[b)");
	expect_error("* X BODY.PEEK[HEADER\r\n", ERR_PROTO);
}

Test(parse, quoted_strings_unescape_quote_and_backslash)
{
	expect_parse("* LIST () \"\\\\\" \"a \\\"b\\\" (c) [d]\"\r\n",
		     "* LIST () \"\\\" \"a \"b\" (c) [d]\"");
}

Test(parse, literals_plain_plus_and_literal8_keep_exact_bytes)
{
	struct run r;
	static const char in[] = "* 3 FETCH (BODY[] {5}\r\nab\r\nc BINARY[1] ~{3}\r\nx\0y "
				 "BODY[2] {2+}\r\n() X {0}\r\n)\r\n";
	struct imap_parser *p = imap_parser_new(NULL, NULL);
	struct imap_resp *resp;
	const struct imap_arg *bin;
	struct err e;
	size_t used;

	run_all(in, sizeof(in) - 1, NULL, &r);
	cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE, "%s", r.err.msg);
	cr_assert_str_eq(buf_cstr(&r.dump), "* #3 FETCH (BODY[] {5}ab\r\nc BINARY[1] ~{3}x\\0y "
					    "BODY[2] {2}() X {0})");
	buf_release(&r.dump);

	cr_assert_eq(imap_parser_feed(p, in, sizeof(in) - 1, &used, &resp, &e), IMAP_PARSE_DONE);
	bin = imap_fetch_item(&resp->args[0], "binary[1]");
	cr_assert_not_null(bin);
	cr_assert_eq(bin->type, IMAP_ARG_LITERAL);
	cr_assert(bin->literal8);
	cr_assert_eq(bin->len, 3);
	cr_assert_eq(memcmp(bin->str, "x\0y", 3), 0);
	imap_resp_free(resp);
	imap_parser_free(p);
}

Test(parse, nil_and_nested_and_empty_lists)
{
	expect_parse("* X nil NIL Nil (()) ((a) (b (c NIL)))\r\n",
		     "* X NIL NIL NIL (()) ((a) (b (c NIL)))");
}

Test(parse, tilde_not_before_brace_is_an_atom)
{
	expect_parse("* X ~user ~ ~x\r\n", "* X ~user ~ ~x");
}

/* ---- response kinds ---- */

Test(parse, untagged_with_and_without_number_and_tagged)
{
	expect_parse("* 23 EXISTS\r\n* 4294967295 EXPUNGE\r\nA1 ok done\r\nxyz.2 BAD [PARSE] bad\r\n",
		     "* #23 EXISTS\n* #4294967295 EXPUNGE\nA1 OK text=done\n"
		     "xyz.2 BAD [PARSE||] text=bad");
}

Test(parse, continuation_with_base64_text_or_nothing)
{
	expect_parse("+ YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzmeTxbkzzV0=\r\n+\r\n+ \r\n"
		     "+ Ready for literal data\r\n+ [ALERT] go\r\n",
		     "+ text=YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzmeTxbkzzV0=\n+ text=\n+ text=\n"
		     "+ text=Ready for literal data\n+ [ALERT||] text=go");
}

Test(parse, several_responses_in_one_feed_return_one_at_a_time)
{
	static const char in[] = "* 1 EXISTS\r\n* 2 EXISTS\r\nA OK x\r\n";
	struct imap_parser *p = imap_parser_new(NULL, NULL);
	struct imap_resp *r;
	struct err e;
	size_t used, off = 0;
	uint32_t want = 1;

	while (want <= 2) {
		cr_assert_eq(imap_parser_feed(p, in + off, sizeof(in) - 1 - off, &used, &r, &e),
			     IMAP_PARSE_DONE);
		cr_assert_eq(used, 12);
		cr_assert_eq(r->number, want);
		imap_resp_free(r);
		off += used;
		want++;
	}
	cr_assert_eq(imap_parser_feed(p, in + off, sizeof(in) - 1 - off, &used, &r, &e),
		     IMAP_PARSE_DONE);
	cr_assert_str_eq(r->tag, "A");
	cr_assert_eq(r->status, IMAP_STATUS_OK);
	cr_assert_null(r->args);
	imap_resp_free(r);
	cr_assert_eq(imap_parser_feed(p, "", 0, &used, &r, &e), IMAP_PARSE_NEED_MORE);
	imap_parser_free(p);
}

/* ---- status responses and codes ---- */

Test(parse, response_codes_are_tokenized_and_kept_raw)
{
	expect_parse("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
		     "A3 OK [APPENDUID 38505 3955] APPEND completed\r\n"
		     "A4 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"
		     "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"
		     "* OK [CLOSED] Previous mailbox closed\r\n"
		     "* NO [BADCHARSET (UTF-8 \"X]Y\")] bad charset\r\n",
		     "* OK [PERMANENTFLAGS|(\\Deleted \\Seen \\*)|(\\Deleted \\Seen \\*)] text=Limited\n"
		     "A3 OK [APPENDUID|38505 3955|38505 3955] text=APPEND completed\n"
		     "A4 OK [COPYUID|38505 304,319:320 3956:3958|38505 304,319:320 3956:3958] text=Done\n"
		     "* OK [HIGHESTMODSEQ|715194045007|715194045007] text=Highest\n"
		     "* OK [CLOSED||] text=Previous mailbox closed\n"
		     "* NO [BADCHARSET|(UTF-8 \"X]Y\")|(UTF-8 \"X]Y\")] text=bad charset");
}

Test(parse, odd_unknown_code_keeps_raw_text_and_does_not_fail)
{
	expect_parse("* OK [XWEIRD \"unbalanced] text here\r\n"
		     "* NO [XPAREN (a b] still fine\r\n"
		     "* BYE [XLIT {5}] bye\r\n"
		     "* OK [unclosed code\r\n"
		     "* OK [] empty\r\n",
		     "* OK [XWEIRD|\"unbalanced|-] text=text here\n"
		     "* NO [XPAREN|(a b|-] text=still fine\n"
		     "* BYE [XLIT|{5}|-] text=bye\n"
		     "* OK text=[unclosed code\n"
		     "* OK text=[] empty");
}

Test(parse, status_text_may_contain_quotes_parens_brackets_and_braces)
{
	expect_parse("* OK \"quoted\" (paren [brack {9}\r\nA1 NO\r\n* PREAUTH\r\n",
		     "* OK text=\"quoted\" (paren [brack {9}\nA1 NO text=\n* PREAUTH text=");
}

/* ---- data responses ---- */

Test(parse, capability_and_list_and_lsub_variants)
{
	expect_parse("* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN ID ENABLE IDLE\r\n"
		     "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n"
		     "* LIST (\\Noselect) NIL \"\"\r\n"
		     "* LIST () \".\" INBOX.Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
		     "* LIST () \"/\" {11}\r\nweird\"name)\r\n"
		     "* LSUB () \".\" #news.comp.mail.misc\r\n",
		     "* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN ID ENABLE IDLE\n"
		     "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\n"
		     "* LIST (\\Noselect) NIL \"\"\n"
		     "* LIST () \".\" INBOX.Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\n"
		     "* LIST () \"/\" {11}weird\"name)\n"
		     "* LSUB () \".\" #news.comp.mail.misc");
}

Test(parse, status_flags_search_vanished_and_numbers)
{
	expect_parse("* STATUS \"Sent Items\" (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 1 HIGHESTMODSEQ 99)\r\n"
		     "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n"
		     "* SEARCH 2 3 6\r\n* SEARCH\r\n"
		     "* VANISHED (EARLIER) 1:5,9\r\n* VANISHED 300\r\n",
		     "* STATUS \"Sent Items\" (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 1 HIGHESTMODSEQ 99)\n"
		     "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\n"
		     "* SEARCH 2 3 6\n* SEARCH\n"
		     "* VANISHED (EARLIER) 1:5,9\n* VANISHED 300");
}

Test(parse, fetch_bodystructure_nested_lists)
{
	expect_parse("* 1 FETCH (UID 9 MODSEQ (12) BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" "
		     "\"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 120 4 NIL NIL NIL NIL)(\"IMAGE\" \"PNG\" "
		     "(\"NAME\" \"a.png\") \"<id@x>\" NIL \"BASE64\" 5000 NIL (\"attachment\" "
		     "(\"FILENAME\" \"a.png\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b1\") NIL NIL NIL))\r\n",
		     "* #1 FETCH (UID 9 MODSEQ (12) BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" "
		     "\"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 120 4 NIL NIL NIL NIL) (\"IMAGE\" \"PNG\" "
		     "(\"NAME\" \"a.png\") \"<id@x>\" NIL \"BASE64\" 5000 NIL (\"attachment\" "
		     "(\"FILENAME\" \"a.png\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b1\") NIL NIL NIL))");
}

Test(parse, helpers_read_numbers_strings_and_fetch_items)
{
	static const char in[] = "* 5 FETCH (UID 4294967295 MODSEQ (18446744073709551615) "
				 "RFC822.SIZE 4294967296 X-GM-MSGID 0x1 BODY[] {3}\r\nabc FLAGS NIL)\r\n";
	struct imap_parser *p = imap_parser_new(NULL, NULL);
	const struct imap_arg *l, *a;
	struct imap_resp *r;
	struct err e;
	size_t used, n;
	uint64_t v64;
	uint32_t v32;

	cr_assert_eq(imap_parser_feed(p, in, sizeof(in) - 1, &used, &r, &e), IMAP_PARSE_DONE);
	l = &r->args[0];
	cr_assert(imap_arg_u32(imap_fetch_item(l, "uid"), &v32));
	cr_assert_eq(v32, UINT32_MAX);
	a = imap_fetch_item(l, "MODSEQ");
	cr_assert(imap_arg_u64(&a->list[0], &v64));
	cr_assert_eq(v64, UINT64_MAX);
	cr_assert_not(imap_arg_u32(imap_fetch_item(l, "RFC822.SIZE"), &v32));
	cr_assert_not(imap_arg_u64(imap_fetch_item(l, "X-GM-MSGID"), &v64));
	cr_assert_str_eq(imap_arg_str(imap_fetch_item(l, "BODY[]"), &n), "abc");
	cr_assert_eq(n, 3);
	cr_assert(imap_arg_is_string(imap_fetch_item(l, "BODY[]")));
	cr_assert_null(imap_arg_str(imap_fetch_item(l, "FLAGS"), &n));
	cr_assert_null(imap_fetch_item(l, "ENVELOPE"));
	cr_assert_null(imap_fetch_item(NULL, "UID"));
	cr_assert_not(imap_arg_is_atom(NULL, "UID"));
	cr_assert(imap_arg_is_atom(&l->list[0], "Uid"));
	imap_resp_free(r);
	imap_parser_free(p);
}

/* ---- hostile input ---- */

Test(parse, literal_announcing_2_pow_63_is_limit_error)
{
	expect_error("* 1 FETCH (BODY[] {9223372036854775808}\r\n", ERR_LIMIT);
}

Test(parse, literal_size_with_more_digits_than_fit_is_limit_error)
{
	struct imap_parser_limits lim = { .max_literal = UINT64_MAX };

	expect_error("* 1 FETCH (BODY[] {18446744073709551616}\r\n", ERR_LIMIT);
	expect_error_lim("* X {99999999999999999999999999999999}\r\n", 40, &lim, ERR_LIMIT);
	expect_error_lim("* X {18446744073709551616}\r\n", 28, &lim, ERR_LIMIT);
	expect_error_lim("* X {000000000000000000001}\r\n", 29, &lim, ERR_LIMIT);
}

Test(parse, malformed_literal_announcements_are_protocol_errors)
{
	expect_error("* X {}\r\n", ERR_PROTO);
	expect_error("* X {+}\r\n", ERR_PROTO);
	expect_error("* X {5a}\r\n", ERR_PROTO);
	expect_error("* X {5}x\r\n", ERR_PROTO);
	expect_error("* X {5}\rx", ERR_PROTO);
	expect_error("* X {5+x}\r\n", ERR_PROTO);
}

Test(parse, ten_thousand_deep_nesting_is_limit_error)
{
	size_t n = 10000, i;
	char *in = xmalloc(2 * n + 16);
	size_t len = 0;

	memcpy(in, "* X ", 4);
	len = 4;
	for (i = 0; i < n; i++)
		in[len++] = '(';
	for (i = 0; i < n; i++)
		in[len++] = ')';
	memcpy(in + len, "\r\n", 2);
	len += 2;
	expect_error_lim(in, len, NULL, ERR_LIMIT);
	free(in);
}

Test(parse, nesting_at_exactly_the_depth_limit_parses)
{
	struct imap_parser_limits lim = { .max_depth = 3 };
	struct run r;

	run_all("* X (((a)))\r\n", 13, &lim, &r);
	cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE, "%s", r.err.msg);
	buf_release(&r.dump);
	expect_error_lim("* X ((((a))))\r\n", 15, &lim, ERR_LIMIT);
}

Test(parse, line_without_end_is_limit_error_at_max_line)
{
	struct imap_parser_limits lim = { .max_line = 1000 };
	char in[4000];

	memset(in, 'a', sizeof(in));
	memcpy(in, "* OK ", 5);
	expect_error_lim(in, sizeof(in), &lim, ERR_LIMIT);
	memcpy(in, "* X ", 4);
	expect_error_lim(in, sizeof(in), &lim, ERR_LIMIT);
	/* A quoted string with no end, too. */
	in[4] = '"';
	expect_error_lim(in, sizeof(in), &lim, ERR_LIMIT);
}

Test(parse, max_line_counts_only_non_literal_bytes)
{
	struct imap_parser_limits lim = { .max_line = 40 };
	char in[2000];
	int n;
	struct run r;

	n = snprintf(in, sizeof(in), "* 1 FETCH (BODY[] {1000}\r\n");
	memset(in + n, 'b', 1000);
	memcpy(in + n + 1000, ")\r\n", 3);
	run_all(in, (size_t)n + 1003, &lim, &r);
	cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE, "%s", r.err.msg);
	cr_assert_eq(r.responses, 1);
	buf_release(&r.dump);
}

Test(parse, nul_outside_literal_is_protocol_error)
{
	expect_error_lim("* OK a\0b\r\n", 10, NULL, ERR_PROTO);
	expect_error_lim("* X a\0b\r\n", 9, NULL, ERR_PROTO);
	expect_error_lim("* X \"a\0b\"\r\n", 11, NULL, ERR_PROTO);
	expect_error_lim("\0", 1, NULL, ERR_PROTO);
}

Test(parse, bare_lf_is_rejected_everywhere)
{
	expect_error("* OK hello\n", ERR_PROTO);
	expect_error("* 1 EXISTS\n", ERR_PROTO);
	expect_error("* X a b\n", ERR_PROTO);
	expect_error("* X (a\n", ERR_PROTO);
	expect_error("* X \"a\nb\"\r\n", ERR_PROTO);
	expect_error("A1 OK\n", ERR_PROTO);
	expect_error("+ go\n", ERR_PROTO);
	expect_error("\n", ERR_PROTO);
}

Test(parse, cr_without_lf_is_protocol_error)
{
	expect_error("* OK a\rb\r\n", ERR_PROTO);
	expect_error("* X a\rb\r\n", ERR_PROTO);
	expect_error("* 3 EXISTS\r\r\n", ERR_PROTO);
}

Test(parse, structural_errors_are_protocol_errors)
{
	expect_error("* X a)\r\n", ERR_PROTO);
	expect_error("* X (a\r\n", ERR_PROTO);
	expect_error("* X \"a\\n\"\r\n", ERR_PROTO);
	expect_error("A1 FETCH (UID 1)\r\n", ERR_PROTO);
	expect_error("A1 PREAUTH hi\r\n", ERR_PROTO);
	expect_error("A1\r\n", ERR_PROTO);
	expect_error("*X\r\n", ERR_PROTO);
	expect_error("* \r\n", ERR_PROTO);
	expect_error("*  OK\r\n", ERR_PROTO);
	expect_error("* 12\r\n", ERR_PROTO);
	expect_error("* 4294967296 EXISTS\r\n", ERR_PROTO);
	expect_error("(foo)\r\n", ERR_PROTO);
	expect_error(" A1 OK\r\n", ERR_PROTO);
	expect_error("* X BODY[HEADER\r\n", ERR_PROTO);
	expect_error("* X a\x01 b\r\n", ERR_PROTO);
}

Test(parse, too_many_arguments_is_limit_error)
{
	struct imap_parser_limits lim = { .max_args = 5 };
	struct run r;

	run_all("* X a b (c d)\r\n", 15, &lim, &r);
	cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE, "%s", r.err.msg);
	buf_release(&r.dump);
	expect_error_lim("* X a b (c d e)\r\n", 17, &lim, ERR_LIMIT);
	expect_error_lim("* X a b c d e {1}\r\nf\r\n", 22, &lim, ERR_LIMIT);
}

Test(parse, in_memory_literals_are_bounded_per_response)
{
	struct imap_parser_limits lim = { .max_literal_mem = 10, .max_resp_literal_mem = 15 };
	struct run r;

	run_all("* X {8}\r\n12345678 {7}\r\n1234567\r\n", 32, &lim, &r);
	cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE, "%s", r.err.msg);
	buf_release(&r.dump);
	expect_error_lim("* X {8}\r\n12345678 {8}\r\n12345678\r\n", 33, &lim, ERR_LIMIT);
	expect_error_lim("* X {11}\r\n12345678901\r\n", 23, &lim, ERR_LIMIT);
}

Test(parse, truncated_literal_is_protocol_error_at_eof)
{
	struct run r;
	static const char in[] = "* 1 FETCH (BODY[] {100}\r\nonly a few bytes";

	run_all(in, sizeof(in) - 1, NULL, &r);
	cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE);
	cr_assert_eq(r.eof_rc, -1);
	cr_assert_eq(r.eof_err.code, ERR_PROTO);
	cr_assert(strstr(r.eof_err.msg, "literal") != NULL, "%s", r.eof_err.msg);
	buf_release(&r.dump);
	run_all("* 1 EXISTS\r", 11, NULL, &r);
	cr_assert_eq(r.eof_rc, -1);
	buf_release(&r.dump);
	run_all("* 1 EXISTS\r\n", 12, NULL, &r);
	cr_assert_eq(r.eof_rc, 0);
	buf_release(&r.dump);
}

Test(parse, dead_parser_repeats_its_first_error)
{
	struct imap_parser *p = imap_parser_new(NULL, NULL);
	struct imap_resp *r;
	struct err e;
	size_t used;

	cr_assert_eq(imap_parser_feed(p, "* X )\r\n", 7, &used, &r, &e), IMAP_PARSE_ERROR);
	cr_assert_eq(e.code, ERR_PROTO);
	cr_assert_eq(used, 5);
	err_clear(&e);
	cr_assert_eq(imap_parser_feed(p, "* 1 EXISTS\r\n", 12, &used, &r, &e), IMAP_PARSE_ERROR);
	cr_assert_eq(e.code, ERR_PROTO);
	cr_assert_eq(used, 0);
	cr_assert_eq(imap_parser_eof(p, &e), -1);
	imap_parser_free(p);
}

Test(parse, random_garbage_never_crashes_and_split_agrees)
{
	char in[600];
	static const char alphabet[] = "* ()\"\\{}~+[]<>0123456789AaNIL\r\n\r\n";
	int round;
	size_t i;

	for (round = 0; round < 200; round++) {
		struct run r;
		size_t len = 1 + rng_next() % sizeof(in);

		memcpy(in, "* ", 2);
		for (i = 2; i < len; i++)
			in[i] = alphabet[rng_next() % (sizeof(alphabet) - 1)];
		run_all(in, len, NULL, &r);
		buf_release(&r.dump);
	}
}

/* ---- literal sink ---- */

Test(parse, literal_larger_than_memory_limit_streams_to_sink_in_pieces)
{
	const size_t big = 5 * 1000 * 1000;
	const char *tail = " FLAGS (\\Seen))\r\n";
	struct imap_parser_limits lim = { .max_literal_mem = 1024 * 1024 };
	struct rec_sink s = { .stream_from = 1024 * 1024 + 1, .log = BUF_INIT(1 << 20) };
	char *in = xmalloc(big + 100);
	struct run r;
	int n, round;
	size_t len;

	n = snprintf(in, 100, "* 17 FETCH (UID 9 BODY[] {%zu}\r\n", big);
	memset(in + n, 'm', big);
	memcpy(in + n + big, tail, strlen(tail));
	len = (size_t)n + big + strlen(tail);
	for (round = 0; round < 3; round++) {
		enum feed_mode mode = round == 0 ? FEED_WHOLE : FEED_RANDOM;

		buf_reset(&s.log);
		s.data_total = 0;
		s.max_piece = 0;
		s.data_calls = 0;
		s.piece_over_chunk = false;
		s.begins = s.ends = s.aborts = 0;
		run_feed(in, len, mode, &lim, &s, &r);
		cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE, "%s", r.err.msg);
		cr_assert_eq(r.eof_rc, 0);
		cr_assert_str_eq(buf_cstr(&r.dump),
				 "* #17 FETCH (UID 9 BODY[] <stream 5000000 h0> FLAGS (\\Seen))");
		cr_assert_eq(s.data_total, big);
		cr_assert_not(s.piece_over_chunk, "a piece larger than the fed chunk");
		cr_assert_leq(s.max_piece, big);
		if (mode == FEED_RANDOM)
			cr_assert_gt(s.data_calls, 1, "streamed in one piece");
		cr_assert_str_eq(buf_cstr(&s.log), "begin(5000000,BODY[],#17,FETCH,d1) end(h0)");
		cr_assert_eq(s.aborts, 0);
		s.next_handle = 0;
		buf_release(&r.dump);
	}
	buf_release(&s.log);
	free(in);
}

Test(parse, literal_over_memory_limit_without_sink_is_limit_error)
{
	struct imap_parser_limits lim = { .max_literal_mem = 1024 * 1024 };
	char head[64];
	int n = snprintf(head, sizeof(head), "* 1 FETCH (BODY[] {%d}\r\n", 1024 * 1024 + 1);

	expect_error_lim(head, (size_t)n, &lim, ERR_LIMIT);
}

Test(parse, sink_choosing_memory_for_oversized_literal_is_limit_error)
{
	struct imap_parser_limits lim = { .max_literal_mem = 10 };
	struct rec_sink s = { .stream_from = UINT64_MAX, .log = BUF_INIT(4096) };
	struct run r;

	run_feed("* X {11}\r\n", 10, FEED_BYTES, &lim, &s, &r);
	cr_assert_eq(r.last, IMAP_PARSE_ERROR);
	cr_assert_eq(r.err.code, ERR_LIMIT);
	cr_assert_eq(s.begins, 1);
	cr_assert_eq(s.aborts, 0);
	buf_release(&r.dump);
	buf_release(&s.log);
}

Test(parse, sink_sees_prev_atom_depth_and_untagged_name)
{
	struct rec_sink s = { .stream_from = 4, .log = BUF_INIT(4096) };
	static const char in[] = "* LIST () \"/\" {3}\r\nabc\r\n"
				 "* 3 FETCH (body[header.fields (subject)] {4}\r\nSubj ((x {0}\r\n)))\r\n";
	struct run r;

	run_feed(in, sizeof(in) - 1, FEED_BYTES, NULL, &s, &r);
	cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE, "%s", r.err.msg);
	cr_assert_str_eq(buf_cstr(&s.log),
			 "begin(3,-,-0,LIST,d0)begin(4,BODY[HEADER.FIELDS (SUBJECT)],#3,FETCH,d1) end(h0)"
			 "begin(0,X,#3,FETCH,d3)");
	cr_assert_str_eq(buf_cstr(&r.dump),
			 "* LIST () \"/\" {3}abc\n"
			 "* #3 FETCH (body[header.fields (subject)] <stream 4 h0> ((x {0})))");
	buf_release(&r.dump);
	buf_release(&s.log);
}

Test(parse, parse_failure_aborts_open_and_ended_handles_of_the_response)
{
	struct rec_sink s = { .stream_from = 1, .log = BUF_INIT(4096) };
	static const char in[] = "* 1 FETCH (A {2}\r\nab B {3}\r\nc\0";
	struct run r;

	run_feed(in, sizeof(in) - 1, FEED_BYTES, NULL, &s, &r);
	cr_assert_eq(r.last, IMAP_PARSE_NEED_MORE);
	/* Only 2 of 3 bytes of the second literal arrived: eof aborts both. */
	cr_assert_eq(r.eof_rc, -1);
	cr_assert_str_eq(buf_cstr(&s.log),
			 "begin(2,A,#1,FETCH,d1) end(h0)begin(3,B,#1,FETCH,d1) abort(h0) abort(h1)");
	buf_release(&r.dump);
	buf_release(&s.log);
}

Test(parse, error_after_streamed_literal_aborts_its_handle)
{
	struct rec_sink s = { .stream_from = 1, .log = BUF_INIT(4096) };
	static const char in[] = "* 1 FETCH (A {2}\r\nab))\r\n";
	struct run r;

	run_feed(in, sizeof(in) - 1, FEED_WHOLE, NULL, &s, &r);
	cr_assert_eq(r.last, IMAP_PARSE_ERROR);
	cr_assert_str_eq(buf_cstr(&s.log), "begin(2,A,#1,FETCH,d1) end(h0) abort(h0)");
	buf_release(&r.dump);
	buf_release(&s.log);
}

Test(parse, sink_data_failure_fails_parse_and_aborts_handle)
{
	struct rec_sink s = { .stream_from = 1, .fail_data_after = 2, .log = BUF_INIT(4096) };
	static const char in[] = "* 1 FETCH (A {4}\r\nabcd)\r\n";
	struct run r;

	run_feed(in, sizeof(in) - 1, FEED_BYTES, NULL, &s, &r);
	cr_assert_eq(r.last, IMAP_PARSE_ERROR);
	cr_assert_eq(r.err.code, ERR_IO);
	cr_assert_str_eq(buf_cstr(&s.log), "begin(4,A,#1,FETCH,d1) abort(h0)");
	buf_release(&r.dump);
	buf_release(&s.log);
}

Test(parse, freeing_parser_mid_literal_aborts_handle)
{
	struct rec_sink s = { .stream_from = 1, .log = BUF_INIT(4096) };
	struct imap_literal_sink k = rec_sink_of(&s);
	struct imap_parser *p = imap_parser_new(NULL, &k);
	struct imap_resp *r;
	struct err e;
	size_t used;

	s.chunk_now = SIZE_MAX;
	cr_assert_eq(imap_parser_feed(p, "* 2 FETCH (BODY[] {10}\r\nabc", 27, &used, &r, &e),
		     IMAP_PARSE_NEED_MORE);
	cr_assert_eq(s.data_total, 3);
	imap_parser_free(p);
	cr_assert_str_eq(buf_cstr(&s.log), "begin(10,BODY[],#2,FETCH,d1) abort(h0)");
	buf_release(&s.log);
}

Test(parse, returned_response_handles_are_never_aborted)
{
	struct rec_sink s = { .stream_from = 1, .log = BUF_INIT(4096) };
	struct run r;

	static const char in[] = "* 1 FETCH (BODY[] {1}\r\nx)\r\n* X (\r\n";

	run_feed(in, sizeof(in) - 1, FEED_BYTES, NULL, &s, &r);
	cr_assert_eq(r.last, IMAP_PARSE_ERROR);
	cr_assert_eq(r.responses, 1);
	cr_assert_eq(s.aborts, 0);
	buf_release(&r.dump);
	buf_release(&s.log);
}

static int silent_begin(void *ctx, const struct imap_literal_info *info,
			enum imap_sink_choice *choice_out, void **handle_out, struct err *e)
{
	(void)ctx;
	(void)info;
	(void)choice_out;
	(void)handle_out;
	(void)e;
	return -1;
}

Test(parse, sink_failing_without_an_error_still_reports_one)
{
	struct imap_literal_sink k = { NULL, silent_begin, NULL, NULL, NULL };
	struct imap_parser *p = imap_parser_new(NULL, &k);
	struct imap_resp *r;
	struct err e;
	size_t used;

	err_set(&e, ERR_NET, "stale error from earlier");
	cr_assert_eq(imap_parser_feed(p, "* X {1}\r\nx\r\n", 11, &used, &r, &e), IMAP_PARSE_ERROR);
	cr_assert_eq(e.code, ERR_INTERNAL, "%s", e.msg);
	cr_assert(strstr(e.msg, "begin") != NULL);
	imap_parser_free(p);
}

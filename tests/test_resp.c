/* Unit tests for the typed results read out of parsed responses (resp.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "parse.h"
#include "resp.h"

/* Parse one complete response from text. */
static struct imap_resp *parse_one(const char *text)
{
	struct imap_parser *p = imap_parser_new(NULL, NULL);
	struct imap_resp *r = NULL;
	size_t used = 0;
	struct err e;
	enum imap_parse_result pr = imap_parser_feed(p, text, strlen(text), &used, &r, &e);

	cr_assert_eq(pr, IMAP_PARSE_DONE, "%s: %s", text, pr == IMAP_PARSE_ERROR ? e.msg : "");
	imap_parser_free(p);
	return r;
}

Test(resp, capabilities_known_bits_and_raw_names)
{
	struct imap_resp *r = parse_one("* CAPABILITY IMAP4rev1 literal+ AUTH=SCRAM-SHA-256 "
					"UTF8=ONLY X-CUSTOM COMPRESS=DEFLATE\r\n");
	struct imap_caps caps = { 0 };
	struct buf b = BUF_INIT(1024);
	struct err e;

	cr_assert_eq(imap_caps_parse(&caps, r->args, r->nargs, &e), 0, "%s", e.msg);
	cr_assert(imap_caps_has(&caps, IMAP_CAP_IMAP4REV1));
	cr_assert(imap_caps_has(&caps, IMAP_CAP_LITERAL_PLUS));
	cr_assert(imap_caps_has(&caps, IMAP_CAP_AUTH_SCRAM_SHA_256));
	cr_assert(imap_caps_has(&caps, IMAP_CAP_UTF8_ACCEPT));
	cr_assert(imap_caps_has(&caps, IMAP_CAP_COMPRESS_DEFLATE));
	cr_assert(!imap_caps_has(&caps, IMAP_CAP_STARTTLS));
	cr_assert(!imap_caps_has(&caps, IMAP_CAP_AUTH_PLAIN));
	cr_assert_eq(caps.n, 6);
	cr_assert_eq(imap_caps_format(&caps, &b, &e), 0);
	cr_assert_str_eq(buf_cstr(&b),
			 "IMAP4rev1 literal+ AUTH=SCRAM-SHA-256 UTF8=ONLY X-CUSTOM COMPRESS=DEFLATE");
	buf_release(&b);
	imap_caps_release(&caps);
	imap_resp_free(r);
}

Test(resp, capability_code_in_a_greeting)
{
	struct imap_resp *r = parse_one("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n");
	struct imap_caps caps = { 0 };
	struct err e;

	cr_assert_str_eq(r->code, "CAPABILITY");
	cr_assert_eq(imap_caps_parse(&caps, r->code_args, r->ncode_args, &e), 0);
	cr_assert(imap_caps_has(&caps, IMAP_CAP_STARTTLS));
	cr_assert(imap_caps_has(&caps, IMAP_CAP_LOGINDISABLED));
	imap_caps_release(&caps);
	imap_resp_free(r);
}

Test(resp, list_entries_decode_names_and_roles)
{
	static const char *const lines[] = {
		"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n",
		"* LIST (\\HasChildren) \"/\" &AMQ-rger\r\n",
		"* LIST (\\Noselect \\HasChildren) NIL Flat\r\n",
		"* LIST () \".\" inbox\r\n",
		"* LIST (\\Junk) \"/\" {4}\r\nSpam\r\n",
	};
	struct imap_mailbox_list l;
	struct err e;
	size_t i;

	imap_mailbox_list_init(&l);
	for (i = 0; i < 5; i++) {
		struct imap_resp *r = parse_one(lines[i]);

		cr_assert_eq(imap_resp_list_add(r, false, 100, &l, &e), 0, "%s: %s", lines[i], e.msg);
		imap_resp_free(r);
	}
	cr_assert_eq(l.n, 5);
	cr_assert_str_eq(l.items[0].name, "Sent Items");
	cr_assert_eq(l.items[0].role, IMAP_ROLE_SENT);
	cr_assert_eq(l.items[0].attrs, IMAP_MBOX_HASNOCHILDREN);
	cr_assert_str_eq(l.items[1].name, "\xc3\x84rger");
	cr_assert_str_eq(l.items[1].wire_name, "&AMQ-rger");
	cr_assert_eq(l.items[1].delim, '/');
	cr_assert_eq(l.items[2].delim, '\0');
	cr_assert(l.items[2].attrs & IMAP_MBOX_NOSELECT);
	cr_assert_str_eq(l.items[3].name, "INBOX");
	cr_assert_str_eq(l.items[3].wire_name, "INBOX");
	cr_assert_str_eq(l.items[4].name, "Spam");
	cr_assert_eq(l.items[4].role, IMAP_ROLE_JUNK);
	cr_assert_str_eq(imap_mbox_role_name(l.items[4].role), "junk");
	cr_assert_eq(imap_mailbox_list_find(&l, "&AMQ-rger"), &l.items[1]);
	cr_assert_null(imap_mailbox_list_find(&l, "Nope"));
	imap_mailbox_list_release(&l);
}

Test(resp, list_entries_in_utf8_mode_are_kept_as_utf8)
{
	struct imap_resp *r = parse_one("* LIST () \"/\" \"\xc3\x84rger &x\"\r\n");
	struct imap_mailbox_list l;
	struct err e;

	imap_mailbox_list_init(&l);
	cr_assert_eq(imap_resp_list_add(r, true, 100, &l, &e), 0, "%s", e.msg);
	cr_assert_str_eq(l.items[0].name, "\xc3\x84rger &x");
	imap_resp_free(r);
	imap_mailbox_list_release(&l);
}

Test(resp, malformed_list_entries_are_protocol_errors)
{
	static const char *const lines[] = {
		"* LIST \\HasNoChildren \"/\" Foo\r\n",          /* no attribute list */
		"* LIST () \"/\"\r\n",                           /* no name */
	};
	size_t i;

	for (i = 0; i < 2; i++) {
		struct imap_resp *r = parse_one(lines[i]);
		struct imap_mailbox_list l;
		struct err e;

		imap_mailbox_list_init(&l);
		cr_assert_eq(imap_resp_list_add(r, false, 100, &l, &e), -1, "%s", lines[i]);
		cr_assert_eq(e.code, ERR_PROTO, "%s: %s", lines[i], e.msg);
		cr_assert_eq(l.n, 0);
		imap_mailbox_list_release(&l);
		imap_resp_free(r);
	}
}

/* A mailbox that cannot be taken is left out (1, the reason in e), and the
 * listing goes on. */
Test(resp, odd_mailboxes_are_left_out_with_the_reason)
{
	static const char *const lines[] = {
		"* LIST (\\HasNoChildren) \"//\" Foo\r\n",       /* two-byte delimiter */
		"* LIST (\\HasNoChildren) \"/\" &Jjo\r\n",       /* unterminated base64 */
		"* LIST () \"/\" INBOX\r\n",
		"* LIST () \"/\" Inbox\r\n",                      /* INBOX again */
		"* LIST () \"/\" dup\r\n",
		"* LIST () \"/\" dup\r\n",                        /* listed twice */
	};
	static const int want[] = { 1, 1, 0, 0, 0, 0 };     /* doubles: left out below */
	struct imap_mailbox_list l;
	struct err e;

	imap_mailbox_list_init(&l);
	for (size_t i = 0; i < 6; i++) {
		struct imap_resp *r = parse_one(lines[i]);

		err_clear(&e);
		cr_assert_eq(imap_resp_list_add(r, false, 100, &l, &e), want[i], "%s", lines[i]);
		cr_assert_eq(want[i] == 0, e.code == ERR_NONE, "%s: %s", lines[i], e.msg);
		imap_resp_free(r);
	}
	cr_assert_eq(imap_mailbox_list_dedupe(&l), 2);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.items[0].name, "INBOX");
	cr_assert_str_eq(l.items[1].name, "dup");
	imap_mailbox_list_release(&l);
}

Test(resp, list_beyond_the_bound_is_a_limit_error)
{
	struct imap_resp *r = parse_one("* LIST () \"/\" A\r\n");
	struct imap_mailbox_list l;
	struct err e;

	imap_mailbox_list_init(&l);
	cr_assert_eq(imap_resp_list_add(r, false, 1, &l, &e), 0);
	cr_assert_eq(imap_resp_list_add(r, false, 1, &l, &e), -1);
	cr_assert_eq(e.code, ERR_LIMIT);
	imap_mailbox_list_release(&l);
	imap_resp_free(r);
}

Test(resp, status_items)
{
	struct imap_resp *r = parse_one("* STATUS \"Sent Items\" (MESSAGES 12 UIDNEXT 40 "
					"UIDVALIDITY 1700000000 HIGHESTMODSEQ 18446744073709551615 "
					"X-OTHER 5)\r\n");
	struct imap_status_data st;
	const char *name;
	struct err e;

	cr_assert_eq(imap_resp_status(r, &name, &st, &e), 0, "%s", e.msg);
	cr_assert_str_eq(name, "Sent Items");
	cr_assert_eq(st.messages, 12);
	cr_assert_eq(st.uidnext, 40);
	cr_assert_eq(st.uidvalidity, 1700000000u);
	cr_assert_eq(st.highestmodseq, UINT64_MAX);
	cr_assert_eq(st.have, IMAP_STATUS_HAVE_MESSAGES | IMAP_STATUS_HAVE_UIDNEXT |
				      IMAP_STATUS_HAVE_UIDVALIDITY | IMAP_STATUS_HAVE_HIGHESTMODSEQ);
	imap_resp_free(r);
	r = parse_one("* STATUS INBOX (MESSAGES 99999999999)\r\n");
	cr_assert_eq(imap_resp_status(r, &name, &st, &e), -1);
	cr_assert_eq(e.code, ERR_PROTO);
	imap_resp_free(r);
}

Test(resp, select_items_fold_into_info)
{
	static const char *const lines[] = {
		"* 17 EXISTS\r\n",
		"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
		"* OK [UIDNEXT 4392] Predicted next UID\r\n",
		"* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
		"* FLAGS (\\Answered \\Flagged)\r\n",
		"A142 OK [READ-ONLY] EXAMINE completed\r\n",
	};
	static const int want[] = { 1, 1, 1, 1, 0, 1 };
	struct imap_select_info info;
	struct err e;
	size_t i;

	memset(&info, 0, sizeof(info));
	for (i = 0; i < 6; i++) {
		struct imap_resp *r = parse_one(lines[i]);

		cr_assert_eq(imap_resp_select_item(r, &info, &e), want[i], "%s", lines[i]);
		imap_resp_free(r);
	}
	cr_assert_eq(info.exists, 17);
	cr_assert_eq(info.uidvalidity, 3857529045u);
	cr_assert_eq(info.uidnext, 4392);
	cr_assert_eq(info.highestmodseq, 715194045007ull);
	cr_assert(info.read_only);
}

Test(resp, malformed_select_code_is_a_protocol_error)
{
	struct imap_resp *r = parse_one("* OK [UIDVALIDITY abc] hm\r\n");
	struct imap_select_info info;
	struct err e;

	memset(&info, 0, sizeof(info));
	cr_assert_eq(imap_resp_select_item(r, &info, &e), -1);
	cr_assert_eq(e.code, ERR_PROTO);
	imap_resp_free(r);
}

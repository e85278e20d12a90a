/*
 * libFuzzer target: arbitrary server bytes through the parser and then every
 * typed-result reader (capabilities, LIST, STATUS, SELECT data), as the
 * client would apply them.  Looks for over-reads and crashes in resp.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "parse.h"
#include "resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void apply(const struct imap_resp *r, struct imap_mailbox_list *l)
{
	struct imap_caps caps = { 0 };
	struct imap_status_data st;
	struct imap_select_info info;
	const char *name;
	struct err e;

	memset(&info, 0, sizeof(info));
	if (imap_caps_parse(&caps, r->args, r->nargs, &e) == 0)
		imap_caps_has(&caps, IMAP_CAP_IMAP4REV1);
	imap_caps_release(&caps);
	if (r->code_args)
		imap_caps_parse(&caps, r->code_args, r->ncode_args, &e);
	imap_caps_release(&caps);
	imap_resp_list_add(r, false, 1000, l, &e);
	imap_resp_list_add(r, true, 1000, l, &e);
	if (imap_resp_status(r, &name, &st, &e) == 0)
		imap_mailbox_list_find(l, name);
	imap_resp_select_item(r, &info, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser *p = imap_parser_new(NULL, NULL);
	struct imap_mailbox_list l;
	const char *in = (const char *)data;
	struct err e;

	imap_mailbox_list_init(&l);
	while (size > 0) {
		struct imap_resp *r = NULL;
		size_t used = 0;
		enum imap_parse_result pr = imap_parser_feed(p, in, size, &used, &r, &e);

		if (pr == IMAP_PARSE_ERROR || used > size)
			break;
		if (pr == IMAP_PARSE_DONE && r) {
			apply(r, &l);
			imap_resp_free(r);
		}
		if (pr == IMAP_PARSE_NEED_MORE)
			break;
		in += used;
		size -= used;
	}
	imap_mailbox_list_release(&l);
	imap_parser_free(p);
	return 0;
}

/*
 * Fuzz the Maildir store's parsers of untrusted names and files: folder
 * names both ways (the escape must round-trip), message file names (info
 * suffix, ",S=" sizes), dovecot-keywords text, and the fingerprint
 * (chunking must not change it).
 *
 * Input: byte 0 picks the layout and separator, the rest is the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "maildir.h"
#include "maildir_int.h"
#include "sync/fp.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_folder_names(enum maildir_layout layout, char sep, const char *s)
{
	struct buf disk = BUF_INIT(1 << 16), name = BUF_INIT(1 << 16), again = BUF_INIT(1 << 16);
	struct err e;

	if (maildir_name_to_disk(layout, sep, s, &disk, &e) == 0) {
		if (maildir_disk_to_name(layout, sep, buf_cstr(&disk), &name, &e) != 0 ||
		    strcmp(buf_cstr(&name), s) != 0)
			abort();
		if (strstr(buf_cstr(&disk), "..") != NULL && layout == MAILDIR_LAYOUT_VERBATIM) {
			/* ".." may only appear inside a component, never as one. */
			const char *p = buf_cstr(&disk);

			for (const char *q = strstr(p, ".."); q != NULL; q = strstr(q + 1, ".."))
				if ((q == p || q[-1] == '/') && (q[2] == '\0' || q[2] == '/'))
					abort();
		}
	}
	buf_release(&name);
	if (maildir_disk_to_name(layout, sep, s, &name, &e) == 0) {
		if (maildir_name_to_disk(layout, sep, buf_cstr(&name), &again, &e) != 0 ||
		    strcmp(buf_cstr(&again), s) != 0)
			abort();
	}
	buf_release(&disk);
	buf_release(&name);
	buf_release(&again);
}

/* The fingerprint of a local file (core/sync/fp.h) must not depend on how
 * the reads cut it. */
static void check_fingerprint(const uint8_t *data, size_t size)
{
	struct sync_fp_ctx c;
	struct sync_fp_value a, b;
	struct err e;
	size_t step = size % 7 + 1;

	if (sync_fp_init(&c, &e) < 0)
		abort();
	sync_fp_update(&c, data, size);
	sync_fp_final(&c, &a);
	if (sync_fp_init(&c, &e) < 0)
		abort();
	for (size_t off = 0; off < size; off += step)
		sync_fp_update(&c, data + off, size - off < step ? size - off : step);
	sync_fp_final(&c, &b);
	if (memcmp(a.bytes, b.bytes, SYNC_FP_BYTES) != 0 || a.size != b.size ||
	    strcmp(a.message_id, b.message_id) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char seps[] = { '/', '.', '\0', '\\' };
	char *table[MAILDIR_KEYWORDS_MAX] = { NULL };
	struct maildir_info info;
	char *s;

	if (size < 1 || size > 8192)
		return 0;
	s = xstrndup((const char *)data + 1, size - 1);
	check_folder_names((enum maildir_layout)(data[0] & 1), seps[(data[0] >> 1) & 3], s);
	maildir_keywords_parse((const char *)data + 1, size - 1, table);
	maildir_info_parse(s, (const char *const *)table, &info);
	if (info.uniq_len > strlen(s))
		abort();
	(void)maildir_name_size(s);
	maildir_keywords_clear(table);
	check_fingerprint(data + 1, size - 1);
	free(s);
	return 0;
}

/*
 * Tests of the sync fingerprint (core/sync/fp.h).
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crlf.h"
#include "sync/fp.h"

static void fp_of(const char *msg, size_t chunk, struct sync_fp_value *out)
{
	struct sync_fp_ctx c;
	struct err e;
	size_t n = strlen(msg);

	cr_assert_eq(sync_fp_init(&c, &e), 0);
	for (size_t i = 0; i < n; i += chunk)
		sync_fp_update(&c, msg + i, n - i < chunk ? n - i : chunk);
	sync_fp_final(&c, out);
}

Test(sync_fp, lf_and_crlf_files_give_the_same_fingerprint_and_crlf_size)
{
	struct sync_fp_value a, b;

	fp_of("Subject: x\nMessage-ID: <a@b>\n\nbody\nline\n", 1, &a);
	fp_of("Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\nline\r\n", 4096, &b);
	cr_assert_eq(memcmp(a.bytes, b.bytes, SYNC_FP_BYTES), 0);
	cr_assert_eq(a.size, strlen("Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\nline\r\n"));
	cr_assert_eq(a.size, b.size);
	cr_assert_str_eq(a.message_id, "<a@b>");
}

Test(sync_fp, header_with_known_size_equals_whole_message)
{
	const char *whole = "From: a\r\nMessage-ID:\r\n <x@y> \r\n\r\nhello\r\n";
	const char *hdr = "From: a\r\nMessage-ID:\r\n <x@y> \r\n\r\n";
	struct sync_fp_value a, b;
	struct sync_fp_ctx c;
	struct err e;

	fp_of(whole, 3, &a);
	cr_assert_eq(sync_fp_init(&c, &e), 0);
	sync_fp_update(&c, hdr, strlen(hdr));
	sync_fp_final_size(&c, strlen(whole), &b);
	cr_assert_eq(memcmp(a.bytes, b.bytes, SYNC_FP_BYTES), 0);
	cr_assert_str_eq(b.message_id, "<x@y>");
}

Test(sync_fp, body_change_keeps_header_hash_but_size_differs)
{
	struct sync_fp_value a, b, c;

	fp_of("Subject: x\n\nbody one\n", 7, &a);
	fp_of("Subject: x\n\nbody two\n", 7, &b);
	fp_of("Subject: x\n\nbody three\n", 7, &c);
	cr_assert_eq(memcmp(a.bytes, b.bytes, SYNC_FP_BYTES), 0, "same header and size");
	cr_assert_neq(memcmp(a.bytes, c.bytes, SYNC_FP_BYTES), 0, "size differs");
	cr_assert_str_eq(a.message_id, "");
}

Test(sync_fp, bare_cr_is_content_and_fd_reads_the_file)
{
	char path[] = "/tmp/ferry-fp-XXXXXX";
	int fd = mkstemp(path);
	struct sync_fp_value a, b;
	struct err e;
	const char *msg = "A: 1\rB\n\nx\n";

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	cr_assert_eq(sync_fp_fd(fd, &a, &e), 0);
	close(fd);
	unlink(path);
	fp_of(msg, 1, &b);
	cr_assert_eq(memcmp(a.bytes, b.bytes, SYNC_FP_BYTES), 0);
	cr_assert_eq(a.size, strlen(msg) + 3);
	fp_of("A: 1\nB\n\nx\n", 1, &b);
	cr_assert_neq(memcmp(a.bytes, b.bytes, SYNC_FP_BYTES), 0);
}

/*
 * The download path (exec.c dl_data): the header through
 * sync_fp_update_header(), every byte through crlf_to_lf_counting(), and
 * sync_fp_final_size(bytes + bare LFs) give what feeding the whole
 * message does, whatever the pieces and line ends.
 */
Test(sync_fp, header_only_and_counted_size_equal_the_whole_message)
{
	static const char *const msgs[] = {
		"Subject: x\r\nMessage-ID: <m@x>\r\n\r\nbody\r\nline\r\n",
		"Subject: x\nMessage-ID: <m@x>\n\nbody\nline\n",
		"Subject: mixed\r\nX: y\n\r\nbody\r\nbare\nlone\rcr\r\n\n\r",
		"No-Body: at all\r\n",
		"\r\n\r\nstarts with the empty line\n",
	};
	static const size_t cuts[] = { 1, 2, 3, 5, 7, 16, 17, 4096 };

	for (size_t m = 0; m < sizeof(msgs) / sizeof(msgs[0]); m++)
		for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
			const char *msg = msgs[m];
			size_t n = strlen(msg);
			struct sync_fp_value want, got;
			struct sync_fp_ctx c;
			struct err e;
			char out[256];
			bool held = false;
			uint64_t bare = 0;

			fp_of(msg, cuts[k], &want);
			cr_assert_eq(sync_fp_init(&c, &e), 0);
			for (size_t i = 0; i < n; i += cuts[k]) {
				size_t len = n - i < cuts[k] ? n - i : cuts[k];

				if (!c.header_done)
					sync_fp_update_header(&c, msg + i, len);
				(void)crlf_to_lf_counting(msg + i, len, out, &held, &bare);
			}
			sync_fp_final_size(&c, n + bare, &got);
			cr_assert_eq(got.size, want.size, "message %zu, pieces of %zu: size %llu, not %llu", m,
				     cuts[k], (unsigned long long)got.size, (unsigned long long)want.size);
			cr_assert_eq(memcmp(got.bytes, want.bytes, SYNC_FP_BYTES), 0,
				     "message %zu, pieces of %zu: another fingerprint", m, cuts[k]);
			cr_assert_str_eq(got.message_id, want.message_id);
		}
}

/* A folded Message-ID, LF or CRLF, in every chunking: one fingerprint. */
Test(sync_fp, folded_message_id_in_any_chunking)
{
	const char *lf = "From: a@b\nMessage-Id:\n  <abc@example.org> \nSubject: x\n\nbody\nMessage-ID: <not-this>\n";
	const char *crlf = "From: a@b\r\nMessage-Id:\r\n  <abc@example.org> \r\nSubject: x\r\n\r\nbody\r\nMessage-ID: <not-this>\r\n";
	struct sync_fp_value a, b, c;
	unsigned seed = (unsigned)time(NULL);

	fp_of(lf, strlen(lf), &a);
	fp_of(crlf, strlen(crlf), &b);
	cr_assert_eq(memcmp(a.bytes, b.bytes, SYNC_FP_BYTES), 0);
	cr_assert_str_eq(a.message_id, "<abc@example.org>");
	cr_assert_str_eq(b.message_id, "<abc@example.org>");
	cr_assert_eq(a.size, strlen(crlf));
	cr_assert_eq(b.size, strlen(crlf));
	srand(seed);
	for (int i = 0; i < 50; i++) {
		fp_of(i % 2 ? crlf : lf, 1 + (size_t)(rand() % 20), &c);
		cr_assert_eq(memcmp(a.bytes, c.bytes, SYNC_FP_BYTES), 0, "seed %u", seed);
		cr_assert_str_eq(c.message_id, "<abc@example.org>", "seed %u", seed);
		cr_assert_eq(c.size, a.size, "seed %u", seed);
	}
}

Test(sync_fp, edge_cases)
{
	struct sync_fp_value a, b;

	fp_of("", 1, &a);
	cr_assert_eq(a.size, 0);
	cr_assert_str_eq(a.message_id, "");
	/* No header block at all: a Message-ID in the body is not one. */
	fp_of("\nMessage-ID: <body>\n", 3, &a);
	cr_assert_str_eq(a.message_id, "");
	/* A bare CR is content: it differs from CRLF. */
	fp_of("a\rb", 1, &a);
	fp_of("a\r\nb", 1, &b);
	cr_assert_neq(memcmp(a.bytes, b.bytes, SYNC_FP_BYTES), 0);
	cr_assert_eq(a.size, 3);
}

/* The progress line's pure formatting (cmd/progress.h): units, rate, width, names. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "progress.h"

static const char *bytes(uint64_t n)
{
	static char out[32];

	progress_bytes(n, out, sizeof(out));
	return out;
}

Test(progress, bytes_use_units_of_1024_with_sensible_precision)
{
	cr_assert_str_eq(bytes(0), "0 B");
	cr_assert_str_eq(bytes(1023), "1023 B");
	cr_assert_str_eq(bytes(1024), "1 KB");
	cr_assert_str_eq(bytes(150 * 1024), "150 KB");
	cr_assert_str_eq(bytes(1536 * 1024), "1.5 MB");
	cr_assert_str_eq(bytes(45ull << 20), "45 MB");
	cr_assert_str_eq(bytes(3ull << 30), "3.0 GB");
	cr_assert_str_eq(bytes(UINT64_MAX), "17179869184.0 GB");
}

static struct sync_progress prog(const char *mailbox, size_t done, size_t total, uint64_t bd,
				 uint64_t bt)
{
	struct sync_progress p = { .mailbox = mailbox, .msgs_done = done, .msgs_total = total,
				   .bytes_done = bd, .bytes_total = bt };
	return p;
}

Test(progress, line_has_counts_bytes_rate_and_the_mailbox)
{
	struct sync_progress p = prog("INBOX", 45, 200, 1258291, 3774873);
	char out[256];
	size_t n = progress_format("work", &p, 2.0, 80, out, sizeof(out));

	cr_assert_str_eq(out, "pulling 45/200 msgs  1.2 MB/3.6 MB  614 KB/s  work/INBOX");
	cr_assert_eq(n, strlen(out));
	p.upload = true;
	progress_format("work", &p, 2.0, 80, out, sizeof(out));
	cr_assert(strncmp(out, "pushing ", 8) == 0, "%s", out);
}

Test(progress, rate_is_left_out_until_a_tenth_of_a_second_passed)
{
	struct sync_progress p = prog("INBOX", 0, 3, 100, 300);
	char out[256];

	progress_format("a", &p, 0.05, 80, out, sizeof(out));
	cr_assert_str_eq(out, "pulling 0/3 msgs  100 B/300 B  a/INBOX");
}

Test(progress, unknown_byte_total_shows_bytes_done_only)
{
	struct sync_progress p = prog("INBOX", 1, 2, 2048, 0);
	char out[256];

	progress_format("a", &p, 1.0, 80, out, sizeof(out));
	cr_assert_str_eq(out, "pulling 1/2 msgs  2 KB  2 KB/s  a/INBOX");
}

Test(progress, narrow_terminal_cuts_the_name_never_the_counts)
{
	struct sync_progress p = prog("Lists/a-very-long-mailing-list-name", 7, 9, 10, 20);
	char out[256];
	size_t n;

	n = progress_format("acct", &p, 1.0, 40, out, sizeof(out));
	cr_assert_eq(n, 39, "%zu: \"%s\"", n, out);
	cr_assert(strncmp(out, "pulling 7/9 msgs  10 B/20 B  10 B/s  ac", 39) == 0, "%s", out);
	/* a cut right after the gap leaves no trailing blank */
	n = progress_format("acct", &p, 1.0, 38, out, sizeof(out));
	cr_assert_str_eq(out, "pulling 7/9 msgs  10 B/20 B  10 B/s");
	cr_assert_eq(n, 35);
	/* absurd widths */
	n = progress_format("acct", &p, 1.0, 0, out, sizeof(out));
	cr_assert_eq(n, 0);
	cr_assert_str_eq(out, "");
	n = progress_format("acct", &p, 1.0, 1, out, sizeof(out));
	cr_assert_eq(n, 0);
}

Test(progress, width_counts_utf8_characters_and_never_splits_one)
{
	/* "Entwürfe/Ärger": ü and Ä are two bytes each, one column each */
	struct sync_progress p = prog("Entw\xc3\xbcrfe/\xc3\x84rger", 1, 1, 5, 5);
	char full[256], out[256];
	size_t n, cols = 0;

	progress_format("a", &p, 0, 200, full, sizeof(full));
	cr_assert_str_eq(full, "pulling 1/1 msgs  5 B/5 B  a/Entw\xc3\xbcrfe/\xc3\x84rger");
	/* every width from the whole line down: a prefix, whole characters, <= width - 1 */
	for (unsigned w = 60; w > 20; w--) {
		n = progress_format("a", &p, 0, w, out, sizeof(out));
		cr_assert(strncmp(full, out, n) == 0, "w=%u: \"%s\"", w, out);
		cols = 0;
		for (size_t i = 0; i < n; i++)
			cols += ((unsigned char)out[i] & 0xc0) != 0x80;
		cr_assert_leq(cols, w - 1, "w=%u: %zu columns", w, cols);
		cr_assert(n == 0 || ((unsigned char)out[n - 1] & 0x80) == 0 ||
				  ((unsigned char)out[n - 1] & 0xc0) == 0x80,
			  "w=%u: ends in a lead byte", w);
		if (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
			cr_assert(((unsigned char)out[n - 2] & 0xe0) == 0xc0, "w=%u: a cut character",
				  w);
	}
}

Test(progress, control_characters_in_names_are_shown_as_question_marks)
{
	/* a server may name a mailbox with an escape sequence: it must not reach the terminal */
	struct sync_progress p = prog("Evil\033[2J\r\n\x7f\xff", 0, 1, 0, 1);
	char out[256];

	progress_format("a", &p, 0, 200, out, sizeof(out));
	cr_assert_str_eq(out, "pulling 0/1 msgs  0 B/1 B  a/Evil?[2J????");
	for (const char *s = out; *s; s++)
		cr_assert((unsigned char)*s >= 0x20 && *s != 0x7f, "control byte in \"%s\"", out);
}

Test(progress, small_buffer_is_respected)
{
	struct sync_progress p = prog("INBOX", 45, 200, 1258291, 3774873);
	char out[12];
	size_t n = progress_format("work", &p, 2.0, 200, out, sizeof(out));

	cr_assert_eq(n, 11);
	cr_assert_str_eq(out, "pulling 45/");
}

Test(progress, not_wanted_with_json_quiet_verbose_or_off_a_terminal)
{
	struct cli c;
	int fds[2];

	memset(&c, 0, sizeof(c));
	cr_assert_eq(pipe(fds), 0);
	cr_assert_not(progress_wanted(&c, fds[1]), "wanted in a pipe");
	c.json = true;
	cr_assert_not(progress_wanted(&c, fds[1]));
	c.json = false;
	c.verbosity = -1;
	cr_assert_not(progress_wanted(&c, fds[1]));
	close(fds[0]);
	close(fds[1]);
}

/* What the terminal gets, in order: the line, its erasure, then the log line. */
Test(progress, a_log_line_erases_the_progress_line_first)
{
	struct sync_progress sp = prog("INBOX", 1, 2, 10, 20);
	struct progress p;
	char got[512];
	size_t n = 0;
	ssize_t k;
	int fds[2], saved;

	cr_assert_eq(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	cr_assert_eq(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
	setenv("FERRY_PROGRESS_INTERVAL_MS", "0", 1);
	progress_init(&p, fds[1], true);
	progress_begin(&p, "acct");
	progress_event(&p, &sp);
	log_set_context("acct", NULL);
	log_warn("account \"acct\": names its account");
	log_warn("does not");
	progress_event(&p, &sp);
	progress_release(&p);
	log_warn("after release");
	log_set_context(NULL, NULL);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	while ((k = read(fds[0], got + n, sizeof(got) - 1 - n)) > 0)
		n += (size_t)k;
	got[n] = '\0';
	close(fds[0]);
	unsetenv("FERRY_PROGRESS_INTERVAL_MS");
	cr_assert_str_eq(got,
			 "\rpulling 1/2 msgs  10 B/20 B  acct/INBOX\033[K"
			 "\r\033[K"
			 "ferry: warning: account \"acct\": names its account\n"
			 "ferry: warning: acct: does not\n"
			 "\rpulling 1/2 msgs  10 B/20 B  acct/INBOX\033[K"
			 "\r\033[K"
			 "ferry: warning: acct: after release\n");
}

/*
 * test_synclib.c - the sync tests' helpers checked against independent
 * sources: the server listing against doveadm, the local listing against
 * files written here by hand, the comparisons against a hand-made mirror
 * with one difference at a time, the byte counters against a known fetch.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synclib.h"
#include "xalloc.h"

static struct sl_ctx ctx;

static void up(void)
{
	cr_assert_eq(sl_setup(&ctx, false, NULL), 0);
}

static void down(void)
{
	sl_teardown(&ctx);
}

TestSuite(synclib, .init = up, .fini = down, .timeout = 60);

/* Parse doveadm fetch "uid flags hdr.message-id" output into "uid|flags|msgid" lines. */
static char **doveadm_listing(const char *mailbox)
{
	const char *args[] = { "fetch", "-u", ctx.user, "uid flags hdr.message-id", "mailbox", mailbox, NULL };
	struct harness_result res;
	char **v = xcalloc(64, sizeof(*v));
	size_t n = 0;
	char *uid = NULL, *flags = NULL;

	cr_assert_eq(harness_doveadm(&ctx.d, args, &res), 0);
	cr_assert_eq(res.status, 0, "%s", res.err);
	for (char *line = strtok(res.out, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "uid: ", 5) == 0) {
			free(uid);
			uid = xstrdup(line + 5);
		} else if (strncmp(line, "flags:", 6) == 0) {
			free(flags);
			flags = sl_canon_flags(line + 6);
		} else if (strncmp(line, "hdr.message-id: ", 16) == 0) {
			cr_assert(uid && flags && n < 63);
			v[n++] = xasprintf("%s|%s|%s", uid, flags, line + 16);
		}
	}
	free(uid);
	free(flags);
	harness_result_release(&res);
	return v;
}

Test(synclib, remote_list_matches_doveadm)
{
	struct sl_list l;
	char **want;
	size_t n = 0;
	char *m1 = sl_message("a1", 300), *m2 = sl_message("a2", 5000), *m3 = sl_message("a3", 10);

	cr_assert_eq(sl_remote_append(&ctx, "INBOX", m1, "\\Seen"), 0);
	cr_assert_eq(sl_remote_append(&ctx, "INBOX", m2, "\\Flagged $Forwarded work"), 0);
	cr_assert_eq(sl_remote_append(&ctx, "INBOX", m3, NULL), 0);
	cr_assert_eq(sl_remote_store(&ctx, "INBOX", "<a3@ferry.test>", "+FLAGS", "\\Answered"), 0);
	cr_assert_eq(sl_remote_list(&ctx, "INBOX", &l), 0);
	want = doveadm_listing("INBOX");
	while (want[n])
		n++;
	cr_assert_eq(l.n, 3);
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < l.n; i++) {
		char *got = xasprintf("%u|%s|%s", l.v[i].uid, l.v[i].flags, l.v[i].msgid);
		bool found = false;

		for (size_t k = 0; k < n; k++)
			found |= strcmp(want[k], got) == 0;
		cr_assert(found, "%s not in doveadm's listing", got);
		free(got);
	}
	cr_assert_eq(sl_list_dups(&l), 0);
	sl_strv_free(want);
	sl_list_release(&l);
	free(m1);
	free(m2);
	free(m3);
}

Test(synclib, remote_mailboxes_and_changes_match_doveadm)
{
	const char *args[] = { "mailbox", "list", "-u", ctx.user, NULL };
	struct harness_result res;
	char **names;
	size_t n = 0, lines = 0;
	char *m = sl_message("mv1", 100);
	struct sl_list a, b;
	const char *in_b[] = { "<mv1@ferry.test> \\Seen", NULL };
	const char *none[] = { NULL };

	cr_assert_eq(sl_remote_create(&ctx, "Box A"), 0);
	cr_assert_eq(sl_remote_create(&ctx, "Box A/cur"), 0);
	cr_assert_eq(sl_remote_create(&ctx, "Gone"), 0);
	cr_assert_eq(sl_remote_delete(&ctx, "Gone"), 0);
	cr_assert_eq(sl_remote_create(&ctx, "Old"), 0);
	cr_assert_eq(sl_remote_rename(&ctx, "Old", "New"), 0);
	cr_assert_eq(sl_remote_append(&ctx, "Box A", m, "\\Seen"), 0);
	cr_assert_eq(sl_remote_move(&ctx, "Box A", "<mv1@ferry.test>", "New"), 0);
	names = sl_remote_mailboxes(&ctx);
	cr_assert_eq(harness_doveadm(&ctx.d, args, &res), 0);
	for (char *line = strtok(res.out, "\n"); line; line = strtok(NULL, "\n")) {
		bool found = false;

		for (size_t i = 0; names[i]; i++)
			found |= strcmp(names[i], line) == 0;
		cr_assert(found, "doveadm lists \"%s\", the helper does not", line);
		lines++;
	}
	while (names[n])
		n++;
	cr_assert_eq(n, lines);
	cr_assert_eq(n, 9); /* INBOX, 5 special-use, Box A, Box A/cur, New, and not Gone/Old */
	cr_assert_eq(sl_remote_list(&ctx, "Box A", &a), 0);
	cr_assert_eq(sl_remote_list(&ctx, "New", &b), 0);
	cr_assert_eq(sl_expect_diff(&a, none, NULL), 0);
	cr_assert_eq(sl_expect_diff(&b, in_b, NULL), 0);
	cr_assert_eq(sl_remote_expunge(&ctx, "New", "<mv1@ferry.test>"), 0);
	sl_list_release(&b);
	cr_assert_eq(sl_remote_list(&ctx, "New", &b), 0);
	cr_assert_eq(b.n, 0);
	sl_list_release(&a);
	sl_list_release(&b);
	sl_strv_free(names);
	harness_result_release(&res);
	free(m);
}

Test(synclib, local_list_reads_hand_made_files)
{
	char *fp = sl_local_path(&ctx, "Proj/cur");
	char *want_fp = xasprintf("%s/Proj/%%63ur", ctx.root);
	char *p, *m1 = sl_message("l1", 200), *m2 = sl_message("l2", 200), *m3 = sl_message("l3", 200);
	struct sl_list l, r;
	char **folders;
	const char *expect[] = { "<l1@ferry.test> \\Flagged \\Seen work", "<l2@ferry.test>",
				 "<l3@ferry.test> $Forwarded \\Answered \\Deleted \\Draft", NULL };
	char *report = NULL;

	cr_assert_str_eq(fp, want_fp);
	cr_assert_eq(sl_local_mkfolder(&ctx, "Proj/cur"), 0);
	cr_assert_eq(sl_local_mkfolder(&ctx, "INBOX"), 0);
	cr_assert_eq(sl_local_mkfolder(&ctx, "100%"), 0);
	p = xasprintf("%s/cur/1.M1.host:2,FSa", fp);
	cr_assert_eq(harness_write_file(p, m1), 0);
	free(p);
	p = xasprintf("%s/new/2.M2.host", fp);
	cr_assert_eq(harness_write_file(p, m2), 0);
	free(p);
	p = xasprintf("%s/dovecot-keywords", fp);
	cr_assert_eq(harness_write_file(p, "0 work\n"), 0);
	free(p);
	cr_assert_eq(sl_local_deliver(&ctx, "Proj/cur", m3, "DPRT"), 0);
	cr_assert_eq(sl_local_list(&ctx, "Proj/cur", &l), 0);
	cr_assert_eq(sl_expect_diff(&l, expect, &report), 0, "%s", report);
	free(report);
	/* A keyword letter the helper adds is read back. */
	cr_assert_eq(sl_local_keyword_letter(&ctx, "Proj/cur", "work"), 'a');
	cr_assert_eq(sl_local_keyword_letter(&ctx, "Proj/cur", "$label2"), 'b');
	cr_assert_eq(sl_local_set_flags(&ctx, "Proj/cur", "<l2@ferry.test>", "Sb"), 0);
	sl_list_release(&l);
	cr_assert_eq(sl_local_list(&ctx, "Proj/cur", &l), 0);
	{
		const char *e2[] = { "<l1@ferry.test> \\Flagged \\Seen work", "<l2@ferry.test> $label2 \\Seen",
				     "<l3@ferry.test> $Forwarded \\Answered \\Deleted \\Draft", NULL };

		cr_assert_eq(sl_expect_diff(&l, e2, &report), 0, "%s", report);
		free(report);
		/* and an expectation that is wrong is reported */
		const char *wrong[] = { "<l1@ferry.test> \\Seen", "<l2@ferry.test> $label2 \\Seen", NULL };

		cr_assert_eq(sl_expect_diff(&l, wrong, NULL), 2);
	}
	/* The same message on the server has the same identity (CRLF there, LF here). */
	cr_assert_eq(sl_remote_append(&ctx, "INBOX", m1, NULL), 0);
	cr_assert_eq(sl_remote_list(&ctx, "INBOX", &r), 0);
	cr_assert_eq(r.n, 1);
	{
		bool same = false;

		for (size_t i = 0; i < l.n; i++)
			same |= strcmp(l.v[i].ident, r.v[0].ident) == 0;
		cr_assert(same, "identity of %s differs between the sides", r.v[0].ident);
	}
	/* Folders are found and decoded. */
	folders = sl_local_folders(&ctx);
	cr_assert_str_eq(folders[0], "100%");
	cr_assert_str_eq(folders[1], "INBOX");
	cr_assert_str_eq(folders[2], "Proj/cur");
	cr_assert_null(folders[3]);
	/* mv keeps the name; delete removes. */
	cr_assert_eq(sl_local_move(&ctx, "Proj/cur", "<l1@ferry.test>", "INBOX"), 0);
	p = xasprintf("%s/INBOX/cur/1.M1.host:2,FSa", ctx.root);
	cr_assert_eq(access(p, F_OK), 0);
	free(p);
	cr_assert_eq(sl_local_delete(&ctx, "INBOX", "<l1@ferry.test>"), 0);
	sl_list_release(&r);
	cr_assert_eq(sl_local_list(&ctx, "INBOX", &r), 0);
	cr_assert_eq(r.n, 0);
	sl_list_release(&r);
	sl_strv_free(folders);
	sl_list_release(&l);
	free(fp);
	free(want_fp);
	free(m1);
	free(m2);
	free(m3);
}

/* Build a local mirror of the server by hand, then break it one way at a time. */
Test(synclib, sides_diff_is_zero_for_a_mirror_and_counts_each_difference)
{
	char **names;
	char *report = NULL;
	struct sl_snap before, after;
	char *m[4];

	for (int i = 0; i < 4; i++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "s%d", i);
		m[i] = sl_message(tag, 100 + 900 * (size_t)i);
	}
	cr_assert_eq(sl_remote_create(&ctx, "Work"), 0);
	cr_assert_eq(sl_remote_append(&ctx, "INBOX", m[0], "\\Seen"), 0);
	cr_assert_eq(sl_remote_append(&ctx, "INBOX", m[1], "\\Flagged work"), 0);
	cr_assert_eq(sl_remote_append(&ctx, "Work", m[2], NULL), 0);
	names = sl_remote_mailboxes(&ctx);
	for (size_t i = 0; names[i]; i++)
		cr_assert_eq(sl_local_mkfolder(&ctx, names[i]), 0);
	sl_strv_free(names);
	cr_assert_eq(sl_local_deliver(&ctx, "INBOX", m[0], "S"), 0);
	cr_assert_eq(sl_local_keyword_letter(&ctx, "INBOX", "work"), 'a');
	cr_assert_eq(sl_local_deliver(&ctx, "INBOX", m[1], "Fa"), 0);
	cr_assert_eq(sl_local_deliver(&ctx, "Work", m[2], NULL), 0);
	cr_assert_eq(sl_sides_diff(&ctx, &report), 0, "%s", report);
	free(report);
	cr_assert_eq(sl_local_snap(&ctx, &before), 0);
	cr_assert_eq(sl_snap_count(&before), 3);

	/* a flag differs */
	cr_assert_eq(sl_local_set_flags(&ctx, "INBOX", "<s0@ferry.test>", "FS"), 0);
	cr_assert_eq(sl_sides_diff(&ctx, NULL), 1);
	cr_assert_eq(sl_local_snap(&ctx, &after), 0);
	cr_assert_eq(sl_snap_diff(&before, &after, false, NULL), 1);
	sl_snap_release(&after);
	cr_assert_eq(sl_local_set_flags(&ctx, "INBOX", "<s0@ferry.test>", "S"), 0);
	/* same flags, new file name: only a strict comparison sees it */
	cr_assert_eq(sl_local_snap(&ctx, &after), 0);
	cr_assert_eq(sl_snap_diff(&before, &after, false, NULL), 0);
	cr_assert_eq(sl_snap_diff(&before, &after, true, NULL), 0); /* same name again */
	sl_snap_release(&after);
	/* a duplicate on one side */
	cr_assert_eq(sl_local_deliver(&ctx, "Work", m[2], NULL), 0);
	cr_assert_eq(sl_sides_diff(&ctx, &report), 2, "%s", report); /* extra copy + duplicate */
	free(report);
	cr_assert_eq(sl_local_snap(&ctx, &after), 0);
	cr_assert_eq(sl_snap_diff(&before, &after, false, NULL), 1);
	sl_snap_release(&after);
	cr_assert_eq(sl_local_delete(&ctx, "Work", "<s2@ferry.test>"), -1); /* two copies: refused */
	cr_assert_eq(sl_local_rmtree(&ctx, "Work"), 0);
	cr_assert_eq(sl_local_mkfolder(&ctx, "Work"), 0);
	/* a message missing locally */
	cr_assert_eq(sl_sides_diff(&ctx, &report), 1, "%s", report);
	free(report);
	cr_assert_eq(sl_local_deliver(&ctx, "Work", m[2], NULL), 0);
	cr_assert_eq(sl_sides_diff(&ctx, NULL), 0);
	/* same Message-ID, different body: not the same message */
	cr_assert_eq(sl_remote_append(&ctx, "Work", m[3], NULL), 0);
	{
		char *fake = sl_message("s3", 50);

		cr_assert_eq(sl_local_deliver(&ctx, "Work", fake, NULL), 0);
		free(fake);
	}
	cr_assert_eq(sl_sides_diff(&ctx, &report), 2, "%s", report);
	free(report);
	cr_assert_eq(sl_local_rmtree(&ctx, "Work"), 0);
	cr_assert_eq(sl_remote_delete(&ctx, "Work"), 0);
	cr_assert_eq(sl_sides_diff(&ctx, NULL), 0);
	/* a folder only on one side */
	cr_assert_eq(sl_local_mkfolder(&ctx, "Extra"), 0);
	cr_assert_eq(sl_sides_diff(&ctx, &report), 1, "%s", report);
	free(report);
	sl_snap_release(&before);
	for (int i = 0; i < 4; i++)
		free(m[i]);
}

Test(synclib, log_bytes_count_a_session)
{
	char *big = sl_message("big", 200000);
	const char *cmds[] = { "UID FETCH 1:* (BODY.PEEK[])", NULL };
	uint64_t in = 0, out = 0;
	unsigned sessions = 0;
	long mark;

	cr_assert_eq(sl_remote_append(&ctx, "INBOX", big, NULL), 0);
	mark = sl_log_mark(&ctx);
	cr_assert_eq(sl_log_bytes(&ctx, mark, &in, &out, &sessions), -1); /* nothing yet */
	cr_assert_eq(sl_imap(&ctx, "INBOX", cmds, NULL), 0);
	cr_assert_eq(sl_log_bytes(&ctx, mark, &in, &out, &sessions), 0);
	cr_assert_eq(sessions, 1);
	cr_assert_gt(out, 200000);
	cr_assert_lt(out, 220000);
	cr_assert_lt(in, 1000);
	mark = sl_log_mark(&ctx);
	cr_assert_eq(sl_remote_append(&ctx, "INBOX", big, NULL), 0);
	cr_assert_eq(sl_log_bytes(&ctx, mark, &in, &out, &sessions), 0);
	cr_assert_gt(in, 200000);
	cr_assert_lt(out, 2000);
	free(big);
}

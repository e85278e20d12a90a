/*
 * test_sync.c - `ferry sync` black-box tests, SPEC §4.1 (new messages),
 * §4.2 (flags) and §4.3 (deletions), each against Dovecot with all
 * capabilities (suite sync_full) and cut down to IMAP4rev1 (sync_rev1).
 * Server changes are made over IMAP as another client would; local changes
 * as a mail client would (synclib.h).  After every run the full state of
 * both sides is asserted.
 */
#define SYNC_SUITE sync
#include "sync_common.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

/* §4.1: a first run copies every server folder, message and flag. */
SYNC_TEST(first_sync_pulls_everything_keeping_folders_and_flags)
{
	struct sl_snap r0, l;
	char **folders;

	cr_assert_eq(harness_seed(&c->d, c->user, 30, NULL), 0);
	cr_assert_eq(sl_remote_store(c, "INBOX", "<seed-1-INBOX@ferry.test>", "+FLAGS", "$Forwarded project"), 0);
	cr_assert_eq(sl_remote_snap(c, &r0), 0);
	cr_assert_geq(sl_snap_count(&r0), 30);
	sync_ok(c);
	assert_remote_unchanged(c, &r0, true);
	assert_sides_equal(c);
	cr_assert_eq(sl_local_snap(c, &l), 0);
	cr_assert_eq(sl_snap_count(&l), sl_snap_count(&r0));
	folders = sl_local_folders(c);
	{
		const char *want[] = { "Archive", "Drafts", "INBOX", "Junk", "Sent Items", "Trash", "Work",
				       "Work/Projects", NULL };

		for (size_t i = 0; want[i]; i++) {
			cr_assert(folders[i], "local folder %s missing", want[i]);
			cr_assert_str_eq(folders[i], want[i]);
		}
		cr_assert_null(folders[8]);
	}
	sl_strv_free(folders);
	sl_snap_release(&r0);
	sl_snap_release(&l);
}

/* §4.1/§4.7: a second run with nothing new changes nothing and moves only a few KB. */
SYNC_TEST(second_sync_changes_nothing_and_transfers_little)
{
	struct sl_snap r, l;
	uint64_t in, out;
	long mark;

	cr_assert_eq(harness_seed(&c->d, c->user, 30, NULL), 0);
	sync_ok(c);
	snap_both(c, &r, &l);
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	/* The seed holds ~150 KB messages; listing 30 UIDs and flags takes far less. */
	cr_assert_lt(in + out, 24000, "a run with nothing to do moved %llu bytes",
		     (unsigned long long)(in + out));
	assert_remote_unchanged(c, &r, true);
	assert_local_unchanged(c, &l, true);
	assert_sides_equal(c);
	sl_snap_release(&r);
	sl_snap_release(&l);
}

/* §4.1: new messages on each side reach the other, with their flags. */
SYNC_TEST(new_messages_on_each_side_reach_the_other)
{
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "INBOX", "base", 500, "\\Seen");
	sync_ok(c);
	put_remote(c, "INBOX", "srv1", 2000, "\\Flagged");
	put_remote(c, "Work", "srv2", 70000, NULL);
	put_local(c, "INBOX", "loc1", 800, "S");
	put_local(c, "Work", "loc2", 90000, NULL); /* in new/, as delivered */
	put_local(c, "Work", "loc3", 300, "FR");
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("base") " \\Seen", MID("srv1") " \\Flagged", MID("loc1") " \\Seen"));
	expect_both(c, "Work", LIST(MID("srv2"), MID("loc2"), MID("loc3") " \\Flagged \\Answered"));
	assert_sides_equal(c);
	/* and nothing moves again */
	assert_settled(c);
}

/* In a -vv trace: the tagged answer to the command whose "C: TAG VERB"
 * line contains `at`, or NULL. */
static const char *answer_to(const char *log, const char *at)
{
	const char *tag = at, *sp;
	char want[64];

	while (tag > log && strncmp(tag, "C: ", 3) != 0)
		tag--;
	tag += 3;
	sp = strchr(tag, ' ');
	if (sp == NULL || sp - tag > 40)
		return NULL;
	snprintf(want, sizeof(want), "S: %.*s ", (int)(sp - tag), tag);
	return strstr(at, want);
}

/* The last "C: TAG <verb_box>" line (e.g. " STATUS U1 ") before `end`, or NULL. */
static const char *last_sent(const char *log, const char *end, const char *verb_box)
{
	const char *p, *last = NULL;

	for (p = log; (p = strstr(p, verb_box)) != NULL && p < end; p++)
		last = p;
	return last;
}

/*
 * New local mail in three folders goes up as one run: one round of STATUS
 * for the three mailboxes' UIDNEXT (all three sent before the first
 * answer), then, with LITERAL+ and UIDPLUS, the APPENDs to the three
 * mailboxes all sent before the answer to the first is read, and with
 * MULTIAPPEND one APPEND per mailbox for its two messages.
 */
Test(SYNC_FULL, uploads_to_several_mailboxes_are_pipelined_together)
{
	static const char *const boxes[] = { "INBOX", "U1", "U2" };
	struct harness_result res;
	const char *status[3], *first_append, *last_append, *p, *answer;
	int st;

	for (size_t i = 1; i < 3; i++)
		cr_assert_eq(sl_remote_create(&ctx, boxes[i]), 0);
	for (size_t i = 0; i < 3; i++)
		put_remote(&ctx, boxes[i], boxes[i], 300, NULL);
	sync_ok(&ctx);
	for (size_t i = 0; i < 3; i++) {
		char *t1 = xasprintf("%s-n1", boxes[i]), *t2 = xasprintf("%s-n2", boxes[i]);

		put_local(&ctx, boxes[i], t1, 700, "S");
		put_local(&ctx, boxes[i], t2, 40000, NULL);
		free(t1);
		free(t2);
	}
	st = run_keep(&ctx, &res, "-vv", "sync", NULL);
	cr_assert_eq(st, 0, "%s", res.err);
	first_append = strstr(res.err, " APPEND ");
	cr_assert_not_null(first_append, "no APPEND in:\n%s", res.err);
	last_append = last_sent(res.err, res.err + strlen(res.err), " APPEND ");
	cr_assert_not_null(strstr(first_append, " APPEND U2 "), "no APPEND to U2 in:\n%s", res.err);
	answer = answer_to(res.err, first_append);
	cr_assert_not_null(answer, "no answer to the first APPEND in:\n%s", res.err);
	cr_assert_lt(last_append, answer, "an APPEND waited for the first one's answer:\n%s", res.err);
	/* Dovecot offers MULTIAPPEND: one command per mailbox carries both its messages */
	{
		size_t nappend = 0;

		for (p = res.err; (p = strstr(p, " APPEND ")) != NULL; p++)
			nappend++;
		cr_assert_eq(nappend, 3, "%zu APPEND commands for 3 mailboxes:\n%s", nappend, res.err);
	}
	/* the STATUS commands for UIDNEXT, the last ones before the APPENDs */
	status[0] = last_sent(res.err, first_append, " STATUS INBOX ");
	status[1] = last_sent(res.err, first_append, " STATUS U1 ");
	status[2] = last_sent(res.err, first_append, " STATUS U2 ");
	p = NULL;
	for (size_t i = 0; i < 3; i++) {
		cr_assert_not_null(status[i], "no STATUS %s before the APPENDs:\n%s", boxes[i], res.err);
		if (p == NULL || status[i] < p)
			p = status[i];
	}
	answer = answer_to(res.err, p);
	cr_assert_not_null(answer, "no answer to the first STATUS in:\n%s", res.err);
	for (size_t i = 0; i < 3; i++)
		cr_assert_lt(status[i], answer, "STATUS %s waited for another STATUS's answer:\n%s", boxes[i],
			     res.err);
	harness_result_release(&res);
	for (size_t i = 0; i < 3; i++) {
		char *m0 = xasprintf("<%s@ferry.test>", boxes[i]);
		char *m1 = xasprintf("<%s-n1@ferry.test> \\Seen", boxes[i]);
		char *m2 = xasprintf("<%s-n2@ferry.test>", boxes[i]);

		expect_both(&ctx, boxes[i], LIST(m0, m1, m2));
		free(m0);
		free(m1);
		free(m2);
	}
	assert_sides_equal(&ctx);
}

/*
 * A download's SELECT goes out with its FETCHes: in the trace, the UID
 * FETCH of the bodies is sent before the answer to the SELECT is read
 * (before: a round trip for the SELECT first), and the messages arrive
 * whole, in their folders.
 */
SYNC_TEST(download_select_is_pipelined_with_its_fetch)
{
	struct harness_result res;
	const char *fetch, *select, *answer;
	int st;

	cr_assert_eq(sl_remote_create(c, "D1"), 0);
	put_remote(c, "INBOX", "i1", 900, "\\Seen");
	put_remote(c, "D1", "d1", 60000, NULL);
	put_remote(c, "D1", "d2", 700, "\\Flagged");
	st = run_keep(c, &res, "-vv", "sync", NULL);
	cr_assert_eq(st, 0, "%s", res.err);
	fetch = strstr(res.err, " BODY.PEEK[])");
	cr_assert_not_null(fetch, "no download in:\n%s", res.err);
	select = last_sent(res.err, fetch, " SELECT ");
	cr_assert_not_null(select, "no SELECT before the download in:\n%s", res.err);
	answer = answer_to(res.err, select);
	cr_assert_not_null(answer, "no answer to the SELECT in:\n%s", res.err);
	cr_assert_lt(fetch, answer, "the FETCH waited for its SELECT's answer:\n%s", res.err);
	harness_result_release(&res);
	expect_both(c, "INBOX", LIST(MID("i1") " \\Seen"));
	expect_both(c, "D1", LIST(MID("d1"), MID("d2") " \\Flagged"));
	assert_sides_equal(c);
}

/*
 * An upload the server refuses (its mailbox's tmp/ not writable: the
 * APPEND fails, the SELECT still works) fails that mailbox alone: the new
 * mail of the mailboxes around it, uploaded in the same run, reaches the
 * server, and the next run, once the folder is writable again, uploads
 * the rest.
 */
/* Mailboxes A, B and C with a message each (a1, b1, c1), synced. */
static void abc_synced(struct sl_ctx *c)
{
	static const char *const boxes[] = { "A", "B", "C" };
	static const char *const tags[] = { "a1", "b1", "c1" };

	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(sl_remote_create(c, boxes[i]), 0);
		put_remote(c, boxes[i], tags[i], 300, NULL);
	}
	sync_ok(c);
}

/* The mode of each of the server's folders `subs` (".B", ".B/tmp" ..., NULL-ended). */
static void server_chmod(struct sl_ctx *c, const char *const *subs, mode_t mode)
{
	for (size_t i = 0; subs[i] != NULL; i++) {
		char *path = xasprintf("%s/mail/%s/Maildir/%s", c->d.dir, c->user, subs[i]);

		cr_assert_eq(chmod(path, mode), 0, "chmod %s", path);
		free(path);
	}
}

/*
 * A sync while the server's folders `subs` (of B's: ".B", ".B/tmp" ...)
 * have mode `mode`: it must fail B, and say so (with `also` in its output
 * when not NULL).  The folders get mode 0700 back after.
 */
static void sync_fails_b(struct sl_ctx *c, const char *const *subs, mode_t mode, const char *also)
{
	struct harness_result res;
	int st;

	server_chmod(c, subs, mode);
	st = run_keep(c, &res, "sync", NULL);
	server_chmod(c, subs, 0700);
	cr_assert_eq(st, 1, "ferry exited %d\nstdout:\n%s\nstderr:\n%s", st, res.out, res.err);
	cr_assert_not_null(strstr(res.err, "\"B\""), "%s", res.err);
	if (also != NULL)
		cr_assert_not_null(strstr(res.err, also), "no \"%s\" in:\n%s", also, res.err);
	harness_result_release(&res);
}

/* B's folder and its three subfolders: Dovecot can open it read-only only. */
#define B_READ_ONLY ((const char *const[]){ ".B", ".B/cur", ".B/new", ".B/tmp", NULL })

SYNC_TEST(mailbox_whose_append_fails_fails_alone)
{
	abc_synced(c);
	put_local(c, "A", "a2", 500, "S");
	put_local(c, "B", "b2", 500, NULL);
	put_local(c, "B", "b3", 500, "F");
	put_local(c, "C", "c2", 500, "F");
	sync_fails_b(c, (const char *const[]){ ".B/tmp", NULL }, 0500, "local message");
	expect_both(c, "A", LIST(MID("a1"), MID("a2") " \\Seen"));
	expect_both(c, "C", LIST(MID("c1"), MID("c2") " \\Flagged"));
	expect_remote(c, "B", LIST(MID("b1")));
	sync_ok(c);
	expect_both(c, "B", LIST(MID("b1"), MID("b2"), MID("b3") " \\Flagged"));
	assert_sides_equal(c);
}

/*
 * An empty file in cur/ is no message a server can store: it is left
 * alone with a warning, and the rest of the run (an upload next to it, a
 * download, a flag change) goes on.  It used to end the account's run
 * ("message changed while it was uploaded") on every run.
 */
SYNC_TEST(empty_local_file_is_left_alone_and_the_rest_syncs)
{
	struct harness_result res;
	int st;

	put_remote(c, "INBOX", "r1", 300, NULL);
	sync_ok(c);
	cr_assert_eq(sl_local_deliver(c, "INBOX", "", "S"), 0);
	put_local(c, "INBOX", "l1", 300, NULL);
	put_remote(c, "INBOX", "r2", 300, NULL);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("r1"), "F"), 0);
	for (int run = 0; run < 2; run++) {
		st = run_keep(c, &res, "sync", NULL);
		cr_assert_eq(st, 0, "exit %d\nstdout:\n%s\nstderr:\n%s", st, res.out, res.err);
		cr_assert(strstr(res.err, "is an empty file and is not uploaded"), "%s", res.err);
		harness_result_release(&res);
	}
	expect_remote(c, "INBOX", LIST(MID("r1") " \\Flagged", MID("r2"), MID("l1")));
}

/* §4.2: a flag changed on the server reaches the Maildir (incl. \Deleted as T). */
SYNC_TEST(flag_change_on_server_reaches_local)
{
	put_remote(c, "INBOX", "f1", 400, NULL);
	put_remote(c, "INBOX", "f2", 400, "\\Seen \\Flagged");
	put_remote(c, "INBOX", "f3", 400, "\\Seen");
	sync_ok(c);
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("f1"), "+FLAGS", "\\Seen \\Answered"), 0);
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("f2"), "-FLAGS", "\\Flagged"), 0);
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("f3"), "+FLAGS", "\\Deleted \\Draft"), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("f1") " \\Seen \\Answered", MID("f2") " \\Seen",
				     MID("f3") " \\Seen \\Deleted \\Draft"));
	assert_sides_equal(c);
}

/* §4.2: a flag changed in the Maildir (a rename) reaches the server. */
SYNC_TEST(flag_change_locally_reaches_server)
{
	put_remote(c, "INBOX", "g1", 400, NULL);
	put_remote(c, "INBOX", "g2", 400, "\\Seen \\Flagged");
	put_remote(c, "INBOX", "g3", 400, NULL);
	sync_ok(c);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("g1"), "RS"), 0);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("g2"), ""), 0);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("g3"), "DPT"), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("g1") " \\Answered \\Seen", MID("g2"),
				     MID("g3") " \\Draft $Forwarded \\Deleted"));
	assert_sides_equal(c);
}

/* §4.2: independent changes of different flags on both sides combine. */
SYNC_TEST(different_flag_changes_on_both_sides_combine)
{
	put_remote(c, "INBOX", "h1", 400, "\\Seen");
	put_remote(c, "INBOX", "h2", 400, "\\Flagged");
	sync_ok(c);
	/* h1: server adds \Flagged, local removes \Seen and adds \Answered */
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("h1"), "+FLAGS", "\\Flagged"), 0);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("h1"), "R"), 0);
	/* h2: server adds \Seen, local removes \Flagged */
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("h2"), "+FLAGS", "\\Seen"), 0);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("h2"), ""), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("h1") " \\Flagged \\Answered", MID("h2") " \\Seen"));
	assert_sides_equal(c);
}

/* §4.2: keywords travel both ways; on disk they are dovecot-keywords letters. */
SYNC_TEST(keywords_sync_both_ways_through_dovecot_keywords)
{
	char letter;

	put_remote(c, "INBOX", "k1", 400, "\\Seen");
	put_remote(c, "INBOX", "k2", 400, "$label1");
	sync_ok(c);
	expect_local(c, "INBOX", LIST(MID("k1") " \\Seen", MID("k2") " $label1"));
	/* server: a new keyword on k1 */
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("k1"), "+FLAGS", "project-x"), 0);
	/* local: a keyword on k2 as Dovecot's LDA or a client would write it */
	letter = sl_local_keyword_letter(c, "INBOX", "todo");
	cr_assert(letter >= 'a' && letter <= 'z');
	{
		char *path = sl_local_find(c, "INBOX", MID("k2")), *info, letters[32];
		char lab = sl_local_keyword_letter(c, "INBOX", "$label1");

		cr_assert_not_null(path);
		info = strstr(path, ":2,");
		cr_assert_not_null(info, "k2 has no info suffix: %s", path);
		cr_assert_not_null(strchr(info, lab), "$label1 is not letter %c in %s", lab, path);
		snprintf(letters, sizeof(letters), "%c%c", lab < letter ? lab : letter, lab < letter ? letter : lab);
		free(path);
		cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("k2"), letters), 0);
	}
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("k1") " \\Seen project-x", MID("k2") " $label1 todo"));
	assert_sides_equal(c);
	/* and removing a keyword on the server removes the letter */
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("k2"), "-FLAGS", "$label1"), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("k1") " \\Seen project-x", MID("k2") " todo"));
	assert_sides_equal(c);
}

/* Whether the space-separated `flags` hold the word `w`. */
static bool has_word(const char *flags, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = flags; (p = strstr(p, w)) != NULL; p += n)
		if ((p == flags || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return true;
	return false;
}

/* §4.2: beyond 26 keywords (the letters a-z) the rest live in the state:
 * after the pull, further runs (the folder scanned again) push no removal. */
/*
 * Keywords Dovecot takes that once stopped the whole account: "a[b" (a
 * valid atom; the parser took "[" for a section that never closed) syncs;
 * "NIL" (parsed as nil) is left out, without failing the mailbox.
 */
SYNC_TEST(odd_but_valid_keywords_do_not_stop_the_account)
{
	put_remote(c, "INBOX", "k1", 300, "a[b");
	put_remote(c, "INBOX", "k2", 300, "NIL \\Seen");
	sync_ok(c);
	expect_local(c, "INBOX", LIST(MID("k1") " a[b", MID("k2") " \\Seen"));
	sync_ok(c);
	expect_remote(c, "INBOX", LIST(MID("k1") " a[b", MID("k2") " NIL \\Seen"));
}

SYNC_TEST(keywords_beyond_26_stay_on_the_server)
{
	char all[400] = "";
	struct sl_list r;

	put_remote(c, "INBOX", "k28", 400, "\\Seen");
	sync_ok(c);
	for (int i = 1; i <= 28; i++)
		snprintf(all + strlen(all), sizeof(all) - strlen(all), "%skx%d", i > 1 ? " " : "", i);
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("k28"), "+FLAGS", all), 0);
	sync_ok(c);
	sync_ok(c);
	/* the folder looked at again (its stamps moved), not read from the state */
	{
		char *cur = xasprintf("%s/INBOX/cur", c->root);

		cr_assert_eq(utimensat(AT_FDCWD, cur, NULL, 0), 0, "%s: %s", cur, strerror(errno));
		free(cur);
	}
	sync_ok(c);
	cr_assert_eq(sl_remote_list(c, "INBOX", &r), 0);
	cr_assert_eq(r.n, 1);
	for (int i = 1; i <= 28; i++) {
		char w[8];

		snprintf(w, sizeof(w), "kx%d", i);
		cr_assert(has_word(r.v[0].flags, w), "%s was removed on the server: %s", w, r.v[0].flags);
	}
	sl_list_release(&r);
}

/* §4.3: an expunge on the server removes the local file. */
SYNC_TEST(server_expunge_removes_local_file)
{
	put_remote(c, "INBOX", "e1", 400, NULL);
	put_remote(c, "INBOX", "e2", 400, "\\Seen");
	put_remote(c, "INBOX", "e3", 400, NULL);
	sync_ok(c);
	cr_assert_eq(sl_remote_expunge(c, "INBOX", MID("e2")), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("e1"), MID("e3")));
	assert_sides_equal(c);
}

/* §4.3: a file removed locally is expunged on the server, and only it:
 * another client's \Deleted mark on d3 is never expunged with it.  Without
 * UIDPLUS (the IMAP4rev1 server advertises no UID EXPUNGE) the design
 * (SYNC-DESIGN.md, executor) forbids a bare EXPUNGE while another message
 * carries \Deleted: d2 is then left marked \Deleted on the server. */
SYNC_TEST(local_delete_expunges_on_server)
{
	put_remote(c, "INBOX", "d1", 400, NULL);
	put_remote(c, "INBOX", "d2", 400, "\\Seen");
	put_remote(c, "INBOX", "d3", 400, NULL);
	put_remote(c, "INBOX", "d4", 400, NULL);
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("d3"), "+FLAGS", "\\Deleted"), 0);
	sync_ok(c);
	cr_assert_eq(sl_local_delete(c, "INBOX", MID("d2")), 0);
	sync_ok(c);
	/* the user's \Deleted message d3 stays, marked, on every server (without
	 * UIDPLUS its mark is off for the EXPUNGE and back after it) */
	expect_local(c, "INBOX", LIST(MID("d1"), MID("d3") " \\Deleted", MID("d4")));
	expect_remote(c, "INBOX", LIST(MID("d1"), MID("d3") " \\Deleted", MID("d4")));
	assert_sides_equal(c);
	sync_ok(c);
	expect_remote(c, "INBOX", LIST(MID("d1"), MID("d3") " \\Deleted", MID("d4")));
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("d3"), "-FLAGS", "\\Deleted"), 0);
	sync_ok(c);
	cr_assert_eq(sl_local_delete(c, "INBOX", MID("d4")), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("d1"), MID("d3")));
	assert_sides_equal(c);
}

/* §4.3: a deletion beats a flag change on the other side, both ways. */
SYNC_TEST(deletion_beats_flag_change_on_other_side)
{
	put_remote(c, "INBOX", "x1", 400, NULL);
	put_remote(c, "INBOX", "x2", 400, NULL);
	put_remote(c, "INBOX", "x3", 400, NULL);
	sync_ok(c);
	cr_assert_eq(sl_remote_expunge(c, "INBOX", MID("x1")), 0);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("x1"), "FS"), 0);
	cr_assert_eq(sl_local_delete(c, "INBOX", MID("x2")), 0);
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("x2"), "+FLAGS", "\\Flagged \\Seen"), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("x3")));
	assert_sides_equal(c);
}

/* §4.3: with `expunge: false` nothing is deleted on either side. */
SYNC_TEST(expunge_false_keeps_everything)
{
	char *path;
	struct sl_snap r, l;

	cr_assert_eq(sl_write_config(c, "    sync:\n      expunge: false\n"), 0);
	put_remote(c, "INBOX", "p1", 400, NULL);
	put_remote(c, "INBOX", "p2", 400, "\\Seen");
	put_remote(c, "INBOX", "p3", 400, NULL);
	sync_ok(c);
	path = sl_local_find(c, "INBOX", MID("p1"));
	cr_assert_not_null(path);
	cr_assert_eq(sl_remote_expunge(c, "INBOX", MID("p1")), 0);
	cr_assert_eq(sl_local_delete(c, "INBOX", MID("p2")), 0);
	snap_both(c, &r, &l);
	sync_ok(c);
	/* the local copy of p1 is untouched, the server's p2 too */
	cr_assert_eq(access(path, F_OK), 0, "local p1 was removed");
	cr_assert_neq(sl_remote_uid(c, "INBOX", MID("p2")), 0, "p2 was expunged on the server");
	{
		struct sl_list rl, ll;

		cr_assert_eq(sl_remote_list(c, "INBOX", &rl), 0);
		cr_assert_eq(sl_local_list(c, "INBOX", &ll), 0);
		cr_assert_eq(sl_list_dups(&rl), 0);
		cr_assert_eq(sl_list_dups(&ll), 0);
		/* p3 is on both sides, unchanged */
		cr_assert_neq(sl_remote_uid(c, "INBOX", MID("p3")), 0);
		{
			char *p3 = sl_local_find(c, "INBOX", MID("p3"));

			cr_assert_not_null(p3, "local p3 is gone");
			free(p3);
		}
		sl_list_release(&rl);
		sl_list_release(&ll);
	}
	/* a further run deletes nothing either */
	sync_ok(c);
	cr_assert_eq(access(path, F_OK), 0);
	cr_assert_neq(sl_remote_uid(c, "INBOX", MID("p2")), 0);
	sl_snap_release(&r);
	sl_snap_release(&l);
	free(path);
}

/*
 * Without CONDSTORE the listings of the mailboxes go out together: in the
 * trace of a run with nothing to do, every SELECT is sent before the answer
 * to the first one is read (before: one mailbox after another).
 */
Test(SYNC_REV1, listings_of_all_mailboxes_are_sent_before_the_first_answer)
{
	static const char *const boxes[] = { "INBOX", "A1", "A2", "A3" };
	struct harness_result res;
	const char *p, *first = NULL, *last = NULL, *answer;
	size_t nselect = 0;
	int st;

	for (size_t i = 1; i < 4; i++)
		cr_assert_eq(sl_remote_create(&ctx, boxes[i]), 0);
	for (size_t i = 0; i < 4; i++)
		put_remote(&ctx, boxes[i], boxes[i], 300, NULL);
	sync_ok(&ctx);
	st = run_keep(&ctx, &res, "-vv", "sync", NULL);
	cr_assert_eq(st, 0, "%s", res.err);
	for (p = res.err; (p = strstr(p, " SELECT ")) != NULL; p++) {     /* "C: F7 SELECT A1" */
		if (first == NULL)
			first = p;
		last = p;
		nselect++;
	}
	cr_assert_geq(nselect, 4, "%zu SELECTs in:\n%s", nselect, res.err);
	answer = answer_to(res.err, first);
	cr_assert_not_null(answer, "no answer to the first SELECT in:\n%s", res.err);
	cr_assert_lt(last, answer, "a SELECT waited for the first mailbox's answer:\n%s", res.err);
	harness_result_release(&res);
	assert_sides_equal(&ctx);
}

/*
 * A mailbox the server cannot open (its folder unreadable: SELECT fails)
 * fails alone: the mailboxes around it, whose listings were sent with its
 * SELECT, still get their new mail, and the next run once it is readable
 * again syncs it.
 */
SYNC_TEST(mailbox_whose_select_fails_fails_alone)
{
	abc_synced(c);
	put_remote(c, "A", "a2", 300, "\\Seen");
	put_remote(c, "B", "b2", 300, NULL);
	put_remote(c, "C", "c2", 300, "\\Flagged");
	sync_fails_b(c, (const char *const[]){ ".B", NULL }, 0, NULL);
	expect_local(c, "A", LIST(MID("a1"), MID("a2") " \\Seen"));
	expect_local(c, "C", LIST(MID("c1"), MID("c2") " \\Flagged"));
	expect_local(c, "B", LIST(MID("b1")));
	sync_ok(c);
	expect_both(c, "B", LIST(MID("b1"), MID("b2")));
	assert_sides_equal(c);
}

/* ---------------------------------------------------------------- deletion runs */

static const char *const run_boxes[] = { "A", "B", "C", "D" };

/* Each of the four mailboxes: keep, gone-local (deleted locally), gone-remote (expunged on the server). */
static void deletions_everywhere(struct sl_ctx *c)
{
	for (size_t i = 0; i < 4; i++) {
		char *tag;

		cr_assert_eq(sl_remote_create(c, run_boxes[i]), 0);
		tag = xasprintf("%s-keep", run_boxes[i]);
		put_remote(c, run_boxes[i], tag, 500, "\\Seen");
		free(tag);
		tag = xasprintf("%s-gone-local", run_boxes[i]);
		put_remote(c, run_boxes[i], tag, 600, NULL);
		free(tag);
		tag = xasprintf("%s-gone-remote", run_boxes[i]);
		put_remote(c, run_boxes[i], tag, 700, "\\Flagged");
		free(tag);
	}
	sync_ok(c);
	for (size_t i = 0; i < 4; i++) {
		char *mid = xasprintf("<%s-gone-local@ferry.test>", run_boxes[i]);

		cr_assert_eq(sl_local_delete(c, run_boxes[i], mid), 0);
		free(mid);
		mid = xasprintf("<%s-gone-remote@ferry.test>", run_boxes[i]);
		cr_assert_eq(sl_remote_expunge(c, run_boxes[i], mid), 0);
		free(mid);
	}
}

static void expect_kept(struct sl_ctx *c, const char *box)
{
	char *keep = xasprintf("<%s-keep@ferry.test> \\Seen", box);
	const char *want[] = { keep, NULL };

	expect_both(c, box, want);
	free(keep);
}

/* Where in the trace the tagged answer to the command on line `cmd` ("C: TAG ...") is. */
static const char *answer_of(const char *trace, const char *cmd)
{
	const char *tag = cmd + 3, *sp = strchr(tag, ' ');
	char want[64];

	cr_assert_not_null(sp);
	snprintf(want, sizeof(want), "S: %.*s ", (int)(sp - tag), tag);
	return strstr(trace, want);
}

/*
 * The UID commands containing `verb` (" UID STORE ", " UID EXPUNGE ") in
 * a -vv trace, of a run over several mailboxes: each goes out only after
 * the SELECT before it was answered (its UIDVALIDITY checked: doc/sync.md),
 * and yet the run is pipelined across mailboxes: the second mailbox's
 * SELECT goes out before the first of these commands is answered.
 * Returns how many there were.
 */
static size_t check_uid_commands_behind_answered_selects(const char *trace, const char *verb)
{
	const char *p, *first = NULL, *second_select = NULL, *prev_select = NULL, *answer;
	size_t n = 0;

	for (p = trace; (p = strstr(p, verb)) != NULL; p++) {
		const char *line = p, *sel;

		while (line > trace && strncmp(line, "C: ", 3) != 0)
			line--;
		sel = last_sent(trace, line, " SELECT ");
		cr_assert_not_null(sel, "no SELECT before:\n%.200s", line);
		answer = answer_to(trace, sel);
		cr_assert(answer != NULL && answer < line,
			  "a UID command went out before its SELECT was answered:\n%s", trace);
		if (first == NULL)
			first = line;
		else if (second_select == NULL && prev_select != NULL && sel != prev_select)
			second_select = sel;
		prev_select = sel;
		n++;
	}
	if (first != NULL && second_select != NULL) {
		answer = answer_of(trace, first);
		cr_assert_not_null(answer, "no answer to the first UID command in:\n%s", trace);
		cr_assert_lt(second_select, answer, "the mailboxes' commands were not pipelined:\n%s",
			     trace);
	}
	cr_assert_not_null(second_select, "the UID commands went to one mailbox only:\n%s", trace);
	return n;
}

/*
 * `ferry -vv sync`, which must succeed; with `check`, the trace's UID
 * commands containing `verb` must be `want` in number and pass
 * check_uid_commands_behind_answered_selects().
 */
static void sync_checking_uid_commands(struct sl_ctx *c, const char *verb, size_t want, bool check)
{
	struct harness_result res;
	int st = run_keep(c, &res, "-vv", "sync", NULL);

	cr_assert_eq(st, 0, "ferry exited %d\n%s", st, res.err);
	if (check) {
		size_t n = check_uid_commands_behind_answered_selects(res.err, verb);

		cr_assert_eq(n, want, "%zu commands with \"%s\" in:\n%s", n, verb, res.err);
	}
	harness_result_release(&res);
}

/*
 * Deletions both ways in four mailboxes are one deletion run: every file
 * and message goes, only those, and another run changes nothing.  With
 * UIDPLUS: one UID EXPUNGE per mailbox, each sent once its SELECT was
 * answered, and the next mailbox's SELECT before the first is answered.
 */
SYNC_TEST(deletions_in_several_mailboxes_go_both_ways_in_one_run)
{
	deletions_everywhere(c);
	sync_checking_uid_commands(c, " UID EXPUNGE ", 4, !c->rev1);
	for (size_t i = 0; i < 4; i++)
		expect_kept(c, run_boxes[i]);
	assert_sides_equal(c);
	assert_settled(c);
}

/*
 * A deletion run where one mailbox fails on the server: B's folder in
 * Dovecot's Maildir is not writable for Dovecot, which then opens it
 * [READ-ONLY] and answers UID STORE and UID EXPUNGE with an OK that
 * changes nothing; that must count as a failure of B.  B fails alone
 * (exit 1, named): A, C and D complete both ways; B's records and intents
 * stay, and the next run, once B is writable again, finishes it without
 * bringing anything back.
 */
SYNC_TEST(deletion_run_with_a_failing_mailbox_completes_the_others)
{
	deletions_everywhere(c);
	sync_fails_b(c, B_READ_ONLY, 0500, "read-only");
	expect_kept(c, "A");
	expect_kept(c, "C");
	expect_kept(c, "D");
	expect_remote(c, "B", LIST(MID("B-keep") " \\Seen", MID("B-gone-local")));
	sync_ok(c);
	for (size_t i = 0; i < 4; i++)
		expect_kept(c, run_boxes[i]);
	assert_sides_equal(c);
}

/* ---------------------------------------------------------------- flag-store runs */

/* Each of the four mailboxes: f1 and f2, their flags then changed locally (f1 +\Flagged, f2 +\Seen). */
static void flag_changes_everywhere(struct sl_ctx *c)
{
	for (size_t i = 0; i < 4; i++) {
		char *tag;

		cr_assert_eq(sl_remote_create(c, run_boxes[i]), 0);
		tag = xasprintf("%s-f1", run_boxes[i]);
		put_remote(c, run_boxes[i], tag, 500, "\\Seen");
		free(tag);
		tag = xasprintf("%s-f2", run_boxes[i]);
		put_remote(c, run_boxes[i], tag, 600, NULL);
		free(tag);
	}
	sync_ok(c);
	for (size_t i = 0; i < 4; i++) {
		char *mid = xasprintf("<%s-f1@ferry.test>", run_boxes[i]);

		cr_assert_eq(sl_local_set_flags(c, run_boxes[i], mid, "FS"), 0);
		free(mid);
		mid = xasprintf("<%s-f2@ferry.test>", run_boxes[i]);
		cr_assert_eq(sl_local_set_flags(c, run_boxes[i], mid, "S"), 0);
		free(mid);
	}
}

static void expect_flags_stored(struct sl_ctx *c, const char *box)
{
	char *f1 = xasprintf("<%s-f1@ferry.test> \\Flagged \\Seen", box);
	char *f2 = xasprintf("<%s-f2@ferry.test> \\Seen", box);
	const char *want[] = { f1, f2, NULL };

	expect_both(c, box, want);
	free(f1);
	free(f2);
}

/*
 * Flags changed locally in four mailboxes are stored in one run: with
 * every server all four get them, and another run changes nothing; two
 * UID STOREs (flag sets) per mailbox, each sent once its SELECT was
 * answered, the next mailbox's SELECT before the first is answered.
 */
SYNC_TEST(flag_changes_in_several_mailboxes_are_stored_in_one_run)
{
	flag_changes_everywhere(c);
	sync_checking_uid_commands(c, " UID STORE ", 8, true);
	for (size_t i = 0; i < 4; i++)
		expect_flags_stored(c, run_boxes[i]);
	assert_sides_equal(c);
	assert_settled(c);
}

/*
 * Flags changed on both sides in four mailboxes, in one run: the local
 * changes are stored on the server while the server's changes are renamed
 * into the local files (done during the stores), and a message changed on
 * both sides gets the union.  Another run changes nothing.
 */
SYNC_TEST(flag_changes_both_ways_in_several_mailboxes_meet_in_one_run)
{
	flag_changes_everywhere(c);
	for (size_t i = 0; i < 4; i++) {
		char *f1 = xasprintf("<%s-f1@ferry.test>", run_boxes[i]);
		char *f2 = xasprintf("<%s-f2@ferry.test>", run_boxes[i]);

		cr_assert_eq(sl_remote_store(c, run_boxes[i], f1, "+FLAGS", "\\Answered"), 0);
		cr_assert_eq(sl_remote_store(c, run_boxes[i], f2, "+FLAGS", "$Later"), 0);
		free(f1);
		free(f2);
	}
	sync_ok(c);
	for (size_t i = 0; i < 4; i++) {
		char *f1 = xasprintf("<%s-f1@ferry.test> \\Answered \\Flagged \\Seen", run_boxes[i]);
		char *f2 = xasprintf("<%s-f2@ferry.test> \\Seen $Later", run_boxes[i]);
		const char *want[] = { f1, f2, NULL };

		expect_both(c, run_boxes[i], want);
		free(f1);
		free(f2);
	}
	assert_sides_equal(c);
	assert_settled(c);
}

/*
 * A flag-store run where B is read-only on the server (as in
 * deletion_run_with_a_failing_mailbox_completes_the_others): B fails
 * alone, named; A, C and D get their flags; once B is writable again the
 * next run stores B's.
 */
SYNC_TEST(flag_store_run_with_a_read_only_mailbox_completes_the_others)
{
	flag_changes_everywhere(c);
	sync_fails_b(c, B_READ_ONLY, 0500, "read-only");
	expect_flags_stored(c, "A");
	expect_flags_stored(c, "C");
	expect_flags_stored(c, "D");
	expect_remote(c, "B", LIST(MID("B-f1") " \\Seen", MID("B-f2")));
	sync_ok(c);
	for (size_t i = 0; i < 4; i++)
		expect_flags_stored(c, run_boxes[i]);
	assert_sides_equal(c);
}

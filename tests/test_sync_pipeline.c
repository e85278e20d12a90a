/*
 * test_sync_pipeline.c - `ferry sync` with the change detection and the
 * fingerprint pass pipelined across mailboxes (doc/sync.md, "What is
 * pipelined"): every mailbox's changes reach its own folder, whatever the
 * server's capabilities (suites sync_pipeline_full and _rev1), and the
 * trace shows the commands of all mailboxes sent before the first answer.
 */
#define SYNC_SUITE sync_pipeline
#include "sync_common.h"

#define NBOX 5

static const char *const boxes[NBOX] = { "P0", "P1", "P2", "P3", "P4" };

static char *tag_of(size_t b, size_t i)
{
	return xasprintf("p%zu-%zu", b, i);
}

static char *mid_of(size_t b, size_t i)
{
	return xasprintf("<p%zu-%zu@ferry.test>", b, i);
}

/* Four messages in each mailbox, of sizes that differ per mailbox, synced. */
static void seed_boxes(struct sl_ctx *c)
{
	for (size_t b = 0; b < NBOX; b++) {
		cr_assert_eq(sl_remote_create(c, boxes[b]), 0);
		for (size_t i = 0; i < 4; i++) {
			char *t = tag_of(b, i);

			put_remote(c, boxes[b], t, 300 + 50 * b + i, i == 0 ? "\\Seen" : NULL);
			free(t);
		}
	}
	sync_ok(c);
}

/*
 * On the server, in every mailbox: message 1 flagged with the mailbox's own
 * keyword, message 2 expunged, message 4 new; P2 is deleted and made again
 * (a new UIDVALIDITY) with the same messages, message 1 flagged, and the
 * new one (after a UIDVALIDITY change nothing is deleted, SPEC 4.7).
 */
static void change_boxes(struct sl_ctx *c)
{
	for (size_t b = 0; b < NBOX; b++) {
		char *m1 = mid_of(b, 1), *m2 = mid_of(b, 2), *t4 = tag_of(b, 4);
		char kw[32];

		snprintf(kw, sizeof(kw), "\\Flagged $p%zu", b);
		if (b == 2) {
			uint32_t v0 = sl_remote_uidvalidity(c, boxes[b]);

			cr_assert_eq(sl_remote_delete(c, boxes[b]), 0);
			sleep(1);       /* Dovecot's UIDVALIDITY is time based */
			cr_assert_eq(sl_remote_create(c, boxes[b]), 0);
			for (size_t i = 0; i < 4; i++) {
				char *t = tag_of(b, i);

				put_remote(c, boxes[b], t, 300 + 50 * b + i,
					   i == 0 ? "\\Seen" : i == 1 ? kw : NULL);
				free(t);
			}
			cr_assert_neq(sl_remote_uidvalidity(c, boxes[b]), v0);
		} else {
			cr_assert_eq(sl_remote_store(c, boxes[b], m1, "+FLAGS", kw), 0);
			cr_assert_eq(sl_remote_expunge(c, boxes[b], m2), 0);
		}
		put_remote(c, boxes[b], t4, 300 + 50 * b + 4, "\\Answered");
		free(m1);
		free(m2);
		free(t4);
	}
}

/* Every mailbox holds exactly its own messages with its own changes. */
static void expect_changed_boxes(struct sl_ctx *c)
{
	for (size_t b = 0; b < NBOX; b++) {
		char *e0 = xasprintf("<p%zu-0@ferry.test> \\Seen", b);
		char *e1 = xasprintf("<p%zu-1@ferry.test> \\Flagged $p%zu", b, b);
		char *e2 = xasprintf("<p%zu-2@ferry.test>", b);
		char *e3 = xasprintf("<p%zu-3@ferry.test>", b);
		char *e4 = xasprintf("<p%zu-4@ferry.test> \\Answered", b);

		if (b == 2)     /* renumbered: nothing is deleted, only matched (doc/sync.md) */
			expect_both(c, boxes[b], LIST(e0, e1, e2, e3, e4));
		else
			expect_both(c, boxes[b], LIST(e0, e1, e3, e4));
		free(e0);
		free(e1);
		free(e2);
		free(e3);
		free(e4);
	}
}

/*
 * Flag changes, expunges and new messages in five mailboxes, one of them
 * renumbered (new UIDVALIDITY) among the others: each change lands in its
 * own folder, nothing else moves, and the next run has nothing to do.
 */
SYNC_TEST(changes_in_many_mailboxes_each_reach_their_own_folder)
{
	struct sl_snap r, l;

	seed_boxes(c);
	change_boxes(c);
	sync_ok(c);
	expect_changed_boxes(c);
	assert_sides_equal(c);
	snap_both(c, &r, &l);
	sync_ok(c);
	assert_remote_unchanged(c, &r, true);
	assert_local_unchanged(c, &l, true);
	expect_changed_boxes(c);
	sl_snap_release(&r);
	sl_snap_release(&l);
}

/*
 * In the trace (stderr at -vv), the commands whose line contains `what`:
 * at least `min` of them, and the last one sent before the answer to the
 * first one was read.
 */
static void sent_before_first_answer(const char *trace, const char *what, size_t min)
{
	const char *p, *first = NULL, *last = NULL, *tag, *answer;
	char want[64];
	size_t n = 0;

	for (p = trace; (p = strstr(p, what)) != NULL; p++) {
		const char *bol = p;

		while (bol > trace && bol[-1] != '\n')
			bol--;
		if (strstr(bol, "C: ") == NULL || strstr(bol, "C: ") > p)
			continue;       /* not a command line */
		if (first == NULL)
			first = p;
		last = p;
		n++;
	}
	cr_assert_geq(n, min, "%zu commands with \"%s\" in:\n%s", n, what, trace);
	for (tag = first; tag > trace && strncmp(tag, "C: ", 3) != 0; tag--)
		;
	tag += 3;
	p = strchr(tag, ' ');
	snprintf(want, sizeof(want), "S: %.*s ", (int)(p - tag), tag);
	answer = strstr(trace, want);
	cr_assert_not_null(answer, "no \"%s\" in:\n%s", want, trace);
	cr_assert_lt(last, answer, "a \"%s\" waited for the first one's answer:\n%s", what, trace);
}

/*
 * With QRESYNC: the delta SELECTs of the mailboxes (each with changes, so
 * none is skipped by the STATUS pre-check) are all sent before the first
 * one's answer is read.
 */
Test(SYNC_FULL, delta_listings_of_all_mailboxes_are_sent_before_the_first_answer)
{
	struct harness_result res;
	int st;

	seed_boxes(&ctx);
	for (size_t b = 0; b < NBOX; b++) {
		char *m0 = mid_of(b, 0);

		cr_assert_eq(sl_remote_store(&ctx, boxes[b], m0, "+FLAGS", "\\Flagged"), 0);
		free(m0);
	}
	st = run_keep(&ctx, &res, "-vv", "sync", NULL);
	cr_assert_eq(st, 0, "%s", res.err);
	sent_before_first_answer(res.err, " (QRESYNC (", NBOX);
	harness_result_release(&res);
	assert_sides_equal(&ctx);
}

/*
 * The state lost: every mailbox's messages are matched by fingerprint, and
 * the header FETCHes of all mailboxes go out before the first one's answer
 * is read; nothing is transferred or duplicated.
 */
SYNC_TEST(fingerprints_of_all_mailboxes_are_asked_before_the_first_answer)
{
	struct harness_result res;
	struct sl_snap r, l;
	int st;

	seed_boxes(c);
	snap_both(c, &r, &l);
	cr_assert_eq(harness_remove_tree(c->state), 0);
	st = run_keep(c, &res, "-vv", "sync", NULL);
	cr_assert_eq(st, 0, "%s", res.err);
	sent_before_first_answer(res.err, "BODY.PEEK[HEADER]", NBOX);
	harness_result_release(&res);
	assert_remote_unchanged(c, &r, true);
	assert_local_unchanged(c, &l, false);
	assert_sides_equal(c);
	sl_snap_release(&r);
	sl_snap_release(&l);
}

/*
 * With CONDSTORE, the STATUS pre-check and the LIST of the server's
 * mailboxes share one round trip: the LIST goes out before the first
 * answer to a STATUS is read (and the pre-check still finds nothing to do).
 */
/* The first command line of the trace (stderr at -vv) holding `what`, or NULL. */
static const char *command_with(const char *trace, const char *what)
{
	for (const char *p = trace; (p = strstr(p, what)) != NULL; p++) {
		const char *bol = p;

		while (bol > trace && bol[-1] != '\n')
			bol--;
		if (strstr(bol, "C: ") != NULL && strstr(bol, "C: ") < p)
			return p;
	}
	return NULL;
}

Test(SYNC_FULL, status_precheck_and_list_share_a_round_trip)
{
	struct sl_ctx *c = &ctx;
	struct harness_result res;
	const char *status, *list, *answer;
	int st;

	seed_boxes(c);
	st = run_keep(c, &res, "-vv", "sync", NULL);
	cr_assert_eq(st, 0, "%s", res.err);
	status = command_with(res.err, " STATUS ");
	cr_assert_not_null(status, "no STATUS command in:\n%s", res.err);
	list = command_with(status, " LIST \"\" ");
	cr_assert_not_null(list, "no LIST after the STATUS commands in:\n%s", res.err);
	answer = strstr(status, "S: ");
	cr_assert_not_null(answer, "no answer in:\n%s", res.err);
	cr_assert_lt(list, answer, "the LIST waited for the STATUS answers:\n%s", res.err);
	cr_assert_null(strstr(res.err, "QRESYNC ("), "a mailbox was listed though nothing changed:\n%s",
		       res.err);
	harness_result_release(&res);
	assert_sides_equal(c);
}

/*
 * How many plain "SELECT <box>" commands (not the QRESYNC ones of change
 * detection) the trace (stderr at -vv) shows sent.
 */
static size_t selects_of(const char *trace, const char *box)
{
	char want[64];
	size_t n = 0;

	snprintf(want, sizeof(want), " SELECT %s", box);
	for (const char *p = trace; (p = strstr(p, want)) != NULL; p++) {
		const char *bol = p;
		const char *end = p + strlen(want);

		while (bol > trace && bol[-1] != '\n')
			bol--;
		if (strstr(bol, "C: ") != NULL && strstr(bol, "C: ") < p &&
		    (*end == '\n' || *end == '\0'))
			n++;
	}
	return n;
}

/*
 * Local flag changes and local deletions in every mailbox: the flag stores
 * and the expunge of a mailbox go out under one SELECT (the two runs are
 * carried out as one, exec.c exec_flags_and_deletions), where one run
 * after the other selected each mailbox twice (FERRY_TEST_NO_FUSE: shown
 * on a copy of the same changes, so the count can tell the two apart).
 * Both reach the server, and the next run has nothing to do.
 */
Test(SYNC_FULL, flag_stores_and_expunges_of_a_mailbox_share_its_select)
{
	const char *const no_fuse[] = { "FERRY_TEST_NO_FUSE=1", NULL };
	struct harness_result res;
	struct sl_snap r, l;
	int st;

	seed_boxes(&ctx);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t b = 0; b < NBOX; b++) {
			char *m0 = mid_of(b, 0), *m1 = mid_of(b, 1 + (size_t)pass);

			cr_assert_eq(sl_local_set_flags(&ctx, boxes[b], m0, pass == 0 ? "FS" : "S"), 0);
			cr_assert_eq(sl_local_delete(&ctx, boxes[b], m1), 0);
			free(m0);
			free(m1);
		}
		if (pass == 0)
			st = run_keep(&ctx, &res, "-vv", "sync", NULL);
		else
			st = sl_ferry(&ctx, no_fuse, &res, "-vv", "sync", NULL);
		cr_assert_eq(st, 0, "%s", res.err);
		for (size_t b = 0; b < NBOX; b++)
			cr_assert_eq(selects_of(res.err, boxes[b]), pass == 0 ? 1u : 2u,
				     "pass %d: %zu SELECTs of %s:\n%s", pass,
				     selects_of(res.err, boxes[b]), boxes[b], res.err);
		cr_assert_not_null(strstr(res.err, "+FLAGS.SILENT (\\Deleted)"), "no expunge in:\n%s", res.err);
		harness_result_release(&res);
		assert_sides_equal(&ctx);
	}
	snap_both(&ctx, &r, &l);
	sync_ok(&ctx);
	assert_remote_unchanged(&ctx, &r, true);
	assert_local_unchanged(&ctx, &l, true);
	sl_snap_release(&r);
	sl_snap_release(&l);
}

/*
 * test_sync_crash.c - SPEC §4.8 through the command line: `ferry sync` is
 * killed with SIGKILL at step K (FERRY_TEST_CRASH_AT=K, the engine's test
 * hook) of a run that downloads, uploads, changes flags both ways, moves
 * both ways, expunges, deletes and creates folders; then run again without
 * the variable.  After each rerun both sides must be complete and
 * identical: every expected message exactly once, in its folder, with its
 * flags.  FERRY_TEST_STEPS=1 makes ferry print "ferry-test: steps=N".
 *
 * Each K starts from the same snapshot: the server's Maildir, the local
 * Maildir and the state are copied aside once the scenario is set up and
 * copied back before every kill (Dovecot keeps no mailbox open between
 * sessions, so its files can be swapped under it).
 *
 * Points: every K when N is small, else CRASH_POINTS_FULL (full caps) /
 * CRASH_POINTS_REV1 points spread evenly over 1..N (first and last
 * included); FERRY_CRASH_POINTS overrides both.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SYNC_SUITE sync_crash
#define SYNC_TIMEOUT 500
#include "sync_common.h"

#define CRASH_POINTS_FULL 60
#define CRASH_POINTS_REV1 50

static void sh(const char *cmd)
{
	const char *argv[] = { "sh", "-c", cmd, NULL };
	struct harness_result res;

	cr_assert_eq(harness_run(argv, NULL, &res), 0);
	cr_assert_eq(res.status, 0, "%s: %s", cmd, res.err);
	harness_result_release(&res);
}

/* Copy (save) or restore the three trees of the scenario. */
static void trees(struct sl_ctx *c, bool save)
{
	char *srv = xasprintf("%s/mail/%s/Maildir", c->d.dir, c->user);
	const char *names[] = { "server", "local", "state" };
	const char *paths[] = { srv, c->root, c->state };

	for (size_t i = 0; i < 3; i++) {
		char *copy = xasprintf("%s/saved-%s", c->d.tmp, names[i]);
		char *cmd = save ? xasprintf("rm -rf '%s' && cp -a '%s' '%s'", copy, paths[i], copy)
				 : xasprintf("rm -rf '%s' && cp -a '%s' '%s'", paths[i], copy, paths[i]);

		sh(cmd);
		free(cmd);
		free(copy);
	}
	free(srv);
}

/* The scenario's pending changes, after a first sync. */
static void scenario(struct sl_ctx *c)
{
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	cr_assert_eq(sl_remote_create(c, "Old"), 0);
	put_remote(c, "INBOX", "b1", 400, NULL);
	put_remote(c, "INBOX", "b2", 400, "\\Seen");
	put_remote(c, "INBOX", "b3", 30000, "\\Seen");
	put_remote(c, "INBOX", "b4", 400, "\\Seen");
	put_remote(c, "INBOX", "b5", 400, NULL);
	put_remote(c, "INBOX", "b6", 30000, "\\Flagged");
	put_remote(c, "INBOX", "b7", 400, NULL);
	put_remote(c, "Work", "w1", 400, NULL);
	sync_ok(c);
	/* server side */
	put_remote(c, "INBOX", "s1", 40000, "\\Seen");
	put_remote(c, "INBOX", "s2", 400, NULL);
	put_remote(c, "Work", "s3", 400, "\\Flagged");
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("b1"), "+FLAGS", "\\Flagged $label1"), 0);
	cr_assert_eq(sl_remote_expunge(c, "INBOX", MID("b2")), 0);
	cr_assert_eq(sl_remote_move(c, "INBOX", MID("b3"), "Work"), 0);
	cr_assert_eq(sl_remote_create(c, "NewSrv"), 0);
	put_remote(c, "NewSrv", "s4", 400, NULL);
	/* local side */
	put_local(c, "INBOX", "l1", 40000, "S");
	put_local(c, "INBOX", "l2", 400, NULL);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("b4"), "RS"), 0);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("b7"), "D"), 0);
	cr_assert_eq(sl_local_delete(c, "INBOX", MID("b5")), 0);
	cr_assert_eq(sl_local_move(c, "INBOX", MID("b6"), "Work"), 0);
	cr_assert_eq(sl_local_mkfolder(c, "NewLoc"), 0);
	put_local(c, "NewLoc", "l3", 400, "F");
}

static void expect_final(struct sl_ctx *c)
{
	expect_both(c, "INBOX", LIST(MID("b1") " \\Flagged $label1", MID("b4") " \\Answered \\Seen",
				     MID("b7") " \\Draft", MID("s1") " \\Seen", MID("s2"), MID("l1") " \\Seen",
				     MID("l2")));
	expect_both(c, "Work", LIST(MID("w1"), MID("b3") " \\Seen", MID("b6") " \\Flagged", MID("s3") " \\Flagged"));
	expect_both(c, "NewSrv", LIST(MID("s4")));
	expect_both(c, "NewLoc", LIST(MID("l3") " \\Flagged"));
	expect_both(c, "Old", NONE);
	assert_sides_equal(c);
}

static unsigned steps_of(const struct harness_result *res)
{
	const char *p = strstr(res->err, "ferry-test: steps=");

	cr_assert_not_null(p, "ferry did not report its steps with FERRY_TEST_STEPS=1:\n%s", res->err);
	return (unsigned)strtoul(p + 18, NULL, 10);
}

static void run_env(struct sl_ctx *c, const char *const env[], struct harness_result *res)
{
	const char *args[] = { "sync", NULL };

	cr_assert_eq(sl_ferry_argv(c, env, args, res), 0);
	cr_assert(!res->timed_out);
}

SYNC_TEST(killed_at_any_step_then_rerun_leaves_both_sides_complete_and_identical)
{
	struct harness_result res;
	const char *steps_env[] = { "FERRY_TEST_STEPS=1", NULL };
	unsigned n, points;
	const char *over = getenv("FERRY_CRASH_POINTS");

	scenario(c);
	trees(c, true);
	/* an uninterrupted run: how many steps, and is the scenario right? */
	run_env(c, steps_env, &res);
	cr_assert_eq(res.status, 0, "exit %d\n%s\n%s", res.status, res.out, res.err);
	n = steps_of(&res);
	harness_result_release(&res);
	expect_final(c);
	/* at least one step per kind of side effect in the scenario */
	cr_assert_geq(n, 8, "only %u steps", n);
	points = over ? (unsigned)atoi(over) : c->rev1 ? CRASH_POINTS_REV1 : CRASH_POINTS_FULL;
	if (points < 2 || points > n)
		points = n;
	fprintf(stderr, "crash test (%s): %u steps, %u kill points\n", c->rev1 ? "imap4rev1" : "full caps", n,
		points);
	for (unsigned i = 0; i < points; i++) {
		unsigned k = points == n ? i + 1 : 1 + (unsigned)((unsigned long)i * (n - 1) / (points - 1));
		char *crash = xasprintf("FERRY_TEST_CRASH_AT=%u", k);
		const char *env[] = { crash, NULL };

		sl_log_mark(c); /* the last run's server sessions have ended */
		trees(c, false);
		run_env(c, env, &res);
		cr_assert_eq(res.status, 128 + 9, "K=%u/%u: ferry was not killed (exit %d)\n%s\n%s", k, n, res.status,
			     res.out, res.err);
		harness_result_release(&res);
		run_env(c, NULL, &res);
		cr_assert_eq(res.status, 0, "K=%u/%u: the rerun failed (exit %d)\n%s\n%s", k, n, res.status, res.out,
			     res.err);
		harness_result_release(&res);
		fprintf(stderr, "K=%u: checking\n", k);
		expect_final(c);
		free(crash);
	}
	/* after the last rerun, one more run finds nothing to do */
	assert_settled(c);
}

/* ---------------------------------------------------------------- renames and placeholders */

static bool remote_has(struct sl_ctx *c, const char *name)
{
	char **v = sl_remote_mailboxes(c);
	bool found = false;

	cr_assert_not_null(v);
	for (size_t i = 0; v[i]; i++)
		found |= strcmp(v[i], name) == 0;
	sl_strv_free(v);
	return found;
}

static bool local_has(struct sl_ctx *c, const char *name)
{
	char *p = sl_local_path(c, name);
	struct stat st;
	bool ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);

	free(p);
	return ok;
}

/*
 * Kill the scenario's run at every one of its steps (each from the saved
 * trees), rerun, and check with `expect`; then one more run changes
 * nothing.  `sessions` (0: not checked): how many connections the
 * uninterrupted run must use.  `killed_out` NULL: every point must kill;
 * else the number of runs a point did kill, and one of the last four
 * points may find the run finished (exit 0; a run's step count varies
 * when its streams interleave), which is checked all the same.  Returns
 * the number of steps of the uninterrupted run.
 */
static unsigned kill_points(struct sl_ctx *c, void (*expect)(struct sl_ctx *c), const char *what,
			    unsigned sessions, unsigned *killed_out)
{
	struct harness_result res;
	const char *steps_env[] = { "FERRY_TEST_STEPS=1", NULL };
	long mark;
	unsigned n, killed = 0;

	trees(c, true);
	mark = sl_log_mark(c);
	run_env(c, steps_env, &res);
	cr_assert_eq(res.status, 0, "exit %d\n%s\n%s", res.status, res.out, res.err);
	n = steps_of(&res);
	harness_result_release(&res);
	if (sessions != 0) {
		uint64_t in, out;
		unsigned got = 0;

		cr_assert_eq(sl_log_bytes(c, mark, &in, &out, &got), 0);
		cr_assert_eq(got, sessions, "the run used %u connections, not %u", got, sessions);
	}
	expect(c);
	fprintf(stderr, "crash test %s (%s): %u steps, %u kill points\n", what,
		c->rev1 ? "imap4rev1" : "full caps", n, n);
	for (unsigned k = 1; k <= n; k++) {
		char *crash = xasprintf("FERRY_TEST_CRASH_AT=%u", k);
		const char *env[] = { crash, NULL };

		sl_log_mark(c);
		trees(c, false);
		run_env(c, env, &res);
		if (killed_out != NULL)
			cr_assert(res.status == 128 + 9 || (res.status == 0 && k + 4 > n),
				  "K=%u/%u: exit %d\n%s\n%s", k, n, res.status, res.out, res.err);
		else
			cr_assert_eq(res.status, 128 + 9, "K=%u/%u: ferry was not killed (exit %d)\n%s\n%s",
				     k, n, res.status, res.out, res.err);
		killed += res.status == 128 + 9;
		harness_result_release(&res);
		run_env(c, NULL, &res);
		cr_assert_eq(res.status, 0, "K=%u/%u: the rerun failed (exit %d)\n%s\n%s", k, n, res.status,
			     res.out, res.err);
		harness_result_release(&res);
		expect(c);
		free(crash);
	}
	assert_settled(c);
	if (killed_out != NULL)
		*killed_out = killed;
	return n;
}

static unsigned kill_at_every_step(struct sl_ctx *c, void (*expect)(struct sl_ctx *c), const char *what)
{
	return kill_points(c, expect, what, 0, NULL);
}

static void expect_renamed(struct sl_ctx *c)
{
	static const char *const gone[] = { "Proj", "Proj/sub", "Empty", "Lists" };

	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		cr_assert(!remote_has(c, gone[i]), "the server still has \"%s\"", gone[i]);
		cr_assert(!local_has(c, gone[i]), "the Maildir still has \"%s\"", gone[i]);
	}
	expect_both(c, "Projects", LIST(MID("p1") " \\Seen", MID("p2"), MID("p-new")));
	expect_both(c, "Projects/sub", LIST(MID("ps1")));
	expect_both(c, "Empty2", NONE);
	expect_both(c, "Mailing lists", LIST(MID("l1") " \\Seen", MID("l2"), MID("l-new") " \\Seen"));
	assert_sides_equal(c);
}

/* SPEC 4.8 for folder renames: renamed on the server (with a child, and
 * an empty one) and locally, killed at every step, rerun: each renamed
 * once, nothing lost or doubled, the old names gone on both sides. */
SYNC_TEST(killed_during_folder_renames_then_rerun_converges)
{
	char *a, *b;

	cr_assert_eq(sl_remote_create(c, "Proj"), 0);
	cr_assert_eq(sl_remote_create(c, "Proj/sub"), 0);
	cr_assert_eq(sl_remote_create(c, "Empty"), 0);
	put_remote(c, "Proj", "p1", 3000, "\\Seen");
	put_remote(c, "Proj", "p2", 3000, NULL);
	put_remote(c, "Proj/sub", "ps1", 3000, NULL);
	cr_assert_eq(sl_local_mkfolder(c, "Lists"), 0);
	put_local(c, "Lists", "l1", 3000, "S");
	put_local(c, "Lists", "l2", 3000, NULL);
	sync_ok(c);
	cr_assert_eq(sl_remote_rename(c, "Proj", "Projects"), 0);
	cr_assert_eq(sl_remote_rename(c, "Empty", "Empty2"), 0);
	put_remote(c, "Projects", "p-new", 3000, NULL);
	a = sl_local_path(c, "Lists");
	b = sl_local_path(c, "Mailing lists");
	cr_assert_eq(rename(a, b), 0);
	free(a);
	free(b);
	put_local(c, "Mailing lists", "l-new", 3000, "S");
	kill_at_every_step(c, expect_renamed, "renames");
}

static void expect_whole(struct sl_ctx *c)
{
	struct sl_list l;

	expect_both(c, "INBOX", LIST(MID("huge") " \\Flagged \\Seen", MID("huge2") " \\Flagged", MID("small")));
	assert_sides_equal(c);  /* same identities: the local copies are whole, not placeholders */
	cr_assert_eq(sl_local_list(c, "INBOX", &l), 0);
	cr_assert_eq(l.n, 3, "the Maildir holds %zu files, expected 3", l.n);
	sl_list_release(&l);
}

/* SPEC 4.8 + 4.10: two placeholders flagged locally are fetched whole;
 * killed at every step (between the whole copy's delivery, the removal of
 * the placeholder and the record's move included) and rerun: each message
 * once on each side, whole, never uploaded again. */
SYNC_TEST(killed_during_placeholder_replacement_then_rerun_leaves_no_duplicate)
{
	cr_assert_eq(sl_write_config(c, "    sync:\n      max_size: 20K\n"), 0);
	put_remote(c, "INBOX", "huge", 60000, "\\Seen");
	put_remote(c, "INBOX", "huge2", 50000, NULL);
	put_remote(c, "INBOX", "small", 2000, NULL);
	sync_ok(c);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("huge"), "FS"), 0);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("huge2"), "F"), 0);
	kill_at_every_step(c, expect_whole, "placeholders");
}

static void expect_streamed(struct sl_ctx *c)
{
	expect_both(c, "INBOX", LIST(MID("d1") " \\Seen", MID("d2"), MID("d3") " \\Flagged", MID("d4"),
				     MID("d5") " \\Seen", MID("d6"), MID("d7") " \\Answered \\Seen",
				     MID("d8"), MID("d9") " \\Seen"));
	expect_both(c, "Work", LIST(MID("w1"), MID("w2") " \\Seen", MID("w3"), MID("w4") " \\Flagged",
				    MID("w5"), MID("w6"), MID("w7") " \\Seen", MID("w8"), MID("w9")));
	assert_sides_equal(c);
}

/* SPEC 4.8 for downloads made durable at checkpoints inside one FETCH
 * stream: with a checkpoint every message (the test knob
 * FERRY_TEST_DOWNLOAD_CHECKPOINT), records every 4 checkpoints, the
 * intents of both mailboxes committed ahead and the first mailbox's
 * stream settling as a tail while the second's arrives, a sync downloading 9 + 9 new messages
 * is killed at every step, some messages renamed into cur/ and not
 * recorded, some recorded (the first mailbox's last ones by its tail
 * while the second's stream moves it on), and rerun: each message exactly once on each
 * side, with its flags. */
static void streamed_scenario(struct sl_ctx *c)
{
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	sync_ok(c);
	put_remote(c, "INBOX", "d1", 3000, "\\Seen");
	put_remote(c, "INBOX", "d2", 400, NULL);
	put_remote(c, "INBOX", "d3", 20000, "\\Flagged");
	put_remote(c, "INBOX", "d4", 400, NULL);
	put_remote(c, "INBOX", "d5", 3000, "\\Seen");
	put_remote(c, "INBOX", "d6", 400, NULL);
	put_remote(c, "INBOX", "d7", 400, "\\Answered \\Seen");
	put_remote(c, "INBOX", "d8", 400, NULL);
	put_remote(c, "INBOX", "d9", 2500, "\\Seen");
	put_remote(c, "Work", "w1", 400, NULL);
	put_remote(c, "Work", "w2", 3000, "\\Seen");
	put_remote(c, "Work", "w3", 400, NULL);
	put_remote(c, "Work", "w4", 400, "\\Flagged");
	put_remote(c, "Work", "w5", 400, NULL);
	put_remote(c, "Work", "w6", 2500, NULL);
	put_remote(c, "Work", "w7", 400, "\\Seen");
	put_remote(c, "Work", "w8", 400, NULL);
	put_remote(c, "Work", "w9", 400, NULL);
}

SYNC_TEST(killed_between_download_checkpoints_then_rerun_keeps_each_message_once)
{
	cr_assert_eq(setenv("FERRY_TEST_DOWNLOAD_CHECKPOINT", "1", 1), 0);
	streamed_scenario(c);
	cr_assert_geq(kill_at_every_step(c, expect_streamed, "download checkpoints"), 12,
		      "fewer steps than checkpoints: the knob did not take");
	unsetenv("FERRY_TEST_DOWNLOAD_CHECKPOINT");
}

/* The same two streams at once, one per connection (`connections:`, the
 * default 4; FERRY_TEST_LANES_MIN_BYTES=0 lifts the 1 MiB threshold):
 * the checkpoints of both streams interleave, so how many steps a run
 * takes varies a little from run to run.  A kill point past the end of
 * one run finds it finished (exit 0), which is checked all the same. */
SYNC_TEST(killed_between_download_checkpoints_on_two_connections_then_rerun_keeps_each_message_once)
{
	unsigned n, killed = 0;

	cr_assert_eq(setenv("FERRY_TEST_DOWNLOAD_CHECKPOINT", "1", 1), 0);
	cr_assert_eq(setenv("FERRY_TEST_LANES_MIN_BYTES", "0", 1), 0);
	streamed_scenario(c);
	n = kill_points(c, expect_streamed, "download checkpoints on two connections", 2, &killed);
	cr_assert_geq(n, 12, "only %u steps", n);
	cr_assert_geq(killed + 4, n, "killed at %u of %u steps", killed, n);
	unsetenv("FERRY_TEST_LANES_MIN_BYTES");
	unsetenv("FERRY_TEST_DOWNLOAD_CHECKPOINT");
}

static void expect_batches(struct sl_ctx *c)
{
	expect_both(c, "INBOX", LIST(MID("k1") " \\Flagged \\Seen", MID("k2") " \\Answered \\Seen",
				     MID("k3") " \\Flagged", MID("k4") " \\Answered", MID("k5") " \\Seen",
				     MID("n1"), MID("n2") " \\Seen", MID("n3") " \\Flagged", MID("n4"),
				     MID("n5") " \\Seen"));
	expect_both(c, "Work", LIST(MID("w1"), MID("n6"), MID("n7") " \\Flagged"));
	assert_sides_equal(c);
}

/* SPEC 4.8 for the batches: seven new local messages in two folders
 * uploaded in one run (pipelined APPENDs across both mailboxes when the
 * server offers LITERAL+ and UIDPLUS; one of them larger than the upload's
 * read buffer), flag stores of two flag sets in one mailbox, two local flag
 * renames in one folder; killed at every step and rerun: every message
 * once on each side, with its flags. */
SYNC_TEST(killed_during_upload_and_flag_batches_then_rerun_leaves_no_duplicate)
{
	put_remote(c, "INBOX", "k1", 2000, NULL);
	put_remote(c, "INBOX", "k2", 2000, "\\Seen");
	put_remote(c, "INBOX", "k3", 2000, NULL);
	put_remote(c, "INBOX", "k4", 2000, NULL);
	put_remote(c, "INBOX", "k5", 2000, "\\Seen");
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "Work", "w1", 2000, NULL);
	sync_ok(c);
	put_local(c, "INBOX", "n1", 3000, NULL);
	put_local(c, "INBOX", "n2", 4000, "S");
	put_local(c, "INBOX", "n3", 150000, "F");
	put_local(c, "INBOX", "n4", 500, NULL);
	put_local(c, "INBOX", "n5", 6000, "S");
	put_local(c, "Work", "n6", 2500, NULL);
	put_local(c, "Work", "n7", 90000, "F");
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("k1"), "FS"), 0);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("k2"), "RS"), 0);
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("k3"), "+FLAGS", "\\Flagged"), 0);
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("k4"), "+FLAGS", "\\Answered"), 0);
	kill_at_every_step(c, expect_batches, "batches");
}

static const char *const del_boxes[] = { "INBOX", "Work", "Lists" };

static void expect_deleted(struct sl_ctx *c)
{
	for (size_t i = 0; i < 3; i++) {
		char *keep = xasprintf("<%s-keep@ferry.test>", del_boxes[i]);
		char *kept = xasprintf("<%s-kept@ferry.test> \\Flagged \\Seen", del_boxes[i]);
		const char *want[] = { keep, kept, NULL };

		expect_both(c, del_boxes[i], want);
		free(keep);
		free(kept);
	}
	assert_sides_equal(c);
}

/* SPEC 4.8 for a deletion run and a flag-store run: three mailboxes,
 * each with two files deleted locally, two messages expunged on the
 * server and one message flagged locally, carried out together (the
 * stores of all three pipelined, one commit; then one intent commit, the
 * expunges of all three pipelined with full caps, one after the other
 * with IMAP4rev1, the unlinks of all three folders, one sync, one outcome
 * commit); killed at every step and rerun: no message lost (the
 * survivors, with their flags), none doubled, none back. */
SYNC_TEST(killed_during_deletion_and_flag_runs_over_mailboxes_then_rerun_brings_nothing_back)
{
	static const char *const doomed[] = { "gone-l1", "gone-l2", "gone-r1", "gone-r2" };

	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	cr_assert_eq(sl_remote_create(c, "Lists"), 0);
	for (size_t i = 0; i < 3; i++) {
		char *tag = xasprintf("%s-keep", del_boxes[i]);

		put_remote(c, del_boxes[i], tag, 900, NULL);
		free(tag);
		tag = xasprintf("%s-kept", del_boxes[i]);
		put_remote(c, del_boxes[i], tag, 900, "\\Seen");
		free(tag);
		for (size_t k = 0; k < 4; k++) {
			tag = xasprintf("%s-%s", del_boxes[i], doomed[k]);
			put_remote(c, del_boxes[i], tag, 900 + 100 * k, k % 2 ? "\\Flagged" : NULL);
			free(tag);
		}
	}
	sync_ok(c);
	for (size_t i = 0; i < 3; i++) {
		for (size_t k = 0; k < 4; k++) {
			char *mid = xasprintf("<%s-%s@ferry.test>", del_boxes[i], doomed[k]);

			if (k < 2)
				cr_assert_eq(sl_local_delete(c, del_boxes[i], mid), 0);
			else
				cr_assert_eq(sl_remote_expunge(c, del_boxes[i], mid), 0);
			free(mid);
		}
		{
			char *mid = xasprintf("<%s-kept@ferry.test>", del_boxes[i]);

			cr_assert_eq(sl_local_set_flags(c, del_boxes[i], mid, "FS"), 0);
			free(mid);
		}
	}
	cr_assert_geq(kill_at_every_step(c, expect_deleted, "deletion run"), 6,
		      "fewer steps than the run's unlinks");
}

/*
 * A slow link in front of the server, for what Dovecot alone cannot be
 * made to do: hold a client's data in flight after the client is gone.
 * A child process accepts connections on an ephemeral loopback port, one
 * at a time, and relays each to `port`: what the server sends goes back at
 * once, what the client sends is read at once but passed on at
 * RELAY_RATE bytes a second, and still passed on, to the end, after the
 * client died; then the server's side is closed.
 */
#define RELAY_RATE (1500 * 1000)

static void relay_one(int cfd, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	size_t cap = 1 << 16, len = 0, off = 0;
	char *q = malloc(cap), buf[65536];
	int sfd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (q == NULL || sfd < 0 || connect(sfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(3);
	while (cfd >= 0 || off < len) {
		struct pollfd p[2] = { { sfd, POLLIN, 0 }, { cfd, POLLIN, 0 } };
		ssize_t n;
		size_t take;

		if (poll(p, cfd >= 0 ? 2 : 1, 10) < 0)
			_exit(3);
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(sfd, buf, sizeof(buf));
			if (n <= 0)
				break;          /* the server closed: nothing more to pass on */
			if (cfd >= 0 && write(cfd, buf, (size_t)n) != n) {
				close(cfd);
				cfd = -1;
			}
		}
		if (cfd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			n = read(cfd, buf, sizeof(buf));
			if (n <= 0) {
				close(cfd);
				cfd = -1;
			} else {
				while (len + (size_t)n > cap)
					q = realloc(q, cap *= 2);
				if (q == NULL)
					_exit(3);
				memcpy(q + len, buf, (size_t)n);
				len += (size_t)n;
			}
		}
		take = len - off < RELAY_RATE / 100 ? len - off : RELAY_RATE / 100;
		if (take > 0 && write(sfd, q + off, take) != (ssize_t)take)
			break;
		off += take;
	}
	close(sfd);
	free(q);
}

static void relay_serve(int cfd, void *arg)
{
	relay_one(cfd, *(const int *)arg);
}

/* Start the relay to `port`; its port in *lport, its pid returned. */
static pid_t relay_start(int port, int *lport)
{
	static int to;
	pid_t pid;

	to = port;
	pid = harness_loopback_server(relay_serve, &to, lport);
	cr_assert_gt(pid, 0);
	return pid;
}

/*
 * SPEC 4.8 when the server outlives the client: killed once the first of
 * six chunks of pipelined APPENDs (16 messages each) is answered, with the
 * rest still on a slow link (relay above), so that the server goes on
 * storing them after ferry is gone.  The rerun, started at once and
 * straight to the server, must not list the mailbox while those APPENDs
 * still land (it would upload them again: duplicates, and download them
 * back); it waits until the mailbox stops growing.  Every message once on
 * each side.
 */
SYNC_TEST(killed_while_the_server_still_appends_then_rerun_uploads_nothing_twice)
{
	enum { NMSG = 96 };
	const char *env[] = { "FERRY_TEST_CRASH_ON=uploaded:1", NULL };
	int port = c->d.imaps_port, lport;
	struct harness_result res;
	struct sl_list r, l;
	pid_t relay;
	int st;

	sync_ok(c);
	cr_assert_eq(sl_local_mkfolder(c, "Bulk"), 0);
	for (int i = 0; i < NMSG; i++) {
		char *tag = xasprintf("bulk%02d", i);

		put_local(c, "Bulk", tag, 16000 + 97 * (size_t)i, NULL);
		free(tag);
	}
	relay = relay_start(port, &lport);
	cr_assert_eq(sl_config_port(c, port, lport), 0);
	run_env(c, env, &res);
	cr_assert_eq(sl_config_port(c, lport, port), 0);
	cr_assert_eq(res.status, 128 + 9, "ferry was not killed (exit %d)\n%s", res.status, res.err);
	harness_result_release(&res);
	run_env(c, NULL, &res);
	cr_assert_eq(res.status, 0, "the rerun failed (exit %d)\n%s", res.status, res.err);
	harness_result_release(&res);
	kill(relay, SIGKILL);
	cr_assert_eq(waitpid(relay, &st, 0), relay);
	cr_assert_eq(sl_remote_list(c, "Bulk", &r), 0);
	cr_assert_eq(sl_local_list(c, "Bulk", &l), 0);
	cr_assert_eq(r.n, NMSG, "the server holds %zu messages in Bulk, not %d", r.n, NMSG);
	cr_assert_eq(l.n, NMSG, "the Maildir holds %zu messages in Bulk, not %d", l.n, NMSG);
	for (size_t i = 1; i < r.n; i++)
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(r.v[i].msgid, r.v[j].msgid, "twice on the server: %s", r.v[i].msgid);
	sl_list_release(&r);
	sl_list_release(&l);
	assert_settled(c);
}

/*
 * test_sync_options.c - `ferry sync` options and outcomes (SPEC §1, §2,
 * §4.10): --dry-run, --pull/--push and `direction:`, ACCOUNT/MAILBOX
 * arguments, max_size placeholders, since:, exit codes 3 and 4, one summary
 * line per mailbox, -q; against Dovecot with all capabilities and IMAP4rev1.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define SYNC_SUITE sync_options
#include "sync_common.h"

/* Pending changes of every kind on both sides, after a first sync:
 * server: new s-new, \Flagged on b1, expunge of b3;
 * local: new l-new, \Answered on b2, deletion of b4. */
static void pending_changes(struct sl_ctx *c)
{
	put_remote(c, "INBOX", "b1", 400, NULL);
	put_remote(c, "INBOX", "b2", 400, NULL);
	put_remote(c, "INBOX", "b3", 400, NULL);
	put_remote(c, "INBOX", "b4", 400, NULL);
	put_remote(c, "INBOX", "b5", 400, NULL);
	sync_ok(c);
	put_remote(c, "INBOX", "s-new", 400, "\\Seen");
	cr_assert_eq(sl_remote_store(c, "INBOX", MID("b1"), "+FLAGS", "\\Flagged"), 0);
	cr_assert_eq(sl_remote_expunge(c, "INBOX", MID("b3")), 0);
	put_local(c, "INBOX", "l-new", 400, "S");
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("b2"), "R"), 0);
	cr_assert_eq(sl_local_delete(c, "INBOX", MID("b4")), 0);
}

static void expect_all_applied(struct sl_ctx *c)
{
	expect_both(c, "INBOX", LIST(MID("b1") " \\Flagged", MID("b2") " \\Answered", MID("b5"),
				     MID("s-new") " \\Seen", MID("l-new") " \\Seen"));
	assert_sides_equal(c);
}

/* The server side after a pull-only run: unchanged but for the server's own changes. */
static void expect_server_untouched(struct sl_ctx *c)
{
	expect_remote(c, "INBOX", LIST(MID("b1") " \\Flagged", MID("b2"), MID("b4"), MID("b5"),
				       MID("s-new") " \\Seen"));
}

static void expect_local_untouched(struct sl_ctx *c)
{
	expect_local(c, "INBOX", LIST(MID("b1"), MID("b2") " \\Answered", MID("b3"), MID("b5"),
				      MID("l-new") " \\Seen"));
}

/* --dry-run prints the plan and changes nothing on either side (nor the
 * state: a real run afterwards still does everything). */
SYNC_TEST(dry_run_changes_nothing_on_either_side)
{
	struct sl_snap r, l;
	struct harness_result res;
	int st;

	pending_changes(c);
	snap_both(c, &r, &l);
	st = run_keep(c, &res, "sync", "--dry-run", NULL);
	cr_assert_eq(st, 0, "exit %d\n%s\n%s", st, res.out, res.err);
	cr_assert_gt(res.out_len, 0, "--dry-run printed no plan");
	harness_result_release(&res);
	assert_remote_unchanged(c, &r, true);
	assert_local_unchanged(c, &l, true);
	sync_ok(c);
	expect_all_applied(c);
	sl_snap_release(&r);
	sl_snap_release(&l);
}

/* --dry-run only reads the server: every mailbox is opened with EXAMINE
 * (SELECT would clear \\Recent); and its lines say "would". */
SYNC_TEST(dry_run_examines_and_never_selects)
{
	struct harness_result res;
	int st;

	pending_changes(c);
	st = run_keep(c, &res, "-vv", "sync", "--dry-run", NULL);
	cr_assert_eq(st, 0, "exit %d\n%s\n%s", st, res.out, res.err);
	cr_assert_not_null(strstr(res.err, " EXAMINE INBOX"), "no EXAMINE in:\n%s", res.err);
	for (const char *p = res.err; (p = strstr(p, " SELECT ")) != NULL; p++) {
		const char *bol = p;

		while (bol > res.err && bol[-1] != '\n')
			bol--;
		cr_assert(strstr(bol, "C: ") == NULL || strstr(bol, "C: ") > p,
			  "a dry run sent a SELECT:\n%.*s", (int)(strchr(p, '\n') ? strchr(p, '\n') - bol : 80),
			  bol);
	}
	cr_assert_null(strstr(res.out, " pulled "), "a dry run says it pulled:\n%s", res.out);
	cr_assert_null(strstr(res.out, " pushed "), "a dry run says it pushed:\n%s", res.out);
	harness_result_release(&res);
	sync_ok(c);
	expect_all_applied(c);
}

/* --dry-run on an account never synced (no state folder, no Maildir yet)
 * plans the first run and creates neither. */
SYNC_TEST(dry_run_of_a_new_account_creates_no_state_and_no_maildir)
{
	struct harness_result res;
	struct stat st_;
	int st;

	put_remote(c, "INBOX", "first", 500, NULL);
	cr_assert_neq(lstat(c->state, &st_), 0, "the state exists before the first run");
	cr_assert_neq(lstat(c->root, &st_), 0, "the Maildir exists before the first run");
	st = run_keep(c, &res, "sync", "--dry-run", NULL);
	cr_assert_eq(st, 0, "exit %d\n%s\n%s", st, res.out, res.err);
	cr_assert_not_null(strstr(res.out, "would download INBOX"), "no plan:\n%s", res.out);
	harness_result_release(&res);
	cr_assert_neq(lstat(c->state, &st_), 0, "the dry run created the state folder %s", c->state);
	cr_assert_neq(lstat(c->root, &st_), 0, "the dry run created the Maildir %s", c->root);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("first")));
}

/* --pull changes only the Maildir; the local changes wait for a later run. */
SYNC_TEST(pull_changes_only_the_maildir)
{
	pending_changes(c);
	run_expect(c, 0, "sync", "--pull", NULL);
	expect_server_untouched(c);
	expect_local(c, "INBOX", LIST(MID("b1") " \\Flagged", MID("b2") " \\Answered", MID("b5"),
				      MID("s-new") " \\Seen", MID("l-new") " \\Seen"));
	sync_ok(c);
	expect_all_applied(c);
}

/* --push changes only the server; the server's changes wait. */
SYNC_TEST(push_changes_only_the_server)
{
	pending_changes(c);
	run_expect(c, 0, "sync", "--push", NULL);
	expect_local_untouched(c);
	expect_remote(c, "INBOX", LIST(MID("b1") " \\Flagged", MID("b2") " \\Answered", MID("b5"),
				       MID("s-new") " \\Seen", MID("l-new") " \\Seen"));
	sync_ok(c);
	expect_all_applied(c);
}

/* `direction: pull` in the config never changes the server. */
SYNC_TEST(direction_pull_in_config_never_changes_the_server)
{
	pending_changes(c);
	cr_assert_eq(sl_write_config(c, "    sync:\n      direction: pull\n"), 0);
	sync_ok(c);
	expect_server_untouched(c);
	expect_local(c, "INBOX", LIST(MID("b1") " \\Flagged", MID("b2") " \\Answered", MID("b5"),
				      MID("s-new") " \\Seen", MID("l-new") " \\Seen"));
	sync_ok(c);
	expect_server_untouched(c);
	cr_assert_eq(sl_write_config(c, NULL), 0);
	sync_ok(c);
	expect_all_applied(c);
}

/* `direction: push` in the config never changes the Maildir. */
SYNC_TEST(direction_push_in_config_never_changes_the_maildir)
{
	pending_changes(c);
	cr_assert_eq(sl_write_config(c, "    sync:\n      direction: push\n"), 0);
	sync_ok(c);
	expect_local_untouched(c);
	expect_remote(c, "INBOX", LIST(MID("b1") " \\Flagged", MID("b2") " \\Answered", MID("b5"),
				       MID("s-new") " \\Seen", MID("l-new") " \\Seen"));
	cr_assert_eq(sl_write_config(c, NULL), 0);
	sync_ok(c);
	expect_all_applied(c);
}

/* `ferry sync ACCOUNT/MAILBOX` syncs only that mailbox. */
SYNC_TEST(named_mailbox_syncs_only_that_mailbox)
{
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	sync_ok(c);
	put_remote(c, "INBOX", "in-srv", 400, NULL);
	put_local(c, "INBOX", "in-loc", 400, "S");
	put_remote(c, "Work", "w-srv", 400, NULL);
	put_local(c, "Work", "w-loc", 400, "S");
	run_expect(c, 0, "sync", "test/Work", NULL);
	expect_both(c, "Work", LIST(MID("w-srv"), MID("w-loc") " \\Seen"));
	expect_remote(c, "INBOX", LIST(MID("in-srv")));
	expect_local(c, "INBOX", LIST(MID("in-loc") " \\Seen"));
	run_expect(c, 0, "sync", "test", NULL);
	expect_both(c, "INBOX", LIST(MID("in-srv"), MID("in-loc") " \\Seen"));
	assert_sides_equal(c);
}

/* Mailboxes named on the command line narrow the config's selection: a
 * pattern does not bring in an excluded mailbox; a name (no wildcard) that
 * is excluded, or that no mailbox has, is a usage error (exit 2) saying
 * so, and nothing is synced for it. */
SYNC_TEST(named_mailboxes_keep_the_config_exclude_and_unknown_names_fail)
{
	struct harness_result res;
	int st;

	cr_assert_eq(sl_write_config(c, "    mailboxes:\n      include: [\"*\"]\n"
					"      exclude: [\"Big\"]\n"), 0);
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	cr_assert_eq(sl_remote_create(c, "Big"), 0);
	put_remote(c, "Work", "w1", 400, NULL);
	put_remote(c, "Big", "b1", 400, NULL);
	run_expect(c, 0, "sync", "test/*", NULL);
	expect_local(c, "Work", LIST(MID("w1")));
	cr_assert_null(sl_local_find(c, "Big", MID("b1")), "an excluded mailbox was synced");
	st = run_keep(c, &res, "sync", "test/Big", NULL);
	cr_assert_eq(st, 2, "exit %d\n%s", st, res.err);
	cr_assert_not_null(strstr(res.err, "\"Big\" is left out by the config"), "%s", res.err);
	harness_result_release(&res);
	cr_assert_null(sl_local_find(c, "Big", MID("b1")), "an excluded mailbox was synced");
	st = run_keep(c, &res, "sync", "test/NoSuchBox", NULL);
	cr_assert_eq(st, 2, "exit %d\n%s", st, res.err);
	cr_assert_not_null(strstr(res.err, "no mailbox \"NoSuchBox\""), "%s", res.err);
	harness_result_release(&res);
	run_expect(c, 0, "sync", "test/Work", NULL);
}

/*
 * The placeholder tests' end: a run changes neither side (snapshots r, l,
 * released here); flagged locally, the placeholder comes whole.
 */
static void unchanged_then_whole_when_flagged(struct sl_ctx *c, struct sl_snap *r, struct sl_snap *l)
{
	sync_ok(c);
	assert_remote_unchanged(c, r, true);
	assert_local_unchanged(c, l, true);
	cr_assert_eq(sl_local_set_flags(c, "INBOX", MID("huge"), "FS"), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("huge") " \\Seen \\Flagged", MID("small")));
	assert_sides_equal(c);
	sl_snap_release(r);
	sl_snap_release(l);
}

/* §4.10: over max_size a message arrives as its headers plus a note; the
 * placeholder is never uploaded; flagging it fetches the whole message. */
SYNC_TEST(max_size_placeholder_then_full_message_when_flagged)
{
	struct sl_snap r, l;
	struct sl_list ll, rl;

	cr_assert_eq(sl_write_config(c, "    sync:\n      max_size: 100K\n"), 0);
	put_remote(c, "INBOX", "huge", 400000, "\\Seen");
	put_remote(c, "INBOX", "small", 2000, NULL);
	cr_assert_eq(sl_remote_snap(c, &r), 0);
	sync_ok(c);
	assert_remote_unchanged(c, &r, true);
	cr_assert_eq(sl_local_list(c, "INBOX", &ll), 0);
	cr_assert_eq(sl_remote_list(c, "INBOX", &rl), 0);
	cr_assert_eq(ll.n, 2);
	for (size_t i = 0; i < ll.n; i++) {
		const struct sl_msg *m = &ll.v[i];

		if (strcmp(m->msgid, MID("small")) == 0) {
			/* the small one is whole */
			bool same = false;

			for (size_t k = 0; k < rl.n; k++)
				same |= strcmp(rl.v[k].ident, m->ident) == 0;
			cr_assert(same, "the small message differs locally");
			continue;
		}
		cr_assert_str_eq(m->msgid, MID("huge"));
		cr_assert_lt(m->size, 100 * 1024, "the placeholder holds %llu bytes", (unsigned long long)m->size);
		cr_assert_str_eq(m->flags, "\\Seen");
		{
			char *path = sl_local_find(c, "INBOX", MID("huge"));
			char *text = harness_read_file(path, 1 << 20);

			cr_assert_not_null(text);
			cr_assert_not_null(strstr(text, "Subject: huge"), "the placeholder lost the headers");
			cr_assert_null(strstr(text, "huge line 100 "), "the placeholder holds the body");
			free(text);
			free(path);
		}
	}
	sl_list_release(&ll);
	sl_list_release(&rl);
	/* a further run changes nothing */
	cr_assert_eq(sl_local_snap(c, &l), 0);
	unchanged_then_whole_when_flagged(c, &r, &l);
}

/* §4.7 and §4.10: the state lost, a placeholder is still known for one by
 * its note: matched with its server copy by fingerprint, neither uploaded
 * nor downloaded again; flagging it then fetches the whole message. */
SYNC_TEST(placeholder_after_lost_state_is_matched_not_uploaded)
{
	struct sl_snap r, l;

	cr_assert_eq(sl_write_config(c, "    sync:\n      max_size: 100K\n"), 0);
	put_remote(c, "INBOX", "huge", 400000, "\\Seen");
	put_remote(c, "INBOX", "small", 2000, NULL);
	sync_ok(c);
	snap_both(c, &r, &l);
	cr_assert_eq(harness_remove_tree(c->state), 0);
	sync_ok(c);
	assert_remote_unchanged(c, &r, true);
	assert_local_unchanged(c, &l, true);
	unchanged_then_whole_when_flagged(c, &r, &l);
}

/* A message text with another Date header. */
static char *dated_message(const char *tag, const char *date)
{
	char *m = sl_message(tag, 500), *p = strstr(m, "Date: ");
	char *out;

	cr_assert_not_null(p);
	*p = '\0';
	out = xasprintf("%sDate: %s%s", m, date, strchr(p + 1, '\n'));
	free(m);
	return out;
}

/* `since:` ignores older messages on both sides. */
SYNC_TEST(since_ignores_older_messages)
{
	char *old_s = dated_message("old-srv", "Wed, 01 Jan 2020 12:00:00 +0000");
	char *new_s = dated_message("new-srv", "Wed, 01 Jan 2025 12:00:00 +0000");
	char *old_l = dated_message("old-loc", "Wed, 01 Jan 2020 12:00:00 +0000");
	char *new_l = dated_message("new-loc", "Wed, 01 Jan 2025 12:00:00 +0000");

	cr_assert_eq(sl_write_config(c, "    sync:\n      since: 2024-06-01\n"), 0);
	cr_assert_eq(sl_remote_append_dated(c, "INBOX", old_s, NULL, "01-Jan-2020 12:00:00 +0000"), 0);
	cr_assert_eq(sl_remote_append_dated(c, "INBOX", new_s, NULL, "01-Jan-2025 12:00:00 +0000"), 0);
	cr_assert_eq(sl_local_mkfolder(c, "INBOX"), 0);
	cr_assert_eq(sl_local_deliver(c, "INBOX", old_l, "S"), 0);
	cr_assert_eq(sl_local_deliver(c, "INBOX", new_l, "S"), 0);
	{
		/* the old local file's mtime (its INTERNALDATE) is in 2020 too */
		char *path = sl_local_find(c, "INBOX", MID("old-loc"));
		struct timespec ts[2] = { { 1577880000, 0 }, { 1577880000, 0 } };

		cr_assert_not_null(path);
		cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
		free(path);
	}
	sync_ok(c);
	expect_remote(c, "INBOX", LIST(MID("old-srv"), MID("new-srv"), MID("new-loc") " \\Seen"));
	expect_local(c, "INBOX", LIST(MID("old-loc") " \\Seen", MID("new-loc") " \\Seen", MID("new-srv")));
	/* and it stays that way */
	sync_ok(c);
	expect_remote(c, "INBOX", LIST(MID("old-srv"), MID("new-srv"), MID("new-loc") " \\Seen"));
	expect_local(c, "INBOX", LIST(MID("old-loc") " \\Seen", MID("new-loc") " \\Seen", MID("new-srv")));
	free(old_s);
	free(new_s);
	free(old_l);
	free(new_l);
}

/* §1: a wrong password is exit 3; nothing is written; the password is not shown. */
SYNC_TEST(wrong_password_exits_3)
{
	struct harness_result res;
	int st;
	struct sl_list l;

	put_remote(c, "INBOX", "a", 400, NULL);
	c->pass = "not-the-password-42";
	cr_assert_eq(sl_write_config(c, NULL), 0);
	st = run_keep(c, &res, "sync", NULL);
	cr_assert_eq(st, 3, "exit %d\n%s\n%s", st, res.out, res.err);
	cr_assert_null(strstr(res.out, "not-the-password-42"));
	cr_assert_null(strstr(res.err, "not-the-password-42"));
	harness_result_release(&res);
	cr_assert_eq(sl_local_list(c, "INBOX", &l), 0);
	cr_assert_eq(l.n, 0);
	sl_list_release(&l);
	c->pass = c->d.pass1;
}

/* §1: nothing listening on the port is exit 4. */
SYNC_TEST(unreachable_port_exits_4)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	char *text, *p, *fixed, port_line[32];
	int port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd); /* bound, never listened, now closed: connections are refused */
	text = harness_read_file(c->config, 1 << 16);
	cr_assert_not_null(text);
	p = strstr(text, "      port: ");
	cr_assert_not_null(p);
	*p = '\0';
	snprintf(port_line, sizeof(port_line), "      port: %d", port);
	fixed = xasprintf("%s%s%s", text, port_line, strchr(p + 1, '\n'));
	cr_assert_eq(harness_write_file(c->config, fixed), 0);
	run_expect(c, 4, "sync", NULL);
	free(text);
	free(fixed);
}

/* §1: one summary line per mailbox on stdout. */
SYNC_TEST(summary_line_per_mailbox_on_stdout)
{
	struct harness_result res;
	int st;
	size_t inbox = 0, work = 0;

	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "INBOX", "i1", 400, NULL);
	put_remote(c, "Work", "w1", 400, NULL);
	st = run_keep(c, &res, "sync", NULL);
	cr_assert_eq(st, 0, "exit %d\n%s\n%s", st, res.out, res.err);
	for (char *line = strtok(res.out, "\n"); line; line = strtok(NULL, "\n")) {
		inbox += strstr(line, "INBOX") != NULL;
		work += strstr(line, "Work") != NULL;
	}
	cr_assert_eq(inbox, 1, "%zu lines name INBOX", inbox);
	cr_assert_eq(work, 1, "%zu lines name Work", work);
	harness_result_release(&res);
	expect_both(c, "INBOX", LIST(MID("i1")));
	expect_both(c, "Work", LIST(MID("w1")));
}

/* §1: -q prints nothing when all went well. */
SYNC_TEST(quiet_prints_nothing_on_success)
{
	struct harness_result res;
	int st;

	put_remote(c, "INBOX", "q1", 400, NULL);
	st = run_keep(c, &res, "-q", "sync", NULL);
	cr_assert_eq(st, 0, "exit %d\n%s\n%s", st, res.out, res.err);
	cr_assert_eq(res.out_len, 0, "stdout: %s", res.out);
	cr_assert_eq(res.err_len, 0, "stderr: %s", res.err);
	harness_result_release(&res);
	expect_both(c, "INBOX", LIST(MID("q1")));
}

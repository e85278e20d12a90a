/*
 * test_sync_recovery.c - `ferry sync` black-box tests of SPEC §4.6 (safety:
 * a lost Maildir or folder is refilled, never a reason to delete; the mass
 * deletion stop, exit 5, and --force), §4.7 (UIDVALIDITY change, lost state,
 * first run against existing mail on both sides, mbsync and OfflineIMAP names: matched
 * by fingerprint, nothing transferred twice or deleted) and §4.9 (the
 * account lock: exit 6, --wait), against Dovecot with all capabilities and
 * IMAP4rev1.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define SYNC_SUITE sync_recovery
#include "sync_common.h"

#define BIG 300000

/* §4.6: the whole Maildir removed (rm -r): refilled from the server, and
 * nothing deleted or re-uploaded on the server. */
SYNC_TEST(lost_maildir_is_refilled_and_server_untouched)
{
	struct sl_snap r;

	cr_assert_eq(harness_seed(&c->d, c->user, 25, NULL), 0);
	sync_ok(c);
	cr_assert_eq(sl_remote_snap(c, &r), 0);
	cr_assert_eq(sl_local_rmtree(c, NULL), 0);
	sync_ok(c);
	assert_remote_unchanged(c, &r, true);
	assert_sides_equal(c);
	sl_snap_release(&r);
}

/* §4.6: one local folder removed whole: refilled, server untouched. */
SYNC_TEST(lost_local_folder_is_refilled_and_server_untouched)
{
	struct sl_snap r;

	cr_assert_eq(harness_seed(&c->d, c->user, 25, NULL), 0);
	sync_ok(c);
	cr_assert_eq(sl_remote_snap(c, &r), 0);
	cr_assert_eq(sl_local_rmtree(c, "Work"), 0);
	cr_assert_eq(sl_local_rmtree(c, "INBOX"), 0);
	sync_ok(c);
	assert_remote_unchanged(c, &r, true);
	assert_sides_equal(c);
	sl_snap_release(&r);
}

static void put_twelve(struct sl_ctx *c)
{
	for (int i = 1; i <= 12; i++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "m%02d", i);
		put_remote(c, "INBOX", tag, 300, i % 2 ? "\\Seen" : NULL);
	}
}

static bool mentions(const struct harness_result *res, const char *word)
{
	return strstr(res->out, word) || strstr(res->err, word);
}

/* §4.6: deleting 11 of 12 local files would delete > 50% on the server:
 * exit 5, nothing deleted; --force then deletes. */
SYNC_TEST(mass_local_deletion_stops_with_exit_5_until_force)
{
	struct sl_snap r;
	struct harness_result res;
	int st;

	put_twelve(c);
	sync_ok(c);
	for (int i = 1; i <= 11; i++) {
		char id[40];

		snprintf(id, sizeof(id), "<m%02d@ferry.test>", i);
		cr_assert_eq(sl_local_delete(c, "INBOX", id), 0);
	}
	cr_assert_eq(sl_remote_snap(c, &r), 0);
	st = run_keep(c, &res, "sync", NULL);
	cr_assert_eq(st, 5, "exit %d\nstdout:\n%s\nstderr:\n%s", st, res.out, res.err);
	cr_assert(mentions(&res, "INBOX"), "the safety stop does not name the mailbox:\n%s\n%s", res.out, res.err);
	harness_result_release(&res);
	assert_remote_unchanged(c, &r, true);
	{
		char *p = sl_local_find(c, "INBOX", MID("m12"));

		cr_assert_not_null(p, "the remaining local message was deleted");
		free(p);
	}
	/* the refusal is not forgotten: a plain run stops again */
	run_expect(c, 5, "sync", NULL);
	assert_remote_unchanged(c, &r, true);
	run_expect(c, 0, "sync", "--force", NULL);
	expect_both(c, "INBOX", LIST(MID("m12")));
	assert_sides_equal(c);
	sl_snap_release(&r);
}

/* §4.6: 11 of 12 expunged on the server: exit 5, no local file removed; --force then removes. */
SYNC_TEST(mass_server_expunge_stops_with_exit_5_until_force)
{
	struct sl_snap l;
	struct harness_result res;
	const char *cmds[] = { "UID STORE 1:11 +FLAGS.SILENT (\\Deleted)", "UID EXPUNGE 1:11", NULL };
	int st;

	put_twelve(c);
	sync_ok(c);
	cr_assert_eq(sl_remote_uid(c, "INBOX", MID("m12")), 12);
	cr_assert_eq(sl_imap(c, "INBOX", cmds, NULL), 0);
	expect_remote(c, "INBOX", LIST(MID("m12")));
	cr_assert_eq(sl_local_snap(c, &l), 0);
	st = run_keep(c, &res, "sync", NULL);
	cr_assert_eq(st, 5, "exit %d\nstdout:\n%s\nstderr:\n%s", st, res.out, res.err);
	cr_assert(mentions(&res, "INBOX"));
	harness_result_release(&res);
	assert_local_unchanged(c, &l, true);
	run_expect(c, 0, "sync", "--force", NULL);
	expect_both(c, "INBOX", LIST(MID("m12")));
	assert_sides_equal(c);
	sl_snap_release(&l);
}

/* §4.6: the stop needs at least 10 deletions: 3 of 4 go through. */
SYNC_TEST(small_deletions_are_not_stopped)
{
	put_remote(c, "INBOX", "s1", 300, NULL);
	put_remote(c, "INBOX", "s2", 300, NULL);
	put_remote(c, "INBOX", "s3", 300, NULL);
	put_remote(c, "INBOX", "s4", 300, NULL);
	sync_ok(c);
	cr_assert_eq(sl_local_delete(c, "INBOX", MID("s1")), 0);
	cr_assert_eq(sl_local_delete(c, "INBOX", MID("s2")), 0);
	cr_assert_eq(sl_local_delete(c, "INBOX", MID("s3")), 0);
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("s4")));
	assert_sides_equal(c);
}

/* §4.7: the server mailbox recreated with a new UIDVALIDITY and the same
 * messages: matched by fingerprint, no download, no duplicate, flags kept. */
SYNC_TEST(uidvalidity_change_rematches_without_download_or_duplicates)
{
	uint32_t v0, v1;
	uint64_t in, out;
	long mark;
	struct sl_snap l;

	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "Work", "u1", BIG, "\\Seen");
	put_remote(c, "Work", "u2", BIG, "\\Flagged $label1");
	put_remote(c, "Work", "u3", 500, NULL);
	sync_ok(c);
	cr_assert_eq(sl_local_snap(c, &l), 0);
	v0 = sl_remote_uidvalidity(c, "Work");
	cr_assert_eq(sl_remote_delete(c, "Work"), 0);
	sleep(1); /* Dovecot's UIDVALIDITY is time based */
	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "Work", "u3", 500, NULL);
	put_remote(c, "Work", "u1", BIG, "\\Seen");
	put_remote(c, "Work", "u2", BIG, "\\Flagged $label1");
	v1 = sl_remote_uidvalidity(c, "Work");
	cr_assert(v0 && v1 && v0 != v1, "UIDVALIDITY did not change (%u, %u)", v0, v1);
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	cr_assert_lt(out, BIG / 2, "messages were downloaded again: out=%llu", (unsigned long long)out);
	cr_assert_lt(in, BIG / 2, "messages were uploaded again: in=%llu", (unsigned long long)in);
	expect_both(c, "Work", LIST(MID("u1") " \\Seen", MID("u2") " \\Flagged $label1", MID("u3")));
	assert_local_unchanged(c, &l, false);
	assert_sides_equal(c);
	/* and the new UIDs are recorded: a flag change on the server arrives */
	cr_assert_eq(sl_remote_store(c, "Work", MID("u3"), "+FLAGS", "\\Answered"), 0);
	sync_ok(c);
	expect_both(c, "Work", LIST(MID("u1") " \\Seen", MID("u2") " \\Flagged $label1", MID("u3") " \\Answered"));
	sl_snap_release(&l);
}

/* §4.7: the state folder deleted: re-matched, nothing duplicated, deleted
 * or transferred again; new mail on each side still crosses once. */
SYNC_TEST(lost_state_rematches_without_duplicates_or_deletions)
{
	struct sl_snap r, l;
	uint64_t in, out;
	long mark;

	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "INBOX", "b1", BIG, "\\Seen");
	put_remote(c, "INBOX", "b2", 800, NULL);
	put_remote(c, "Work", "b3", BIG, "\\Flagged");
	sync_ok(c);
	snap_both(c, &r, &l);
	cr_assert_eq(harness_remove_tree(c->state), 0);
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	cr_assert_lt(out, BIG / 2, "out=%llu", (unsigned long long)out);
	cr_assert_lt(in, BIG / 2, "in=%llu", (unsigned long long)in);
	assert_remote_unchanged(c, &r, true);
	assert_local_unchanged(c, &l, true);
	assert_sides_equal(c);
	/* state lost again, with new mail on both sides */
	cr_assert_eq(harness_remove_tree(c->state), 0);
	put_remote(c, "INBOX", "n-srv", 900, "\\Seen");
	put_local(c, "Work", "n-loc", 900, "F");
	sync_ok(c);
	expect_both(c, "INBOX", LIST(MID("b1") " \\Seen", MID("b2"), MID("n-srv") " \\Seen"));
	expect_both(c, "Work", LIST(MID("b3") " \\Flagged", MID("n-loc") " \\Flagged"));
	assert_sides_equal(c);
	sl_snap_release(&r);
	sl_snap_release(&l);
}

/* Copy every message file of the server's folder (Dovecot's own Maildir++)
 * into the local folder by hand, names and all. */
static void copy_server_files(struct sl_ctx *c, const char *server_rel, const char *local_folder)
{
	char *dst = sl_local_path(c, local_folder);
	char *cmd = xasprintf("set -e; for s in cur new; do for f in '%s/mail/%s/Maildir/%s'/$s/*; do "
			      "if [ -f \"$f\" ]; then cp -p \"$f\" '%s'/$s/; fi; done; done",
			      c->d.dir, c->user, server_rel, dst);
	const char *argv[] = { "sh", "-c", cmd, NULL };
	struct harness_result res;

	cr_assert_eq(harness_run(argv, NULL, &res), 0);
	cr_assert_eq(res.status, 0, "%s: %s", cmd, res.err);
	harness_result_release(&res);
	free(cmd);
	free(dst);
}

/* §4.7: first run with the same mail on both sides (files copied from the
 * server by hand; mbsync-style ",U=" names): no duplicates, no transfer of
 * what both have, the rest crosses, flags kept. */
SYNC_TEST(first_run_with_same_mail_on_both_sides_makes_no_duplicates)
{
	uint64_t in, out;
	long mark;

	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "INBOX", "c1", BIG, "\\Seen");
	put_remote(c, "INBOX", "c2", 700, "\\Flagged");
	put_remote(c, "INBOX", "c3", 900, "\\Seen \\Answered");
	put_remote(c, "INBOX", "srv-only", 700, NULL);
	put_remote(c, "Work", "w1", BIG, "\\Seen");
	put_remote(c, "Work", "w2", 700, NULL);
	/* force Dovecot to move new/ files to cur/ with their flags */
	{
		const char *cmds[] = { "UID FETCH 1:* FLAGS", NULL };

		cr_assert_eq(sl_imap(c, "Work", cmds, NULL), 0);
	}
	cr_assert_eq(sl_local_mkfolder(c, "INBOX"), 0);
	cr_assert_eq(sl_local_mkfolder(c, "Work"), 0);
	/* INBOX: as mbsync would have left it */
	{
		char *m1 = sl_message("c1", BIG), *m2 = sl_message("c2", 700);
		char *p1 = xasprintf("%s/INBOX/cur/1700000001.R1.host,U=1:2,S", c->root);
		char *p2 = xasprintf("%s/INBOX/cur/1700000002.R2.host,U=2:2,F", c->root);

		cr_assert_eq(harness_write_file(p1, m1), 0);
		cr_assert_eq(harness_write_file(p2, m2), 0);
		free(m1);
		free(m2);
		free(p1);
		free(p2);
	}
	/* INBOX: as OfflineIMAP would have left it (its ",U=" and ",FMD5=" name) */
	{
		char *m3 = sl_message("c3", 900);
		char *p3 = xasprintf("%s/INBOX/cur/1700000003_0.4242.host,U=3,"
				     "FMD5=7e33429f656f1e6e9d79b29c3f82c57e:2,RS", c->root);

		cr_assert_eq(harness_write_file(p3, m3), 0);
		free(m3);
		free(p3);
	}
	put_local(c, "INBOX", "loc-only", 700, "S");
	/* Work: the server's own files copied by hand */
	copy_server_files(c, ".Work", "Work");
	expect_local(c, "Work", LIST(MID("w1") " \\Seen", MID("w2")));
	mark = sl_log_mark(c);
	sync_ok(c);
	log_bytes(c, mark, &in, &out);
	cr_assert_lt(out, BIG / 2, "a message both sides had was downloaded: out=%llu", (unsigned long long)out);
	cr_assert_lt(in, BIG / 2, "a message both sides had was uploaded: in=%llu", (unsigned long long)in);
	expect_both(c, "INBOX", LIST(MID("c1") " \\Seen", MID("c2") " \\Flagged",
				     MID("c3") " \\Answered \\Seen", MID("srv-only"),
				     MID("loc-only") " \\Seen"));
	expect_both(c, "Work", LIST(MID("w1") " \\Seen", MID("w2")));
	assert_sides_equal(c);
}

/* §4.9: while another process holds the account lock, a run exits 6 and
 * changes nothing; with --wait it waits for the lock and then syncs. */
SYNC_TEST(held_lock_exits_6_and_wait_waits)
{
	char *lock = xasprintf("%s/lock", c->state);
	int pfd[2];
	pid_t pid;
	char byte;
	struct timespec t0, t1;
	double waited;

	put_remote(c, "INBOX", "lk", 500, NULL);
	cr_assert_eq(harness_mkdirs(c->state), 0);
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0 || flock(fd, LOCK_EX) < 0)
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		sleep(3);
		_exit(0);
	}
	close(pfd[1]);
	cr_assert_eq(read(pfd[0], &byte, 1), 1, "the lock holder failed");
	close(pfd[0]);
	run_expect(c, 6, "sync", NULL);
	{
		struct sl_list l;

		cr_assert_eq(sl_local_list(c, "INBOX", &l), 0);
		cr_assert_eq(l.n, 0, "a locked-out run changed the Maildir");
		sl_list_release(&l);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_expect(c, 0, "sync", "--wait", NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	{
		int status;

		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	cr_assert_gt(waited, 1.0, "--wait returned after %.2f s, before the lock was free", waited);
	expect_both(c, "INBOX", LIST(MID("lk")));
	assert_sides_equal(c);
	free(lock);
}

/*
 * A relay in front of the server that leaves out of what the server sends
 * the untagged LIST lines naming `hide`, up to the end of the session's
 * first LIST command (the discovery): a server, or a proxy, whose listing
 * glitches once.  One connection (harness_loopback_server), plain IMAP.
 */
static void hiding_relay_one(int cfd, int port, const char *hide)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char in[1 << 16], line[1 << 16], list_tag[32] = "";
	size_t ll = 0;
	bool hiding = true;
	int sfd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (sfd < 0 || connect(sfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(3);
	for (;;) {
		struct pollfd p[2] = { { sfd, POLLIN, 0 }, { cfd, POLLIN, 0 } };
		ssize_t n;

		if (poll(p, 2, -1) < 0)
			_exit(3);
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(cfd, in, sizeof(in));
			if (n <= 0 || write(sfd, in, (size_t)n) != n)
				break;
			if (list_tag[0] == '\0') {
				char *at = memmem(in, (size_t)n, " LIST \"\"", 9), *start = at;

				while (start != NULL && start > in && start[-1] != '\n')
					start--;
				if (start != NULL && at - start < (ptrdiff_t)sizeof(list_tag) - 2) {
					memcpy(list_tag, start, (size_t)(at - start));
					list_tag[at - start] = ' ';
					list_tag[at - start + 1] = '\0';
				}
			}
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(sfd, in, sizeof(in));
			if (n <= 0)
				break;
			for (ssize_t i = 0; i < n; i++) {
				bool drop;

				if (ll < sizeof(line))
					line[ll++] = in[i];
				if (in[i] != '\n')
					continue;
				drop = hiding && strncmp(line, "* LIST ", 7) == 0 &&
				       memmem(line, ll, hide, strlen(hide)) != NULL;
				if (list_tag[0] != '\0' && strncmp(line, list_tag, strlen(list_tag)) == 0)
					hiding = false;
				if (!drop && write(cfd, line, ll) != (ssize_t)ll)
					_exit(0);
				ll = 0;
			}
		}
	}
	close(sfd);
	close(cfd);
}

struct hiding {
	int port;
	const char *hide;
};

static void hiding_serve(int cfd, void *arg)
{
	const struct hiding *h = arg;

	hiding_relay_one(cfd, h->port, h->hide);
}

/* The config for plain IMAP (a relay cannot read TLS), aimed at `port`. */
static void write_plain_config(struct sl_ctx *c, int port)
{
	struct harness_account a = {
		.tls = "none", .user = c->user, .password = c->pass,
		.local_path = c->root, .state_path = c->state,
	};

	cr_assert_eq(harness_write_config(&c->d, c->config, &a), 0);
	cr_assert_eq(sl_config_port(c, c->d.imap_port, port), 0);
}

/*
 * §4.6 and no duplicates: a run whose LIST leaves out a mailbox that is
 * still there (CREATE then answers ALREADYEXISTS) must not fill it again
 * from the Maildir: that mailbox fails alone (exit 1), and the next run,
 * listed properly, finds every message once.  It used to upload the whole
 * folder again ("pushed 3 new"), and the next run pulled the copies back.
 */
SYNC_TEST(mailbox_left_out_of_one_listing_is_not_filled_again)
{
	struct harness_result res;
	struct sl_list r;
	pid_t relay;
	int lport, st;

	cr_assert_eq(sl_remote_create(c, "Work"), 0);
	put_remote(c, "Work", "w1", 300, NULL);
	put_remote(c, "Work", "w2", 300, "\\Seen");
	put_remote(c, "INBOX", "i1", 300, NULL);
	write_plain_config(c, c->d.imap_port);
	sync_ok(c);
	put_local(c, "Work", "w3", 300, NULL);
	relay = harness_loopback_server(hiding_serve, &(struct hiding){ c->d.imap_port, "Work" }, &lport);
	cr_assert_gt(relay, 0);
	write_plain_config(c, lport);
	(void)run_keep(c, &res, "sync", NULL);
	kill(relay, SIGKILL);
	cr_assert_eq(waitpid(relay, &st, 0), relay);
	cr_assert_eq(res.status, 1, "exit %d\nstdout:\n%s\nstderr:\n%s", res.status, res.out, res.err);
	cr_assert(strstr(res.err, "mailbox \"Work\" failed"), "%s", res.err);
	cr_assert(strstr(res.err, "ALREADYEXISTS"), "%s", res.err);
	harness_result_release(&res);
	cr_assert_eq(sl_remote_list(c, "Work", &r), 0);
	cr_assert_eq(r.n, 2, "Work holds %zu messages on the server, not 2", r.n);
	sl_list_release(&r);

	write_plain_config(c, c->d.imap_port);
	sync_ok(c);
	expect_both(c, "Work", LIST(MID("w1"), MID("w2") " \\Seen", MID("w3")));
	assert_sides_equal(c);
}

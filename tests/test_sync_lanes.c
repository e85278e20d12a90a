/*
 * test_sync_lanes.c - `connections:` (SPEC §2, issue 6): the downloads of
 * several mailboxes streamed at once, one connection each, through the
 * command line against Dovecot (TLS, as every synclib test).
 *
 * How many connections a run used is read from Dovecot's log: one
 * "imap(USER)" logout line with in=/out= per session (sl_log_bytes).
 *   - a run that downloads 1 MiB or more from several mailboxes opens one
 *     connection per mailbox, up to `connections:`; both sides end equal,
 *     each message once, and the next run has nothing to do on one
 *     connection;
 *   - `connections: 1`, and a run below 1 MiB, use one;
 *   - with the server on this machine (as here) at most half the online
 *     CPUs are used (one on a machine with fewer than four); every other
 *     test lifts that cap with the test knob FERRY_TEST_LANES_MIN_BYTES
 *     (set to the real threshold, 1 MiB, unless it says otherwise);
 *   - a server that refuses the further logins (Dovecot's
 *     mail_max_userip_connections = 1) leaves the run on one connection,
 *     successful;
 *   - a further connection killed in the middle of its stream (its imap
 *     process, found with `doveadm who`) fails only the mailbox it was
 *     streaming (exit 1); the next run completes it, each message once.
 * The crash test of streams over several connections is in
 * test_sync_crash.c (killed_between_download_checkpoints_on_two_...).
 */
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>

#define SYNC_SUITE sync_lanes
#include "sync_common.h"

static void write_config(struct sl_ctx *c, const char *remote_extra)
{
	cr_assert_eq(sl_write_config_remote(c, remote_extra, NULL), 0);
}

/* Treat the loopback server as a remote one (the knob; threshold as given). */
static void lanes_knob(const char *min_bytes)
{
	if (min_bytes == NULL)
		cr_assert_eq(unsetenv("FERRY_TEST_LANES_MIN_BYTES"), 0);
	else
		cr_assert_eq(setenv("FERRY_TEST_LANES_MIN_BYTES", min_bytes, 1), 0);
}

#define MIB "1048576"

/* `ferry sync` (extra env optional), which must succeed; the sessions it used. */
static unsigned sync_sessions(struct sl_ctx *c, const char *const env[])
{
	struct harness_result res;
	long mark = sl_log_mark(c);
	uint64_t in, out;
	unsigned n = 0;

	int st = sl_ferry(c, env, &res, "sync", NULL);

	cr_assert_eq(st, 0, "exit %d\n%s\n%s", st, res.out, res.err);
	harness_result_release(&res);
	cr_assert_eq(sl_log_bytes(c, mark, &in, &out, &n), 0, "no session in Dovecot's log");
	return n;
}

static const char *const boxes[] = { "INBOX", "Work", "Lists", "Family" };

/* `per` messages of `size` bytes in each of the four mailboxes; tags B-N. */
static void fill(struct sl_ctx *c, size_t per, size_t size)
{
	for (size_t b = 0; b < 4; b++) {
		if (b > 0)
			cr_assert_eq(sl_remote_create(c, boxes[b]), 0);
		for (size_t i = 0; i < per; i++) {
			char tag[32];

			snprintf(tag, sizeof(tag), "%c-%zu", boxes[b][0], i);
			put_remote(c, boxes[b], tag, size, i % 3 == 0 ? "\\Seen" : i % 3 == 1 ? "\\Flagged" : NULL);
		}
	}
}

/*
 * The common start: the knob (min_bytes, or NULL for none), the config
 * (remote_extra), one sync of the empty account, then fill(per, size).
 */
static void seed(struct sl_ctx *c, const char *min_bytes, const char *remote_extra, size_t per,
		 size_t size)
{
	lanes_knob(min_bytes);
	write_config(c, remote_extra);
	sync_ok(c);
	fill(c, per, size);
}

/* Each mailbox holds exactly its `per` messages with their flags, on both sides. */
static void expect_filled(struct sl_ctx *c, size_t per)
{
	for (size_t b = 0; b < 4; b++) {
		const char **want = xcalloc(per + 1, sizeof(*want));

		for (size_t i = 0; i < per; i++)
			want[i] = xasprintf("<%c-%zu@ferry.test>%s", boxes[b][0], i,
					    i % 3 == 0 ? " \\Seen" : i % 3 == 1 ? " \\Flagged" : "");
		expect_both(c, boxes[b], want);
		for (size_t i = 0; i < per; i++)
			free((char *)want[i]);
		free(want);
	}
	assert_sides_equal(c);
}

/* 4 mailboxes x 5 messages of 80 KB (1.6 MB) with `connections: 3`: three sessions. */
SYNC_TEST(downloads_of_several_mailboxes_go_over_several_connections)
{
	unsigned n;

	seed(c, MIB, "      connections: 3\n", 5, 80000);
	n = sync_sessions(c, NULL);
	cr_assert_eq(n, 3, "the download used %u connections, not 3", n);
	expect_filled(c, 5);
	/* nothing left: the next run has nothing to download, and uses one connection */
	n = sync_sessions(c, NULL);
	cr_assert_eq(n, 1, "a run with nothing to do used %u connections", n);
	assert_settled(c);
}

/* The default (4) with 4 mailboxes and checkpoints every 2 messages, then `connections: 1`. */
SYNC_TEST(connections_bound_the_sessions_and_1_keeps_one)
{
	const char *env[] = { "FERRY_TEST_DOWNLOAD_CHECKPOINT=2", NULL };
	unsigned n;

	seed(c, MIB, NULL, 5, 80000);
	n = sync_sessions(c, env);
	cr_assert_eq(n, 4, "the download used %u connections, not 4", n);
	expect_filled(c, 5);

	/* a fresh local side and state: all of it again, over one connection */
	cr_assert_eq(sl_local_rmtree(c, NULL), 0);
	cr_assert_eq(harness_remove_tree(c->state), 0);
	write_config(c, "      connections: 1\n");
	n = sync_sessions(c, NULL);
	cr_assert_eq(n, 1, "connections: 1 used %u connections", n);
	expect_filled(c, 5);
}

/*
 * Without the knob, the loopback server shares our CPUs: at most half the
 * online CPUs' worth of connections (one below four CPUs).
 */
SYNC_TEST(a_server_on_this_machine_gets_at_most_half_the_cpus_in_connections)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned want = cpus >= 4 ? (unsigned)(cpus / 2) : 1, n;

	if (want > 4)
		want = 4;       /* the mailboxes */
	seed(c, NULL, "      connections: 4\n", 5, 80000);
	n = sync_sessions(c, NULL);
	cr_assert_eq(n, want, "%ld CPUs: the download used %u connections, not %u", cpus, n, want);
	expect_filled(c, 5);
}

/* Below 1 MiB a second connection costs more than it saves: one session. */
SYNC_TEST(a_small_download_stays_on_one_connection)
{
	unsigned n;

	seed(c, MIB, "      connections: 4\n", 3, 5000);  /* the threshold itself is tested */
	n = sync_sessions(c, NULL);
	cr_assert_eq(n, 1, "a 60 KB download used %u connections", n);
	expect_filled(c, 3);
}

/* Set Dovecot's mail_max_userip_connections and reload it. */
static void max_connections(struct sl_ctx *c, int max)
{
	char *text = harness_read_file(c->d.conf, 1 << 20);
	char *at, *cmd;
	struct harness_result res;
	const char *argv[] = { "sh", "-c", NULL, NULL };
	FILE *f;

	cr_assert_not_null(text);
	at = strstr(text, "mail_max_userip_connections = ");
	cr_assert_not_null(at, "the harness's dovecot.conf has no mail_max_userip_connections");
	f = fopen(c->d.conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "%.*smail_max_userip_connections = %d%s", (int)(at - text), text, max,
		strchr(at, '\n'));
	cr_assert_eq(fclose(f), 0);
	free(text);
	cmd = xasprintf("doveadm -c '%s' reload && sleep 1", c->d.conf);
	argv[2] = cmd;
	cr_assert_eq(harness_run(argv, NULL, &res), 0);
	cr_assert_eq(res.status, 0, "doveadm reload: %s", res.err);
	harness_result_release(&res);
	free(cmd);
}

/* The server refuses a second login: the run goes on, on one connection, and succeeds. */
SYNC_TEST(further_logins_refused_leave_the_run_on_one_connection)
{
	struct harness_result res;
	int st;

	seed(c, MIB, "      connections: 4\n", 5, 80000);
	max_connections(c, 1);
	st = run_keep(c, &res, "-v", "sync", NULL);
	cr_assert_eq(st, 0, "exit %d\n%s\n%s", st, res.out, res.err);
	cr_assert_not_null(strstr(res.err, "connection 2 did not open"),
			   "no word of the refused connection:\n%s", res.err);
	harness_result_release(&res);
	max_connections(c, 50);
	expect_filled(c, 5);
	assert_settled(c);
}

/* PIDs of the user's imap processes now (doveadm who), at most `max`. */
static size_t imap_pids(struct sl_ctx *c, pid_t *pids, size_t max)
{
	const char *argv[] = { "doveadm", "-c", c->d.conf, "who", "-1", NULL };
	struct harness_result res;
	size_t n = 0;

	if (harness_run(argv, NULL, &res) < 0)
		return 0;
	for (char *p = res.out; p && *p && n < max;) {
		char *nl = strchr(p, '\n');
		char user[256], service[64];
		long pid;

		if (nl)
			*nl = '\0';
		/* "username proto pid ip" */
		if (sscanf(p, "%255s %63s (%ld)", user, service, &pid) == 3 ||
		    sscanf(p, "%255s %63s %ld", user, service, &pid) == 3)
			if (strcmp(user, c->user) == 0 && strcmp(service, "imap") == 0)
				pids[n++] = (pid_t)pid;
		p = nl ? nl + 1 : NULL;
	}
	harness_result_release(&res);
	return n;
}

/*
 * A further connection's server process killed while it streams: that
 * mailbox fails (exit 1, its error on stderr), the others complete; the
 * next run completes it, each message once.  Checkpoints every message
 * (the test knob) keep the streams long enough to be caught.
 */
SYNC_TEST(a_further_connection_killed_mid_stream_fails_one_mailbox_and_the_next_run_completes_it)
{
	const char *env[] = { "FERRY_TEST_DOWNLOAD_CHECKPOINT=1", NULL };
	char *errfile = xasprintf("%s/killed-run.err", c->d.tmp);
	pid_t before[16], now[16], victim = 0, child;
	size_t nb, nn;
	int wst, st;

	seed(c, MIB, "      connections: 2\n", 60, 20000);
	nb = imap_pids(c, before, 16);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		struct harness_result res;
		int rc = sl_ferry(c, env, &res, "sync", NULL);

		if (rc == 0)
			(void)harness_write_file(errfile, res.err);
		_exit(rc == 0 ? res.status : 99);
	}
	/* the further connection is the imap process that was not there before */
	for (int tries = 0; tries < 4000 && victim == 0; tries++) {
		struct timespec ts = { 0, 2 * 1000000L };

		nn = imap_pids(c, now, 16);
		for (size_t i = 0; nn >= 2 && i < nn; i++) {
			bool old = false;

			for (size_t k = 0; k < nb; k++)
				old |= before[k] == now[i];
			if (!old && now[i] > victim)
				victim = now[i];
		}
		if (nn < 2)
			victim = 0;
		if (victim == 0)
			nanosleep(&ts, NULL);
	}
	cr_assert_neq(victim, 0, "never saw two imap processes");
	{
		/* let it get into its first stream (each message is a checkpoint) */
		struct timespec ts = { 0, 150 * 1000000L };

		nanosleep(&ts, NULL);
	}
	cr_assert_eq(kill(victim, SIGKILL), 0);
	cr_assert_eq(waitpid(child, &wst, 0), child);
	cr_assert(WIFEXITED(wst));
	st = WEXITSTATUS(wst);
	{
		char *err = harness_read_file(errfile, 1 << 20);

		/*
		 * Killed in a stream: that mailbox failed, naming the connection,
		 * and the others synced (1).  Killed between streams (or after
		 * the last): nothing was lost with it, the others took the rest (0).
		 */
		cr_assert(st == 1 || st == 0, "exit %d\n%s", st, err ? err : "");
		if (st == 1) {
			cr_assert(err && strstr(err, "connection 2: downloading from mailbox"),
				  "the error does not name the connection:\n%s", err ? err : "");
			cr_assert(err && strstr(err, "1 of "), "not one mailbox failed:\n%s", err ? err : "");
		}
		fprintf(stderr, "the killed run (exit %d) said:\n%s", st, err ? err : "");
		free(err);
	}
	free(errfile);
	sync_ok(c);
	expect_filled(c, 60);
	assert_settled(c);
}

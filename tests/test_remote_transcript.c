/*
 * test_remote_transcript.c - the remote adapter (core/sync/remote.h)
 * against a scripted server, for what Dovecot cannot be made to do on
 * demand: an update of the previous mailbox sent after a pipelined SELECT
 * was reached but before its "* OK [CLOSED]" (RFC 7162 3.2.11).
 *
 * The server is a child process on a loopback port: it answers each
 * command line as it arrives (the client pipelines, the server answers in
 * order), from the script in serve().
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sync/remote.h"
#include "xalloc.h"

static int lsock = -1;
static pid_t child = -1;
static int port;

static void up(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lsock = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(lsock, 0);
	cr_assert_eq(bind(lsock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(lsock, 1), 0);
	cr_assert_eq(getsockname(lsock, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
}

static void down(void)
{
	int st;

	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, &st, 0);
	}
	if (lsock >= 0)
		close(lsock);
}

TestSuite(remote_transcript, .init = up, .fini = down, .timeout = 60);

static void say(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w <= 0)
			_exit(3);
		s += w;
		n -= (size_t)w;
	}
}

/* One line (CRLF stripped) into line[cap]; 0 at EOF. */
static int read_line(int fd, char *line, size_t cap)
{
	size_t n = 0;
	char ch;

	while (read(fd, &ch, 1) == 1) {
		if (ch == '\n') {
			if (n > 0 && line[n - 1] == '\r')
				n--;
			line[n] = '\0';
			return 1;
		}
		if (n + 1 < cap)
			line[n++] = ch;
	}
	return 0;
}

/*
 * The script.  Mailbox A: UIDVALIDITY 7, nothing changed.  Mailbox B:
 * UIDVALIDITY 9, UID 4 got \Seen.  The first SELECT B is answered with an
 * update of A's UID 2 (\Flagged) before its [CLOSED]; a second one has the
 * [CLOSED] first, as it should.
 */
static void serve(int fd)
{
	char line[4096], out[8192];
	int selects_b = 0;

	say(fd, "* OK [CAPABILITY IMAP4rev1 LOGIN-REFERRALS ENABLE CONDSTORE QRESYNC UIDPLUS] ready\r\n");
	while (read_line(fd, line, sizeof(line))) {
		char *sp = strchr(line, ' ');
		const char *tag = line, *cmd;

		if (sp == NULL)
			continue;
		*sp = '\0';
		cmd = sp + 1;
		if (strncasecmp(cmd, "LOGIN ", 6) == 0) {
			snprintf(out, sizeof(out),
				 "%s OK [CAPABILITY IMAP4rev1 ENABLE CONDSTORE QRESYNC UIDPLUS] in\r\n", tag);
		} else if (strncasecmp(cmd, "CAPABILITY", 10) == 0) {
			snprintf(out, sizeof(out),
				 "* CAPABILITY IMAP4rev1 ENABLE CONDSTORE QRESYNC UIDPLUS\r\n%s OK done\r\n",
				 tag);
		} else if (strncasecmp(cmd, "ENABLE", 6) == 0) {
			snprintf(out, sizeof(out), "* ENABLED QRESYNC\r\n%s OK enabled\r\n", tag);
		} else if (strncasecmp(cmd, "SELECT A", 8) == 0) {
			snprintf(out, sizeof(out),
				 "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 4] n\r\n"
				 "* OK [HIGHESTMODSEQ 20] m\r\n%s OK [READ-WRITE] selected\r\n", tag);
		} else if (strncasecmp(cmd, "SELECT B", 8) == 0) {
			snprintf(out, sizeof(out),
				 "%s* OK [CLOSED] closed\r\n* 4 EXISTS\r\n* OK [UIDVALIDITY 9] v\r\n"
				 "* OK [UIDNEXT 5] n\r\n* OK [HIGHESTMODSEQ 31] m\r\n"
				 "* 4 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (31))\r\n"
				 "%s OK [READ-WRITE] selected\r\n",
				 selects_b++ == 0 ? "* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (21))\r\n" : "",
				 tag);
		} else if (strncasecmp(cmd, "LOGOUT", 6) == 0) {
			snprintf(out, sizeof(out), "* BYE bye\r\n%s OK out\r\n", tag);
			say(fd, out);
			return;
		} else {
			snprintf(out, sizeof(out), "%s OK done\r\n", tag);
		}
		say(fd, out);
	}
}

static int give_password(void *ctx, enum imap_secret_kind kind, struct buf *out, struct err *e)
{
	(void)ctx;
	(void)kind;
	return buf_adds(out, "secret", e);
}

static struct sync_remote *remote_open(void)
{
	static const enum imap_auth_mech login = IMAP_AUTH_LOGIN;
	struct imap_client_opts o;
	struct sync_remote *r;
	struct err e;

	memset(&o, 0, sizeof(o));
	o.conn.host = "127.0.0.1";
	o.conn.port = (unsigned)port;
	o.conn.tls = IMAP_TLS_NONE;
	o.conn.timeout_ms = 10000;
	o.user = "alice";
	o.have_password = true;
	o.get_secret = give_password;
	o.mechs = &login;
	o.nmechs = 1;
	r = sync_remote_new(&o);
	cr_assert_eq(sync_remote_open(r, &e), 0, "open: %s", e.msg);
	return r;
}

/*
 * A and B listed ahead with QRESYNC; A's late update (UID 2 \Flagged),
 * sent after B's SELECT was reached but before its [CLOSED], is not taken
 * as B's: B is listed again, and its delta is exactly UID 4 \Seen.
 */
Test(remote_transcript, update_of_previous_mailbox_before_closed_is_not_taken_as_the_next_ones)
{
	static const uint32_t ua[] = { 1, 2, 3 }, ub[] = { 1, 2, 3, 4 };
	static const uint64_t sa[] = { 10, 11, 12 }, sb[] = { 20, 21, 22, 23 };
	struct sync_remote_known ka = { .uidvalidity = 7, .highestmodseq = 20, .uidnext = 4,
					.messages = 3, .uids = ua, .nuids = 3, .sizes = sa };
	struct sync_remote_known kb = { .uidvalidity = 9, .highestmodseq = 30, .uidnext = 5,
					.messages = 4, .uids = ub, .nuids = 4, .sizes = sb };
	struct sync_remote_scan_ahead *xa, *xb;
	struct sync_remote_listing la, lb;
	struct sync_remote *r;
	unsigned long sel0;
	struct arena a;
	struct err e;
	int fd;

	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		fd = accept(lsock, NULL, NULL);
		if (fd < 0)
			_exit(2);
		serve(fd);
		close(fd);
		_exit(0);
	}
	r = remote_open();
	cr_assert(sync_remote_caps(r)->qresync);
	arena_init(&a, 4096);
	sel0 = sync_remote_selects(r);
	cr_assert_eq(sync_remote_scan_start_known(r, "A", &ka, &a, &xa, &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_scan_start_known(r, "B", &kb, &a, &xb, &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_scan_finish(xa, &ka, &la, &e), 0, "%s", e.msg);
	cr_assert_eq(la.method, SYNC_REMOTE_QRESYNC);
	cr_assert_eq(la.nmsgs, 0);
	cr_assert_eq(la.nvanished, 0);
	cr_assert_eq(sync_remote_scan_finish(xb, &kb, &lb, &e), 0, "%s", e.msg);
	cr_assert_eq(lb.method, SYNC_REMOTE_QRESYNC);
	cr_assert_eq(lb.uidvalidity, 9u);
	cr_assert_eq(lb.highestmodseq, 31u);
	cr_assert_eq(lb.nmsgs, 1, "B's delta has %zu messages (A's update taken?)", lb.nmsgs);
	cr_assert_eq(lb.msgs[0].uid, 4u);
	cr_assert_eq(lb.msgs[0].flags.sys, SYNC_F_SEEN);
	cr_assert_eq(lb.msgs[0].size, 23u);
	cr_assert_eq(lb.nvanished, 0);
	cr_assert_eq(sync_remote_selects(r) - sel0, 3u, "B was not selected again");
	cr_assert_eq(sync_remote_logout(r, &e), 0, "%s", e.msg);
	sync_remote_free(r);
	arena_release(&a);
}

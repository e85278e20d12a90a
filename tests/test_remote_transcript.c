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
#include <stdbool.h>
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
/* The next command: line holds its tag, *cmd_out the rest; false at EOF. */
static bool next_command(int fd, char *line, size_t cap, const char **cmd_out)
{
	while (read_line(fd, line, cap)) {
		char *sp = strchr(line, ' ');

		if (sp != NULL) {
			*sp = '\0';
			*cmd_out = sp + 1;
			return true;
		}
	}
	return false;
}

static void serve(int fd, const char *log)
{
	char line[4096], out[8192];
	const char *cmd;
	int selects_b = 0;

	(void)log;

	say(fd, "* OK [CAPABILITY IMAP4rev1 LOGIN-REFERRALS ENABLE CONDSTORE QRESYNC UIDPLUS] ready\r\n");
	while (next_command(fd, line, sizeof(line), &cmd)) {
		const char *tag = line;

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
 * A session with serve_fn(fd, log) in a child; log: NULL, or a mkstemp
 * template, made into a fresh file for the server's log.
 */
static struct sync_remote *open_with(void (*serve_fn)(int fd, const char *log), char *log)
{
	int fd;

	if (log != NULL) {
		fd = mkstemp(log);
		cr_assert_geq(fd, 0);
		close(fd);
	}
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		fd = accept(lsock, NULL, NULL);
		if (fd < 0)
			_exit(2);
		serve_fn(fd, log);
		close(fd);
		_exit(0);
	}
	return remote_open();
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

	r = open_with(serve, NULL);
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

/*
 * A server on which mailbox A is made again between two SELECTs: the
 * first says UIDVALIDITY 7, every later one 8.  B's is 5; a UID MOVE
 * answers COPYUID under B's UIDVALIDITY the first time and under 99 (B
 * made again meanwhile) after that.  Each command line it receives is
 * appended to the file at `log`.
 */
static void serve_remade(int fd, const char *log)
{
	char line[4096], out[8192];
	const char *cmd;
	int selects_a = 0, moves = 0;
	FILE *f = fopen(log, "w");

	if (f == NULL)
		_exit(4);
	say(fd, "* OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS MOVE] ready\r\n");
	while (next_command(fd, line, sizeof(line), &cmd)) {
		const char *tag = line;

		fprintf(f, "%s\n", cmd);
		fflush(f);
		if (strncasecmp(cmd, "LOGIN ", 6) == 0) {
			snprintf(out, sizeof(out),
				 "%s OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS MOVE] in\r\n", tag);
		} else if (strncasecmp(cmd, "SELECT A", 8) == 0) {
			snprintf(out, sizeof(out),
				 "* 2 EXISTS\r\n* OK [UIDVALIDITY %d] v\r\n* OK [UIDNEXT 3] n\r\n"
				 "%s OK [READ-WRITE] selected\r\n", selects_a++ == 0 ? 7 : 8, tag);
		} else if (strncasecmp(cmd, "SELECT B", 8) == 0) {
			snprintf(out, sizeof(out),
				 "* 1 EXISTS\r\n* OK [UIDVALIDITY 5] v\r\n* OK [UIDNEXT 2] n\r\n"
				 "%s OK [READ-WRITE] selected\r\n", tag);
		} else if (strncasecmp(cmd, "UID MOVE", 8) == 0) {
			snprintf(out, sizeof(out), "* OK [COPYUID %d 1 %d] moved\r\n* 1 EXPUNGE\r\n"
				 "%s OK done\r\n", moves == 0 ? 5 : 99, 5 + moves, tag);
			moves++;
		} else if (strncasecmp(cmd, "UID FETCH", 9) == 0) {
			/* what mailbox A now holds under UID 1 */
			snprintf(out, sizeof(out),
				 "* 1 FETCH (UID 1 FLAGS () INTERNALDATE \"01-Jan-2024 00:00:00 +0000\" "
				 "RFC822.SIZE 7 BODY[] {7}\r\nX: y\r\n\r\n)\r\n%s OK done\r\n", tag);
		} else if (strncasecmp(cmd, "LOGOUT", 6) == 0) {
			snprintf(out, sizeof(out), "* BYE bye\r\n%s OK out\r\n", tag);
			say(fd, out);
			break;
		} else {
			snprintf(out, sizeof(out), "%s OK done\r\n", tag);
		}
		say(fd, out);
	}
	fclose(f);
}

static int rm_begin(void *ctx, uint64_t size, void **handle_out, struct err *e)
{
	(void)ctx;
	(void)size;
	(void)e;
	*handle_out = NULL;
	return 0;
}

static int rm_data(void *ctx, void *handle, const char *bytes, size_t len, struct err *e)
{
	(void)ctx;
	(void)handle;
	(void)bytes;
	(void)len;
	(void)e;
	return 0;
}

static int rm_finish(void *ctx, void *handle, const struct sync_remote_fetched *msg,
		     struct err *e)
{
	(void)handle;
	(void)msg;
	(void)e;
	++*(int *)ctx;
	return 0;
}

static void rm_abort(void *ctx, void *handle)
{
	(void)ctx;
	(void)handle;
}

/*
 * Mailbox A is made again (UIDVALIDITY 7 -> 8) after the session first
 * selected it: the pipelined expunge fails at its SELECT, naming the
 * change, with no UID STORE or UID EXPUNGE sent to the new A; a download
 * from A fails the same way and delivers nothing of the new A's
 * messages; B is untouched.
 */
Test(remote_transcript, mailbox_made_again_during_the_run_gets_no_uid_command)
{
	static const uint32_t one[] = { 1 }, two[] = { 1, 2 };
	struct sync_flags seen = { .sys = SYNC_F_SEEN };
	struct sync_remote_sink sink = { 0 };
	struct sync_remote_pending *p = NULL;
	struct sync_remote *r;
	char log[] = "/tmp/ferry-transcript-XXXXXX";
	char line[512];
	int finished = 0, n_after = 0, n_fetch = 0;
	bool second_select = false;
	struct err e;
	FILE *f;

	r = open_with(serve_remade, log);
	/* the first SELECT of A (UIDVALIDITY 7), then B selected */
	cr_assert_eq(sync_remote_store(r, "A", one, 1, &seen, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_store(r, "B", one, 1, &seen, NULL, &e), 0, "%s", e.msg);
	/* A is now another mailbox: nothing may be stored or expunged in it */
	err_clear(&e);
	cr_assert_eq(sync_remote_expunge_submit(r, "A", two, 2, &p, &e), -1,
		     "an expunge was submitted into a mailbox made again");
	cr_assert_null(p);
	cr_assert_eq(e.code, ERR_SERVER, "%s", e.msg);
	cr_assert(strstr(e.msg, "UIDVALIDITY is 8, not 7") != NULL, "%s", e.msg);
	/* a download pipelined behind its SELECT takes none of the new A's messages */
	sink = (struct sync_remote_sink){ &finished, rm_begin, rm_data, rm_finish, rm_abort, NULL };
	err_clear(&e);
	cr_assert_eq(sync_remote_download(r, "A", one, 1, &sink, &e), -1);
	cr_assert(strstr(e.msg, "UIDVALIDITY is 8, not 7") != NULL, "%s", e.msg);
	cr_assert_eq(finished, 0, "a message of the new A was delivered");
	cr_assert_eq(sync_remote_logout(r, &e), 0, "%s", e.msg);
	sync_remote_free(r);
	waitpid(child, NULL, 0);
	child = -1;
	/* what the server got after A's second SELECT: no UID STORE, no UID EXPUNGE */
	f = fopen(log, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "SELECT A", 8) == 0 && !second_select) {
			static int seen_a;

			second_select = ++seen_a == 2;
			continue;
		}
		if (second_select && (strncmp(line, "UID STORE", 9) == 0 ||
				      strncmp(line, "UID EXPUNGE", 11) == 0))
			n_after++;
		if (strncmp(line, "UID FETCH", 9) == 0)
			n_fetch++;
	}
	fclose(f);
	unlink(log);
	cr_assert(second_select, "A was not selected again");
	cr_assert_eq(n_after, 0, "%d UID STORE/EXPUNGE sent to the mailbox made again", n_after);
	cr_assert_eq(n_fetch, 1, "the download's FETCH was not sent (%d)", n_fetch);
}

/*
 * COPYUID is believed only under the UIDVALIDITY the session saw for the
 * target: B's (5) gives the new UID; under another (B made again since)
 * the new UID is left 0, to be found by fingerprint.
 */
Test(remote_transcript, copyuid_under_another_uidvalidity_is_not_believed)
{
	static const uint32_t one[] = { 1 };
	struct sync_flags seen = { .sys = SYNC_F_SEEN };
	struct sync_remote *r;
	char log[] = "/tmp/ferry-transcript-XXXXXX";
	uint32_t new_uid = 0;
	struct err e;

	r = open_with(serve_remade, log);
	cr_assert(sync_remote_caps(r)->move);
	/* B selected once: the session knows its UIDVALIDITY (5) */
	cr_assert_eq(sync_remote_store(r, "B", one, 1, &seen, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(sync_remote_move(r, "A", one, 1, "B", &new_uid, &e), 0, "%s", e.msg);
	cr_assert_eq(new_uid, 5u, "COPYUID under B's UIDVALIDITY not taken");
	new_uid = 1234;
	cr_assert_eq(sync_remote_move(r, "A", one, 1, "B", &new_uid, &e), 0, "%s", e.msg);
	cr_assert_eq(new_uid, 0u, "COPYUID under another UIDVALIDITY taken: %u", new_uid);
	cr_assert_eq(sync_remote_logout(r, &e), 0, "%s", e.msg);
	sync_remote_free(r);
	unlink(log);
}

/*
 * The answers an IMAP4rev1 script gives to what it does not script
 * itself: LOGIN, LOGOUT (true: the session ends), anything else OK.
 */
static bool answer_plain(int fd, const char *tag, const char *cmd)
{
	char out[512];

	if (strncasecmp(cmd, "LOGIN ", 6) == 0)
		snprintf(out, sizeof(out), "%s OK [CAPABILITY IMAP4rev1] in\r\n", tag);
	else if (strncasecmp(cmd, "LOGOUT", 6) == 0)
		snprintf(out, sizeof(out), "* BYE bye\r\n%s OK out\r\n", tag);
	else
		snprintf(out, sizeof(out), "%s OK done\r\n", tag);
	say(fd, out);
	return strncasecmp(cmd, "LOGOUT", 6) == 0;
}

/*
 * A server whose complete listings come up short: mailbox S says 5
 * EXISTS and lists 2; mailbox X says 5, expunges one during the listing
 * and lists the other 4 (which is right).  IMAP4rev1 only: full listings.
 */
static void serve_short(int fd, const char *log)
{
	char line[4096], out[8192];
	const char *cmd;
	char mailbox = 0;

	(void)log;
	say(fd, "* OK [CAPABILITY IMAP4rev1] ready\r\n");
	while (next_command(fd, line, sizeof(line), &cmd)) {
		const char *tag = line;

		if (strncasecmp(cmd, "SELECT ", 7) == 0) {
			mailbox = cmd[7];
			snprintf(out, sizeof(out),
				 "* 5 EXISTS\r\n* OK [UIDVALIDITY 3] v\r\n* OK [UIDNEXT 6] n\r\n"
				 "%s OK [READ-WRITE] selected\r\n", tag);
		} else if (strncasecmp(cmd, "UID FETCH 1:* ", 14) == 0 && mailbox == 'S') {
			snprintf(out, sizeof(out),
				 "* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 10)\r\n"
				 "* 2 FETCH (UID 2 FLAGS () RFC822.SIZE 10)\r\n%s OK done\r\n", tag);
		} else if (strncasecmp(cmd, "UID FETCH 1:* ", 14) == 0) {
			snprintf(out, sizeof(out),
				 "* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 10)\r\n* 2 EXPUNGE\r\n"
				 "* 2 FETCH (UID 3 FLAGS () RFC822.SIZE 10)\r\n"
				 "* 3 FETCH (UID 4 FLAGS () RFC822.SIZE 10)\r\n"
				 "* 4 FETCH (UID 5 FLAGS () RFC822.SIZE 10)\r\n%s OK done\r\n", tag);
		} else {
			if (answer_plain(fd, tag, cmd))
				return;
			continue;
		}
		say(fd, out);
	}
}

/*
 * A complete listing shorter than the mailbox's EXISTS (less what the
 * server expunged meanwhile) fails the scan: read as it is, it would be
 * taken for expunges and delete local mail.
 */
Test(remote_transcript, listing_short_of_exists_fails_and_expunges_are_counted)
{
	struct sync_remote_listing l;
	struct sync_remote *r;
	struct arena a;
	struct err e;

	r = open_with(serve_short, NULL);
	arena_init(&a, 4096);
	cr_assert_eq(sync_remote_scan(r, "S", NULL, &a, &l, &e), -1, "a short listing was taken");
	cr_assert(strstr(e.msg, "listed 2 messages where it counts 5"), "%s", e.msg);
	err_clear(&e);
	cr_assert_eq(sync_remote_scan(r, "X", NULL, &a, &l, &e), 0, "%s", e.msg);
	cr_assert_eq(l.nmsgs, 4);
	cr_assert_eq(sync_remote_logout(r, &e), 0, "%s", e.msg);
	sync_remote_free(r);
	arena_release(&a);
}

/* A server that answers body FETCHes of UID 1 with NIL, and of UID 2 with
 * "" (both sized 154), and of UID 3 with an empty message sized 0. */
static void serve_no_text(int fd, const char *log)
{
	char line[4096], out[8192];
	const char *cmd;

	(void)log;
	say(fd, "* OK [CAPABILITY IMAP4rev1] ready\r\n");
	while (next_command(fd, line, sizeof(line), &cmd)) {
		const char *tag = line;

		if (strncasecmp(cmd, "SELECT ", 7) == 0) {
			snprintf(out, sizeof(out),
				 "* 3 EXISTS\r\n* OK [UIDVALIDITY 3] v\r\n* OK [UIDNEXT 4] n\r\n"
				 "%s OK [READ-WRITE] selected\r\n", tag);
		} else if (strncasecmp(cmd, "UID FETCH 1 ", 12) == 0) {
			snprintf(out, sizeof(out), "* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 154 BODY[] NIL)\r\n"
				 "%s OK done\r\n", tag);
		} else if (strncasecmp(cmd, "UID FETCH 2 ", 12) == 0) {
			snprintf(out, sizeof(out), "* 2 FETCH (UID 2 FLAGS () RFC822.SIZE 154 BODY[] \"\")\r\n"
				 "%s OK done\r\n", tag);
		} else if (strncasecmp(cmd, "UID FETCH 3 ", 12) == 0) {
			snprintf(out, sizeof(out), "* 3 FETCH (UID 3 FLAGS () RFC822.SIZE 0 BODY[] {0}\r\n)\r\n"
				 "%s OK done\r\n", tag);
		} else {
			if (answer_plain(fd, tag, cmd))
				return;
			continue;
		}
		say(fd, out);
	}
}

/*
 * A body of no text (NIL, "") for a message the server sizes above 0 is
 * not handed on as a message (it would be stored empty and recorded for
 * good): the download fails, the next run asks again.  A message sized 0
 * is taken as it is.
 */
Test(remote_transcript, body_without_text_for_a_sized_message_is_not_taken)
{
	int finished = 0;
	struct sync_remote_sink sink = { &finished, rm_begin, rm_data, rm_finish, NULL, NULL };
	static const uint32_t u1[] = { 1 }, u2[] = { 2 }, u3[] = { 3 };
	struct sync_remote *r;
	struct err e;

	r = open_with(serve_no_text, NULL);
	cr_assert_eq(sync_remote_download(r, "M", u1, 1, &sink, &e), -1, "NIL taken");
	cr_assert(strstr(e.msg, "no text for UID 1"), "%s", e.msg);
	cr_assert_eq(sync_remote_download(r, "M", u2, 1, &sink, &e), -1, "\"\" taken");
	cr_assert(strstr(e.msg, "no text for UID 2"), "%s", e.msg);
	cr_assert_eq(finished, 0);
	cr_assert_eq(sync_remote_download(r, "M", u3, 1, &sink, &e), 0, "%s", e.msg);
	cr_assert_eq(finished, 1);
	cr_assert_eq(sync_remote_logout(r, &e), 0, "%s", e.msg);
	sync_remote_free(r);
}

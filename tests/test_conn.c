/*
 * Transcript tests of the IMAP connection over socketpair(), with a scripted
 * fake server in a child process.  Only for what a real server cannot be
 * made to do: cuts at every byte, garbage, silence, tags answered out of
 * order, BYE with commands in flight, injected bytes after STARTTLS, and
 * the exact bytes of the redacted trace.  Real behaviour is proven against
 * Dovecot in test_client.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "client_int.h"
#include "conn.h"
#include "log.h"
#include "xalloc.h"

/* ---- the scripted fake server ------------------------------------------ */

enum step_op {
	SEND,       /* write data */
	EXPECT,     /* read one line; it must start with data */
	READ,       /* read strlen(data) bytes; they must equal data */
	QUIET,      /* nothing may arrive for `ms` milliseconds */
	SLEEP,      /* sleep ms */
	CLOSE,      /* close and exit 0 */
	END
};

struct step {
	enum step_op op;
	const char *data;
	int ms;
	size_t len;     /* SEND, READ: bytes of data (0: strlen) */
};

static int read_line(int fd, char *line, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r <= 0)
			return -1;
		line[n++] = c;
		if (c == '\n')
			break;
	}
	line[n] = '\0';
	return 0;
}

static void run_script(int fd, const struct step *s)
{
	char line[4096];
	int i;

	alarm(10);
	for (i = 0; s[i].op != END; i++) {
		switch (s[i].op) {
		case SEND: {
			size_t len = s[i].len ? s[i].len : strlen(s[i].data);

			if (write(fd, s[i].data, len) != (ssize_t)len)
				_exit(90);
			break;
		}
		case EXPECT:
			if (read_line(fd, line, sizeof(line)) < 0 ||
			    strncmp(line, s[i].data, strlen(s[i].data)) != 0) {
				fprintf(stderr, "fake server: step %d: got \"%s\", want \"%s\"\n", i,
					line, s[i].data);
				_exit(10 + i);
			}
			break;
		case READ: {
			size_t want = s[i].len ? s[i].len : strlen(s[i].data), got = 0;

			while (got < want) {
				size_t k = want - got < sizeof(line) ? want - got : sizeof(line);
				ssize_t r = read(fd, line, k);

				if (r <= 0 || memcmp(line, s[i].data + got, (size_t)r) != 0)
					_exit(60 + i);
				got += (size_t)r;
			}
			break;
		}
		case QUIET: {
			struct pollfd p = { fd, POLLIN, 0 };

			if (poll(&p, 1, s[i].ms) != 0)
				_exit(40 + i);
			break;
		}
		case SLEEP:
			usleep((useconds_t)s[i].ms * 1000);
			break;
		case CLOSE:
			close(fd);
			_exit(0);
		case END:
			break;
		}
	}
	/* Hold the connection until the client goes away. */
	while (read(fd, line, sizeof(line)) > 0)
		;
	_exit(0);
}

struct fake {
	pid_t pid;
	int fd;         /* the client's end */
};

static struct fake fake_start(const struct step *script)
{
	int sv[2];
	struct fake f;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	f.pid = fork();
	cr_assert_geq(f.pid, 0);
	if (f.pid == 0) {
		close(sv[0]);
		run_script(sv[1], script);
	}
	close(sv[1]);
	f.fd = sv[0];
	return f;
}

/* The fake server's exit status (0: the script ran as written). */
static int fake_finish(struct fake *f, bool kill_it)
{
	int status = 0;

	if (kill_it)
		kill(f->pid, SIGKILL);
	waitpid(f->pid, &status, 0);
	if (WIFSIGNALED(status))
		return kill_it ? 0 : 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static struct imap_conn *conn_over(struct fake *f, unsigned timeout_ms)
{
	struct imap_conn_opts o = { .host = "fake", .port = 143, .tls = IMAP_TLS_NONE,
				    .timeout_ms = timeout_ms };
	struct imap_conn *c = imap_conn_new(&o);
	const struct imap_resp *g;
	struct err e;

	cr_assert_eq(imap_conn_attach_fd(c, f->fd, &e), 0, "%s", e.msg);
	cr_assert_eq(imap_conn_greeting(c, &g, &e), 0, "%s", e.msg);
	cr_assert_eq(g->status, IMAP_STATUS_OK);
	return c;
}

static struct imap_cmd *submit(struct imap_conn *c, const char *text)
{
	struct imap_cmd_req req = { .text = text, .len = strlen(text) };
	struct err e;
	struct imap_cmd *cmd = imap_conn_submit(c, &req, &e);

	cr_assert_not_null(cmd, "%s", e.msg);
	return cmd;
}

#define GREETING "* OK ready\r\n"

/* ---- cuts, garbage, silence ------------------------------------------- */

Test(conn, cut_at_every_byte_of_a_response_is_a_clean_net_error)
{
	static const char resp[] = "* 3 EXISTS\r\n* 1 FETCH (BODY[] {5}\r\nhello)\r\nF1 OK done\r\n";
	size_t n;

	for (n = 0; n < sizeof(resp) - 1; n++) {
		struct step script[] = {
			{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 NOOP", 0, 0 },
			{ SEND, resp, 0, n }, { CLOSE, NULL, 0, 0 }, { END, NULL, 0, 0 },
		};
		struct fake f;
		struct imap_conn *c;
		struct imap_cmd *cmd;
		struct err e;

		if (n == 0)
			script[2] = (struct step){ SLEEP, NULL, 1, 0 };
		f = fake_start(script);
		c = conn_over(&f, 5000);
		cmd = submit(c, "NOOP");
		cr_assert_eq(imap_conn_wait(c, cmd, &e), -1, "cut at %zu: %s", n, e.msg);
		cr_assert_eq(e.code, ERR_NET, "cut at %zu: %s", n, e.msg);
		cr_assert(strstr(e.msg, "closed the connection") != NULL, "%s", e.msg);
		cr_assert_eq(imap_conn_state(c), IMAP_CONN_FAILED);
		imap_cmd_free(cmd);
		imap_conn_free(c);
		cr_assert_eq(fake_finish(&f, false), 0);
	}
}

Test(conn, malformed_response_is_a_protocol_error)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 NOOP", 0, 0 },
		{ SEND, "F1 OK [UNCLOSED\r\n\x01\x02 garbage\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd *cmd = submit(c, "NOOP");
	struct imap_cmd *cmd2 = submit(c, "NOOP");
	struct err e;

	cr_assert_eq(imap_conn_wait(c, cmd, &e), 0, "%s", e.msg);
	cr_assert_eq(imap_conn_wait(c, cmd2, &e), -1);
	cr_assert_eq(e.code, ERR_PROTO, "%s", e.msg);
	cr_assert_eq(imap_conn_error(c)->code, ERR_PROTO);
	imap_cmd_free(cmd);
	imap_cmd_free(cmd2);
	imap_conn_free(c);
	fake_finish(&f, true);
}

Test(conn, unknown_tag_is_a_protocol_error)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 NOOP", 0, 0 },
		{ SEND, "Z9 OK who?\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd *cmd = submit(c, "NOOP");
	struct err e;

	cr_assert_eq(imap_conn_wait(c, cmd, &e), -1);
	cr_assert_eq(e.code, ERR_PROTO, "%s", e.msg);
	imap_cmd_free(cmd);
	imap_conn_free(c);
	fake_finish(&f, true);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(conn, silent_server_times_out_within_the_bound)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 NOOP", 0, 0 }, { SLEEP, NULL, 8000, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 300);
	struct imap_cmd *cmd = submit(c, "NOOP");
	struct err e;
	double t0 = now_s(), dt;

	cr_assert_eq(imap_conn_wait(c, cmd, &e), -1);
	dt = now_s() - t0;
	cr_assert_eq(e.code, ERR_TIMEOUT, "%s", e.msg);
	cr_assert(e.retry);
	cr_assert(dt >= 0.25 && dt < 2.0, "timed out after %.3f s", dt);
	imap_cmd_free(cmd);
	imap_conn_free(c);
	fake_finish(&f, true);
}

Test(conn, silent_server_without_greeting_times_out)
{
	struct step script[] = { { SLEEP, NULL, 8000, 0 }, { END, NULL, 0, 0 } };
	struct fake f = fake_start(script);
	struct imap_conn_opts o = { .host = "fake", .tls = IMAP_TLS_NONE, .timeout_ms = 200 };
	struct imap_conn *c = imap_conn_new(&o);
	const struct imap_resp *g;
	struct err e;

	cr_assert_eq(imap_conn_attach_fd(c, f.fd, &e), 0);
	cr_assert_eq(imap_conn_greeting(c, &g, &e), -1);
	cr_assert_eq(e.code, ERR_TIMEOUT, "%s", e.msg);
	imap_conn_free(c);
	fake_finish(&f, true);
}

/* Something that is not an IMAP server answers: a connection failure (exit
 * 4), not a protocol error of a session (exit 1). */
Test(conn, garbage_instead_of_a_greeting_is_a_connection_failure)
{
	struct step script[] = { { SEND, "SSH-2.0-OpenSSH_9.2\r\n", 0, 0 }, { SLEEP, NULL, 300, 0 },
				 { END, NULL, 0, 0 } };
	struct fake f = fake_start(script);
	struct imap_conn_opts o = { .host = "fake", .tls = IMAP_TLS_NONE, .timeout_ms = 2000 };
	struct imap_conn *c = imap_conn_new(&o);
	const struct imap_resp *g;
	struct err e;

	cr_assert_eq(imap_conn_attach_fd(c, f.fd, &e), 0);
	cr_assert_eq(imap_conn_greeting(c, &g, &e), -1);
	cr_assert_eq(e.code, ERR_NET, "%s", e.msg);
	cr_assert_eq(err_exit_code(&e), 4);
	cr_assert(strstr(e.msg, "no IMAP greeting"), "%s", e.msg);
	imap_conn_free(c);
	fake_finish(&f, true);
}

/* ---- pipelining ------------------------------------------------------------ */

struct done_log {
	char order[8];
	size_t n;
};

static void note_done(void *ctx, struct imap_cmd *cmd)
{
	struct done_log *d = ctx;

	d->order[d->n++] = imap_cmd_tag(cmd)[1];
}

Test(conn, pipelined_commands_complete_by_tag_in_any_order)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 },
		{ EXPECT, "F1 NOOP", 0, 0 }, { EXPECT, "F2 CHECK", 0, 0 }, { EXPECT, "F3 FOO", 0, 0 },
		{ SEND, "F3 NO no such thing\r\n* 2 EXISTS\r\nF1 OK noop done\r\nF2 BAD what\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct done_log d = { { 0 }, 0 };
	const char *texts[3] = { "NOOP", "CHECK", "FOO" };
	struct imap_cmd *cmds[3];
	struct err e;
	int i;

	for (i = 0; i < 3; i++) {
		struct imap_cmd_req req = { .text = texts[i], .len = strlen(texts[i]),
					    .done = note_done, .ctx = &d };

		cmds[i] = imap_conn_submit(c, &req, &e);
		cr_assert_not_null(cmds[i]);
	}
	cr_assert_eq(imap_conn_pending(c), 3);
	/* Wait for the first: the others complete on the way. */
	cr_assert_eq(imap_conn_wait(c, cmds[0], &e), 0, "%s", e.msg);
	cr_assert_eq(imap_conn_wait(c, cmds[1], &e), -1);
	cr_assert_eq(e.code, ERR_SERVER);
	cr_assert(strstr(e.msg, "BAD") && strstr(e.msg, "what"), "%s", e.msg);
	cr_assert_eq(imap_conn_wait(c, cmds[2], &e), -1);
	cr_assert_eq(e.code, ERR_SERVER);
	cr_assert(strstr(e.msg, "no such thing"), "%s", e.msg);
	cr_assert_eq(imap_cmd_status(cmds[0]), IMAP_STATUS_OK);
	cr_assert_eq(imap_cmd_status(cmds[1]), IMAP_STATUS_BAD);
	cr_assert_eq(imap_cmd_status(cmds[2]), IMAP_STATUS_NO);
	cr_assert_eq(d.n, 3);
	cr_assert_eq(memcmp(d.order, "312", 3), 0, "order %.3s", d.order);
	cr_assert_eq(imap_conn_pending(c), 0);
	for (i = 0; i < 3; i++)
		imap_cmd_free(cmds[i]);
	imap_conn_free(c);
	fake_finish(&f, true);
}

struct untagged_log {
	int exists, fetch, other;
};

static int take_fetch(void *ctx, const struct imap_resp *r, struct err *e)
{
	struct untagged_log *u = ctx;

	if (r->name && strcmp(r->name, "FETCH") == 0) {
		u->fetch++;
		return 1;
	}
	return 0;
}

static int conn_level(void *ctx, const struct imap_resp *r, struct err *e)
{
	struct untagged_log *u = ctx;

	if (r->name && strcmp(r->name, "EXISTS") == 0)
		u->exists++;
	else
		u->other++;
	return 0;
}

Test(conn, untagged_responses_go_to_the_command_then_the_connection)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 FETCH", 0, 0 },
		{ SEND, "* 1 FETCH (UID 5)\r\n* 4 EXISTS\r\n* 2 FETCH (UID 6)\r\nF1 OK\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct untagged_log u = { 0, 0, 0 };
	struct imap_cmd_req req = { .text = "FETCH 1:* UID", .len = 13, .untagged = take_fetch,
				    .ctx = &u };
	struct imap_cmd *cmd;
	struct err e;

	imap_conn_set_untagged(c, conn_level, &u);
	cmd = imap_conn_submit(c, &req, &e);
	cr_assert_eq(imap_conn_wait(c, cmd, &e), 0, "%s", e.msg);
	cr_assert_eq(u.fetch, 2);
	cr_assert_eq(u.exists, 1);
	cr_assert_eq(u.other, 0);
	imap_cmd_free(cmd);
	imap_conn_free(c);
	fake_finish(&f, true);
}

/* A command is the oldest once every command sent before it has its answer. */
Test(conn, a_command_is_oldest_once_the_earlier_ones_are_answered)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 NOOP", 0, 0 }, { EXPECT, "F2 NOOP", 0, 0 },
		{ SEND, "F1 OK\r\n", 0, 0 }, { SLEEP, NULL, 300, 0 }, { SEND, "F2 OK\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd *a = submit(c, "NOOP");
	struct imap_cmd *b = submit(c, "NOOP");
	struct err e;

	cr_assert(imap_cmd_is_oldest(a));
	cr_assert(!imap_cmd_is_oldest(b), "F1 is still waiting");
	cr_assert_eq(imap_conn_wait(c, a, &e), 0, "%s", e.msg);
	cr_assert(!imap_cmd_is_oldest(a), "a done command is not waiting");
	cr_assert(!imap_cmd_is_done(b), "F2 OK came early");
	cr_assert(imap_cmd_is_oldest(b));
	cr_assert_eq(imap_conn_wait(c, b, &e), 0, "%s", e.msg);
	cr_assert(!imap_cmd_is_oldest(b));
	imap_cmd_free(a);
	imap_cmd_free(b);
	imap_conn_free(c);
	fake_finish(&f, true);
}

Test(conn, bye_with_commands_in_flight_fails_them_with_the_reason)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 NOOP", 0, 0 }, { EXPECT, "F2 NOOP", 0, 0 },
		{ SEND, "F1 OK\r\n* BYE server shutting down\r\n", 0, 0 }, { CLOSE, NULL, 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd *a = submit(c, "NOOP");
	struct imap_cmd *b = submit(c, "NOOP");
	struct err e;

	cr_assert_eq(imap_conn_wait(c, a, &e), 0, "%s", e.msg);
	cr_assert_eq(imap_conn_wait(c, b, &e), -1);
	cr_assert_eq(e.code, ERR_NET, "%s", e.msg);
	cr_assert(strstr(e.msg, "server shutting down") != NULL, "%s", e.msg);
	cr_assert_str_eq(imap_conn_bye_text(c), "server shutting down");
	imap_cmd_free(a);
	imap_cmd_free(b);
	imap_conn_free(c);
	cr_assert_eq(fake_finish(&f, false), 0);
}

Test(conn, logout_bye_then_close_is_clean)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 LOGOUT", 0, 0 },
		{ SEND, "* BYE bye\r\nF1 OK logged out\r\n", 0, 0 }, { CLOSE, NULL, 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd *cmd = submit(c, "LOGOUT");
	struct err e;
	struct pollfd p;

	cr_assert_eq(imap_conn_wait(c, cmd, &e), 0, "%s", e.msg);
	/* The close may already have been seen; if not, one poll step sees it. */
	if (imap_conn_state(c) != IMAP_CONN_CLOSED) {
		p.fd = imap_conn_fd(c);
		p.events = imap_conn_events(c);
		cr_assert_eq(poll(&p, 1, 2000), 1);
		cr_assert_eq(imap_conn_process(c, p.revents, &e), 0, "%s", e.msg);
	}
	cr_assert_eq(imap_conn_state(c), IMAP_CONN_CLOSED);
	cr_assert_null(imap_conn_error(c));
	imap_cmd_free(cmd);
	imap_conn_free(c);
	cr_assert_eq(fake_finish(&f, false), 0);
}

/* ---- literals and continuations -------------------------------------------- */

Test(conn, synchronising_literal_waits_for_continuation)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 APPEND INBOX {5}\r\n", 0, 0 },
		{ QUIET, NULL, 200, 0 },        /* nothing more before "+" */
		{ SEND, "+ go ahead\r\n", 0, 0 }, { READ, "hello (x)\r\n", 0, 0 },
		{ EXPECT, "F2 NOOP", 0, 0 },
		{ SEND, "F1 OK [APPENDUID 1 9] done\r\nF2 OK\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd *a = submit(c, "APPEND INBOX {5}\r\nhello (x)");
	struct imap_cmd *b = submit(c, "NOOP");
	struct err e;

	cr_assert_eq(imap_conn_wait(c, a, &e), 0, "%s", e.msg);
	cr_assert_str_eq(imap_cmd_response(a)->code, "APPENDUID");
	cr_assert_eq(imap_conn_wait(c, b, &e), 0, "%s", e.msg);
	imap_cmd_free(a);
	imap_cmd_free(b);
	imap_conn_free(c);
	cr_assert_eq(fake_finish(&f, true), 0);
}

Test(conn, literal_plus_sends_everything_at_once)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 APPEND INBOX {5+}\r\n", 0, 0 },
		{ READ, "hello\r\n", 0, 0 }, { SEND, "F1 OK\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd *a;
	struct err e;

	imap_conn_set_literal_mode(c, IMAP_LITERAL_PLUS);
	a = submit(c, "APPEND INBOX {5}\r\nhello");
	cr_assert_eq(imap_conn_wait(c, a, &e), 0, "%s", e.msg);
	imap_cmd_free(a);
	imap_conn_free(c);
	cr_assert_eq(fake_finish(&f, true), 0);
}

Test(conn, rejected_synchronising_literal_drops_the_rest)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 APPEND INBOX {5}", 0, 0 },
		{ EXPECT, "F2 NOOP", 0, 0 },    /* sent only after F1 is answered */
		{ SEND, "F2 OK\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct step script2[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 APPEND INBOX {5}", 0, 0 },
		{ SEND, "F1 NO [OVERQUOTA] too big\r\n", 0, 0 },
		{ EXPECT, "F2 NOOP", 0, 0 }, { SEND, "F2 OK\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script2);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd *a = submit(c, "APPEND INBOX {5}\r\nhello");
	struct imap_cmd *b = submit(c, "NOOP");
	struct err e;

	(void)script;
	cr_assert_eq(imap_conn_wait(c, a, &e), -1);
	cr_assert_eq(e.code, ERR_SERVER);
	cr_assert(strstr(e.msg, "OVERQUOTA") != NULL, "%s", e.msg);
	cr_assert_eq(imap_conn_wait(c, b, &e), 0, "%s", e.msg);
	imap_cmd_free(a);
	imap_cmd_free(b);
	imap_conn_free(c);
	cr_assert_eq(fake_finish(&f, true), 0);
}

Test(conn, malformed_command_text_is_refused)
{
	struct step script[] = { { SEND, GREETING, 0, 0 }, { END, NULL, 0, 0 } };
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd_req bad1 = { .text = "NOOP\r\nNOOP", .len = 10 };
	struct imap_cmd_req bad2 = { .text = "APPEND X {50}\r\nshort", .len = 20 };
	struct err e;

	cr_assert_null(imap_conn_submit(c, &bad1, &e));
	cr_assert_eq(e.code, ERR_INTERNAL);
	cr_assert_null(imap_conn_submit(c, &bad2, &e));
	cr_assert_eq(imap_conn_pending(c), 0);
	imap_conn_free(c);
	fake_finish(&f, true);
}

Test(conn, data_after_starttls_ok_is_refused_as_injection)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 STARTTLS", 0, 0 },
		{ SEND, "F1 OK begin TLS\r\n* OK injected\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd_req req = { .text = "STARTTLS", .len = 8, .flags = IMAP_CMD_SWITCH };
	struct imap_cmd *cmd = imap_conn_submit(c, &req, NULL);
	struct err e;

	cr_assert_eq(imap_conn_wait(c, cmd, &e), 0, "%s", e.msg);
	usleep(100 * 1000);
	cr_assert_eq(imap_conn_start_tls(c, &e), -1);
	cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);       /* exit 4: a TLS failure */
	imap_cmd_free(cmd);
	imap_conn_free(c);
	fake_finish(&f, true);
}

/* ---- the trace -------------------------------------------------------------- */

/* Send stderr to a file for the duration of a test; returns what was written. */
struct capture {
	int saved;
	FILE *f;
};

static struct capture capture_start(void)
{
	struct capture cap;

	fflush(stderr);
	cap.f = tmpfile();
	cr_assert_not_null(cap.f);
	cap.saved = dup(2);
	dup2(fileno(cap.f), 2);
	return cap;
}

static char *capture_end(struct capture *cap)
{
	long n;
	char *text;

	fflush(stderr);
	dup2(cap->saved, 2);
	close(cap->saved);
	n = ftell(cap->f);
	text = xcalloc(1, (size_t)n + 1);
	rewind(cap->f);
	cr_assert_eq(fread(text, 1, (size_t)n, cap->f), (size_t)n);
	fclose(cap->f);
	return text;
}

static int answer_cont(void *ctx, const struct imap_resp *r, struct buf *answer, struct err *e)
{
	(void)ctx;
	(void)r;
	return buf_adds(answer, "AHVzZXIAU2VjcmV0QW5zd2Vy", e); /* base64 of \0user\0SecretAnswer */
}

Test(conn, trace_redacts_credentials_and_elides_literals)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 },
		{ EXPECT, "F1 LOGIN alice Hunter2pw", 0, 0 }, { SEND, "F1 NO nope\r\n", 0, 0 },
		{ EXPECT, "F2 AUTHENTICATE PLAIN", 0, 0 }, { SEND, "+ \r\n", 0, 0 },
		{ EXPECT, "AHVzZXIAU2VjcmV0QW5zd2Vy", 0, 0 }, { SEND, "F2 OK\r\n", 0, 0 },
		{ EXPECT, "F3 APPEND INBOX {16}", 0, 0 }, { SEND, "+ ok\r\n", 0, 0 },
		{ READ, "ClientBodyBytes!\r\n", 0, 0 },
		{ SEND, "* 1 FETCH (BODY[] {16}\r\nServerBodyBytes!)\r\nF3 OK\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd_req auth = { .text = "AUTHENTICATE PLAIN", .len = 18,
				     .flags = IMAP_CMD_SECRET, .public_len = 18,
				     .cont = answer_cont };
	struct imap_cmd *a, *b, *d;
	struct capture cap;
	struct err e;
	char *out;

	log_set_level(LOG_DEBUG);
	cap = capture_start();
	a = submit(c, "LOGIN alice Hunter2pw");     /* not flagged: LOGIN is forced secret */
	imap_conn_wait(c, a, &e);
	b = imap_conn_submit(c, &auth, &e);
	imap_conn_wait(c, b, &e);
	d = submit(c, "APPEND INBOX {16}\r\nClientBodyBytes!");
	imap_conn_wait(c, d, &e);
	out = capture_end(&cap);
	log_set_level(LOG_NOTICE);

	cr_assert_null(strstr(out, "Hunter2pw"), "%s", out);
	cr_assert_null(strstr(out, "alice"), "%s", out);
	cr_assert_null(strstr(out, "AHVzZXIAU2VjcmV0QW5zd2Vy"), "%s", out);
	cr_assert_null(strstr(out, "ClientBodyBytes"), "%s", out);
	cr_assert_null(strstr(out, "ServerBodyBytes"), "%s", out);
	cr_assert_not_null(strstr(out, "C: F1 LOGIN [redacted]"), "%s", out);
	cr_assert_not_null(strstr(out, "C: F2 AUTHENTICATE PLAIN [redacted]"), "%s", out);
	cr_assert_not_null(strstr(out, "C: [redacted]\n"), "%s", out);
	cr_assert_null(strstr(out, "24 bytes"), "%s", out);
	cr_assert_not_null(strstr(out, "C: F3 APPEND INBOX {16}"), "%s", out);
	cr_assert_not_null(strstr(out, "C: [literal, 16 bytes]"), "%s", out);
	cr_assert_not_null(strstr(out, "S: * 1 FETCH (BODY[] {16}"), "%s", out);
	cr_assert_not_null(strstr(out, "S: [literal, 16 bytes]"), "%s", out);
	cr_assert_not_null(strstr(out, "S: F1 NO nope"), "%s", out);
	free(out);
	imap_cmd_free(a);
	imap_cmd_free(b);
	imap_cmd_free(d);
	imap_conn_free(c);
	cr_assert_eq(fake_finish(&f, true), 0);
}

Test(conn, trace_hides_even_the_length_of_a_secret_literal)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 LOGIN alice {9}", 0, 0 },
		{ SEND, "+ go\r\n", 0, 0 }, { READ, "pa\"ss wd!\r\n", 0, 0 },
		{ SEND, "F1 OK\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd *a;
	struct capture cap;
	struct err e;
	char *out;

	log_set_level(LOG_DEBUG);
	cap = capture_start();
	a = submit(c, "LOGIN alice {9}\r\npa\"ss wd!");
	cr_assert_eq(imap_conn_wait(c, a, &e), 0, "%s", e.msg);
	out = capture_end(&cap);
	log_set_level(LOG_NOTICE);
	cr_assert_null(strstr(out, "pa\"ss"), "%s", out);
	cr_assert_null(strstr(out, "{9}"), "%s", out);
	cr_assert_null(strstr(out, "9 bytes"), "%s", out);
	cr_assert_not_null(strstr(out, "C: F1 LOGIN [redacted]"), "%s", out);
	free(out);
	imap_cmd_free(a);
	imap_conn_free(c);
	cr_assert_eq(fake_finish(&f, true), 0);
}

/* ---- the client over a fake server: what Dovecot will not do ---------------- */

static int give_password(void *ctx, enum imap_secret_kind kind, struct buf *out, struct err *e)
{
	int *calls = ctx;

	(*calls)++;
	return buf_adds(out, "Sw0rdfish", e);
}

Test(conn, client_auth_refusal_is_auth_error_and_secret_fetched_once)
{
	struct step script[] = {
		{ SEND, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n", 0, 0 },
		{ EXPECT, "F1 AUTHENTICATE PLAIN", 0, 0 }, { SEND, "+ \r\n", 0, 0 },
		{ EXPECT, "AGFsaWNlAFN3MHJkZmlzaA==", 0, 0 },
		{ SEND, "F1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	int calls = 0;
	struct imap_client_opts o = {
		.conn = { .host = "fake", .tls = IMAP_TLS_NONE, .timeout_ms = 5000 },
		.user = "alice", .have_password = true, .get_secret = give_password,
		.secret_ctx = &calls,
	};
	struct imap_client *cl = imap_client_new(&o);
	struct err e;

	cr_assert_eq(imap_client_attach_fd(cl, f.fd, &e), 0, "%s", e.msg);
	cr_assert_eq(calls, 0);
	cr_assert_eq(imap_client_login(cl, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "Authentication failed."), "%s", e.msg);
	cr_assert_null(strstr(e.msg, "Sw0rdfish"), "%s", e.msg);
	cr_assert_eq(calls, 1);
	imap_client_free(cl);
	cr_assert_eq(fake_finish(&f, true), 0);
}

struct early_log {
	int calls;
	double at;
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note_early(void *ctx)
{
	struct early_log *l = ctx;

	l->calls++;
	l->at = mono_s();
}

/* secret_early runs once connected, while the server has not greeted yet. */
Test(conn, client_calls_secret_early_before_the_greeting_arrives)
{
	struct step script[] = {
		{ SLEEP, NULL, 400, 0 }, { SEND, "* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct early_log l = { 0, 0 };
	struct imap_client_opts o = {
		.conn = { .host = "fake", .tls = IMAP_TLS_NONE, .timeout_ms = 5000 },
		.user = "alice", .have_password = true, .secret_early = note_early, .secret_ctx = &l,
	};
	struct imap_client *cl = imap_client_new(&o);
	double greeted;
	struct err e;

	cr_assert_eq(imap_client_attach_fd(cl, f.fd, &e), 0, "%s", e.msg);
	greeted = mono_s();
	cr_assert_eq(l.calls, 1);
	cr_assert_gt(greeted - l.at, 0.25, "secret_early ran only %.3f s before the greeting was read",
		     greeted - l.at);
	imap_client_free(cl);
	fake_finish(&f, true);
}

Test(conn, client_starttls_not_offered_is_a_tls_error)
{
	struct step script[] = {
		{ SEND, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_client_opts o = {
		.conn = { .host = "fake", .tls = IMAP_TLS_STARTTLS, .timeout_ms = 5000 },
		.user = "alice",
	};
	struct imap_client *cl = imap_client_new(&o);
	struct err e;

	cr_assert_eq(imap_client_attach_fd(cl, f.fd, &e), -1);
	cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "does not offer STARTTLS"), "%s", e.msg);
	imap_client_free(cl);
	fake_finish(&f, true);
}

Test(conn, client_starttls_after_preauth_is_a_tls_error)
{
	struct step script[] = {
		{ SEND, "* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_client_opts o = {
		.conn = { .host = "fake", .tls = IMAP_TLS_STARTTLS, .timeout_ms = 5000 },
		.user = "alice",
	};
	struct imap_client *cl = imap_client_new(&o);
	struct err e;

	cr_assert_eq(imap_client_attach_fd(cl, f.fd, &e), -1);
	cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);
	imap_client_free(cl);
	fake_finish(&f, true);
}

Test(conn, client_refuses_cleartext_credentials_to_a_remote_peer_without_tls)
{
	struct step script[] = {
		{ SEND, "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2] hi\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	int calls = 0;
	struct imap_client_opts o = {
		.conn = { .host = "fake", .tls = IMAP_TLS_NONE, .timeout_ms = 5000,
			  .assume_remote_peer = true },
		.user = "alice", .have_password = true, .have_token = true,
		.get_secret = give_password, .secret_ctx = &calls,
	};
	struct imap_client *cl = imap_client_new(&o);
	struct err e;

	cr_assert_eq(imap_client_attach_fd(cl, f.fd, &e), 0, "%s", e.msg);
	cr_assert_eq(imap_client_login(cl, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "plain text"), "%s", e.msg);
	cr_assert_eq(calls, 0, "the secret was fetched although it could not be used");
	imap_client_free(cl);
	fake_finish(&f, true);
}

Test(conn, client_uses_scram_to_a_remote_peer_without_tls)
{
	/* SCRAM never sends the password: allowed without TLS.  The fake server
	 * cannot finish SCRAM, so it refuses; what matters is the choice. */
	struct step script[] = {
		{ SEND, "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=SCRAM-SHA-1] hi\r\n", 0, 0 },
		{ EXPECT, "F1 AUTHENTICATE SCRAM-SHA-1 ", 0, 0 },
		{ SEND, "F1 NO [AUTHENTICATIONFAILED] nope\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	int calls = 0;
	struct imap_client_opts o = {
		.conn = { .host = "fake", .tls = IMAP_TLS_NONE, .timeout_ms = 5000,
			  .assume_remote_peer = true },
		.user = "alice", .have_password = true,
		.get_secret = give_password, .secret_ctx = &calls,
	};
	struct imap_client *cl = imap_client_new(&o);
	struct err e;

	cr_assert_eq(imap_client_attach_fd(cl, f.fd, &e), 0, "%s", e.msg);
	cr_assert_eq(imap_client_login(cl, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH, "%s", e.msg);
	cr_assert_eq(imap_client_mech(cl), IMAP_AUTH_SCRAM_SHA_1);
	cr_assert_eq(calls, 1);
	imap_client_free(cl);
	cr_assert_eq(fake_finish(&f, true), 0);
}

Test(conn, client_honours_logindisabled)
{
	struct step script[] = {
		{ SEND, "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] hi\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	int calls = 0;
	static const enum imap_auth_mech only_login[] = { IMAP_AUTH_LOGIN };
	struct imap_client_opts o = {
		.conn = { .host = "fake", .tls = IMAP_TLS_NONE, .timeout_ms = 5000 },
		.user = "alice", .have_password = true, .mechs = only_login, .nmechs = 1,
		.get_secret = give_password, .secret_ctx = &calls,
	};
	struct imap_client *cl = imap_client_new(&o);
	struct err e;

	cr_assert_eq(imap_client_attach_fd(cl, f.fd, &e), 0, "%s", e.msg);
	cr_assert_eq(imap_client_login(cl, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "none of the allowed"), "%s", e.msg);
	cr_assert_eq(calls, 0);
	imap_client_free(cl);
	fake_finish(&f, true);
}

Test(conn, client_namespace_without_the_extension_asks_list_for_the_delimiter)
{
	struct step script[] = {
		{ SEND, "* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n", 0, 0 },
		{ EXPECT, "F1 LIST \"\" \"\"\r\n", 0, 0 },
		{ SEND, "* LIST (\\Noselect) \".\" \"\"\r\nF1 OK done\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_client_opts o = {
		.conn = { .host = "fake", .tls = IMAP_TLS_NONE, .timeout_ms = 5000 },
		.user = "alice",
	};
	struct imap_client *cl = imap_client_new(&o);
	const char *prefix;
	char delim = 0;
	struct err e;

	cr_assert_eq(imap_client_attach_fd(cl, f.fd, &e), 0, "%s", e.msg);
	cr_assert_eq(imap_client_state(cl), IMAP_CLIENT_AUTHENTICATED);
	cr_assert_eq(imap_client_namespace(cl, &prefix, &delim, &e), 0, "%s", e.msg);
	cr_assert_str_eq(prefix, "");
	cr_assert_eq(delim, '.');
	imap_client_free(cl);
	cr_assert_eq(fake_finish(&f, true), 0);
}

/* ---- big literals, streamed literals -------------------------------------- */

Test(conn, large_synchronising_literal_goes_out_whole_after_continuation)
{
	size_t n = 3u * 1024 * 1024 + 17, i;
	char *body = xmalloc(n + 3);
	char *text;
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 APPEND INBOX {3145745}", 0, 0 },
		{ QUIET, NULL, 100, 0 }, { SEND, "+ ok\r\n", 0, 0 },
		{ READ, NULL, 0, 0 }, { SEND, "F1 OK stored\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f;
	struct imap_conn *c;
	struct imap_cmd_req req;
	struct imap_cmd *cmd;
	struct err e;

	for (i = 0; i < n; i++)
		body[i] = (char)('a' + i % 26);
	memcpy(body + n, "\r\n", 3);
	script[4].data = body;
	script[4].len = n + 2;
	f = fake_start(script);
	c = conn_over(&f, 5000);
	text = xasprintf("APPEND INBOX {%zu}\r\n%.*s", n, (int)n, body);
	req = (struct imap_cmd_req){ .text = text, .len = strlen(text) };
	cmd = imap_conn_submit(c, &req, &e);
	cr_assert_not_null(cmd, "%s", e.msg);
	cr_assert_eq(imap_conn_wait(c, cmd, &e), 0, "%s", e.msg);
	imap_cmd_free(cmd);
	imap_conn_free(c);
	cr_assert_eq(fake_finish(&f, true), 0);
	free(text);
	free(body);
}

struct sink_log {
	struct buf got;
	int begins, ends;
};

static int sink_begin(void *ctx, const struct imap_literal_info *info,
		      enum imap_sink_choice *choice_out, void **handle_out, struct err *e)
{
	struct sink_log *s = ctx;

	s->begins++;
	*choice_out = info->prev_atom && strcmp(info->prev_atom, "BODY[]") == 0 ? IMAP_SINK_STREAM
										: IMAP_SINK_MEMORY;
	*handle_out = s;
	return 0;
}

static int sink_data(void *ctx, void *handle, const char *bytes, size_t len, struct err *e)
{
	struct sink_log *s = handle;

	return buf_add(&s->got, bytes, len, e);
}

static int sink_end(void *ctx, void *handle, struct err *e)
{
	((struct sink_log *)handle)->ends++;
	return 0;
}

static void sink_abort(void *ctx, void *handle)
{
}

static int fetch_body_kind(void *ctx, const struct imap_resp *r, struct err *e)
{
	const struct imap_arg *body;

	if (r->name == NULL || strcmp(r->name, "FETCH") != 0 || r->nargs < 1)
		return 0;
	body = imap_fetch_item(&r->args[0], "BODY[]");
	*(int *)ctx = body ? (int)body->type : -1;
	return 1;
}

Test(conn, literal_sink_receives_message_bodies_through_the_connection)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 FETCH 1 BODY[]", 0, 0 },
		{ SEND, "* 1 FETCH (UID 7 BODY[] {11}\r\nhello world)\r\nF1 OK\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct sink_log log = { BUF_INIT(1024), 0, 0 };
	struct imap_literal_sink sink = { &log, sink_begin, sink_data, sink_end, sink_abort };
	struct imap_conn_opts o = { .host = "fake", .tls = IMAP_TLS_NONE, .timeout_ms = 5000,
				    .sink = &sink };
	struct imap_conn *c = imap_conn_new(&o);
	const struct imap_resp *g;
	int kind = -2;
	struct imap_cmd_req req = { .text = "FETCH 1 BODY[]", .len = 14,
				    .untagged = fetch_body_kind, .ctx = &kind };
	struct imap_cmd *cmd;
	struct err e;

	cr_assert_eq(imap_conn_attach_fd(c, f.fd, &e), 0);
	cr_assert_eq(imap_conn_greeting(c, &g, &e), 0);
	cmd = imap_conn_submit(c, &req, &e);
	cr_assert_eq(imap_conn_wait(c, cmd, &e), 0, "%s", e.msg);
	cr_assert_eq(kind, IMAP_ARG_LITERAL_STREAMED);
	cr_assert_str_eq(buf_cstr(&log.got), "hello world");
	cr_assert_eq(log.ends, 1);
	buf_release(&log.got);
	imap_cmd_free(cmd);
	imap_conn_free(c);
	fake_finish(&f, true);
}

/* ---- real sockets: refused, silent TLS peer ------------------------------------ */

#include <netinet/in.h>

/* A listening TCP socket on 127.0.0.1 with a free port. */
static int listen_loopback(unsigned *port_out)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 4), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port_out = ntohs(a.sin_port);
	return fd;
}

Test(conn, connection_refused_is_a_net_error)
{
	unsigned port;
	int lfd = listen_loopback(&port);
	struct imap_conn_opts o = { .host = "127.0.0.1", .tls = IMAP_TLS_NONE, .timeout_ms = 2000 };
	struct imap_conn *c;
	struct err e;

	close(lfd);     /* nothing listens there now */
	o.port = port;
	c = imap_conn_new(&o);
	cr_assert_eq(imap_conn_connect(c, &e), -1);
	cr_assert_eq(e.code, ERR_NET, "%s", e.msg);
	cr_assert(e.retry);
	cr_assert_eq(err_exit_code(&e), 4);
	imap_conn_free(c);
}

Test(conn, unresolvable_host_is_a_net_error)
{
	struct imap_conn_opts o = { .host = "no-such-host.invalid", .port = 993,
				    .tls = IMAP_TLS_NONE, .timeout_ms = 2000 };
	struct imap_conn *c = imap_conn_new(&o);
	struct err e;

	cr_assert_eq(imap_conn_connect(c, &e), -1);
	cr_assert_eq(e.code, ERR_NET, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "no-such-host.invalid"), "%s", e.msg);
	imap_conn_free(c);
}

Test(conn, silent_peer_during_tls_handshake_times_out)
{
	unsigned port;
	int lfd = listen_loopback(&port);   /* accepts (backlog) and never speaks */
	struct imap_conn_opts o = { .host = "127.0.0.1", .port = 0, .tls = IMAP_TLS_IMPLICIT,
				    .timeout_ms = 300 };
	struct imap_conn *c;
	struct err e;
	double t0 = now_s(), dt;

	o.port = port;
	c = imap_conn_new(&o);
	cr_assert_eq(imap_conn_connect(c, &e), -1);
	dt = now_s() - t0;
	cr_assert_eq(e.code, ERR_TIMEOUT, "%s", e.msg);
	cr_assert(dt >= 0.25 && dt < 2.0, "after %.3f s", dt);
	imap_conn_free(c);
	close(lfd);
}

Test(conn, garbage_instead_of_tls_is_a_tls_error)
{
	struct step script[] = {
		{ SEND, "* OK this is not TLS at all, just plain IMAP text\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	unsigned port;
	int lfd = listen_loopback(&port);
	pid_t pid = fork();
	struct imap_conn_opts o = { .host = "127.0.0.1", .tls = IMAP_TLS_IMPLICIT,
				    .timeout_ms = 3000 };
	struct imap_conn *c;
	struct err e;
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			_exit(1);
		run_script(fd, script);
	}
	o.port = port;
	c = imap_conn_new(&o);
	cr_assert_eq(imap_conn_connect(c, &e), -1);
	cr_assert_eq(e.code, ERR_TLS, "%s", e.msg);
	imap_conn_free(c);
	close(lfd);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* ---- several connections, one poll() loop ---------------------------------------- */

Test(conn, two_connections_progress_in_one_poll_loop)
{
	/* Server 1 answers only after a second command, which the loop sends
	 * once server 2 has answered: so the loop must serve connection 2
	 * while connection 1 waits. */
	struct step s1[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 NOOP", 0, 0 }, { EXPECT, "F2 NOOP", 0, 0 },
		{ SEND, "F1 OK one\r\nF2 OK\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct step s2[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 CHECK", 0, 0 },
		{ SEND, "F1 OK two\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f1 = fake_start(s1), f2 = fake_start(s2);
	struct imap_conn *c[2] = { conn_over(&f1, 5000), conn_over(&f2, 5000) };
	struct imap_cmd *cmd[2] = { submit(c[0], "NOOP"), submit(c[1], "CHECK") };
	struct imap_cmd *second = NULL;
	struct err e;
	int rounds = 0, i;

	while (!imap_cmd_is_done(cmd[0])) {
		struct pollfd p[2];
		int timeout = -1;

		cr_assert_lt(++rounds, 1000);
		for (i = 0; i < 2; i++)
			cr_assert_eq(imap_conn_process(c[i], 0, &e), 0, "%s", e.msg);
		if (imap_cmd_is_done(cmd[0]))
			break;
		if (second == NULL && imap_cmd_is_done(cmd[1])) {
			second = submit(c[0], "NOOP");
			continue;       /* process again before deciding to sleep */
		}
		for (i = 0; i < 2; i++) {
			int t = imap_conn_poll_timeout(c[i]);

			p[i].fd = imap_conn_fd(c[i]);
			p[i].events = imap_conn_events(c[i]);
			p[i].revents = 0;
			if (t >= 0 && (timeout < 0 || t < timeout))
				timeout = t;
		}
		cr_assert_geq(poll(p, 2, timeout), 0);
		for (i = 0; i < 2; i++)
			if (p[i].revents)
				cr_assert_eq(imap_conn_process(c[i], p[i].revents, &e), 0, "%s", e.msg);
	}
	cr_assert_not_null(second);
	cr_assert_str_eq(imap_cmd_response(cmd[0])->text, "one");
	cr_assert_str_eq(imap_cmd_response(cmd[1])->text, "two");
	cr_assert_eq(imap_conn_wait(c[0], second, &e), 0, "%s", e.msg);
	imap_cmd_free(second);
	for (i = 0; i < 2; i++) {
		imap_cmd_free(cmd[i]);
		imap_conn_free(c[i]);
	}
	fake_finish(&f1, true);
	fake_finish(&f2, true);
}

/* ---- AUTHENTICATE cancelled by the client --------------------------------------- */

Test(conn, client_cancels_authenticate_on_a_bad_challenge)
{
	struct step script[] = {
		{ SEND, "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=SCRAM-SHA-1] hi\r\n", 0, 0 },
		{ EXPECT, "F1 AUTHENTICATE SCRAM-SHA-1 ", 0, 0 },
		{ SEND, "+ Z2FyYmFnZQ==\r\n", 0, 0 },          /* "garbage": not a server-first */
		{ EXPECT, "*\r\n", 0, 0 },
		{ SEND, "F1 BAD Authentication canceled\r\n", 0, 0 },
		{ EXPECT, "F2 NOOP", 0, 0 }, { SEND, "F2 OK\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	int calls = 0;
	struct imap_client_opts o = {
		.conn = { .host = "fake", .tls = IMAP_TLS_NONE, .timeout_ms = 5000 },
		.user = "alice", .have_password = true,
		.get_secret = give_password, .secret_ctx = &calls,
	};
	struct imap_client *cl = imap_client_new(&o);
	struct imap_cmd *noop;
	struct err e;

	cr_assert_eq(imap_client_attach_fd(cl, f.fd, &e), 0, "%s", e.msg);
	cr_assert_eq(imap_client_login(cl, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH, "%s", e.msg);
	cr_assert_null(strstr(e.msg, "Sw0rdfish"), "%s", e.msg);
	/* The exchange was cancelled cleanly: the connection still works. */
	noop = submit(imap_client_conn(cl), "NOOP");
	cr_assert_eq(imap_conn_wait(imap_client_conn(cl), noop, &e), 0, "%s", e.msg);
	imap_cmd_free(noop);
	imap_client_free(cl);
	cr_assert_eq(fake_finish(&f, true), 0);
}

/* ---- streamed literals (uploads not held in memory) ---------------------------- */

struct pattern_source {
	uint64_t left;      /* bytes still to give */
	uint64_t pos;
	uint64_t stop_at;   /* give up (return 0) here; UINT64_MAX: never */
	size_t max_read;    /* largest single read seen */
};

static ssize_t pattern_read(void *ctx, char *buf, size_t n, struct err *e)
{
	struct pattern_source *ps = ctx;
	size_t i;

	if (ps->pos >= ps->stop_at)
		return 0;
	if (n > ps->left)
		n = (size_t)ps->left;
	if (n > ps->stop_at - ps->pos)
		n = (size_t)(ps->stop_at - ps->pos);
	for (i = 0; i < n; i++)
		buf[i] = (char)('A' + (ps->pos + i) % 23);
	ps->pos += n;
	ps->left -= n;
	if (n > ps->max_read)
		ps->max_read = n;
	return (ssize_t)n;
}

static char *pattern_bytes(size_t n)
{
	char *p = xmalloc(n + 3);
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (char)('A' + i % 23);
	memcpy(p + n, "\r\n", 3);
	return p;
}

/* Submit req in literal mode `mode` to a fake server playing script; it must succeed. */
static void run_against_script(const struct step *script, enum imap_literal_mode mode,
			       const struct imap_cmd_req *req)
{
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct imap_cmd *cmd;
	struct err e;

	imap_conn_set_literal_mode(c, mode);
	cmd = imap_conn_submit(c, req, &e);
	cr_assert_not_null(cmd, "%s", e.msg);
	cr_assert_eq(imap_conn_wait(c, cmd, &e), 0, "%s", e.msg);
	imap_cmd_free(cmd);
	imap_conn_free(c);
	cr_assert_eq(fake_finish(&f, true), 0);
}

static void streamed_append(enum imap_literal_mode mode, const char *announce)
{
	size_t n = 2u * 1024 * 1024 + 3;
	char *want = pattern_bytes(n);
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, announce, 0, 0 }, { QUIET, NULL, 100, 0 },
		{ SEND, "+ ok\r\n", 0, 0 }, { READ, want, 0, n + 2 },
		{ SEND, "F1 OK [APPENDUID 5 6] done\r\n", 0, 0 }, { END, NULL, 0, 0 },
	};
	struct pattern_source ps = { n, 0, UINT64_MAX, 0 };
	struct imap_literal_source src = { n, pattern_read, &ps };
	struct imap_cmd_req req = { .text = "APPEND INBOX (\\Seen) ", .len = 21, .source = &src };

	if (mode == IMAP_LITERAL_PLUS)
		script[2] = script[3] = (struct step){ SLEEP, NULL, 0, 0 };   /* no "+" */
	run_against_script(script, mode, &req);
	cr_assert_eq(ps.left, 0);
	cr_assert_leq(ps.max_read, 256u * 1024, "read %zu bytes at once", ps.max_read);
	free(want);
}

Test(conn, streamed_literal_waits_for_continuation_and_is_read_in_pieces)
{
	streamed_append(IMAP_LITERAL_SYNC, "F1 APPEND INBOX (\\Seen) {2097155}\r\n");
}

Test(conn, streamed_literal_with_literal_plus_goes_at_once)
{
	streamed_append(IMAP_LITERAL_PLUS, "F1 APPEND INBOX (\\Seen) {2097155+}\r\n");
}

/*
 * MULTIAPPEND's shape: two streamed literals with text between them, each
 * announced in turn; without LITERAL+ each waits for its own "+".
 */
static void two_streamed_literals(enum imap_literal_mode mode, const char *first, const char *second)
{
	size_t n1 = 100, n2 = 70000;
	char *want1 = pattern_bytes(n1), *want2 = pattern_bytes(n2);
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, first, 0, 0 }, { SEND, "+ ok\r\n", 0, 0 },
		{ READ, want1, 0, n1 }, { EXPECT, second, 0, 0 }, { SEND, "+ ok\r\n", 0, 0 },
		{ READ, want2, 0, n2 + 2 }, { SEND, "F1 OK [APPENDUID 5 6:7] done\r\n", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct pattern_source ps[2] = { { n1, 0, UINT64_MAX, 0 }, { n2, 0, UINT64_MAX, 0 } };
	struct imap_literal_source src[2] = { { n1, pattern_read, &ps[0] },
					       { n2, pattern_read, &ps[1] } };
	const char *const between[] = { " (\\Flagged) " };
	struct imap_cmd_req req = { .text = "APPEND INBOX (\\Seen) ", .len = 21, .source = src,
				    .nsources = 2, .between = between };

	if (mode == IMAP_LITERAL_PLUS)
		script[2] = script[5] = (struct step){ SLEEP, NULL, 0, 0 };   /* no "+" */
	run_against_script(script, mode, &req);
	cr_assert_eq(ps[0].left, 0);
	cr_assert_eq(ps[1].left, 0);
	free(want1);
	free(want2);
}

Test(conn, two_streamed_literals_each_wait_for_their_continuation)
{
	two_streamed_literals(IMAP_LITERAL_SYNC, "F1 APPEND INBOX (\\Seen) {100}", " (\\Flagged) {70000}");
}

Test(conn, two_streamed_literals_with_literal_plus_go_at_once)
{
	two_streamed_literals(IMAP_LITERAL_PLUS, "F1 APPEND INBOX (\\Seen) {100+}",
			      " (\\Flagged) {70000+}");
}

Test(conn, streamed_literal_that_ends_early_fails_the_connection)
{
	struct step script[] = {
		{ SEND, GREETING, 0, 0 }, { EXPECT, "F1 APPEND INBOX {1000+}", 0, 0 },
		{ END, NULL, 0, 0 },
	};
	struct fake f = fake_start(script);
	struct imap_conn *c = conn_over(&f, 5000);
	struct pattern_source ps = { 1000, 0, 500, 0 };
	struct imap_literal_source src = { 1000, pattern_read, &ps };
	struct imap_cmd_req req = { .text = "APPEND INBOX ", .len = 13, .source = &src };
	struct imap_cmd *cmd;
	struct err e;

	imap_conn_set_literal_mode(c, IMAP_LITERAL_PLUS);
	cmd = imap_conn_submit(c, &req, &e);
	cr_assert_eq(imap_conn_wait(c, cmd, &e), -1);
	cr_assert_eq(e.code, ERR_IO, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "500 bytes early"), "%s", e.msg);
	cr_assert_eq(imap_conn_state(c), IMAP_CONN_FAILED);
	imap_cmd_free(cmd);
	imap_conn_free(c);
	fake_finish(&f, true);
}

/*
 * secret.c - run a credential helper command with a deadline and take the
 * first line of its output (see secret.h for the contract).
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "xalloc.h"

extern char **environ;

#define TICK_MS 20              /* how often the child's exit is checked without a pidfd */
#define DRAIN_MAX (1024 * 1024) /* bytes read after the shell exited */

struct child {
	pid_t pid;
	int pid_fd;             /* readable when the shell exits; -1 if the kernel has none */
	int out_fd, err_fd;     /* -1 once at end of file */
	struct buf line;        /* first stdout line (secret) */
	bool have_line;         /* a newline was seen */
	bool too_long;
	bool nul;               /* a NUL byte in the first line */
	struct buf errtext;     /* the start of stderr */
	int status;
	bool reaped;
	bool timed_out;
	long long deadline;     /* CLOCK_MONOTONIC ms: the command's time is up */
};

/* A command started by secret_start(), not yet waited for. */
struct secret_job {
	struct child c;
	char *what;
	unsigned timeout_s;
};

static int fd_above_stdio(int fd)
{
	int nfd;

	if (fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

static int make_pipe(int fds[2], struct err *e)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return err_sys(e, ERR_EXEC, errno, "cannot create a pipe");
	fds[0] = fd_above_stdio(fds[0]);
	fds[1] = fd_above_stdio(fds[1]);
	if (fds[0] < 0 || fds[1] < 0) {
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		return err_sys(e, ERR_EXEC, errno, "cannot create a pipe");
	}
	return 0;
}

static int spawn_attrs(posix_spawnattr_t *attr, posix_spawn_file_actions_t *fa,
		       int out_w, int err_w)
{
	static const int reset[] = { SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT,
				     SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2 };
	sigset_t def, mask;
	size_t i;
	int rc = 0;

	sigemptyset(&def);
	sigemptyset(&mask);
	for (i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
		sigaddset(&def, reset[i]);
	rc |= posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
				       POSIX_SPAWN_SETSIGMASK);
	rc |= posix_spawnattr_setpgroup(attr, 0);
	rc |= posix_spawnattr_setsigdefault(attr, &def);
	rc |= posix_spawnattr_setsigmask(attr, &mask);
	rc |= posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
	rc |= posix_spawn_file_actions_adddup2(fa, out_w, 1);
	rc |= posix_spawn_file_actions_adddup2(fa, err_w, 2);
	/* The helper gets no descriptor of ours (sockets, LMDB, locks). */
	rc |= posix_spawn_file_actions_addclosefrom_np(fa, 3);
	return rc;
}

static int child_start(struct child *c, const char *command, const char *what,
		       struct err *e)
{
	char *argv[] = { "sh", "-c", (char *)command, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int out[2], errp[2];
	int rc;

	if (make_pipe(out, e) < 0)
		return -1;
	if (make_pipe(errp, e) < 0) {
		close(out[0]);
		close(out[1]);
		return -1;
	}
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_init(&fa);
	rc = spawn_attrs(&attr, &fa, out[1], errp[1]) != 0 ? ENOMEM : 0;
	if (rc == 0)
		rc = posix_spawn(&c->pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(out[1]);
	close(errp[1]);
	if (rc != 0) {
		close(out[0]);
		close(errp[0]);
		return err_sys(e, ERR_EXEC, rc, "%s: cannot run /bin/sh", what);
	}
	c->out_fd = out[0];
	c->err_fd = errp[0];
	c->pid_fd = pidfd_open(c->pid, 0);      /* close-on-exec by default */
	return 0;
}

static void take_stdout(struct child *c, const char *p, size_t n)
{
	const char *nl;
	size_t take;
	struct err e;

	if (c->have_line || c->too_long)
		return;
	nl = memchr(p, '\n', n);
	take = nl ? (size_t)(nl - p) : n;
	if (memchr(p, '\0', take) != NULL)
		c->nul = true;
	if (buf_add(&c->line, p, take, &e) < 0)
		c->too_long = true;
	if (nl != NULL)
		c->have_line = true;
}

static void take_stderr(struct child *c, const char *p, size_t n)
{
	size_t room = c->errtext.max - c->errtext.len;
	struct err e;

	buf_add(&c->errtext, p, n < room ? n : room, &e);
}

/*
 * Read what is available on one pipe; end of file closes it.  Returns the
 * bytes read, 0 when nothing was.
 */
static size_t read_pipe(struct child *c, int *fd)
{
	char chunk[4096];
	ssize_t n = read(*fd, chunk, sizeof(chunk));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return 0;
	}
	if (fd == &c->out_fd)
		take_stdout(c, chunk, (size_t)n);
	else
		take_stderr(c, chunk, (size_t)n);
	wipe(chunk, sizeof(chunk));
	return (size_t)n;
}

static void try_reap(struct child *c, int flags)
{
	pid_t r;

	if (c->reaped)
		return;
	do
		r = waitpid(c->pid, &c->status, flags);
	while (r < 0 && errno == EINTR);
	if (r == c->pid || (r < 0 && errno == ECHILD))
		c->reaped = true;
	if (r < 0)
		c->status = -1;
}

static void kill_group(struct child *c)
{
	kill(-c->pid, SIGKILL);
	try_reap(c, 0);
}

/* After the shell exited: read what it left in the pipes, then stop. */
static void drain(struct child *c)
{
	size_t total = 0;
	int *fds[2] = { &c->out_fd, &c->err_fd };
	size_t i;

	for (i = 0; i < 2; i++) {
		if (*fds[i] < 0)
			continue;
		fcntl(*fds[i], F_SETFL, O_NONBLOCK);
		while (*fds[i] >= 0 && total < DRAIN_MAX) {
			size_t n = read_pipe(c, fds[i]);

			if (n == 0)
				break;
			total += n;
		}
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	}
}

/*
 * Run until the shell exits, the deadline passes or the line overflows.
 * The shell's exit wakes the poll through its pidfd; without one (an old
 * kernel), the exit is checked every TICK_MS, which costs up to a tick
 * after the pipes close.
 */
static void child_wait(struct child *c)
{
	long long deadline = c->deadline;

	for (;;) {
		struct pollfd p[3];
		nfds_t n = 0;
		long long left;
		int wait_ms;

		try_reap(c, WNOHANG);
		if (c->reaped) {
			drain(c);
			return;
		}
		if (c->too_long) {
			kill_group(c);
			return;
		}
		left = deadline - clock_now_ms();
		if (left <= 0) {
			c->timed_out = true;
			kill_group(c);
			return;
		}
		if (c->out_fd >= 0)
			p[n++] = (struct pollfd){ .fd = c->out_fd, .events = POLLIN };
		if (c->err_fd >= 0)
			p[n++] = (struct pollfd){ .fd = c->err_fd, .events = POLLIN };
		if (c->pid_fd >= 0) {
			p[n++] = (struct pollfd){ .fd = c->pid_fd, .events = POLLIN };
			wait_ms = left < INT_MAX ? (int)left : INT_MAX;
		} else {
			wait_ms = left < TICK_MS ? (int)left : TICK_MS;
		}
		if (poll(p, n, wait_ms) <= 0)
			continue;
		for (nfds_t i = 0; i < n; i++) {
			if (p[i].revents == 0 || p[i].fd == c->pid_fd)
				continue;
			read_pipe(c, p[i].fd == c->out_fd ? &c->out_fd : &c->err_fd);
		}
	}
}

/* The first line of stderr, control characters replaced, cut short. */
static void stderr_line(const struct child *c, char *out, size_t size)
{
	const char *s = buf_cstr(&c->errtext);
	size_t i, n = 0;

	for (i = 0; s[i] != '\0' && s[i] != '\n' && s[i] != '\r' && n + 1 < size; i++)
		out[n++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[n] = '\0';
}

static int child_error(const struct child *c, const char *what, unsigned timeout_s,
		       struct err *e)
{
	char why[160], errline[256];

	stderr_line(c, errline, sizeof(errline));
	if (c->timed_out)
		return err_set(e, ERR_EXEC, "%s timed out after %u s", what, timeout_s);
	if (c->too_long)
		return err_set(e, ERR_EXEC, "%s printed a first line longer than %d bytes",
			       what, SECRET_LINE_MAX);
	if (c->status == -1)
		snprintf(why, sizeof(why), "ended with an unknown status");
	else if (WIFSIGNALED(c->status))
		snprintf(why, sizeof(why), "was killed by signal %d (%s)",
			 WTERMSIG(c->status), strsignal(WTERMSIG(c->status)));
	else if (WIFEXITED(c->status) && WEXITSTATUS(c->status) != 0)
		snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(c->status));
	else if (c->nul)
		snprintf(why, sizeof(why), "printed a NUL byte in its first line");
	else
		snprintf(why, sizeof(why), "printed nothing on its first line");
	if (errline[0] != '\0')
		return err_set(e, ERR_EXEC, "%s %s: %s", what, why, errline);
	return err_set(e, ERR_EXEC, "%s %s", what, why);
}

static bool child_ok(const struct child *c, size_t len)
{
	return !c->timed_out && !c->too_long && !c->nul && c->status != -1 &&
	       WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0 && len > 0;
}

static void child_close(struct child *c)
{
	if (c->out_fd >= 0)
		close(c->out_fd);
	if (c->err_fd >= 0)
		close(c->err_fd);
	if (c->pid_fd >= 0)
		close(c->pid_fd);
	c->out_fd = c->err_fd = c->pid_fd = -1;
	buf_release_secret(&c->line);
	buf_release(&c->errtext);
}

int secret_start(const char *command, const char *what, unsigned timeout_s,
		 struct secret_job **job_out, struct err *e)
{
	struct secret_job *j = xcalloc(1, sizeof(*j));

	*job_out = NULL;
	j->c = (struct child){
		.pid_fd = -1, .out_fd = -1, .err_fd = -1,
		.line = BUF_INIT(SECRET_LINE_MAX),
		.errtext = BUF_INIT(SECRET_STDERR_MAX),
		.deadline = clock_now_ms() + (long long)timeout_s * 1000,
	};
	j->what = xstrdup(what);
	j->timeout_s = timeout_s;
	if (child_start(&j->c, command, what, e) < 0) {
		free(j->what);
		free(j);
		return -1;
	}
	*job_out = j;
	return 0;
}

int secret_finish(struct secret_job *j, char **secret_out, struct err *e)
{
	struct child *c = &j->c;
	size_t len;
	int rc = 0;

	child_wait(c);
	len = c->line.len;
	while (len > 0 && (c->line.data[len - 1] == '\r' || c->line.data[len - 1] == '\n'))
		len--;
	if (child_ok(c, len))
		*secret_out = xmemdup(c->line.data, len);
	else
		rc = child_error(c, j->what, j->timeout_s, e);
	child_close(c);
	free(j->what);
	free(j);
	return rc;
}

void secret_cancel(struct secret_job *j)
{
	if (j == NULL)
		return;
	if (!j->c.reaped)
		kill_group(&j->c);
	child_close(&j->c);
	free(j->what);
	free(j);
}

int secret_run(const char *command, const char *what, unsigned timeout_s,
	       char **secret_out, struct err *e)
{
	struct secret_job *j;

	if (secret_start(command, what, timeout_s, &j, e) < 0)
		return -1;
	return secret_finish(j, secret_out, e);
}

static char *what_for(const struct cfg_account *a, const char *key)
{
	return xasprintf("%s for account \"%s\"", key, a->name);
}

static int run_for_account(const struct cfg_account *a, const char *key,
			   const char *command, char **secret_out, struct err *e)
{
	char *what = what_for(a, key);
	int rc = secret_run(command, what, SECRET_TIMEOUT, secret_out, e);

	free(what);
	return rc;
}

int secret_password(const struct cfg_account *a, char **secret_out, struct err *e)
{
	if (a->remote.password != NULL) {
		*secret_out = xstrdup(a->remote.password);
		return 0;
	}
	if (a->remote.password_cmd != NULL)
		return run_for_account(a, "password_cmd", a->remote.password_cmd,
				       secret_out, e);
	return err_set(e, ERR_AUTH, "account \"%s\" has no password or password_cmd",
		       a->name);
}

int secret_oauth2_token(const struct cfg_account *a, char **secret_out, struct err *e)
{
	if (a->remote.oauth2_token_cmd != NULL)
		return run_for_account(a, "oauth2_token_cmd", a->remote.oauth2_token_cmd,
				       secret_out, e);
	return err_set(e, ERR_AUTH, "account \"%s\" has no oauth2_token_cmd", a->name);
}

int secret_start_for_account(const struct cfg_account *a, bool token,
			     struct secret_job **job_out, struct err *e)
{
	const char *key = token ? "oauth2_token_cmd" : "password_cmd";
	const char *command = token ? a->remote.oauth2_token_cmd : a->remote.password_cmd;
	char *what;
	int rc;

	*job_out = NULL;
	if (command == NULL)
		return err_set(e, ERR_AUTH, "account \"%s\" has no %s", a->name, key);
	what = what_for(a, key);
	rc = secret_start(command, what, SECRET_TIMEOUT, job_out, e);
	free(what);
	return rc;
}

/*
 * harness.c - integration test helpers: a throwaway Dovecot, running
 * programs with captured output, raw IMAP over TCP.  See harness.h.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xalloc.h"

#define HARNESS_MAX_WORDS 32
#define HARNESS_EXIT_GRACE_MS 500   /* output still read after the program exits */
#define HARNESS_KILL_GRACE_MS 2000  /* output still read after a timeout kill */

static void harness_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void harness_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("harness: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copy src into dst[cap]; -1 (dst untouched) when it does not fit. */
static int copy_field(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* ---- captured output ---------------------------------------------------- */

struct capture {
	char *data;
	size_t len;
	size_t cap;
	bool truncated;
};

static void capture_add(struct capture *c, const char *p, size_t n)
{
	size_t room = HARNESS_OUTPUT_MAX - c->len;

	if (n > room) {
		n = room;
		c->truncated = true;
	}
	if (n == 0)
		return;
	c->data = xgrow(c->data, &c->cap, c->len + n + 1, 1);
	memcpy(c->data + c->len, p, n);
	c->len += n;
	c->data[c->len] = '\0';
}

/* Hand the bytes to the caller, always as a NUL-terminated string. */
static char *capture_take(struct capture *c, size_t *len_out)
{
	char *s = c->data ? c->data : xstrdup("");

	*len_out = c->len;
	c->data = NULL;
	c->len = c->cap = 0;
	return s;
}

/* ---- running programs --------------------------------------------------- */

void harness_result_release(struct harness_result *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

/* In the child: wire up fds and exec; on failure report errno on `report`. */
static void run_child(const char *const argv[], const struct harness_run_opts *opts,
		      int in_fd, int out_fd, int err_fd, int report)
{
	int errnum;
	size_t i;

	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		goto fail;
	if (opts->cwd && chdir(opts->cwd) < 0)
		goto fail;
	for (i = 0; opts->env && opts->env[i]; i++)
		if (putenv((char *)opts->env[i]) != 0)
			goto fail;
	execvp(argv[0], (char *const *)argv);
fail:
	errnum = errno;
	if (write(report, &errnum, sizeof(errnum)) < 0) {
		/* nothing more to do */
	}
	_exit(127);
}

struct run_io {
	int in_fd;              /* our end of the child's stdin, or -1 */
	const char *in_text;
	size_t in_len, in_done;
	int out_fd, err_fd;
	struct capture out, err;
};

/* One poll round over the child's pipes.  Returns -1 on a poll error. */
static int run_pump(struct run_io *io, int wait_ms)
{
	struct pollfd p[3];
	char chunk[16384];
	int n = 0, i_in = -1, i_out = -1, i_err = -1;
	ssize_t r;

	if (io->in_fd >= 0) {
		i_in = n;
		p[n++] = (struct pollfd){ .fd = io->in_fd, .events = POLLOUT };
	}
	if (io->out_fd >= 0) {
		i_out = n;
		p[n++] = (struct pollfd){ .fd = io->out_fd, .events = POLLIN };
	}
	if (io->err_fd >= 0) {
		i_err = n;
		p[n++] = (struct pollfd){ .fd = io->err_fd, .events = POLLIN };
	}
	if (n == 0)
		return 0;
	if (poll(p, (nfds_t)n, wait_ms) < 0)
		return errno == EINTR ? 0 : -1;
	if (i_in >= 0 && p[i_in].revents) {
		r = send(io->in_fd, io->in_text + io->in_done, io->in_len - io->in_done,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0)
			io->in_done += (size_t)r;
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			io->in_done = io->in_len; /* the reader went away */
		if (io->in_done == io->in_len) {
			close(io->in_fd);
			io->in_fd = -1;
		}
	}
	if (i_out >= 0 && p[i_out].revents) {
		r = read(io->out_fd, chunk, sizeof(chunk));
		if (r > 0)
			capture_add(&io->out, chunk, (size_t)r);
		else if (r == 0 || errno != EINTR) {
			close(io->out_fd);
			io->out_fd = -1;
		}
	}
	if (i_err >= 0 && p[i_err].revents) {
		r = read(io->err_fd, chunk, sizeof(chunk));
		if (r > 0)
			capture_add(&io->err, chunk, (size_t)r);
		else if (r == 0 || errno != EINTR) {
			close(io->err_fd);
			io->err_fd = -1;
		}
	}
	return 0;
}

static void run_close(struct run_io *io)
{
	if (io->in_fd >= 0)
		close(io->in_fd);
	if (io->out_fd >= 0)
		close(io->out_fd);
	if (io->err_fd >= 0)
		close(io->err_fd);
	io->in_fd = io->out_fd = io->err_fd = -1;
	free(io->out.data);
	free(io->err.data);
}

static int status_code(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return -1;
}

int harness_run_with(const char *const argv[], const struct harness_run_opts *opts,
		     struct harness_result *out)
{
	static const struct harness_run_opts no_opts;
	struct run_io io = { .in_fd = -1, .out_fd = -1, .err_fd = -1 };
	int in_sock[2], out_pipe[2], err_pipe[2], report[2];
	int errnum = 0, wstatus = 0, timeout_ms;
	int64_t deadline, exit_deadline = -1;
	bool exited = false, killed = false;
	pid_t pid;
	ssize_t r;

	memset(out, 0, sizeof(*out));
	if (!opts)
		opts = &no_opts;
	timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : HARNESS_RUN_TIMEOUT_MS;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_sock) < 0) {
		harness_say("socketpair: %s", strerror(errno));
		return -1;
	}
	out_pipe[0] = out_pipe[1] = err_pipe[0] = err_pipe[1] = report[0] = report[1] = -1;
	if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0 ||
	    pipe2(report, O_CLOEXEC) < 0) {
		int fds[] = { in_sock[0], in_sock[1], out_pipe[0], out_pipe[1],
			      err_pipe[0], err_pipe[1], report[0], report[1] };
		size_t i;

		harness_say("pipe: %s", strerror(errno));
		for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return -1;
	}
	if (!opts->stdin_text)
		shutdown(in_sock[0], SHUT_WR); /* the child reads EOF at once */

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		harness_say("fork: %s", strerror(errno));
		close(in_sock[0]);
		close(in_sock[1]);
		close(out_pipe[0]);
		close(out_pipe[1]);
		close(err_pipe[0]);
		close(err_pipe[1]);
		close(report[0]);
		close(report[1]);
		return -1;
	}
	if (pid == 0)
		run_child(argv, opts, in_sock[1], out_pipe[1], err_pipe[1], report[1]);

	setpgid(pid, pid);
	close(in_sock[1]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	close(report[1]);
	do
		r = read(report[0], &errnum, sizeof(errnum));
	while (r < 0 && errno == EINTR);
	close(report[0]);
	io.in_fd = opts->stdin_text ? in_sock[0] : -1;
	if (!opts->stdin_text)
		close(in_sock[0]);
	io.in_text = opts->stdin_text;
	io.in_len = opts->stdin_text ? strlen(opts->stdin_text) : 0;
	io.out_fd = out_pipe[0];
	io.err_fd = err_pipe[0];
	if (r == (ssize_t)sizeof(errnum)) {
		waitpid(pid, &wstatus, 0);
		run_close(&io);
		harness_say("cannot run \"%s\": %s", argv[0], strerror(errnum));
		return -1;
	}
	if (io.in_fd >= 0 && io.in_len == 0) {
		close(io.in_fd);
		io.in_fd = -1;
	}

	deadline = now_ms() + timeout_ms;
	while (io.out_fd >= 0 || io.err_fd >= 0 || !exited) {
		int64_t now = now_ms(), until = deadline;

		if (!exited && waitpid(pid, &wstatus, WNOHANG) == pid) {
			exited = true;
			/* A daemon it started may hold the pipes open: read a
			 * little longer, then stop. */
			exit_deadline = now + HARNESS_EXIT_GRACE_MS;
		}
		if (exited && (io.out_fd < 0 && io.err_fd < 0))
			break;
		if (exit_deadline >= 0 && exit_deadline < until)
			until = exit_deadline;
		if (now >= until) {
			if (exited)
				break;
			if (killed) {
				waitpid(pid, &wstatus, 0);
				exited = true;
				break;
			}
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			killed = true;
			deadline = now + HARNESS_KILL_GRACE_MS;
			continue;
		}
		if (run_pump(&io, exited ? 20 : (int)(until - now < 50 ? until - now : 50)) < 0) {
			harness_say("poll: %s", strerror(errno));
			break;
		}
	}
	if (!exited)
		waitpid(pid, &wstatus, 0);

	out->timed_out = killed;
	out->status = killed ? -1 : status_code(wstatus);
	out->truncated = io.out.truncated || io.err.truncated;
	out->out = capture_take(&io.out, &out->out_len);
	out->err = capture_take(&io.err, &out->err_len);
	run_close(&io);
	if (killed)
		harness_say("\"%s\" timed out after %d ms and was killed", argv[0], timeout_ms);
	return 0;
}

int harness_run(const char *const argv[], const char *stdin_text, struct harness_result *out)
{
	struct harness_run_opts opts = { .stdin_text = stdin_text };

	return harness_run_with(argv, &opts, out);
}

/* ---- paths and files ---------------------------------------------------- */

char *harness_ferry_path(void)
{
	const char *root = getenv("FERRY_BUILD_ROOT");

	if (!root || !*root) {
		harness_say("FERRY_BUILD_ROOT is not set (run the tests through meson test)");
		return NULL;
	}
	return xasprintf("%s/cmd/ferry", root);
}

char *harness_source_path(const char *rel)
{
	const char *root = getenv("FERRY_SOURCE_ROOT");

	if (!root || !*root) {
		harness_say("FERRY_SOURCE_ROOT is not set (run the tests through meson test)");
		return NULL;
	}
	return xasprintf("%s/%s", root, rel);
}

int harness_write_file(const char *path, const char *text)
{
	size_t len = strlen(text), done = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0) {
		harness_say("cannot create \"%s\": %s", path, strerror(errno));
		return -1;
	}
	while (done < len) {
		ssize_t r = write(fd, text + done, len - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			harness_say("cannot write \"%s\": %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		done += (size_t)r;
	}
	if (close(fd) < 0) {
		harness_say("cannot write \"%s\": %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

char *harness_read_file(const char *path, size_t max)
{
	struct capture c = { 0 };
	char chunk[8192];
	size_t len;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (c.len + (size_t)r > max) {
			r = -1;
			break;
		}
		capture_add(&c, chunk, (size_t)r);
	}
	close(fd);
	if (r < 0) {
		free(c.data);
		return NULL;
	}
	return capture_take(&c, &len);
}

int harness_mkdirs(const char *path)
{
	char buf[HARNESS_PATH_MAX];
	char *p;

	if (copy_field(buf, sizeof(buf), path) < 0)
		return -1;
	for (p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
			harness_say("cannot create \"%s\": %s", buf, strerror(errno));
			return -1;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT) {
		harness_say("cannot remove \"%s\": %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int harness_remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* ---- Dovecot ------------------------------------------------------------ */

/* Split `options` on spaces into argv[from..]; -1 if too many words. */
static int split_words(char *options, const char **argv, size_t from, size_t max)
{
	char *save = NULL, *w;
	size_t n = from;

	if (!options)
		return (int)n;
	for (w = strtok_r(options, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (n + 1 >= max)
			return -1;
		argv[n++] = w;
	}
	argv[n] = NULL;
	return (int)n;
}

static int parse_port(const char *s, int *port_out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 65535)
		return -1;
	*port_out = (int)v;
	return 0;
}

/* One "KEY=VALUE" line of "dovecot-test start". */
static int dovecot_set(struct dovecot *d, const char *key, const char *val)
{
	static const struct {
		const char *key;
		size_t off;
	} fields[] = {
		{ "DOVECOT_DIR", offsetof(struct dovecot, dir) },
		{ "DOVECONF", offsetof(struct dovecot, conf) },
		{ "CA_FILE", offsetof(struct dovecot, ca_file) },
		{ "LOG_FILE", offsetof(struct dovecot, log_file) },
		{ "FINGERPRINT", offsetof(struct dovecot, fingerprint) },
		{ "USER1", offsetof(struct dovecot, user1) },
		{ "PASS1", offsetof(struct dovecot, pass1) },
		{ "USER2", offsetof(struct dovecot, user2) },
		{ "PASS2", offsetof(struct dovecot, pass2) },
	};
	size_t i, cap;

	if (strcmp(key, "IMAP_PORT") == 0)
		return parse_port(val, &d->imap_port);
	if (strcmp(key, "IMAPS_PORT") == 0)
		return parse_port(val, &d->imaps_port);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(key, fields[i].key) != 0)
			continue;
		cap = fields[i].off < offsetof(struct dovecot, fingerprint)
			? HARNESS_PATH_MAX : HARNESS_FIELD_MAX;
		return copy_field((char *)d + fields[i].off, cap, val);
	}
	return 0; /* unknown keys are for newer tests */
}

static int dovecot_parse(struct dovecot *d, char *text)
{
	char *save = NULL, *line, *eq;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (dovecot_set(d, line, eq + 1) < 0) {
			harness_say("bad value for %s from dovecot-test", line);
			return -1;
		}
	}
	if (!d->imap_port || !d->conf[0] || !d->ca_file[0] || !d->user1[0] || !d->pass1[0]) {
		harness_say("dovecot-test start printed an incomplete description");
		return -1;
	}
	return 0;
}

static pid_t read_master_pid(const struct dovecot *d)
{
	char path[HARNESS_PATH_MAX + 32];
	char *text;
	long v;

	snprintf(path, sizeof(path), "%s/run/master.pid", d->dir);
	text = harness_read_file(path, 64);
	if (!text)
		return -1;
	v = strtol(text, NULL, 10);
	free(text);
	return v > 0 ? (pid_t)v : -1;
}

/* Run "dovecot-test VERB ..." and keep its result in *out. */
static int dovecot_script(const char **argv, struct harness_result *out)
{
	char *script = harness_source_path("tests/harness/dovecot-test");
	int rc;

	memset(out, 0, sizeof(*out));
	if (!script)
		return -1;
	argv[0] = script;
	rc = harness_run(argv, NULL, out);
	free(script);
	if (rc == 0 && out->status != 0) {
		harness_say("dovecot-test %s failed (status %d): %s", argv[1], out->status, out->err);
		return -1;
	}
	return rc;
}

/*
 * Fork a watchdog: it waits for EOF on a pipe whose write end only this
 * process holds (close-on-exec), then runs "dovecot-test stop DIR" and
 * removes TMP.  Killed by harness_dovecot_stop() on the normal path.
 */
static void watchdog_start(struct dovecot *d)
{
	char *script = harness_source_path("tests/harness/dovecot-test");
	int fds[2];
	pid_t pid;

	d->watchdog_pid = -1;
	d->watchdog_fd = -1;
	if (!script || pipe2(fds, O_CLOEXEC) < 0) {
		free(script);
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		free(script);
		return;
	}
	if (pid == 0) {
		char byte;
		int null = open("/dev/null", O_RDWR);

		/* Hold nothing of the test's: no output pipe that a test
		 * runner waits on, no other instance's watchdog pipe. */
		setsid();
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		if (dup2(fds[0], 3) < 0)
			_exit(127);
		closefrom(4);
		while (read(3, &byte, 1) < 0 && errno == EINTR)
			;
		execl("/bin/sh", "sh", "-c", "\"$0\" stop \"$1\"; rm -rf -- \"$2\"",
		      script, d->dir, d->tmp, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	free(script);
	d->watchdog_pid = pid;
	d->watchdog_fd = fds[1];
}

static void watchdog_stop(struct dovecot *d)
{
	if (d->watchdog_pid > 0) {
		kill(d->watchdog_pid, SIGKILL);
		waitpid(d->watchdog_pid, NULL, 0);
	}
	if (d->watchdog_fd >= 0)
		close(d->watchdog_fd);
	d->watchdog_pid = -1;
	d->watchdog_fd = -1;
}

int harness_dovecot_start(struct dovecot *d, const char *options)
{
	const char *argv[HARNESS_MAX_WORDS];
	struct harness_result res;
	const char *tmpdir = getenv("TMPDIR");
	char *opts = options ? xstrdup(options) : NULL;
	char tmp[HARNESS_PATH_MAX];
	int rc;

	memset(d, 0, sizeof(*d));
	d->master_pid = -1;
	d->watchdog_pid = -1;
	d->watchdog_fd = -1;
	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	if (snprintf(tmp, sizeof(tmp), "%s/ferry-it-XXXXXX", tmpdir) >= (int)sizeof(tmp) - 16 ||
	    !mkdtemp(tmp)) {
		harness_say("cannot make a temporary folder under \"%s\": %s", tmpdir, strerror(errno));
		free(opts);
		return -1;
	}
	/* As root, Dovecot's processes run as another user and must reach
	 * the instance folder inside. */
	chmod(tmp, 0755);
	copy_field(d->tmp, sizeof(d->tmp), tmp);
	snprintf(d->dir, sizeof(d->dir), "%s/dovecot", tmp);
	watchdog_start(d);

	argv[1] = "start";
	argv[2] = d->dir;
	argv[3] = NULL;
	if (split_words(opts, argv, 3, HARNESS_MAX_WORDS) < 0) {
		harness_say("too many options: %s", options);
		free(opts);
		watchdog_stop(d);
		harness_remove_tree(tmp);
		memset(d, 0, sizeof(*d));
		return -1;
	}
	rc = dovecot_script(argv, &res);
	free(opts);
	if (rc == 0 && dovecot_parse(d, res.out) == 0) {
		d->running = true;
		d->master_pid = read_master_pid(d);
		harness_result_release(&res);
		return 0;
	}
	harness_result_release(&res);
	snprintf(d->dir, sizeof(d->dir), "%s/dovecot", tmp);
	d->running = true;
	harness_dovecot_stop(d);
	memset(d, 0, sizeof(*d));
	d->watchdog_fd = -1;
	return -1;
}

void harness_dovecot_stop(struct dovecot *d)
{
	const char *argv[] = { NULL, "stop", d->dir, NULL };
	struct harness_result res;

	if (d->tmp[0])
		watchdog_stop(d);
	if (d->running && d->dir[0]) {
		if (dovecot_script(argv, &res) < 0 && d->master_pid > 0 &&
		    harness_pid_alive(d->master_pid))
			harness_say("dovecot %d may still be running", (int)d->master_pid);
		harness_result_release(&res);
	}
	if (d->tmp[0])
		harness_remove_tree(d->tmp);
	d->running = false;
	d->tmp[0] = '\0';
}

int harness_seed(struct dovecot *d, const char *user, int count, const char *folders)
{
	const char *argv[] = { NULL, "seed", d->dir, user, NULL, NULL, NULL, NULL };
	struct harness_result res;
	char num[32];
	int rc;

	snprintf(num, sizeof(num), "%d", count);
	argv[4] = num;
	if (folders) {
		argv[5] = "--folders";
		argv[6] = folders;
	}
	rc = dovecot_script(argv, &res);
	harness_result_release(&res);
	return rc;
}

char *harness_jwt(struct dovecot *d, const char *user, unsigned flags)
{
	const char *argv[] = { NULL, "jwt", d->dir, user, NULL, NULL, NULL };
	struct harness_result res;
	size_t n = 4;
	char *jwt;

	if (flags & HARNESS_JWT_BAD_SIGNATURE)
		argv[n++] = "--bad-signature";
	if (flags & HARNESS_JWT_EXPIRED)
		argv[n++] = "--expired";
	if (dovecot_script(argv, &res) < 0) {
		harness_result_release(&res);
		return NULL;
	}
	jwt = xstrndup(res.out, strcspn(res.out, "\r\n"));
	harness_result_release(&res);
	if (!*jwt) {
		free(jwt);
		return NULL;
	}
	return jwt;
}

int harness_doveadm(struct dovecot *d, const char *const args[], struct harness_result *out)
{
	const char *argv[HARNESS_MAX_WORDS];
	size_t n = 0, i;

	argv[n++] = "doveadm";
	argv[n++] = "-c";
	argv[n++] = d->conf;
	for (i = 0; args[i]; i++) {
		if (n + 1 >= HARNESS_MAX_WORDS) {
			harness_say("too many doveadm arguments");
			memset(out, 0, sizeof(*out));
			return -1;
		}
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return harness_run(argv, NULL, out);
}

int harness_write_config(struct dovecot *d, const char *path, const struct harness_account *a)
{
	static const struct harness_account defaults;
	const char *name, *tls, *user, *password;
	char *pwfile, *local, *state, *yaml, *ca;
	int port, rc;

	if (!a)
		a = &defaults;
	name = a->name ? a->name : "test";
	tls = a->tls ? a->tls : "implicit";
	user = a->user ? a->user : d->user1;
	password = a->password ? a->password : d->pass1;
	port = strcmp(tls, "implicit") == 0 ? d->imaps_port : d->imap_port;
	pwfile = xasprintf("%s/password-%s", d->tmp, name);
	local = a->local_path ? xstrdup(a->local_path) : xasprintf("%s/Mail", d->tmp);
	state = a->state_path ? xstrdup(a->state_path) : xasprintf("%s/state", d->tmp);
	/* tls_ca_file has no meaning (and is refused) without TLS. */
	ca = strcmp(tls, "none") == 0 ? xstrdup("")
				       : xasprintf("      tls_ca_file: \"%s\"\n", d->ca_file);
	yaml = xasprintf(
		"# ferry test configuration for the harness server in %s\n"
		"accounts:\n"
		"  %s:\n"
		"    remote:\n"
		"      host: 127.0.0.1\n"
		"      port: %d\n"
		"      tls: %s\n"
		"%s"
		"      user: \"%s\"\n"
		"      password_cmd: \"cat %s\"\n"
		"%s"
		"    local:\n"
		"      path: \"%s\"\n"
		"    state: \"%s\"\n"
		"%s",
		d->dir, name, port, tls, ca, user, pwfile,
		a->remote_extra ? a->remote_extra : "", local, state, a->extra ? a->extra : "");
	rc = harness_write_file(pwfile, password);
	if (rc == 0)
		rc = harness_write_file(path, yaml);
	free(yaml);
	free(ca);
	free(state);
	free(local);
	free(pwfile);
	return rc;
}

bool harness_pid_alive(pid_t pid)
{
	char path[64], *text, *p;
	bool alive;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	text = harness_read_file(path, 4096);
	if (!text)
		return false;
	p = strrchr(text, ')');
	alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	free(text);
	return alive;
}

/* ---- raw IMAP ----------------------------------------------------------- */

/* What the server sent so far, scanned for logical response lines; the
 * bytes of server literals ({N}) are skipped so that message text cannot be
 * mistaken for a tagged response. */
struct imap_reader {
	int fd;
	struct capture all;
	size_t pos;          /* scanned up to here */
	size_t skip;         /* literal bytes still to skip */
	bool line_start;     /* pos is at the start of a logical line */
};

enum imap_stop { IMAP_TAGGED, IMAP_CONTINUE, IMAP_EOF, IMAP_TIMEOUT, IMAP_ERROR };

/* Literal size when the line [s, s+n) ends with "{N}", else -1. */
static long long literal_at_end(const char *s, size_t n)
{
	size_t i;

	if (n < 3 || s[n - 1] != '}')
		return -1;
	i = n - 1;
	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		i--;
	if (i == 0 || i == n - 1 || s[i - 1] != '{' || n - 1 - i > 12)
		return -1;
	return strtoll(s + i, NULL, 10);
}

/* Scan complete lines; stop at the first one that ends the wait.  `tag` NULL
 * means "any first line" (the greeting). */
static bool imap_scan(struct imap_reader *r, const char *tag, enum imap_stop *stop_out)
{
	size_t taglen = tag ? strlen(tag) : 0;

	while (r->pos < r->all.len) {
		const char *s = r->all.data + r->pos;
		size_t avail = r->all.len - r->pos, n;
		const char *nl;
		long long lit;
		bool start = r->line_start;

		if (r->skip) {
			n = avail < r->skip ? avail : r->skip;
			r->skip -= n;
			r->pos += n;
			continue;
		}
		nl = memchr(s, '\n', avail);
		if (!nl)
			return false;
		n = (size_t)(nl - s);
		r->pos += n + 1;
		if (n && s[n - 1] == '\r')
			n--;
		lit = literal_at_end(s, n);
		r->skip = lit > 0 ? (size_t)lit : 0;
		r->line_start = lit < 0;
		if (!start)
			continue;
		if (!tag) {
			*stop_out = IMAP_TAGGED;
			return true;
		}
		if (n >= 1 && s[0] == '+') {
			*stop_out = IMAP_CONTINUE;
			return true;
		}
		if (n > taglen && memcmp(s, tag, taglen) == 0 && s[taglen] == ' ') {
			*stop_out = IMAP_TAGGED;
			return true;
		}
	}
	return false;
}

static enum imap_stop imap_wait(struct imap_reader *r, const char *tag)
{
	int64_t deadline = now_ms() + HARNESS_IMAP_TIMEOUT_MS;
	enum imap_stop stop;
	char chunk[16384];

	for (;;) {
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		int64_t left;
		ssize_t n;

		if (imap_scan(r, tag, &stop))
			return stop;
		left = deadline - now_ms();
		if (left <= 0)
			return IMAP_TIMEOUT;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return IMAP_ERROR;
		if (!p.revents)
			continue;
		n = recv(r->fd, chunk, sizeof(chunk), 0);
		if (n == 0)
			return IMAP_EOF;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return IMAP_ERROR;
		}
		capture_add(&r->all, chunk, (size_t)n);
	}
}

static int imap_send_line(int fd, const char *line)
{
	char *msg = xasprintf("%s\r\n", line);
	size_t len = strlen(msg), done = 0;

	while (done < len) {
		ssize_t n = send(fd, msg + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(msg);
			return -1;
		}
		done += (size_t)n;
	}
	free(msg);
	return 0;
}

/* True when `line` ends with a non-synchronizing literal "{N+}". */
static bool ends_with_literal_plus(const char *line)
{
	size_t n = strlen(line);

	return n >= 4 && line[n - 1] == '}' && line[n - 2] == '+' && strrchr(line, '{');
}

static int imap_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int harness_imap_raw(int port, const char *const lines[], char **reply_out)
{
	struct imap_reader r = { .line_start = true };
	enum imap_stop stop;
	char tag[64] = "";
	bool continuation = false, ok = true;
	size_t i, len;

	*reply_out = NULL;
	r.fd = imap_connect(port);
	if (r.fd < 0) {
		harness_say("cannot connect to 127.0.0.1:%d: %s", port, strerror(errno));
		*reply_out = xstrdup("");
		return -1;
	}
	if (imap_wait(&r, NULL) != IMAP_TAGGED)
		ok = false;
	for (i = 0; ok && lines[i]; i++) {
		if (!continuation) {
			len = strcspn(lines[i], " ");
			if (len >= sizeof(tag))
				len = sizeof(tag) - 1;
			memcpy(tag, lines[i], len);
			tag[len] = '\0';
		}
		if (imap_send_line(r.fd, lines[i]) < 0) {
			ok = false;
			break;
		}
		if (ends_with_literal_plus(lines[i])) {
			continuation = true; /* the literal's bytes follow unasked */
			continue;
		}
		stop = imap_wait(&r, tag);
		continuation = stop == IMAP_CONTINUE;
		if (stop != IMAP_TAGGED && stop != IMAP_CONTINUE) {
			if (stop == IMAP_TIMEOUT)
				harness_say("no answer to \"%s\" within %d ms", tag,
					    HARNESS_IMAP_TIMEOUT_MS);
			ok = false;
		}
	}
	close(r.fd);
	*reply_out = capture_take(&r.all, &len);
	return ok ? 0 : -1;
}

bool harness_has_line(const char *text, const char *prefix)
{
	char *line = harness_find_line(text, prefix);
	bool found = line != NULL;

	free(line);
	return found;
}

char *harness_find_line(const char *text, const char *prefix)
{
	size_t plen = strlen(prefix);
	const char *s = text;

	while (s && *s) {
		size_t n = strcspn(s, "\r\n");

		if (n >= plen && memcmp(s, prefix, plen) == 0)
			return xstrndup(s, n);
		s += n;
		s += strspn(s, "\r\n");
	}
	return NULL;
}

pid_t harness_loopback_server(void (*serve)(int cfd, void *ctx), void *ctx, int *port_out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 8) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	*port_out = ntohs(sa.sin_port);
	pid = fork();
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		for (;;) {
			int cfd = accept(lfd, NULL, NULL);

			if (cfd >= 0)
				serve(cfd, ctx);
		}
	}
	close(lfd);
	return pid;
}

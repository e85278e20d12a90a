/*
 * Unit tests for cmd/secret: running password_cmd / oauth2_token_cmd for
 * real through /bin/sh, also started early and finished or cancelled later
 * (cmd/account.c's helper started before the greeting).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "config.h"
#include "secret.h"
#include "xalloc.h"

static char tmpdir[256];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ferry-test-secret-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	setenv("HOME", tmpdir, 1);
}

static void teardown(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);

	cr_assert_eq(system(cmd), 0);
	free(cmd);
}

TestSuite(secret, .init = setup, .fini = teardown);

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *run_ok(const char *command)
{
	char *s = NULL;
	struct err e;

	err_clear(&e);
	cr_assert_eq(secret_run(command, "cmd", 10, &s, &e), 0, "%s: %s", command, e.msg);
	cr_assert_not_null(s);
	return s;
}

static void run_fails(const char *command, unsigned timeout, const char *msg)
{
	char *s = NULL;
	struct err e;

	err_clear(&e);
	cr_assert_eq(secret_run(command, "cmd", timeout, &s, &e), -1, "%s succeeded", command);
	cr_assert_null(s);
	cr_assert_eq(e.code, ERR_EXEC);
	cr_assert_str_eq(e.msg, msg);
}

Test(secret, first_line_of_stdout_is_the_secret)
{
	char *s = run_ok("printf 'hunter2\\nsecond line\\nthird\\n'");

	cr_assert_str_eq(s, "hunter2");
	free_secret(s);
}

Test(secret, trailing_crlf_is_stripped_and_spaces_kept)
{
	char *s = run_ok("printf 'pw\\r\\n'");

	cr_assert_str_eq(s, "pw");
	free_secret(s);
	s = run_ok("printf ' a b '");
	cr_assert_str_eq(s, " a b ");
	free_secret(s);
}

Test(secret, rest_of_large_output_is_discarded)
{
	char *s = run_ok("echo token; head -c 1000000 /dev/zero");

	cr_assert_str_eq(s, "token");
	free_secret(s);
}

Test(secret, stdin_is_dev_null)
{
	char *s = run_ok("if read x; then echo has-input; else echo no-input; fi");

	cr_assert_str_eq(s, "no-input");
	free_secret(s);
}

Test(secret, exit_status_is_reported_with_stderr)
{
	run_fails("echo 'gpg: decryption failed' >&2; echo 'more' >&2; exit 2", 10,
		  "cmd exited with status 2: gpg: decryption failed");
	run_fails("exit 1", 10, "cmd exited with status 1");
	run_fails("no-such-command-ferry-test", 10,
		  "cmd exited with status 127: sh: 1: no-such-command-ferry-test: not found");
}

Test(secret, stderr_in_messages_is_bounded_and_sanitised)
{
	char *s = NULL;
	struct err e;

	cr_assert_eq(secret_run("printf 'bad\\033[31m thing\\n' >&2; head -c 100000 /dev/zero "
				"| tr '\\0' x >&2; exit 4", "cmd", 10, &s, &e), -1);
	cr_assert_str_eq(e.msg, "cmd exited with status 4: bad?[31m thing");
	cr_assert_eq(secret_run("head -c 100000 /dev/zero | tr '\\0' x >&2; exit 4", "cmd", 10,
				&s, &e), -1);
	cr_assert_lt(strlen(e.msg), 400);
}

Test(secret, helper_inherits_no_descriptor_but_stdio)
{
	int fd = open("/dev/null", O_RDONLY);   /* deliberately not close-on-exec */
	char *cmd, *s;

	cr_assert_geq(fd, 3);
	cmd = xasprintf("if [ -e /proc/self/fd/%d ]; then echo leaked; else echo closed; fi", fd);
	s = run_ok(cmd);
	cr_assert_str_eq(s, "closed");
	free_secret(s);
	free(cmd);
	close(fd);
}

Test(secret, signal_is_reported)
{
	run_fails("kill -TERM $$", 10, "cmd was killed by signal 15 (Terminated)");
}

Test(secret, secret_never_appears_in_the_error)
{
	char *s = NULL;
	struct err e;

	cr_assert_eq(secret_run("echo Zebra-Secret-42; echo 'lookup failed' >&2; exit 1",
				"cmd", 10, &s, &e), -1);
	cr_assert_null(strstr(e.msg, "Zebra"), "%s", e.msg);
	cr_assert_str_eq(e.msg, "cmd exited with status 1: lookup failed");
	cr_assert_eq(secret_run("echo Zebra-Secret-42; kill -KILL $$", "cmd", 10, &s, &e), -1);
	cr_assert_null(strstr(e.msg, "Zebra"), "%s", e.msg);
	cr_assert_eq(secret_run("printf 'Zebra\\0Secret\\n'", "cmd", 10, &s, &e), -1);
	cr_assert_null(strstr(e.msg, "Zebra"), "%s", e.msg);
	cr_assert_str_eq(e.msg, "cmd printed a NUL byte in its first line");
	cr_assert_eq(secret_run("echo Zebra-Secret-42; sleep 100", "cmd", 1, &s, &e), -1);
	cr_assert_null(strstr(e.msg, "Zebra"), "%s", e.msg);
}

Test(secret, empty_output_is_an_error)
{
	run_fails("true", 10, "cmd printed nothing on its first line");
	run_fails("echo; echo second", 10, "cmd printed nothing on its first line");
	run_fails("printf '\\r\\n'", 10, "cmd printed nothing on its first line");
	run_fails("echo 'no entry' >&2", 10, "cmd printed nothing on its first line: no entry");
}

Test(secret, overlong_first_line_is_an_error)
{
	run_fails("head -c 20000 /dev/zero | tr '\\0' a", 10,
		  "cmd printed a first line longer than 16384 bytes");
}

/* True once `pid` has gone (or is a zombie waiting for init). */
static bool process_gone(pid_t pid)
{
	char path[64], state = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return true;
	if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
		state = '?';
	fclose(f);
	return state == 'Z';
}

Test(secret, timeout_kills_the_process_group)
{
	char *pidfile = xasprintf("%s/pid", tmpdir);
	char *cmd = xasprintf("sleep 100 & echo $! > '%s'; sleep 100", pidfile);
	double start = now_s();
	FILE *f;
	int pid = 0, i;

	run_fails(cmd, 1, "cmd timed out after 1 s");
	cr_assert_lt(now_s() - start, 5.0);
	f = fopen(pidfile, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &pid), 1);
	fclose(f);
	for (i = 0; i < 100 && !process_gone(pid); i++)
		usleep(20000);
	cr_assert(process_gone(pid), "background child %d survived the timeout", pid);
	free(cmd);
	free(pidfile);
}

Test(secret, plain_sleep_times_out_within_the_bound)
{
	double start = now_s();

	run_fails("sleep 100", 1, "cmd timed out after 1 s");
	cr_assert_lt(now_s() - start, 3.0);
}

Test(secret, background_child_holding_stdout_does_not_delay)
{
	char *pidfile = xasprintf("%s/pid", tmpdir);
	char *cmd = xasprintf("echo pw; sleep 30 & echo $! > '%s'", pidfile);
	double start = now_s();
	char *s = run_ok(cmd);
	FILE *f;
	int pid = 0;

	cr_assert_str_eq(s, "pw");
	cr_assert_lt(now_s() - start, 3.0);
	f = fopen(pidfile, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &pid), 1);
	fclose(f);
	kill(pid, SIGKILL);
	free_secret(s);
	free(cmd);
	free(pidfile);
}

static struct cfg *load(const char *remote_extra)
{
	char *y = xasprintf("accounts:\n  work:\n    remote:\n      host: h\n      user: u\n%s"
			    "    local:\n      path: /m\n", remote_extra);
	struct cfg *cfg = NULL;
	struct err e;

	cr_assert_eq(cfg_load_buffer("t.yaml", y, strlen(y), &cfg, &e), 0, "%s", e.msg);
	free(y);
	return cfg;
}

Test(secret, account_password_from_inline_or_command)
{
	struct cfg *cfg = load("      password: inline-pw\n");
	char *s = NULL;
	struct err e;

	cr_assert_eq(secret_password(&cfg->accounts[0], &s, &e), 0);
	cr_assert_str_eq(s, "inline-pw");
	free_secret(s);
	cr_assert_eq(secret_oauth2_token(&cfg->accounts[0], &s, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH);
	cfg_free(cfg);

	cfg = load("      password_cmd: \"echo from-cmd\"\n");
	cr_assert_eq(secret_password(&cfg->accounts[0], &s, &e), 0);
	cr_assert_str_eq(s, "from-cmd");
	free_secret(s);
	cfg_free(cfg);

	cfg = load("      password_cmd: \"echo 'no such entry' >&2; exit 1\"\n");
	cr_assert_eq(secret_password(&cfg->accounts[0], &s, &e), -1);
	cr_assert_eq(e.code, ERR_EXEC);
	cr_assert_str_eq(e.msg, "password_cmd for account \"work\" exited with status 1: "
			 "no such entry");
	cfg_free(cfg);
}

Test(secret, account_oauth2_token_from_command)
{
	struct cfg *cfg = load("      oauth2_token_cmd: \"printf 'ya29.token\\\\r\\\\n'\"\n");
	char *s = NULL;
	struct err e;

	cr_assert_eq(secret_oauth2_token(&cfg->accounts[0], &s, &e), 0, "%s", e.msg);
	cr_assert_str_eq(s, "ya29.token");
	free_secret(s);
	cr_assert_eq(secret_password(&cfg->accounts[0], &s, &e), -1);
	cr_assert_eq(e.code, ERR_AUTH);
	cfg_free(cfg);
}

/* ---- started early: secret_start / _finish / _cancel -------------------------- */

/* Wait up to 5 s for `path` to hold a number; returns it (0 if it never did). */
static int read_pid_file(const char *path)
{
	for (int i = 0; i < 250; i++) {
		FILE *f = fopen(path, "r");
		int pid = 0;

		if (f != NULL) {
			if (fscanf(f, "%d", &pid) != 1)
				pid = 0;
			fclose(f);
		}
		if (pid > 0)
			return pid;
		usleep(20000);
	}
	return 0;
}

/* True while /proc knows `pid` at all (a zombie included). */
static bool process_exists(int pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d", pid);
	return access(path, F_OK) == 0;
}

Test(secret, started_helper_runs_while_the_caller_does_other_work)
{
	struct secret_job *job = NULL;
	char *s = NULL;
	double start = now_s(), waited;
	struct err e;

	err_clear(&e);
	cr_assert_eq(secret_start("sleep 0.4; echo pw", "cmd", 10, &job, &e), 0, "%s", e.msg);
	cr_assert_not_null(job);
	cr_assert_lt(now_s() - start, 0.3, "secret_start waited for the helper");
	usleep(500000);         /* the caller's other work: the helper finishes meanwhile */
	start = now_s();
	cr_assert_eq(secret_finish(job, &s, &e), 0, "%s", e.msg);
	waited = now_s() - start;
	cr_assert_str_eq(s, "pw");
	cr_assert_lt(waited, 0.3, "the helper only ran once finished was called (%.2f s)", waited);
	free_secret(s);
}

Test(secret, finished_helper_reports_errors_as_secret_run_does)
{
	struct secret_job *job = NULL;
	char *s = NULL;
	struct err e;

	cr_assert_eq(secret_start("echo oops >&2; exit 3", "cmd", 10, &job, &e), 0, "%s", e.msg);
	cr_assert_eq(secret_finish(job, &s, &e), -1);
	cr_assert_null(s);
	cr_assert_eq(e.code, ERR_EXEC);
	cr_assert_str_eq(e.msg, "cmd exited with status 3: oops");
}

Test(secret, time_limit_counts_from_the_start)
{
	struct secret_job *job = NULL;
	char *s = NULL;
	double start;
	struct err e;

	cr_assert_eq(secret_start("sleep 100", "cmd", 1, &job, &e), 0, "%s", e.msg);
	usleep(1200000);
	start = now_s();
	cr_assert_eq(secret_finish(job, &s, &e), -1);
	cr_assert_lt(now_s() - start, 0.5, "the limit restarted at secret_finish");
	cr_assert_str_eq(e.msg, "cmd timed out after 1 s");
}

Test(secret, cancel_kills_the_process_group_and_reaps_the_shell)
{
	char *pidfile = xasprintf("%s/pids", tmpdir);
	char *cmd = xasprintf("sleep 100 & echo $! > '%s.bg'; echo $$ > '%s'; sleep 100", pidfile,
			      pidfile);
	char *bgfile = xasprintf("%s.bg", pidfile);
	struct secret_job *job = NULL;
	double start;
	int sh, bg;
	struct err e;

	cr_assert_eq(secret_start(cmd, "cmd", 60, &job, &e), 0, "%s", e.msg);
	sh = read_pid_file(pidfile);
	bg = read_pid_file(bgfile);
	cr_assert_gt(sh, 0);
	cr_assert_gt(bg, 0);
	start = now_s();
	secret_cancel(job);
	cr_assert_lt(now_s() - start, 2.0);
	cr_assert(!process_exists(sh), "the shell %d was not reaped", sh);
	for (int i = 0; i < 100 && !process_gone(bg); i++)
		usleep(20000);
	cr_assert(process_gone(bg), "the helper's background child %d survived", bg);
	secret_cancel(NULL);
	free(bgfile);
	free(cmd);
	free(pidfile);
}

/* ---- the account's helper started before the greeting (account.h) ------------- */

static size_t lines_in(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int ch;

	if (f == NULL)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static void early_then_ask(struct cfg *cfg, enum imap_secret_kind kind, const char *want)
{
	enum imap_auth_mech mechs[CFG_AUTH_COUNT];
	struct account_secrets sec;
	struct imap_client_opts o;
	struct buf out = BUF_INIT(1024);
	char fp[110];
	struct err e;

	account_secrets_init(&sec, &cfg->accounts[0]);
	account_client_opts(&cfg->accounts[0], &sec, &o, mechs, fp);
	cr_assert_not_null(o.secret_early);
	o.secret_early(o.secret_ctx);
	err_clear(&e);
	cr_assert_eq(o.get_secret(o.secret_ctx, kind, &out, &e), 0, "%s", e.msg);
	cr_assert_str_eq(buf_cstr(&out), want);
	buf_release_secret(&out);
	account_secrets_release(&sec);
}

Test(secret, account_helper_started_early_runs_once_and_is_taken)
{
	char *log = xasprintf("%s/runs", tmpdir);
	char *extra = xasprintf("      password_cmd: \"echo run >> %s; echo from-cmd\"\n", log);
	struct cfg *cfg = load(extra);
	enum imap_auth_mech mechs[CFG_AUTH_COUNT];
	struct account_secrets sec;
	struct imap_client_opts o;
	char fp[110];

	/* Started by secret_early alone, before anyone asks. */
	account_secrets_init(&sec, &cfg->accounts[0]);
	account_client_opts(&cfg->accounts[0], &sec, &o, mechs, fp);
	o.secret_early(o.secret_ctx);
	for (int i = 0; i < 250 && lines_in(log) == 0; i++)
		usleep(20000);
	cr_assert_eq(lines_in(log), 1, "password_cmd did not start early");
	account_secrets_release(&sec);

	/* Asked for after the early start: its answer, and no second run. */
	early_then_ask(cfg, IMAP_SECRET_PASSWORD, "from-cmd");
	cr_assert_eq(lines_in(log), 2);
	cfg_free(cfg);
	free(extra);

	/* An inline password: nothing to start. */
	cfg = load("      password: inline-pw\n");
	account_secrets_init(&sec, &cfg->accounts[0]);
	account_client_opts(&cfg->accounts[0], &sec, &o, mechs, fp);
	o.secret_early(o.secret_ctx);
	cr_assert_null(sec.job);
	account_secrets_release(&sec);
	early_then_ask(cfg, IMAP_SECRET_PASSWORD, "inline-pw");
	cfg_free(cfg);

	/* A token command alone is started early too. */
	extra = xasprintf("      oauth2_token_cmd: \"echo tok >> %s; echo tok2\"\n", log);
	cfg = load(extra);
	early_then_ask(cfg, IMAP_SECRET_TOKEN, "tok2");
	cr_assert_eq(lines_in(log), 3);
	cfg_free(cfg);
	free(extra);
	free(log);
}

Test(secret, account_helper_started_early_and_not_asked_for_is_killed)
{
	char *pidfile = xasprintf("%s/pid", tmpdir);
	char *extra = xasprintf("      password_cmd: \"echo $$ > %s; sleep 100; echo pw\"\n", pidfile);
	struct cfg *cfg = load(extra);
	enum imap_auth_mech mechs[CFG_AUTH_COUNT];
	struct account_secrets sec;
	struct imap_client_opts o;
	char fp[110];
	int sh;

	account_secrets_init(&sec, &cfg->accounts[0]);
	account_client_opts(&cfg->accounts[0], &sec, &o, mechs, fp);
	o.secret_early(o.secret_ctx);
	sh = read_pid_file(pidfile);
	cr_assert_gt(sh, 0, "password_cmd did not start early");
	account_secrets_release(&sec);  /* e.g. the greeting was PREAUTH */
	cr_assert(!process_exists(sh), "the helper %d still runs", sh);
	cfg_free(cfg);
	free(extra);
	free(pidfile);
}

/*
 * test_cli_run.c - what `ferry` prints and how it exits, run for real
 * against Dovecot (SPEC §1, issue "Everyday use"):
 *   - every exit code of `ferry sync` provoked: 0, 1 (a server that refuses
 *     APPEND into one mailbox), 2 (file:line:col), 3, 4, 5, 6;
 *   - `--json` of sync, status and check validated against
 *     doc/ferry-json.schema.json (tests/json_check.py, python3-jsonschema),
 *     never holding the password;
 *   - `-q` prints nothing on success, only errors on failure;
 *   - the progress line: on a pseudo-terminal, and never in a pipe.
 *
 * Exit codes 2, 3, 4 of `ferry check` are in test_check.c, 5 and 6 of a
 * plain sync in test_sync_recovery.c; here they are provoked again only
 * with --json, to validate what a monitor would read.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "synclib.h"
#include "xalloc.h"

static struct sl_ctx ctx;

static void up(void)
{
	cr_assert_eq(sl_setup(&ctx, false, NULL), 0);
}

static void down(void)
{
	sl_teardown(&ctx);
}

TestSuite(cli_run, .init = up, .fini = down, .timeout = 180);

/* ferry -c CONFIG ARGS... (NULL-terminated); the result is the caller's. */
static int run(struct harness_result *res, const char *const env[], ...)
{
	const char *args[40];
	size_t n = 0;
	const char *a;
	va_list ap;

	va_start(ap, env);
	while ((a = va_arg(ap, const char *)) && n < 39)
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	cr_assert_eq(sl_ferry_argv(&ctx, env, args, res), 0, "ferry did not start");
	cr_assert(!res->timed_out, "ferry timed out\nstdout:\n%s\nstderr:\n%s", res->out, res->err);
	return res->status;
}

/*
 * The run's stdout must be one JSON object valid against the schema, and
 * every expression (NULL-terminated, Python over `doc`) must hold.
 */
static void assert_json(const struct harness_result *res, ...)
{
	char *schema = harness_source_path("doc/ferry-json.schema.json");
	char *checker = harness_source_path("tests/json_check.py");
	char *file = xasprintf("%s/out.json", ctx.d.tmp);
	const char *argv[40] = { "/usr/bin/python3", checker, schema, file };
	struct harness_result r;
	size_t n = 4;
	va_list ap;

	cr_assert_eq(harness_write_file(file, res->out), 0);
	va_start(ap, res);
	for (const char *x; (x = va_arg(ap, const char *)) && n < 39;)
		argv[n++] = x;
	va_end(ap);
	argv[n] = NULL;
	cr_assert_eq(harness_run(argv, NULL, &r), 0, "cannot run %s", checker);
	cr_assert_eq(r.status, 0, "--json output fails its schema:\n%s%s\noutput:\n%s", r.err, r.out,
		     res->out);
	harness_result_release(&r);
	free(file);
	free(checker);
	free(schema);
}

static void assert_no_secret(const struct harness_result *res, const char *secret)
{
	cr_assert_null(strstr(res->out, secret), "the password is on stdout:\n%s", res->out);
	cr_assert_null(strstr(res->err, secret), "the password is on stderr:\n%s", res->err);
}

static char *password_file(void)
{
	return xasprintf("%s/password-test", ctx.d.tmp);
}

/* Replace the first `from` in the config with `to`. */
static void config_replace(const char *from, const char *to)
{
	char *text = harness_read_file(ctx.config, 1 << 20);
	char *at, *out;

	cr_assert_not_null(text);
	at = strstr(text, from);
	cr_assert_not_null(at, "\"%s\" not in the config:\n%s", from, text);
	*at = '\0';
	out = xasprintf("%s%s%s", text, to, at + strlen(from));
	cr_assert_eq(harness_write_file(ctx.config, out), 0);
	free(out);
	free(text);
}

/* A loopback port nobody listens on (bound, read, closed). */
static int dead_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void seed(int count)
{
	cr_assert_eq(harness_seed(&ctx.d, ctx.user, count, "Work"), 0);
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void sync_ok(void)
{
	struct harness_result res;

	cr_assert_eq(run(&res, NULL, "sync", NULL), 0, "stdout:\n%s\nstderr:\n%s", res.out, res.err);
	harness_result_release(&res);
}

/* ---------------------------------------------------------------- exit 0 and --json of sync */

Test(cli_run, first_sync_json_counts_new_mail_per_mailbox_and_validates)
{
	struct harness_result res;

	seed(30);
	cr_assert_eq(run(&res, NULL, "--json", "sync", NULL), 0, "%s", res.err);
	assert_json(&res, "doc['command'] == 'sync' and doc['exit_code'] == 0",
		    "doc['errors'] == [] and doc['dry_run'] == False",
		    "doc['accounts'][0]['account'] == 'test' and doc['accounts'][0]['ok']",
		    "doc['accounts'][0]['totals']['local']['new'] == 30",
		    "doc['accounts'][0]['totals']['local']['bytes'] > 0",
		    "sum(m['local']['new'] for m in doc['accounts'][0]['mailboxes']) == 30",
		    "any(m['name'] == 'Work' and m['local']['new'] > 0 "
		    "for m in doc['accounts'][0]['mailboxes'])",
		    NULL);
	assert_no_secret(&res, ctx.pass);
	harness_result_release(&res);
}

Test(cli_run, no_change_sync_json_has_zero_counts_and_validates)
{
	struct harness_result res;

	seed(10);
	sync_ok();
	cr_assert_eq(run(&res, NULL, "--json", "sync", NULL), 0, "%s", res.err);
	assert_json(&res, "doc['exit_code'] == 0",
		    "all(v == 0 for s in ('local', 'remote') "
		    "for v in doc['accounts'][0]['totals'][s].values())",
		    "all(m['ok'] for m in doc['accounts'][0]['mailboxes'])", NULL);
	assert_no_secret(&res, ctx.pass);
	harness_result_release(&res);
}

Test(cli_run, dry_run_json_lists_the_plan_and_validates)
{
	struct harness_result res;

	seed(5);
	cr_assert_eq(run(&res, NULL, "--json", "sync", "--dry-run", NULL), 0, "%s", res.err);
	assert_json(&res, "doc['dry_run'] == True", "len(doc['accounts'][0]['plan']) >= 5",
		    "doc['accounts'][0]['totals']['local']['new'] == 5", NULL);
	harness_result_release(&res);
	/* and nothing was written */
	{
		struct sl_list l = { 0 };

		cr_assert_neq(access(ctx.root, F_OK) == 0 && sl_local_list(&ctx, "INBOX", &l) == 0 &&
				      l.n > 0,
			      true, "a dry run wrote to the Maildir");
		sl_list_release(&l);
	}
}

Test(cli_run, status_json_validates_after_a_sync)
{
	struct harness_result res;

	cr_assert_eq(run(&res, NULL, "--json", "status", NULL), 0, "%s", res.err);
	assert_json(&res, "doc['command'] == 'status'", "doc['accounts'][0]['synced'] == False",
		    NULL);
	harness_result_release(&res);
	seed(4);
	sync_ok();
	cr_assert_eq(run(&res, NULL, "--json", "status", NULL), 0, "%s", res.err);
	assert_json(&res, "doc['accounts'][0]['synced'] == True",
		    "all(m['last_sync_at'] is not None for m in doc['accounts'][0]['mailboxes'])",
		    "sum(m['messages'] for m in doc['accounts'][0]['mailboxes']) == 4", NULL);
	assert_no_secret(&res, ctx.pass);
	harness_result_release(&res);
}

/*
 * §1 status: offline, from the state, while another run holds the lock
 * (and the server is gone): last sync, counts, and the local changes
 * waiting to be pushed.
 */
Test(cli_run, status_works_offline_while_another_run_holds_the_lock)
{
	char *lock = xasprintf("%s/lock", ctx.state);
	struct harness_result res;
	int fd;

	seed(4);
	sync_ok();
	cr_assert_eq(sl_local_deliver(&ctx, "Work", "Message-ID: <waiting@ferry.test>\r\n"
				      "Subject: waiting\r\n\r\nnot pushed yet\r\n", NULL), 0);
	fd = open(lock, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", lock, strerror(errno));
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	{
		/* and no server either: the port now leads nowhere */
		char *from = xasprintf("port: %d", ctx.d.imaps_port);
		char *to = xasprintf("port: %d", dead_port());

		config_replace(from, to);
		free(from);
		free(to);
	}

	cr_assert_eq(run(&res, NULL, "status", NULL), 0, "stdout:\n%s\nstderr:\n%s", res.out, res.err);
	cr_assert(strstr(res.out, "last sync"), "%s", res.out);
	cr_assert(strstr(res.out, "1 new"), "the waiting message is not shown:\n%s", res.out);
	harness_result_release(&res);

	cr_assert_eq(run(&res, NULL, "--json", "status", NULL), 0, "%s", res.err);
	assert_json(&res, "doc['accounts'][0]['synced'] == True",
		    "[m['pending']['new'] for m in doc['accounts'][0]['mailboxes'] if m['name'] == 'Work'] == [1]",
		    "sum(m['messages'] for m in doc['accounts'][0]['mailboxes']) == 4", NULL);
	harness_result_release(&res);
	close(fd);
	free(lock);
}

/* The "last sync" column lines up under names with accented letters. */
Test(cli_run, status_columns_line_up_under_non_ascii_names)
{
	struct harness_result res;
	const char *at;
	long column = -1;
	size_t lines = 0;

	/* Entwürfe, Crème/Été, as the server stores them (modified UTF-7) */
	cr_assert_eq(harness_seed(&ctx.d, ctx.user, 6, "Entw&APw-rfe Cr&AOg-me/&AMk-t&AOk-"), 0);
	sync_ok();
	cr_assert_eq(run(&res, NULL, "status", NULL), 0, "%s", res.err);
	cr_assert(strstr(res.out, "Entw\xc3\xbcrfe"), "%s", res.out);
	for (const char *line = res.out; (at = strstr(line, " last sync ")); lines++) {
		const char *start = at;
		long cols = 0;

		while (start > res.out && start[-1] != '\n')
			start--;
		for (const char *p = start; p < at; p++)
			cols += ((unsigned char)*p & 0xc0) != 0x80;
		if (column < 0)
			column = cols;
		cr_assert_eq(cols, column, "column %ld, not %ld, in:\n%s", cols, column, res.out);
		line = at + 1;
	}
	cr_assert_geq(lines, 4, "%s", res.out);
	harness_result_release(&res);
}

Test(cli_run, text_summary_has_a_line_per_mailbox_and_a_total)
{
	struct harness_result res;
	char **boxes;
	size_t n = 0;

	seed(10);
	boxes = sl_remote_mailboxes(&ctx);
	cr_assert_not_null(boxes);
	cr_assert_eq(run(&res, NULL, "sync", NULL), 0, "%s", res.err);
	for (n = 0; boxes[n]; n++) {
		char *line = xasprintf("test/%s: ", boxes[n]);

		cr_assert(strstr(res.out, line), "no line for %s:\n%s", boxes[n], res.out);
		free(line);
	}
	cr_assert(strstr(res.out, "test/INBOX: pulled "), "%s", res.out);
	{
		char *total = xasprintf("test: synced %zu mailboxes in ", n);

		cr_assert(strstr(res.out, total), "no total line \"%s\":\n%s", total, res.out);
		cr_assert(strstr(res.out, ": pulled 10 new, "), "the total misses the count:\n%s",
			  res.out);
		free(total);
	}
	cr_assert_eq(res.err_len, 0, "stderr of a clean sync:\n%s", res.err);
	harness_result_release(&res);
	cr_assert_eq(run(&res, NULL, "sync", NULL), 0, "%s", res.err);
	cr_assert_eq(count_of(res.out, ": up to date\n"), n, "%s", res.out);
	cr_assert(strstr(res.out, "s, no changes\n"), "%s", res.out);
	harness_result_release(&res);
	sl_strv_free(boxes);
}

/* ---------------------------------------------------------------- check */

Test(cli_run, check_json_validates_online_offline_and_with_a_wrong_password)
{
	const char *wrong = "wrong-pw-57b1e0";
	char *pw = password_file();
	struct harness_result res;

	cr_assert_eq(run(&res, NULL, "--json", "check", NULL), 0, "%s", res.err);
	assert_json(&res, "doc['command'] == 'check' and doc['offline'] == False",
		    "len(doc['accounts'][0]['capabilities']) > 0",
		    "any(m['name'] == 'INBOX' for m in doc['accounts'][0]['mailboxes'])", NULL);
	assert_no_secret(&res, ctx.pass);
	harness_result_release(&res);

	cr_assert_eq(run(&res, NULL, "--json", "check", "--offline", NULL), 0, "%s", res.err);
	assert_json(&res, "doc['offline'] == True", "'capabilities' not in doc['accounts'][0]", NULL);
	harness_result_release(&res);

	cr_assert_eq(harness_write_file(pw, wrong), 0);
	cr_assert_eq(run(&res, NULL, "--json", "check", NULL), 3, "%s", res.err);
	assert_json(&res, "doc['exit_code'] == 3", "doc['errors'][0]['code'] == 'auth'",
		    "doc['errors'][0]['account'] == 'test'", "doc['accounts'][0]['ok'] == False",
		    NULL);
	assert_no_secret(&res, wrong);
	harness_result_release(&res);
	free(pw);
}

/* ---------------------------------------------------------------- exit 1 */

/*
 * §1 exit 1: the server refuses every APPEND into Work (its Maildir's tmp/
 * made read-only for Dovecot, which never runs as root), while INBOX
 * syncs.  The run exits 1, INBOX's message reaches the server and is
 * recorded (the next run has nothing to do for it), the output names the
 * mailbox, the file and what to do; once the server accepts again, a
 * plain sync finishes the job.
 */
Test(cli_run, refused_append_in_one_mailbox_exits_1_and_syncs_the_others)
{
	char *tmpdir = xasprintf("%s/mail/%s/Maildir/.Work/tmp", ctx.d.dir, ctx.user);
	struct harness_result res;
	struct sl_list l = { 0 };
	char *a = sl_message("pushed-inbox", 200), *b = sl_message("pushed-work", 200);

	seed(6);
	sync_ok();
	cr_assert_eq(sl_local_deliver(&ctx, "INBOX", a, NULL), 0);
	cr_assert_eq(sl_local_deliver(&ctx, "Work", b, NULL), 0);
	cr_assert_eq(chmod(tmpdir, 0500), 0, "chmod %s: %s", tmpdir, strerror(errno));

	cr_assert_eq(run(&res, NULL, "sync", NULL), 1, "stdout:\n%s\nstderr:\n%s", res.out, res.err);
	cr_assert(strstr(res.out, "test/Work: failed:"), "no failed line for Work:\n%s", res.out);
	cr_assert(strstr(res.out, "test/INBOX: pushed 1 new"), "INBOX did not sync:\n%s", res.out);
	cr_assert(strstr(res.err, "mailbox \"Work\" failed"), "stderr:\n%s", res.err);
	cr_assert(strstr(res.err, "refused APPEND"), "the server's refusal is not shown:\n%s",
		  res.err);
	cr_assert(strstr(res.err, "local message \""), "the file is not named:\n%s", res.err);
	cr_assert(strstr(res.err, "1 of ") && strstr(res.err, "synced and recorded"),
		  "no summary of the partial failure:\n%s", res.err);
	cr_assert(strstr(res.err, "ferry sync test/Work"), "no next step:\n%s", res.err);
	cr_assert(strstr(res.out, "test: synced ") && strstr(res.out, " of "),
		  "no partial total line:\n%s", res.out);
	harness_result_release(&res);
	cr_assert_neq(sl_remote_uid(&ctx, "INBOX", "<pushed-inbox@ferry.test>"), 0u,
		      "INBOX's message did not reach the server");
	cr_assert_eq(sl_remote_uid(&ctx, "Work", "<pushed-work@ferry.test>"), 0u);

	/* --json: the same run again, with the failure in "errors" */
	cr_assert_eq(run(&res, NULL, "--json", "sync", NULL), 1, "%s", res.err);
	assert_json(&res, "doc['exit_code'] == 1 and len(doc['errors']) == 1",
		    "doc['errors'][0]['scope'] == 'mailbox' and doc['errors'][0]['mailbox'] == 'Work'",
		    "doc['errors'][0]['code'] == 'server' and doc['errors'][0]['account'] == 'test'",
		    "[m['name'] for m in doc['accounts'][0]['mailboxes'] if not m['ok']] == ['Work']",
		    "doc['accounts'][0]['totals']['remote']['new'] == 0", NULL);
	assert_no_secret(&res, ctx.pass);
	harness_result_release(&res);

	cr_assert_eq(chmod(tmpdir, 0700), 0);
	sync_ok();
	cr_assert_neq(sl_remote_uid(&ctx, "Work", "<pushed-work@ferry.test>"), 0u);
	cr_assert_eq(sl_remote_list(&ctx, "INBOX", &l), 0);
	cr_assert_eq(sl_list_dups(&l), 0, "INBOX's message was pushed twice");
	sl_list_release(&l);
	free(a);
	free(b);
	free(tmpdir);
}

/* ---------------------------------------------------------------- exit 2, 3, 4 */

Test(cli_run, bad_config_exits_2_naming_file_line_and_column)
{
	struct harness_result res;
	char *where;

	config_replace("      user:", "      usr:");
	cr_assert_eq(run(&res, NULL, "sync", NULL), 2, "%s", res.err);
	where = xasprintf("%s:", ctx.config);
	cr_assert(strstr(res.err, where), "the file is not named:\n%s", res.err);
	cr_assert(strstr(res.err, "unknown key \"usr\""), "%s", res.err);
	{
		/* FILE:LINE:COL: */
		const char *p = strstr(res.err, where) + strlen(where);
		int line = 0, col = 0;

		cr_assert_eq(sscanf(p, "%d:%d:", &line, &col), 2, "no line:col in\n%s", res.err);
		cr_assert_gt(line, 0);
		cr_assert_gt(col, 0);
	}
	cr_assert_eq(res.out_len, 0, "stdout:\n%s", res.out);
	harness_result_release(&res);

	cr_assert_eq(run(&res, NULL, "--json", "sync", NULL), 2);
	assert_json(&res, "doc['errors'][0]['code'] == 'config'",
		    "doc['errors'][0]['scope'] == 'run' and doc['accounts'] == []", NULL);
	harness_result_release(&res);
	free(where);
}

Test(cli_run, usage_error_with_json_is_still_one_object)
{
	struct harness_result res;

	/* --json after the bad option: parsing stopped before it. */
	cr_assert_eq(run(&res, NULL, "sync", "--bogus", "--json", NULL), 2);
	cr_assert(strstr(res.err, "unknown option \"--bogus\""), "%s", res.err);
	assert_json(&res, "doc['command'] == 'sync' and doc['exit_code'] == 2",
		    "doc['errors'][0]['code'] == 'usage' and doc['errors'][0]['scope'] == 'run'",
		    "'--bogus' in doc['errors'][0]['message'] and doc['accounts'] == []", NULL);
	harness_result_release(&res);

	cr_assert_eq(run(&res, NULL, "--json", "-c", "sync", "frobnicate", NULL), 2);
	assert_json(&res, "doc['command'] is None",
		    "'frobnicate' in doc['errors'][0]['message']", NULL);
	harness_result_release(&res);

	cr_assert_eq(run(&res, NULL, "--json", "status", "--pull", NULL), 2);
	assert_json(&res, "doc['command'] == 'status'",
		    "doc['errors'][0]['code'] == 'usage'", NULL);
	harness_result_release(&res);

	/* Without --json nothing goes to stdout. */
	cr_assert_eq(run(&res, NULL, "sync", "--bogus", NULL), 2);
	cr_assert_eq(res.out_len, 0, "stdout:\n%s", res.out);
	harness_result_release(&res);
}

Test(cli_run, wrong_password_exits_3_and_never_shows_it)
{
	const char *wrong = "wrong-pw-c0ffee42";
	char *pw = password_file();
	struct harness_result res;

	cr_assert_eq(harness_write_file(pw, wrong), 0);
	cr_assert_eq(run(&res, NULL, "sync", NULL), 3, "%s", res.err);
	cr_assert(strstr(res.err, "account \"test\""), "%s", res.err);
	cr_assert(strstr(res.err, "hint:"), "no next step:\n%s", res.err);
	cr_assert(strstr(res.err, "\"ferry check test\""), "no way to test the login:\n%s", res.err);
	assert_no_secret(&res, wrong);
	harness_result_release(&res);

	cr_assert_eq(run(&res, NULL, "--json", "sync", NULL), 3, "%s", res.err);
	assert_json(&res, "doc['errors'][0]['code'] == 'auth' and doc['errors'][0]['exit_code'] == 3",
		    "doc['accounts'][0]['ok'] == False", NULL);
	assert_no_secret(&res, wrong);
	harness_result_release(&res);

	/* -q: only the error */
	cr_assert_eq(run(&res, NULL, "-q", "sync", NULL), 3);
	cr_assert_eq(res.out_len, 0, "stdout with -q:\n%s", res.out);
	cr_assert(strstr(res.err, "error") || strstr(res.err, "auth") || strstr(res.err, "refused"),
		  "-q hid the error:\n%s", res.err);
	assert_no_secret(&res, wrong);
	harness_result_release(&res);
	free(pw);
}

/*
 * A password command that fails leaves ferry without credentials: exit 3,
 * like a refused login, with the command's own complaint and no secret.
 */
Test(cli_run, failing_password_command_exits_3_and_says_which_command)
{
	struct harness_result res;
	char *pw = password_file();
	char *from = xasprintf("password_cmd: \"cat %s\"", pw);

	config_replace(from, "password_cmd: \"echo 'gpg: decryption failed: No secret key' >&2; exit 2\"");
	cr_assert_eq(run(&res, NULL, "sync", NULL), 3, "%s", res.err);
	cr_assert(strstr(res.err, "password_cmd"), "which command failed?\n%s", res.err);
	cr_assert(strstr(res.err, "No secret key"), "the command's stderr is missing:\n%s", res.err);
	cr_assert(strstr(res.err, "hint:"), "no next step:\n%s", res.err);
	harness_result_release(&res);

	cr_assert_eq(run(&res, NULL, "--json", "sync", NULL), 3, "%s", res.err);
	assert_json(&res, "doc['exit_code'] == 3 and doc['errors'][0]['code'] == 'exec'",
		    "doc['errors'][0]['exit_code'] == 3", NULL);
	harness_result_release(&res);
	free(from);
	free(pw);
}

Test(cli_run, unreachable_port_exits_4)
{
	struct harness_result res;
	char *from = xasprintf("port: %d", ctx.d.imaps_port);
	char *to = xasprintf("port: %d", dead_port());

	config_replace(from, to);
	cr_assert_eq(run(&res, NULL, "sync", NULL), 4, "%s", res.err);
	cr_assert(strstr(res.err, "account \"test\""), "%s", res.err);
	cr_assert(strstr(res.err, "hint: check host, port"), "no next step:\n%s", res.err);
	harness_result_release(&res);
	cr_assert_eq(run(&res, NULL, "--json", "sync", NULL), 4, "%s", res.err);
	assert_json(&res, "doc['errors'][0]['exit_code'] == 4",
		    "doc['errors'][0]['code'] in ('network', 'timeout')", NULL);
	harness_result_release(&res);
	free(to);
	free(from);
}

/* ---------------------------------------------------------------- exit 5, 6 with --json */

Test(cli_run, safety_stop_json_exits_5_and_names_the_mailbox)
{
	struct harness_result res;
	struct sl_list l = { 0 };
	char *dir;

	seed(24);
	sync_ok();
	cr_assert_eq(sl_local_list(&ctx, "INBOX", &l), 0);
	cr_assert_geq(l.n, 12, "%zu messages in INBOX", l.n);
	dir = sl_local_path(&ctx, "INBOX");
	for (size_t i = 0; i < l.n; i++) {
		char *p = xasprintf("%s/%s", dir, l.v[i].name);

		cr_assert_eq(unlink(p), 0, "%s", p);
		free(p);
	}
	cr_assert_eq(run(&res, NULL, "--json", "sync", NULL), 5, "%s", res.err);
	assert_json(&res, "doc['exit_code'] == 5",
		    "[m['name'] for m in doc['accounts'][0]['mailboxes'] if m['safety_stop']] == ['INBOX']",
		    "any(e['code'] == 'safety' and e['exit_code'] == 5 for e in doc['errors'])",
		    "doc['accounts'][0]['totals']['remote']['deleted'] == 0", NULL);
	harness_result_release(&res);
	/* in words: where, why, and the two ways on */
	cr_assert_eq(run(&res, NULL, "sync", NULL), 5, "%s", res.err);
	cr_assert(strstr(res.err, "safety stop in mailbox \"INBOX\""), "%s", res.err);
	cr_assert(strstr(res.err, "nothing was deleted"), "%s", res.err);
	cr_assert(strstr(res.err, "ferry sync --force test/INBOX"), "no next step:\n%s", res.err);
	harness_result_release(&res);
	sl_list_release(&l);
	free(dir);
}

/*
 * Exit 1 for the whole account (here the Maildir path is a regular file):
 * stderr says what failed, not "0 of 0 mailboxes failed", and stdout does
 * not claim a sync.
 */
Test(cli_run, account_wide_failure_says_why_and_claims_no_sync)
{
	char *pw = password_file();
	char *from = xasprintf("path: \"%s\"", ctx.root);
	char *to = xasprintf("path: \"%s\"", pw);
	struct harness_result res;

	config_replace(from, to);
	cr_assert_eq(run(&res, NULL, "sync", NULL), 1, "%s", res.err);
	cr_assert_not_null(strstr(res.err, "cannot open maildir root"), "no cause:\n%s", res.err);
	cr_assert_not_null(strstr(res.err, "Not a directory"), "no cause:\n%s", res.err);
	cr_assert_null(strstr(res.err, "0 of 0"), "a partial failure reported:\n%s", res.err);
	cr_assert_null(strstr(res.out, "synced"), "a sync claimed:\n%s", res.out);
	harness_result_release(&res);
	free(to);
	free(from);
	free(pw);
}

/*
 * §2: a tls_ca_file that is missing, or holds no certificate, is a bad
 * value: exit 2 naming the file, line and key (also with check
 * --offline), not a TLS failure at connection time.
 */
Test(cli_run, unusable_tls_ca_file_is_a_config_error)
{
	char *from = xasprintf("tls_ca_file: \"%s\"", ctx.d.ca_file);
	char *garbage = xasprintf("%s/garbage.pem", ctx.d.tmp);
	char *to_missing = xasprintf("tls_ca_file: \"%s/missing.pem\"", ctx.d.tmp);
	char *to_garbage = xasprintf("tls_ca_file: \"%s\"", garbage);
	char *where = xasprintf("%s:", ctx.config);
	struct harness_result res;

	config_replace(from, to_missing);
	cr_assert_eq(run(&res, NULL, "check", "--offline", NULL), 2, "%s", res.err);
	cr_assert_not_null(strstr(res.err, where), "no file:line:col:\n%s", res.err);
	cr_assert_not_null(strstr(res.err, "remote.tls_ca_file"), "no key:\n%s", res.err);
	harness_result_release(&res);
	cr_assert_eq(run(&res, NULL, "sync", NULL), 2, "%s", res.err);
	harness_result_release(&res);
	cr_assert_eq(harness_write_file(garbage, "not a certificate\n"), 0);
	config_replace(to_missing, to_garbage);
	cr_assert_eq(run(&res, NULL, "sync", NULL), 2, "%s", res.err);
	cr_assert_not_null(strstr(res.err, "holds no PEM certificate"), "%s", res.err);
	harness_result_release(&res);
	free(where);
	free(to_garbage);
	free(to_missing);
	free(garbage);
	free(from);
}

Test(cli_run, held_lock_json_exits_6)
{
	char *lock = xasprintf("%s/lock", ctx.state);
	struct harness_result res;
	int fd;

	sync_ok();
	fd = open(lock, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", lock, strerror(errno));
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	cr_assert_eq(run(&res, NULL, "--json", "sync", NULL), 6, "%s", res.err);
	assert_json(&res, "doc['errors'][0]['code'] == 'locked' and doc['errors'][0]['exit_code'] == 6",
		    NULL);
	harness_result_release(&res);
	cr_assert_eq(run(&res, NULL, "sync", NULL), 6, "%s", res.err);
	cr_assert(strstr(res.err, "--wait"), "no next step:\n%s", res.err);
	harness_result_release(&res);
	close(fd);
	free(lock);
}

/*
 * §4.9: the lock is taken before anything else.  A run that cannot have it
 * exits 6 without running password_cmd (which may ask gpg-agent for a
 * passphrase) or logging in; one with --wait runs it, and logs in, only
 * once the holder let go (it holds no idle connection while it waits).
 */
Test(cli_run, held_lock_stops_the_run_before_password_cmd_and_login)
{
	char *lock = xasprintf("%s/lock", ctx.state);
	char *pw = password_file();
	char *ran = xasprintf("%s/pwcmd-ran", ctx.d.tmp);
	char *released = xasprintf("%s/released", ctx.d.tmp);
	char *after = xasprintf("%s/pwcmd-after-release", ctx.d.tmp);
	char *from = xasprintf("password_cmd: \"cat %s\"", pw);
	char *to = xasprintf("password_cmd: \"touch %s; test -e %s && touch %s; cat %s\"", ran,
			     released, after, pw);
	struct harness_result res;
	pid_t pid;
	int fd, status;

	sync_ok();
	config_replace(from, to);
	fd = open(lock, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", lock, strerror(errno));
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	cr_assert_eq(run(&res, NULL, "sync", NULL), 6, "%s", res.err);
	harness_result_release(&res);
	cr_assert_neq(access(ran, F_OK), 0, "password_cmd ran although the lock was held");

	/* --wait: a child lets go of the lock (the same open file) after 1 s,
	 * having first created `released` */
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int rfd;

		usleep(1000 * 1000);
		rfd = open(released, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		_exit(rfd < 0 || flock(fd, LOCK_UN) < 0 ? 1 : 0);
	}
	cr_assert_eq(run(&res, NULL, "sync", "--wait", NULL), 0, "%s", res.err);
	harness_result_release(&res);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the releasing child failed");
	cr_assert_eq(access(ran, F_OK), 0, "password_cmd did not run with --wait");
	cr_assert_eq(access(after, F_OK), 0, "with --wait, password_cmd ran before the lock was free");
	close(fd);
	free(to);
	free(from);
	free(after);
	free(released);
	free(ran);
	free(pw);
	free(lock);
}

/* ---------------------------------------------------------------- -q */

Test(cli_run, quiet_sync_prints_nothing_on_success)
{
	struct harness_result res;

	seed(20);
	cr_assert_eq(run(&res, NULL, "-q", "sync", NULL), 0, "%s", res.err);
	cr_assert_eq(res.out_len, 0, "stdout with -q:\n%s", res.out);
	cr_assert_eq(res.err_len, 0, "stderr with -q:\n%s", res.err);
	harness_result_release(&res);
	/* it did sync */
	cr_assert_eq(sl_sides_diff(&ctx, NULL), 0);
	cr_assert_eq(run(&res, NULL, "-q", "sync", NULL), 0, "%s", res.err);
	cr_assert_eq(res.out_len + res.err_len, 0, "a no-change -q sync printed:\n%s%s", res.out,
		     res.err);
	harness_result_release(&res);
}

/* ---------------------------------------------------------------- the progress line */

struct pty_run {
	int status;
	char *tty;              /* what reached the terminal (stderr) */
	size_t tty_len;
	char *out;              /* stdout, through a pipe */
};

static void grow_read(int fd, char **buf, size_t *len, size_t *cap, bool *open_)
{
	char chunk[4096];
	ssize_t k = read(fd, chunk, sizeof(chunk));

	if (k <= 0) {           /* EOF, or EIO once the pty's last user closed it */
		if (k == 0 || errno != EINTR)
			*open_ = false;
		return;
	}
	if (*len + (size_t)k + 1 > *cap) {
		*cap = (*len + (size_t)k + 1) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, chunk, (size_t)k);
	*len += (size_t)k;
	(*buf)[*len] = '\0';
}

/*
 * ferry -c CONFIG ARGS on a pseudo-terminal COLS wide: stdin and stderr
 * are the terminal, stdout a pipe (so the two can be told apart).
 */
static void run_pty(struct pty_run *pr, unsigned short cols, const char *const env[], ...)
{
	struct winsize ws = { .ws_row = 24, .ws_col = cols };
	char *ferry = harness_ferry_path();
	const char *argv[40] = { ferry, "-c", ctx.config };
	size_t n = 3, tty_cap = 0, out_cap = 0, out_len = 0;
	bool tty_open = true, out_open = true;
	int master, pfd[2], wst;
	struct timespec t0, t1;
	va_list ap;
	pid_t pid;

	va_start(ap, env);
	for (const char *x; (x = va_arg(ap, const char *)) && n < 39;)
		argv[n++] = x;
	va_end(ap);
	argv[n] = NULL;
	memset(pr, 0, sizeof(*pr));
	pr->tty = xstrdup("");
	pr->out = xstrdup("");
	cr_assert_eq(pipe(pfd), 0);
	pid = forkpty(&master, NULL, NULL, &ws);
	cr_assert_geq(pid, 0, "forkpty: %s", strerror(errno));
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execv(ferry, (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (tty_open || out_open) {
		struct pollfd p[2] = { { tty_open ? master : -1, POLLIN, 0 },
				       { out_open ? pfd[0] : -1, POLLIN, 0 } };

		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 120) {
			kill(pid, SIGKILL);
			cr_assert_fail("ferry on a pty timed out");
		}
		if (poll(p, 2, 1000) < 0)
			continue;
		if (p[0].revents)
			grow_read(master, &pr->tty, &pr->tty_len, &tty_cap, &tty_open);
		if (p[1].revents)
			grow_read(pfd[0], &pr->out, &out_len, &out_cap, &out_open);
	}
	close(master);
	close(pfd[0]);
	cr_assert_eq(waitpid(pid, &wst, 0), pid);
	pr->status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
	free(ferry);
}

static void pty_run_release(struct pty_run *pr)
{
	free(pr->tty);
	free(pr->out);
}

/* Printable rendering of terminal output for assertion messages (caller frees). */
static char *visible(const char *s)
{
	size_t n = strlen(s);
	char *v = xmalloc(n * 4 + 1), *o = v;

	for (; *s; s++) {
		if (*s == '\r')
			o += sprintf(o, "\\r");
		else if (*s == '\033')
			o += sprintf(o, "\\e");
		else
			*o++ = *s;
	}
	*o = '\0';
	return v;
}

Test(cli_run, progress_line_is_drawn_on_a_terminal_and_erased)
{
	const char *env[] = { "FERRY_PROGRESS_INTERVAL_MS=0", "TERM=xterm", NULL };
	struct pty_run pr;
	char *v, *want;
	size_t lines = 0;

	seed(60);
	run_pty(&pr, 60, env, "sync", NULL);
	v = visible(pr.tty);
	cr_assert_eq(pr.status, 0, "exit %d\n%s\n%s", pr.status, pr.out, v);
	cr_assert(strstr(pr.tty, "\r"), "no redraw on the terminal:\n%s", v);
	cr_assert(strstr(pr.tty, "msgs"), "no progress text:\n%s", v);
	cr_assert(strstr(pr.tty, "test/INBOX") || strstr(pr.tty, "test/Work"),
		  "the line does not name the mailbox:\n%s", v);
	want = xasprintf("pulling 60/60 msgs");
	cr_assert(strstr(pr.tty, want), "the count never reached the end (%s):\n%s", want, v);
	/* every drawn line fits the 60 columns, without the last one */
	for (const char *p = strchr(pr.tty, '\r'); p; p = strchr(p + 1, '\r')) {
		const char *end = strstr(p, "\033[K");
		size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);

		cr_assert_leq(len, 59, "a line of %zu columns on a 60-column terminal:\n%s", len, v);
		lines++;
	}
	cr_assert_gt(lines, 1, "drawn once only:\n%s", v);
	/* erased before the summary: the terminal's last bytes clear the line */
	cr_assert_geq(pr.tty_len, 4);
	cr_assert_str_eq(pr.tty + pr.tty_len - 4, "\r\033[K", "not erased at the end:\n%s", v);
	cr_assert(strstr(pr.out, "test/INBOX: pulled"), "no summary:\n%s", pr.out);
	cr_assert_null(strchr(pr.out, '\r'), "progress on stdout:\n%s", pr.out);
	free(want);
	free(v);
	pty_run_release(&pr);
}

/* A big message moves the line while it is transferred, both ways. */
Test(cli_run, progress_line_moves_during_one_big_message_each_way)
{
	const char *env[] = { "FERRY_PROGRESS_INTERVAL_MS=0", "TERM=xterm", NULL };
	char *big = sl_message("big-down", 3u << 20), *up = sl_message("big-up", 3u << 20);
	struct pty_run pr;
	char *v;

	cr_assert_eq(sl_remote_append(&ctx, "INBOX", big, NULL), 0);
	run_pty(&pr, 100, env, "sync", NULL);
	v = visible(pr.tty);
	cr_assert_eq(pr.status, 0, "exit %d\n%s\n%s", pr.status, pr.out, v);
	cr_assert_gt(count_of(pr.tty, "pulling 0/1 msgs"), 3,
		     "no movement while the message downloads:\n%.2000s", v);
	cr_assert(strstr(pr.tty, "pulling 1/1 msgs  3.0 MB/3.0 MB"), "%.2000s", v);
	free(v);
	pty_run_release(&pr);

	cr_assert_eq(sl_local_deliver(&ctx, "INBOX", up, NULL), 0);
	run_pty(&pr, 100, env, "sync", NULL);
	v = visible(pr.tty);
	cr_assert_eq(pr.status, 0, "exit %d\n%s\n%s", pr.status, pr.out, v);
	cr_assert_gt(count_of(pr.tty, "pushing 0/1 msgs"), 3,
		     "no movement while the message uploads:\n%.2000s", v);
	cr_assert(strstr(pr.tty, "pushing 1/1 msgs  3.0 MB/3.0 MB"), "%.2000s", v);
	free(v);
	pty_run_release(&pr);
	free(up);
	free(big);
}

Test(cli_run, no_progress_line_in_a_pipe)
{
	const char *env[] = { "FERRY_PROGRESS_INTERVAL_MS=0", NULL };
	struct harness_result res;

	seed(40);
	cr_assert_eq(run(&res, env, "sync", NULL), 0, "%s", res.err);
	cr_assert_null(strchr(res.err, '\r'), "a redraw in a pipe:\n%s", res.err);
	cr_assert_null(strstr(res.err, "msgs"), "progress text in a pipe:\n%s", res.err);
	cr_assert_null(strchr(res.out, '\r'));
	cr_assert(strstr(res.out, "test/INBOX: pulled"), "%s", res.out);
	harness_result_release(&res);
}

Test(cli_run, quiet_on_a_terminal_shows_nothing_at_all)
{
	const char *env[] = { "FERRY_PROGRESS_INTERVAL_MS=0", "TERM=xterm", NULL };
	struct pty_run pr;

	seed(40);
	run_pty(&pr, 80, env, "-q", "sync", NULL);
	cr_assert_eq(pr.status, 0, "exit %d\n%s", pr.status, pr.tty);
	cr_assert_eq(pr.tty_len, 0, "-q wrote to the terminal:\n%s", pr.tty);
	cr_assert_str_empty(pr.out, "-q wrote to stdout:\n%s", pr.out);
	pty_run_release(&pr);
	cr_assert_eq(sl_sides_diff(&ctx, NULL), 0);
}

Test(cli_run, json_on_a_terminal_has_no_progress_line)
{
	const char *env[] = { "FERRY_PROGRESS_INTERVAL_MS=0", "TERM=xterm", NULL };
	struct pty_run pr;

	seed(20);
	run_pty(&pr, 80, env, "--json", "sync", NULL);
	cr_assert_eq(pr.status, 0, "exit %d\n%s", pr.status, pr.tty);
	cr_assert_eq(pr.tty_len, 0, "--json wrote to the terminal:\n%s", pr.tty);
	cr_assert(strstr(pr.out, "\"command\":\"sync\""), "%s", pr.out);
	pty_run_release(&pr);
}

Test(cli_run, dumb_terminal_has_no_progress_line)
{
	const char *env[] = { "FERRY_PROGRESS_INTERVAL_MS=0", "TERM=dumb", NULL };
	struct pty_run pr;

	seed(20);
	run_pty(&pr, 80, env, "sync", NULL);
	cr_assert_eq(pr.status, 0, "exit %d\n%s", pr.status, pr.tty);
	cr_assert_eq(pr.tty_len, 0, "TERM=dumb got a progress line:\n%s", pr.tty);
	cr_assert(strstr(pr.out, "test/INBOX: pulled"), "%s", pr.out);
	pty_run_release(&pr);
}

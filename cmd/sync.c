/*
 * sync.c - `ferry sync [--dry-run] [--pull|--push] [--force] [--wait]
 * [ACCOUNT[/MAILBOX]...]`: for each selected account, open the server,
 * hand it to the sync engine (core/sync/engine.h), print one summary line
 * per mailbox (or the plan with --dry-run, or one JSON object with --json)
 * and turn the outcome into the exit code of SPEC §1.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "commands_int.h"
#include "lock.h"
#include "sync/engine.h"
#include "json.h"
#include "log.h"
#include "progress.h"

struct selection {
	const struct cfg_account *account;
	const char *const *mailboxes;   /* ACCOUNT/MAILBOX targets, or none */
	size_t nmailboxes;
	bool *matched;                  /* per target: some mailbox the config selects */
	bool *excluded;                 /* per target: some mailbox the config leaves out */
};

/*
 * Mailboxes named on the command line narrow the config's selection: a
 * mailbox is synced when it matches one of them and the config's include
 * and exclude patterns (an excluded mailbox stays out: `ferry sync
 * gmail/'*'` does not fetch an excluded "[Gmail]/All Mail").
 */
static bool mailbox_selected(void *ctx, const char *utf8_name, char sep)
{
	const struct selection *sel = ctx;
	bool config = cfg_mailbox_selected(sel->account, utf8_name, sep), any = false;

	if (sel->nmailboxes == 0)
		return config;
	for (size_t i = 0; i < sel->nmailboxes; i++) {
		if (!cfg_pattern_match(sel->mailboxes[i], utf8_name, sep))
			continue;
		any = true;
		if (config)
			sel->matched[i] = true;
		else
			sel->excluded[i] = true;
	}
	return any && config;
}

/*
 * A mailbox named without wildcards that matched nothing the config
 * selects: a usage error (exit 2) naming it, once the run is done.
 */
static int unmatched_targets(const struct selection *sel, struct err *e)
{
	for (size_t i = 0; i < sel->nmailboxes; i++) {
		const char *t = sel->mailboxes[i];

		if (sel->matched[i] || strpbrk(t, "*%") != NULL)
			continue;
		if (sel->excluded[i])
			return err_set(e, ERR_USAGE, "account \"%s\": mailbox \"%s\" is left out by the "
				       "config (accounts.%s.mailboxes include/exclude); nothing was "
				       "synced for it", sel->account->name, t, sel->account->name);
		return err_set(e, ERR_USAGE, "account \"%s\": no mailbox \"%s\", on the server or in the "
			       "Maildir; nothing was synced for it", sel->account->name, t);
	}
	return 0;
}

/* The config's direction narrowed by --pull / --push; -1 on a contradiction. */
static int effective_direction(const struct cli *cli, const struct cfg_account *a,
			       enum sync_direction *out, struct err *e)
{
	enum cfg_direction d = a->sync.direction;

	if ((cli->pull && d == CFG_DIR_PUSH) || (cli->push && d == CFG_DIR_PULL))
		return err_set(e, ERR_USAGE, "account \"%s\" is configured \"direction: %s\"; "
			       "--%s cannot widen it", a->name, cfg_direction_name(d),
			       cli->pull ? "pull" : "push");
	if (cli->pull || d == CFG_DIR_PULL)
		*out = SYNC_PULL;
	else if (cli->push || d == CFG_DIR_PUSH)
		*out = SYNC_PUSH;
	else
		*out = SYNC_BOTH;
	return 0;
}

/* "3 new, 2 flag changes, 1 moved, 4 deleted (1.2 MB)" or "" */
static void describe_side(const struct sync_side_counts *c, char *out, size_t size)
{
	char bytes[32];
	size_t n = 0;

	out[0] = '\0';
#define PART(cond, ...)                                                                   \
	do {                                                                              \
		if (cond && n < size)                                                     \
			n += (size_t)snprintf(out + n, size - n, "%s", n ? ", " : "");    \
		if (cond && n < size)                                                     \
			n += (size_t)snprintf(out + n, size - n, __VA_ARGS__);            \
	} while (0)
	PART(c->added, "%zu new", c->added);
	PART(c->flags, "%zu flag change%s", c->flags, c->flags == 1 ? "" : "s");
	PART(c->moved, "%zu moved", c->moved);
	PART(c->deleted, "%zu deleted", c->deleted);
	PART(c->folders, "%zu folder%s", c->folders, c->folders == 1 ? "" : "s");
#undef PART
	if (c->bytes && n < size) {
		progress_bytes(c->bytes, bytes, sizeof(bytes));
		snprintf(out + n, size - n, " (%s)", bytes);
	}
}

/* A mailbox's error without its leading 'mailbox "NAME": ' (the line names it). */
static const char *mailbox_err_text(const struct sync_mailbox_report *m)
{
	char head[300];
	int n = snprintf(head, sizeof(head), "mailbox \"%s\": ", m->remote_name ? m->remote_name : "");

	if (n > 0 && (size_t)n < sizeof(head) && strncmp(m->err.msg, head, (size_t)n) == 0)
		return m->err.msg + n;
	return m->err.msg;
}

static void print_mailbox_line(const char *account, const struct sync_mailbox_report *m, bool dry_run)
{
	char local[256], remote[256];
	const char *name = m->remote_name && *m->remote_name ? m->remote_name : m->local_name;

	describe_side(&m->local, local, sizeof(local));
	describe_side(&m->remote, remote, sizeof(remote));
	printf("%s/%s:", account, name ? name : "?");
	if (*local)
		printf(" %s %s%s", dry_run ? "would pull" : "pulled", local, *remote ? ";" : "");
	if (*remote)
		printf(" %s %s", dry_run ? "would push" : "pushed", remote);
	if (!*local && !*remote && !m->failed && !m->safety)
		printf(" up to date");
	if (m->safety)
		printf("%s safety stop: %zu of %zu messages would be deleted, nothing deleted "
		       "(--force to allow)", *local || *remote ? ";" : "", m->would_delete, m->total);
	if (m->failed)
		printf("%s failed: %s", *local || *remote ? ";" : "", mailbox_err_text(m));
	printf("\n");
}

static void json_side(struct json *j, const char *key, const struct sync_side_counts *c)
{
	json_key(j, key);
	json_object_begin(j);
	json_key(j, "new");
	json_uint(j, c->added);
	json_key(j, "flags");
	json_uint(j, c->flags);
	json_key(j, "moved");
	json_uint(j, c->moved);
	json_key(j, "deleted");
	json_uint(j, c->deleted);
	json_key(j, "folders");
	json_uint(j, c->folders);
	json_key(j, "bytes");
	json_uint(j, c->bytes);
	json_object_end(j);
}

static void side_add(struct sync_side_counts *sum, const struct sync_side_counts *c)
{
	sum->added += c->added;
	sum->flags += c->flags;
	sum->moved += c->moved;
	sum->deleted += c->deleted;
	sum->folders += c->folders;
	sum->bytes += c->bytes;
}

/* One account's outcome, as --json shows it and the errors list needs it. */
struct account_outcome {
	const struct cfg_account *a;
	const struct sync_report *rep;
	const struct err *e;
	int exit_code;
	time_t started;
	double seconds;
};

static void json_mailbox(struct json *j, const struct sync_mailbox_report *m)
{
	json_object_begin(j);
	json_key(j, "name");
	json_string(j, m->remote_name);
	json_key(j, "local_name");
	json_string(j, m->local_name);
	json_key(j, "ok");
	json_bool(j, !m->failed && !m->safety);
	json_side(j, "local", &m->local);
	json_side(j, "remote", &m->remote);
	json_key(j, "records");
	json_uint(j, m->records);
	json_key(j, "safety_stop");
	json_bool(j, m->safety);
	if (m->safety) {
		json_key(j, "would_delete");
		json_uint(j, m->would_delete);
		json_key(j, "total");
		json_uint(j, m->total);
		json_key(j, "reason");
		json_string(j, m->safety_reason);
	}
	if (m->failed)
		json_error(j, &m->err);
	json_object_end(j);
}

static void json_account(struct json *j, const struct account_outcome *o, bool dry_run)
{
	struct sync_side_counts local = { 0 }, remote = { 0 };
	const struct sync_report *rep = o->rep;
	size_t i;

	json_object_begin(j);
	json_key(j, "account");
	json_string(j, o->a->name);
	json_key(j, "ok");
	json_bool(j, o->e->code == ERR_NONE);
	json_key(j, "exit_code");
	json_int(j, o->exit_code);
	json_key(j, "started_at");
	json_time(j, o->started);
	json_key(j, "seconds");
	json_double(j, o->seconds);
	if (o->e->code != ERR_NONE)
		json_error(j, o->e);
	json_key(j, "mailboxes");
	json_array_begin(j);
	for (i = 0; i < rep->nmailboxes; i++) {
		json_mailbox(j, &rep->mailboxes[i]);
		side_add(&local, &rep->mailboxes[i].local);
		side_add(&remote, &rep->mailboxes[i].remote);
	}
	json_array_end(j);
	json_key(j, "totals");
	json_object_begin(j);
	json_side(j, "local", &local);
	json_side(j, "remote", &remote);
	json_object_end(j);
	if (dry_run) {
		json_key(j, "plan");
		json_array_begin(j);
		for (i = 0; i < rep->nplan_lines; i++)
			json_string(j, rep->plan_lines[i]);
		json_array_end(j);
	}
	json_object_end(j);
}

/*
 * The account's entries of the top-level "errors" list, written into errs
 * (an array being built): each failed mailbox, and the account's error
 * when it is not just the first of those.
 */
static void json_account_errors(struct json *errs, const struct account_outcome *o)
{
	const struct sync_report *rep = o->rep;
	bool mailbox_failed = false;

	for (size_t i = 0; i < rep->nmailboxes; i++) {
		const struct sync_mailbox_report *m = &rep->mailboxes[i];

		if (!m->failed)
			continue;
		mailbox_failed = true;
		json_error_entry(errs, &m->err, 1, o->a->name, m->remote_name);
	}
	if (o->e->code != ERR_NONE && !(mailbox_failed && o->exit_code == 1))
		json_error_entry(errs, o->e, o->exit_code, o->a->name, NULL);
}

static double elapsed(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

static bool missing(const char *path)
{
	struct stat st;

	return path != NULL && lstat(path, &st) < 0 && errno == ENOENT;
}

/*
 * A dry run writes nothing (SPEC §1), not even the first state or an empty
 * Maildir root: for an account whose state folder or Maildir does not exist
 * yet, the run gets stand-ins in a temporary folder, which it removes.  The
 * plan is the one a first run would follow.  Returns the folder (xmalloc'd)
 * or NULL when none is needed; -1 in *rc on error.
 */
static char *dry_run_scratch(const struct cfg_account *a, struct sync_account_opts *o, int *rc,
			     struct err *e)
{
	const char *tmp = getenv("TMPDIR");
	char *dir;

	*rc = 0;
	if (!missing(a->state) && !missing(a->local.path))
		return NULL;
	dir = xasprintf("%s/ferry-dry-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		*rc = err_sys(e, ERR_IO, errno, "cannot make a scratch folder for the dry run in \"%s\"",
			      tmp && *tmp ? tmp : "/tmp");
		free(dir);
		return NULL;
	}
	if (missing(a->state))
		o->state_dir = xasprintf("%s/state", dir);
	if (missing(a->local.path)) {
		o->maildir_root = xasprintf("%s/Mail", dir);
		if (missing(a->local.inbox))
			o->maildir_inbox = NULL;        /* ROOT/INBOX, in the scratch folder */
	}
	return dir;
}

static void dry_run_scratch_release(char *dir, struct sync_account_opts *o, const struct cfg_account *a)
{
	if (dir == NULL)
		return;
	if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		log_msg(LOG_WARN, LOG_CAT_SYNC, "cannot remove the dry run's scratch folder \"%s\"", dir);
	if (o->state_dir != a->state)
		free((char *)o->state_dir);
	if (o->maildir_root != a->local.path)
		free((char *)o->maildir_root);
	free(dir);
}

/* The engine's further connections (`connections:`), opened like the first. */
static struct sync_remote *open_more(void *ctx, struct err *e)
{
	struct sync_remote *r = sync_remote_new(ctx);

	if (sync_remote_open(r, e) < 0) {
		sync_remote_free(r);
		return NULL;
	}
	return r;
}

static int sync_one_in(struct run_ctx *rc, size_t idx, struct selection *selp, struct progress *pr,
		       struct sync_report *rep, struct err *e);

static int sync_one(struct run_ctx *rc, size_t idx, struct progress *pr, struct sync_report *rep,
		    struct err *e)
{
	struct selection sel = { rc->accounts[idx], rc->mailboxes[idx], rc->nmailboxes[idx],
				 xcalloc(rc->nmailboxes[idx] + 1, sizeof(bool)),
				 xcalloc(rc->nmailboxes[idx] + 1, sizeof(bool)) };
	int r = sync_one_in(rc, idx, &sel, pr, rep, e);

	if (r == 0)
		r = unmatched_targets(&sel, e);
	free(sel.matched);
	free(sel.excluded);
	return r;
}

static int sync_one_in(struct run_ctx *rc, size_t idx, struct selection *selp, struct progress *pr,
		       struct sync_report *rep, struct err *e)
{
	const struct cli *cli = rc->cli;
	const struct cfg_account *a = rc->accounts[idx];
	enum imap_auth_mech mechs[CFG_AUTH_COUNT];
	struct account_secrets secrets;
	struct imap_client_opts copts;
	struct sync_account_opts o;
	struct sync_remote *remote;
	struct lock lk = LOCK_INIT;
	char *scratch = NULL;
	char fp_text[110];
	struct err ignored;
	int r;

	memset(&o, 0, sizeof(o));
	if (effective_direction(cli, a, &o.policy.direction, e) < 0)
		return -1;
	o.account = a->name;
	o.state_dir = a->state;
	o.wait_lock = cli->wait;
	o.maildir_root = a->local.path;
	o.maildir_inbox = a->local.inbox;
	o.layout = a->local.layout == CFG_LAYOUT_MAILDIRPP ? MAILDIR_LAYOUT_MAILDIRPP
							   : MAILDIR_LAYOUT_VERBATIM;
	o.policy.expunge = a->sync.expunge;
	o.policy.delete_folders = a->sync.delete_folders;
	o.policy.force = cli->force;
	o.policy.max_size = a->sync.max_size;
	o.policy.safety_max_delete = a->sync.safety_max_delete;
	if (a->sync.since.year != 0) {
		struct tm tm = { .tm_year = a->sync.since.year - 1900,
				 .tm_mon = a->sync.since.month - 1,
				 .tm_mday = a->sync.since.day };

		o.since = timegm(&tm);  /* the day's start, UTC */
		if (o.since <= 0)       /* 1970-01-01 or before: everything is newer */
			o.since = 0;
	}
	o.selected = mailbox_selected;
	o.selected_ctx = selp;
	o.dry_run = cli->dry_run;
	if (pr->enabled) {
		o.progress = progress_event;
		o.progress_ctx = pr;
	}

	if (cfg_check_ca_file(a, e) < 0)
		return -1;
	if (cli->dry_run && (scratch = dry_run_scratch(a, &o, &r, e)) == NULL && r < 0)
		return -1;
	/* the lock first: no password_cmd, no login for a run that cannot go on */
	if (sync_account_lock(&o, &lk, e) < 0) {
		dry_run_scratch_release(scratch, &o, a);
		return -1;
	}
	o.locked = true;
	account_secrets_init(&secrets, a);
	/* more connections log in with the secret the first one got */
	secrets.keep = a->remote.connections > 1 && !cli->dry_run;
	account_client_opts(a, &secrets, &copts, mechs, fp_text);
	remote = sync_remote_new(&copts);
	r = sync_remote_open(remote, e);
	if (r < 0) {
		account_secrets_release(&secrets);
		sync_remote_free(remote);
		lock_release(&lk);
		dry_run_scratch_release(scratch, &o, a);
		return -1;
	}
	o.remote = remote;
	if (secrets.keep) {
		o.connections = a->remote.connections;
		o.open_remote = open_more;
		o.open_remote_ctx = &copts;
	} else {
		account_secrets_release(&secrets);
	}
	r = sync_account_run(&o, rep, e);
	account_secrets_release(&secrets);
	err_clear(&ignored);
	if (r == 0 || e->scope != ERR_SCOPE_ACCOUNT)
		sync_remote_logout(remote, &ignored);
	sync_remote_free(remote);
	lock_release(&lk);
	dry_run_scratch_release(scratch, &o, a);
	return r;
}

/* The exit code of one account's outcome (SPEC §1). */
static int account_exit_code(const struct err *e)
{
	if (e->code == ERR_NONE)
		return 0;
	if (e->code == ERR_SAFETY)
		return 5;
	if (e->scope == ERR_SCOPE_MAILBOX || e->scope == ERR_SCOPE_MESSAGE)
		return 1;
	return err_exit_code(e);
}

/* "Work", "Sent Items" ...: the names of the failed mailboxes, for the hint. */
static void failed_names(const struct sync_report *rep, char *out, size_t size, size_t *n_out)
{
	size_t n = 0, len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < rep->nmailboxes; i++) {
		const struct sync_mailbox_report *m = &rep->mailboxes[i];

		if (!m->failed)
			continue;
		if (len < size)
			len += (size_t)snprintf(out + len, size - len, "%s\"%s\"", n ? ", " : "",
						m->remote_name ? m->remote_name : "");
		n++;
	}
	*n_out = n;
}

static const char *mailbox_hint(const struct err *e)
{
	switch (e->code) {
	case ERR_SERVER:
		if (strstr(e->msg, "the next run looks again") != NULL)
			return "the server contradicted itself; if it goes on, look at its log, or at "
			       "what stands between (a proxy)";
		return "the server refused (its message is above; its log, permissions or quota may say why)";
	case ERR_IO:
		if (strstr(e->msg, "cannot be a folder on disk") != NULL)
			return "rename the mailbox on the server, or leave it out with "
			       "\"mailboxes: exclude\" in the config";
		if (e->sys == ENAMETOOLONG)
			return "give that file a shorter name, keeping what follows \":2,\" "
			       "(ferry finds the message again by its content)";
		return "check the local folder's permissions and the free disk space";
	case ERR_STATE:
		return "a message changed while ferry read it; the next run picks it up";
	default:
		return NULL;
	}
}

/*
 * Some mailboxes failed, the others synced: say which, why (each one's
 * error), and what to do next, on stderr (also with -q).
 */
static void report_partial(const struct cfg_account *a, const struct sync_report *rep)
{
	char names[1024];
	const char *hint = NULL;
	size_t n, i;

	for (i = 0; i < rep->nmailboxes; i++) {
		const struct sync_mailbox_report *m = &rep->mailboxes[i];

		if (!m->failed)
			continue;
		fprintf(stderr, "ferry: account \"%s\": mailbox \"%s\" failed: %s\n", a->name,
			m->remote_name ? m->remote_name : "", mailbox_err_text(m));
		if (hint == NULL)
			hint = mailbox_hint(&m->err);
	}
	failed_names(rep, names, sizeof(names), &n);
	fprintf(stderr, "ferry: account \"%s\": %zu of %zu mailbox%s failed (%s); %s\n", a->name, n,
		rep->nmailboxes, rep->nmailboxes == 1 ? "" : "es", names,
		rep->nmailboxes == n ? "none was synced"
		: rep->nmailboxes - n == 1 ? "the other was synced and recorded"
					   : "the others were synced and recorded");
	if (hint)
		fprintf(stderr, "ferry: hint: %s\n", hint);
	if (n == 1) {
		for (i = 0; i < rep->nmailboxes && !rep->mailboxes[i].failed; i++)
			;
		fprintf(stderr, "ferry: hint: then run \"ferry sync %s/%s\" (or a plain sync) again; "
			"only what is left is done\n", a->name, rep->mailboxes[i].remote_name);
	} else {
		fprintf(stderr, "ferry: hint: then run \"ferry sync %s\" again; only what is left is "
			"done\n", a->name);
	}
}

/* The account's run stopped: the error, a hint, and for a connection problem a way to test it. */
static void report_account_error(const struct cfg_account *a, const struct err *e)
{
	account_report_error(a, e);
	if (e->code == ERR_AUTH || e->code == ERR_TLS || e->code == ERR_NET || e->code == ERR_TIMEOUT)
		fprintf(stderr, "ferry: hint: \"ferry check %s\" tries the connection and the login "
			"without syncing\n", a->name);
}

/* A safety stop (exit 5): which mailboxes, why, and the two ways on. */
static void report_safety(const struct cfg_account *a, const struct sync_report *rep,
			  const struct err *e)
{
	size_t shown = 0;

	for (size_t i = 0; i < rep->nmailboxes; i++) {
		const struct sync_mailbox_report *m = &rep->mailboxes[i];

		if (!m->safety)
			continue;
		fprintf(stderr, "ferry: account \"%s\": safety stop in mailbox \"%s\": %s; "
			"nothing was deleted\n", a->name, m->remote_name ? m->remote_name : "",
			m->safety_reason ? m->safety_reason : "too many deletions");
		if (shown++ == 0)
			fprintf(stderr, "ferry: hint: if the deletions are wanted, run \"ferry sync --force "
				"%s/%s\"; if not, look at the side that lost them (a Maildir moved, "
				"emptied or not mounted?) first\n", a->name,
				m->remote_name ? m->remote_name : "");
	}
	if (shown == 0)
		account_report_error(a, e);
}

/*
 * stdout, without -q or --json: the plan (dry run), one line per mailbox,
 * and the account's total when it synced (all or part of it).
 */
static void print_account_text(const struct cli *cli, const struct cfg_account *a,
			       const struct sync_report *rep, int code, bool whole, double seconds)
{
	struct sync_side_counts local = { 0 }, remote = { 0 };
	char pulled[256], pushed[256];
	size_t k, failed = 0;

	if (cli->dry_run)
		for (k = 0; k < rep->nplan_lines; k++)
			printf("%s: would %s\n", a->name, rep->plan_lines[k]);
	for (k = 0; k < rep->nmailboxes; k++) {
		print_mailbox_line(a->name, &rep->mailboxes[k], cli->dry_run);
		side_add(&local, &rep->mailboxes[k].local);
		side_add(&remote, &rep->mailboxes[k].remote);
		failed += rep->mailboxes[k].failed;
	}
	if (code == 0 || (code == 1 && !whole)) {
		describe_side(&local, pulled, sizeof(pulled));
		describe_side(&remote, pushed, sizeof(pushed));
		printf("%s: %s ", a->name, cli->dry_run ? "planned" : "synced");
		if (failed)
			printf("%zu of ", rep->nmailboxes - failed);
		printf("%zu mailbox%s in %.1f s", rep->nmailboxes, rep->nmailboxes == 1 ? "" : "es",
		       seconds);
		if (*pulled)
			printf("%s %s %s", ":", cli->dry_run ? "would pull" : "pulled", pulled);
		if (*pushed)
			printf("%s %s %s", *pulled ? ";" : ":", cli->dry_run ? "would push" : "pushed",
			       pushed);
		if (!*pulled && !*pushed)
			printf(", no changes");
		printf("\n");
	}
	fflush(stdout);
}

/* stderr, also with -q (not with --json): what failed, where, what next. */
/* Exit 1 for the account as a whole (a local I/O error, a damaged state ...), not for some
 * of its mailboxes: no mailbox was synced, and the error says why. */
static bool account_failed(int code, const struct err *e)
{
	return code == 1 && e->scope >= ERR_SCOPE_ACCOUNT;
}

static void report_errors(const struct cfg_account *a, const struct sync_report *rep, int code,
			  const struct err *e)
{
	if (account_failed(code, e))
		report_account_error(a, e);
	else if (code == 1)
		report_partial(a, rep);
	else if (code == 5)
		report_safety(a, rep, e);
	else if (code != 0)
		report_account_error(a, e);
}

int command_sync(struct run_ctx *rc)
{
	const struct cli *cli = rc->cli;
	bool text = !cli->json && cli->verbosity >= 0;
	int exit_code = 0;
	struct progress pr;
	struct json j, errs;
	struct timespec run_t0;
	time_t run_started = time(NULL);
	size_t i;

	clock_gettime(CLOCK_MONOTONIC, &run_t0);
	progress_init(&pr, STDERR_FILENO, progress_wanted(cli, STDERR_FILENO));
	json_init(&j, 64u << 20);
	json_init(&errs, 16u << 20);
	json_array_begin(&errs);
	json_object_begin(&j);
	json_header(&j, "sync", run_started);
	json_key(&j, "dry_run");
	json_bool(&j, cli->dry_run);
	json_key(&j, "accounts");
	json_array_begin(&j);
	for (i = 0; i < rc->naccounts; i++) {
		const struct cfg_account *a = rc->accounts[i];
		struct account_outcome out;
		struct sync_report rep;
		struct timespec t0;
		struct err e;
		int code;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		out.started = time(NULL);
		err_clear(&e);
		sync_report_init(&rep);
		log_set_context(a->name, NULL);
		progress_begin(&pr, a->name);
		sync_one(rc, i, &pr, &rep, &e);
		progress_clear(&pr);
		log_set_context(NULL, NULL);
		code = account_exit_code(&e);
		if (text)
			print_account_text(cli, a, &rep, code, account_failed(code, &e), elapsed(&t0));
		if (!cli->json)
			report_errors(a, &rep, code, &e);
		out.a = a;
		out.rep = &rep;
		out.e = &e;
		out.exit_code = code;
		out.seconds = elapsed(&t0);
		if (cli->json) {
			json_account(&j, &out, cli->dry_run);
			json_account_errors(&errs, &out);
		}
		/* The most serious outcome wins; a partial failure does not hide it. */
		if (code != 0 && (exit_code == 0 || exit_code == 1))
			exit_code = code;
		sync_report_release(&rep);
	}
	progress_release(&pr);
	json_array_end(&j);
	json_footer(&j, &errs, &run_t0, exit_code);
	if (cli->json)
		printf("%s\n", json_cstr(&j));
	json_release(&errs);
	json_release(&j);
	return exit_code;
}

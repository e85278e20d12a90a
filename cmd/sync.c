/*
 * sync.c - `ferry sync [--dry-run] [--pull|--push] [--force] [--wait]
 * [ACCOUNT[/MAILBOX]...]`: for each selected account, open the server,
 * hand it to the sync engine (core/sync/engine.h), print one summary line
 * per mailbox (or the plan with --dry-run, or one JSON object with --json)
 * and turn the outcome into the exit code of SPEC §1.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "commands_int.h"
#include "sync/engine.h"
#include "json.h"
#include "log.h"

struct selection {
	const struct cfg_account *account;
	const char *const *mailboxes;   /* ACCOUNT/MAILBOX targets, or none */
	size_t nmailboxes;
};

static bool mailbox_selected(void *ctx, const char *utf8_name, char sep)
{
	const struct selection *sel = ctx;
	size_t i;

	if (sel->nmailboxes == 0)
		return cfg_mailbox_selected(sel->account, utf8_name, sep);
	for (i = 0; i < sel->nmailboxes; i++)
		if (cfg_pattern_match(sel->mailboxes[i], utf8_name, sep))
			return true;
	return false;
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

static void human_bytes(uint64_t n, char *out, size_t size)
{
	if (n >= 10u << 20)
		snprintf(out, size, "%.0f MB", (double)n / (1 << 20));
	else if (n >= 1u << 20)
		snprintf(out, size, "%.1f MB", (double)n / (1 << 20));
	else if (n >= 1u << 10)
		snprintf(out, size, "%.0f KB", (double)n / (1 << 10));
	else
		snprintf(out, size, "%llu B", (unsigned long long)n);
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
		human_bytes(c->bytes, bytes, sizeof(bytes));
		snprintf(out + n, size - n, " (%s)", bytes);
	}
}

static void print_mailbox_line(const char *account, const struct sync_mailbox_report *m)
{
	char local[256], remote[256];
	const char *name = m->remote_name && *m->remote_name ? m->remote_name : m->local_name;

	describe_side(&m->local, local, sizeof(local));
	describe_side(&m->remote, remote, sizeof(remote));
	printf("%s/%s:", account, name ? name : "?");
	if (*local)
		printf(" pulled %s%s", local, *remote ? ";" : "");
	if (*remote)
		printf(" pushed %s", remote);
	if (!*local && !*remote && !m->failed && !m->safety)
		printf(" up to date");
	if (m->safety)
		printf("%s safety stop: %zu of %zu messages would be deleted, nothing deleted "
		       "(--force to allow)", *local || *remote ? ";" : "", m->would_delete, m->total);
	if (m->failed)
		printf("%s failed: %s", *local || *remote ? ";" : "", m->err.msg);
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

static void json_account(struct json *j, const struct cfg_account *a,
			 const struct sync_report *rep, const struct err *e, double seconds,
			 bool dry_run)
{
	size_t i;

	json_object_begin(j);
	json_key(j, "account");
	json_string(j, a->name);
	json_key(j, "ok");
	json_bool(j, e->code == ERR_NONE);
	json_key(j, "seconds");
	json_double(j, seconds);
	if (e->code != ERR_NONE)
		json_error(j, e);
	json_key(j, "mailboxes");
	json_array_begin(j);
	for (i = 0; i < rep->nmailboxes; i++) {
		const struct sync_mailbox_report *m = &rep->mailboxes[i];

		json_object_begin(j);
		json_key(j, "name");
		json_string(j, m->remote_name);
		json_key(j, "local_name");
		json_string(j, m->local_name);
		json_side(j, "local", &m->local);
		json_side(j, "remote", &m->remote);
		json_key(j, "safety_stop");
		json_bool(j, m->safety);
		if (m->safety) {
			json_key(j, "would_delete");
			json_uint(j, m->would_delete);
			json_key(j, "total");
			json_uint(j, m->total);
		}
		if (m->failed)
			json_error(j, &m->err);
		json_object_end(j);
	}
	json_array_end(j);
	if (dry_run) {
		json_key(j, "plan");
		json_array_begin(j);
		for (i = 0; i < rep->nplan_lines; i++)
			json_string(j, rep->plan_lines[i]);
		json_array_end(j);
	}
	json_object_end(j);
}

static double elapsed(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int sync_one(struct run_ctx *rc, size_t idx, struct sync_report *rep, struct err *e)
{
	const struct cli *cli = rc->cli;
	const struct cfg_account *a = rc->accounts[idx];
	struct selection sel = { a, rc->mailboxes[idx], rc->nmailboxes[idx] };
	enum imap_auth_mech mechs[CFG_AUTH_COUNT];
	struct imap_client_opts copts;
	struct sync_account_opts o;
	struct sync_remote *remote;
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
	o.selected_ctx = &sel;
	o.dry_run = cli->dry_run;

	account_client_opts(a, &copts, mechs, fp_text);
	remote = sync_remote_new(&copts);
	if (sync_remote_open(remote, e) < 0) {
		sync_remote_free(remote);
		return -1;
	}
	o.remote = remote;
	r = sync_account_run(&o, rep, e);
	err_clear(&ignored);
	if (r == 0 || e->scope != ERR_SCOPE_ACCOUNT)
		sync_remote_logout(remote, &ignored);
	sync_remote_free(remote);
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

int command_sync(struct run_ctx *rc)
{
	const struct cli *cli = rc->cli;
	bool text = !cli->json && cli->verbosity >= 0;
	int exit_code = 0;
	struct json j;
	size_t i, k;

	json_init(&j, 64u << 20);
	json_object_begin(&j);
	json_key(&j, "command");
	json_string(&j, "sync");
	json_key(&j, "dry_run");
	json_bool(&j, cli->dry_run);
	json_key(&j, "accounts");
	json_array_begin(&j);
	for (i = 0; i < rc->naccounts; i++) {
		const struct cfg_account *a = rc->accounts[i];
		struct sync_report rep;
		struct timespec t0;
		struct err e;
		int code;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		err_clear(&e);
		sync_report_init(&rep);
		log_set_context(a->name, NULL);
		sync_one(rc, i, &rep, &e);
		log_set_context(NULL, NULL);
		code = account_exit_code(&e);
		if (text) {
			if (cli->dry_run)
				for (k = 0; k < rep.nplan_lines; k++)
					printf("%s: would %s\n", a->name, rep.plan_lines[k]);
			for (k = 0; k < rep.nmailboxes; k++)
				print_mailbox_line(a->name, &rep.mailboxes[k]);
		}
		if (code != 0 && !cli->json)
			account_report_error(a, &e);
		else if (text)
			printf("%s: %s %zu mailbox%s in %.1f s\n", a->name,
			       cli->dry_run ? "planned" : "synced", rep.nmailboxes,
			       rep.nmailboxes == 1 ? "" : "es", elapsed(&t0));
		if (cli->json)
			json_account(&j, a, &rep, &e, elapsed(&t0), cli->dry_run);
		/* The most serious outcome wins; a partial failure does not hide it. */
		if (code != 0 && (exit_code == 0 || exit_code == 1))
			exit_code = code;
		sync_report_release(&rep);
	}
	json_array_end(&j);
	json_key(&j, "exit_code");
	json_int(&j, exit_code);
	json_object_end(&j);
	if (cli->json)
		printf("%s\n", json_cstr(&j));
	json_release(&j);
	return exit_code;
}

/*
 * status.c - `ferry status [ACCOUNT]`: what the state says, without any
 * network access: per mailbox the last successful sync, the messages known
 * then, and the local changes waiting to be pushed.  Opens the state
 * read-only, so it runs while another ferry syncs the same account.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "commands_int.h"
#include "json.h"
#include "log.h"
#include "state.h"
#include "sync_status.h"

static void format_time(int64_t t, char *out, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == 0 || localtime_r(&tt, &tm) == NULL) {
		snprintf(out, n, "never");
		return;
	}
	strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

struct status_row {
	struct state_mailbox mb;
	struct sync_pending pending;
	bool pending_known;
};

static int read_account(const struct cfg_account *a, struct arena *ar, struct status_row **rows_out,
			size_t *n_out, bool *never_out, struct err *e)
{
	struct state_options opts = { .read_only = true };
	struct state_mailbox *list = NULL;
	struct state_txn *txn = NULL;
	struct state *st = NULL;
	struct status_row *rows;
	size_t n = 0, i;
	int r;

	r = state_open(a->state, &opts, &st, e);
	if (r < 0)
		return -1;
	if (r == 1) {
		*never_out = true;
		*rows_out = NULL;
		*n_out = 0;
		return 0;
	}
	*never_out = false;
	if (state_txn_begin(st, false, &txn, e) < 0 ||
	    state_mailbox_list(txn, ar, &list, &n, e) < 0) {
		if (txn)
			state_txn_abort(txn);
		state_close(st);
		return -1;
	}
	rows = ARENA_NEW_ARRAY(ar, struct status_row, n ? n : 1);
	for (i = 0; i < n; i++) {
		struct err pe;

		rows[i].mb = list[i];
		err_clear(&pe);
		rows[i].pending_known =
			sync_pending_local(a, txn, &list[i], ar, &rows[i].pending, &pe) == 0;
		if (!rows[i].pending_known)
			log_warn("account \"%s\": mailbox \"%s\": %s", a->name,
				 list[i].remote_name ? list[i].remote_name : "", pe.msg);
	}
	state_txn_abort(txn);
	state_close(st);
	*rows_out = rows;
	*n_out = n;
	return 0;
}

/*
 * Print `name` padded to `width` columns.  Names are UTF-8: a character is
 * one column here (not two for the wide ones of East Asian scripts), which
 * keeps the column straight for accented Latin, Greek, Cyrillic; padding
 * by bytes did not.
 */
static void print_padded(const char *name, size_t width)
{
	size_t cols = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if ((*p & 0xc0) != 0x80)
			cols++;
	fputs(name, stdout);
	for (; cols < width; cols++)
		putchar(' ');
}

static void print_text(const struct cfg_account *a, const struct status_row *rows, size_t n,
		       bool never)
{
	size_t i;

	printf("account \"%s\" (state %s)\n", a->name, a->state);
	if (never) {
		printf("  never synced\n");
		return;
	}
	for (i = 0; i < n; i++) {
		const struct status_row *row = &rows[i];
		char when[64];

		format_time(row->mb.last_sync, when, sizeof(when));
		fputs("  ", stdout);
		print_padded(row->mb.remote_name ? row->mb.remote_name : "", 30);
		printf(" last sync %s, %u messages", when, row->mb.msg_count);
		if (!row->pending_known)
			printf(", local changes unknown\n");
		else if (row->pending.added + row->pending.removed + row->pending.flagged == 0)
			printf(", no local changes\n");
		else
			printf(", local changes: %zu new, %zu deleted or moved, %zu flag changes\n",
			       row->pending.added, row->pending.removed, row->pending.flagged);
	}
}

static void print_json(struct json *j, const struct cfg_account *a, const struct status_row *rows,
		       size_t n, bool never, const struct err *e)
{
	size_t i;

	json_object_begin(j);
	json_key(j, "account");
	json_string(j, a->name);
	json_key(j, "state");
	json_string(j, a->state);
	if (e->code != ERR_NONE)
		json_error(j, e);
	json_key(j, "synced");
	json_bool(j, !never && e->code == ERR_NONE);
	json_key(j, "mailboxes");
	json_array_begin(j);
	for (i = 0; i < n; i++) {
		json_object_begin(j);
		json_key(j, "name");
		json_string(j, rows[i].mb.remote_name);
		json_key(j, "local_name");
		json_string(j, rows[i].mb.local_name);
		json_key(j, "last_sync");
		json_int(j, rows[i].mb.last_sync);
		json_key(j, "last_sync_at");
		if (rows[i].mb.last_sync > 0)
			json_time(j, (time_t)rows[i].mb.last_sync);
		else
			json_null(j);
		json_key(j, "messages");
		json_uint(j, rows[i].mb.msg_count);
		if (rows[i].pending_known) {
			json_key(j, "pending");
			json_object_begin(j);
			json_key(j, "new");
			json_uint(j, rows[i].pending.added);
			json_key(j, "deleted");
			json_uint(j, rows[i].pending.removed);
			json_key(j, "flags");
			json_uint(j, rows[i].pending.flagged);
			json_object_end(j);
		}
		json_object_end(j);
	}
	json_array_end(j);
	json_object_end(j);
}

int command_status(struct run_ctx *rc)
{
	struct json j, errs;
	int exit_code = 0;
	struct timespec t0;
	size_t i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	json_init(&j, 16u << 20);
	json_init(&errs, 1u << 20);
	json_array_begin(&errs);
	json_object_begin(&j);
	json_header(&j, "status", time(NULL));
	json_key(&j, "accounts");
	json_array_begin(&j);
	for (i = 0; i < rc->naccounts; i++) {
		const struct cfg_account *a = rc->accounts[i];
		struct status_row *rows = NULL;
		struct arena ar;
		bool never = false;
		size_t n = 0;
		struct err e;

		arena_init(&ar, 16384);
		err_clear(&e);
		if (read_account(a, &ar, &rows, &n, &never, &e) < 0) {
			if (!rc->cli->json)
				account_report_error(a, &e);
			if (exit_code == 0)
				exit_code = err_exit_code(&e);
			json_error_entry(&errs, &e, err_exit_code(&e), a->name, NULL);
		} else if (!rc->cli->json && rc->cli->verbosity >= 0) {
			print_text(a, rows, n, never);
		}
		if (rc->cli->json)
			print_json(&j, a, rows, n, never, &e);
		arena_release(&ar);
	}
	json_array_end(&j);
	json_footer(&j, &errs, &t0, exit_code);
	if (rc->cli->json)
		printf("%s\n", json_cstr(&j));
	json_release(&errs);
	json_release(&j);
	return exit_code;
}

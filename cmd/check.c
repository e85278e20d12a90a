/*
 * check.c - `ferry check [--offline] [ACCOUNT]`: validate the config, then
 * (unless --offline) connect, verify TLS, log in, and list the server's
 * capabilities and mailboxes with their special-use roles.  Changes nothing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "commands_int.h"
#include "json.h"
#include "log.h"

struct check_result {
	struct imap_caps caps;          /* copied out of the client */
	struct imap_mailbox_list boxes;
	const char *mech;
	bool tls, compressed;
	char fingerprint[110];
	const struct imap_mailbox **sorted;   /* into boxes, for printing */
};

static void copy_caps(struct imap_caps *dst, const struct imap_caps *src)
{
	size_t i;

	dst->bits = src->bits;
	dst->n = src->n;
	dst->names = xcalloc(src->n ? src->n : 1, sizeof(*dst->names));
	for (i = 0; i < src->n; i++)
		dst->names[i] = xstrdup(src->names[i]);
}

/* INBOX first, then by name: the order a person scans for. */
static int mailbox_order(const void *pa, const void *pb)
{
	const struct imap_mailbox *a = *(const struct imap_mailbox *const *)pa;
	const struct imap_mailbox *b = *(const struct imap_mailbox *const *)pb;
	bool ia = strcmp(a->name, "INBOX") == 0, ib = strcmp(b->name, "INBOX") == 0;

	if (ia != ib)
		return ia ? -1 : 1;
	return strcmp(a->name, b->name);
}

static void sort_mailboxes(struct check_result *res)
{
	size_t i;

	res->sorted = xcalloc(res->boxes.n ? res->boxes.n : 1, sizeof(*res->sorted));
	for (i = 0; i < res->boxes.n; i++)
		res->sorted[i] = &res->boxes.items[i];
	qsort(res->sorted, res->boxes.n, sizeof(*res->sorted), mailbox_order);
}

static int check_online(const struct cfg_account *a, struct check_result *res, struct err *e)
{
	enum imap_auth_mech mechs[CFG_AUTH_COUNT];
	struct account_secrets secrets;
	struct imap_client_opts opts;
	struct imap_client *cl;
	char fp_text[110];
	struct err ignored;
	const char *fp;
	int r = -1;

	account_secrets_init(&secrets, a);
	account_client_opts(a, &secrets, &opts, mechs, fp_text);
	cl = imap_client_new(&opts);
	r = imap_client_open(cl, e);
	account_secrets_release(&secrets);
	if (r < 0)
		goto out;
	r = -1;
	copy_caps(&res->caps, imap_client_caps(cl));
	res->mech = imap_auth_mech_name(imap_client_mech(cl));
	res->tls = imap_conn_is_tls(imap_client_conn(cl));
	res->compressed = imap_conn_is_compressed(imap_client_conn(cl));
	fp = imap_conn_fingerprint(imap_client_conn(cl));
	snprintf(res->fingerprint, sizeof(res->fingerprint), "%s", fp ? fp : "");
	if (imap_client_list(cl, &res->boxes, e) < 0)
		goto out;
	imap_client_logout(cl, &ignored);
	sort_mailboxes(res);
	r = 0;
out:
	imap_client_free(cl);
	return r;
}

static void print_account_text(const struct cfg_account *a, const struct check_result *res,
			       bool offline)
{
	const struct cfg_remote *rm = &a->remote;
	struct buf caps = BUF_INIT(1 << 20);
	size_t i;

	printf("account \"%s\": ok\n", a->name);
	printf("  server:       %s port %u, tls %s\n", rm->host, rm->port, cfg_tls_name(rm->tls));
	printf("  local:        %s (%s)\n", a->local.path, cfg_layout_name(a->local.layout));
	printf("  state:        %s\n", a->state);
	if (offline)
		return;
	if (res->tls && rm->tls_fingerprint.set)   /* the pin alone decides (ferry.yaml(5)) */
		printf("  certificate:  pinned (tls_fingerprint matches), %s\n", res->fingerprint);
	else if (res->tls)
		printf("  certificate:  verified, %s\n", res->fingerprint);
	printf("  logged in as: %s (", rm->user);
	for (i = 0; res->mech[i]; i++)
		putchar(toupper((unsigned char)res->mech[i]));
	printf("%s)\n", res->compressed ? ", COMPRESS=DEFLATE" : "");
	if (imap_caps_format(&res->caps, &caps, NULL) == 0)
		printf("  capabilities: %s\n", buf_cstr(&caps));
	buf_release(&caps);
	printf("  mailboxes:    %zu\n", res->boxes.n);
	for (i = 0; i < res->boxes.n; i++) {
		const struct imap_mailbox *mb = res->sorted[i];
		char role[32] = "";
		bool synced = cfg_mailbox_selected(a, mb->name, mb->delim);

		if (mb->role != IMAP_ROLE_NONE) {
			snprintf(role, sizeof(role), "\\%s", imap_mbox_role_name(mb->role));
			role[1] = (char)toupper((unsigned char)role[1]);
		}
		if (!*role && synced)
			printf("    %s\n", mb->name);
		else
			printf("    %-30s %s%s%s\n", mb->name, role, *role && !synced ? "  " : "",
			       synced ? "" : "(not synced)");
	}
}

static void json_account(struct json *j, const struct cfg_account *a,
			 const struct check_result *res, const struct err *e, bool offline)
{
	size_t i;

	json_object_begin(j);
	json_key(j, "account");
	json_string(j, a->name);
	json_key(j, "ok");
	json_bool(j, e->code == ERR_NONE);
	json_key(j, "host");
	json_string(j, a->remote.host);
	json_key(j, "port");
	json_uint(j, a->remote.port);
	json_key(j, "tls");
	json_string(j, cfg_tls_name(a->remote.tls));
	if (e->code != ERR_NONE) {
		json_error(j, e);
	} else if (!offline) {
		json_key(j, "mechanism");
		json_string(j, res->mech);
		json_key(j, "certificate");
		json_string(j, res->tls ? res->fingerprint : NULL);
		json_key(j, "capabilities");
		json_array_begin(j);
		for (i = 0; i < res->caps.n; i++)
			json_string(j, res->caps.names[i]);
		json_array_end(j);
		json_key(j, "mailboxes");
		json_array_begin(j);
		for (i = 0; i < res->boxes.n; i++) {
			const struct imap_mailbox *mb = res->sorted[i];

			json_object_begin(j);
			json_key(j, "name");
			json_string(j, mb->name);
			json_key(j, "role");
			json_string(j, *imap_mbox_role_name(mb->role) ? imap_mbox_role_name(mb->role)
								      : NULL);
			json_key(j, "synced");
			json_bool(j, cfg_mailbox_selected(a, mb->name, mb->delim));
			json_object_end(j);
		}
		json_array_end(j);
	}
	json_object_end(j);
}

int command_check(struct run_ctx *rc)
{
	const struct cli *cli = rc->cli;
	struct json j, errs;
	int exit_code = 0;
	struct timespec t0;
	size_t i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	json_init(&j, 16u << 20);
	json_init(&errs, 1u << 20);
	json_array_begin(&errs);
	json_object_begin(&j);
	json_header(&j, "check", time(NULL));
	json_key(&j, "offline");
	json_bool(&j, cli->offline);
	json_key(&j, "config");
	json_string(&j, rc->cfg->file);
	json_key(&j, "accounts");
	json_array_begin(&j);
	for (i = 0; i < rc->naccounts; i++) {
		const struct cfg_account *a = rc->accounts[i];
		struct check_result res;
		struct err e;

		memset(&res, 0, sizeof(res));
		imap_mailbox_list_init(&res.boxes);
		err_clear(&e);
		log_set_context(a->name, NULL);
		if (cfg_check_ca_file(a, &e) < 0 || (!cli->offline && check_online(a, &res, &e) < 0)) {
			if (!cli->json)
				account_report_error(a, &e);
			if (exit_code == 0)
				exit_code = err_exit_code(&e);
			json_error_entry(&errs, &e, err_exit_code(&e), a->name, NULL);
		} else if (!cli->json && cli->verbosity >= 0) {
			print_account_text(a, &res, cli->offline);
		}
		if (cli->json)
			json_account(&j, a, &res, &e, cli->offline);
		imap_caps_release(&res.caps);
		imap_mailbox_list_release(&res.boxes);
		free(res.sorted);
	}
	log_set_context(NULL, NULL);
	json_array_end(&j);
	json_footer(&j, &errs, &t0, exit_code);
	if (cli->json)
		printf("%s\n", json_cstr(&j));
	json_release(&errs);
	json_release(&j);
	return exit_code;
}

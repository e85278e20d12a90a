#include "account.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "secret.h"
#include "version.h"
#include "xalloc.h"

static int select_target(struct run_ctx *rc, const char *target, struct err *e)
{
	const char *slash = strchr(target, '/');
	size_t alen = slash ? (size_t)(slash - target) : strlen(target);
	char name[CFG_NAME_MAX + 1];
	const struct cfg_account *a;
	size_t i;

	if (alen == 0 || alen > CFG_NAME_MAX)
		return err_set(e, ERR_USAGE, "\"%s\" is not an account name", target);
	memcpy(name, target, alen);
	name[alen] = '\0';
	a = cfg_find_account(rc->cfg, name);
	if (a == NULL)
		return err_set(e, ERR_CONFIG, "%s: no account named \"%s\"", rc->cfg->file, name);
	if (slash && rc->cli->command != CLI_SYNC)
		return err_set(e, ERR_USAGE, "\"ferry %s\" takes an account, not a mailbox (\"%s\")",
			       cli_command_name(rc->cli->command), target);
	for (i = 0; i < rc->naccounts; i++)
		if (rc->accounts[i] == a)
			break;
	if (i == rc->naccounts) {
		rc->accounts = xrealloc(rc->accounts, sizeof(*rc->accounts) * (i + 1));
		rc->mailboxes = xrealloc(rc->mailboxes, sizeof(*rc->mailboxes) * (i + 1));
		rc->nmailboxes = xrealloc(rc->nmailboxes, sizeof(*rc->nmailboxes) * (i + 1));
		rc->accounts[i] = a;
		rc->mailboxes[i] = NULL;
		rc->nmailboxes[i] = 0;
		rc->naccounts++;
	} else if (!slash || rc->nmailboxes[i] == 0) {
		/* "work" together with "work/INBOX": the whole account wins. */
		if (!slash) {
			free(rc->mailboxes[i]);
			rc->mailboxes[i] = NULL;
		}
		return 0;
	}
	if (slash) {
		if (slash[1] == '\0')
			return err_set(e, ERR_USAGE, "\"%s\": mailbox name missing after \"/\"", target);
		rc->mailboxes[i] = xrealloc(rc->mailboxes[i],
					    sizeof(**rc->mailboxes) * (rc->nmailboxes[i] + 1));
		rc->mailboxes[i][rc->nmailboxes[i]++] = slash + 1;
	}
	return 0;
}

int run_ctx_init(struct run_ctx *rc, const struct cli *cli, struct err *e)
{
	char *path = NULL;
	size_t i;

	memset(rc, 0, sizeof(*rc));
	rc->cli = cli;
	if (cli->config_path == NULL && cfg_default_path(&path, e) < 0)
		return -1;
	if (cfg_load_file(cli->config_path ? cli->config_path : path, &rc->cfg, e) < 0) {
		free(path);
		return -1;
	}
	free(path);
	for (i = 0; i < rc->cfg->n_warnings; i++)
		log_warn("%s", rc->cfg->warnings[i]);
	for (i = 0; i < cli->ntargets; i++) {
		if (select_target(rc, cli->targets[i], e) < 0) {
			run_ctx_release(rc);
			return -1;
		}
	}
	if (cli->ntargets == 0) {
		rc->naccounts = rc->cfg->n_accounts;
		rc->accounts = xcalloc(rc->naccounts, sizeof(*rc->accounts));
		rc->mailboxes = xcalloc(rc->naccounts, sizeof(*rc->mailboxes));
		rc->nmailboxes = xcalloc(rc->naccounts, sizeof(*rc->nmailboxes));
		for (i = 0; i < rc->naccounts; i++)
			rc->accounts[i] = &rc->cfg->accounts[i];
	}
	if (rc->naccounts == 0) {
		err_set(e, ERR_CONFIG, "%s: no accounts configured", rc->cfg->file);
		run_ctx_release(rc);
		return -1;
	}
	return 0;
}

void run_ctx_release(struct run_ctx *rc)
{
	size_t i;

	for (i = 0; i < rc->naccounts; i++)
		free(rc->mailboxes ? rc->mailboxes[i] : NULL);
	free(rc->mailboxes);
	free(rc->nmailboxes);
	free(rc->accounts);
	cfg_free(rc->cfg);
	memset(rc, 0, sizeof(*rc));
}

void account_secrets_init(struct account_secrets *s, const struct cfg_account *a)
{
	memset(s, 0, sizeof(*s));
	s->a = a;
}

void account_secrets_release(struct account_secrets *s)
{
	secret_cancel(s->job);
	s->job = NULL;
	free_secret(s->kept);
	s->kept = NULL;
}

/* The engine's further connections log in on threads of their own (one at a time here). */
static pthread_mutex_t secret_lock = PTHREAD_MUTEX_INITIALIZER;

/* secret_early: start the one helper the account has (see account.h). */
static void account_secret_early_locked(void *ctx)
{
	struct account_secrets *s = ctx;
	const struct cfg_remote *r = &s->a->remote;
	bool pw = r->password == NULL && r->password_cmd != NULL && r->oauth2_token_cmd == NULL;
	bool token = r->password == NULL && r->password_cmd == NULL && r->oauth2_token_cmd != NULL;
	struct err e;

	if (s->job != NULL || s->kept != NULL || (!pw && !token))
		return;
	err_clear(&e);
	if (secret_start_for_account(s->a, token, &s->job, &e) < 0)
		s->job = NULL;  /* run again when asked, which reports the error */
	else
		s->job_token = token;
}

static void account_secret_early(void *ctx)
{
	pthread_mutex_lock(&secret_lock);
	account_secret_early_locked(ctx);
	pthread_mutex_unlock(&secret_lock);
}

static int account_secret_locked(struct account_secrets *s, enum imap_secret_kind kind,
				 struct buf *out, struct err *e)
{
	bool token = kind == IMAP_SECRET_TOKEN;
	char *secret = NULL;
	int r;

	if (s->kept != NULL && s->kept_token == token)
		return buf_adds(out, s->kept, e);
	if (s->job != NULL && s->job_token == token) {
		struct secret_job *j = s->job;

		s->job = NULL;
		r = secret_finish(j, &secret, e);
	} else if (token) {
		r = secret_oauth2_token(s->a, &secret, e);
	} else {
		r = secret_password(s->a, &secret, e);
	}
	if (r < 0)
		return -1;
	r = buf_adds(out, secret, e);
	if (r == 0 && s->keep && s->kept == NULL) {
		s->kept = secret;
		s->kept_token = token;
		return 0;
	}
	free_secret(secret);
	return r;
}

int account_secret(void *ctx, enum imap_secret_kind kind, struct buf *out, struct err *e)
{
	int r;

	pthread_mutex_lock(&secret_lock);
	r = account_secret_locked(ctx, kind, out, e);
	pthread_mutex_unlock(&secret_lock);
	return r;
}

static enum imap_auth_mech map_mech(enum cfg_auth_mech m)
{
	switch (m) {
	case CFG_AUTH_LOGIN:
		return IMAP_AUTH_LOGIN;
	case CFG_AUTH_PLAIN:
		return IMAP_AUTH_PLAIN;
	case CFG_AUTH_SCRAM_SHA_1:
		return IMAP_AUTH_SCRAM_SHA_1;
	case CFG_AUTH_SCRAM_SHA_256:
		return IMAP_AUTH_SCRAM_SHA_256;
	case CFG_AUTH_XOAUTH2:
		return IMAP_AUTH_XOAUTH2;
	default:
		return IMAP_AUTH_OAUTHBEARER;
	}
}

void account_client_opts(const struct cfg_account *a, struct account_secrets *secrets,
			 struct imap_client_opts *opts,
			 enum imap_auth_mech mechs_buf[CFG_AUTH_COUNT], char fp_text[110])
{
	const struct cfg_remote *r = &a->remote;
	size_t i;

	memset(opts, 0, sizeof(*opts));
	opts->conn.host = r->host;
	opts->conn.port = r->port;
	opts->conn.tls = r->tls == CFG_TLS_IMPLICIT   ? IMAP_TLS_IMPLICIT
			 : r->tls == CFG_TLS_STARTTLS ? IMAP_TLS_STARTTLS
						      : IMAP_TLS_NONE;
	opts->conn.tls_ca_file = r->tls_ca_file;
	if (r->tls_fingerprint.set) {
		size_t n = (size_t)snprintf(fp_text, 110, "sha256:");

		for (i = 0; i < 32; i++)
			n += (size_t)snprintf(fp_text + n, 110 - n, "%s%02X", i ? ":" : "",
					      r->tls_fingerprint.sha256[i]);
		opts->conn.tls_fingerprint = fp_text;
	}
	opts->conn.timeout_ms = r->timeout * 1000u;
	opts->user = r->user;
	for (i = 0; i < r->auth.n; i++)
		mechs_buf[i] = map_mech(r->auth.v[i]);
	opts->mechs = r->auth.n ? mechs_buf : NULL;
	opts->nmechs = r->auth.n;
	opts->have_password = r->password != NULL || r->password_cmd != NULL;
	opts->have_token = r->oauth2_token_cmd != NULL;
	opts->get_secret = account_secret;
	opts->secret_early = account_secret_early;
	opts->secret_ctx = secrets;
	opts->client_name = "ferry";
	opts->client_version = ferry_version();
}

static const char *hint_for(const struct err *e)
{
	switch (e->code) {
	case ERR_AUTH:
		if (strstr(e->msg, "none of the allowed") != NULL ||
		    strstr(e->msg, "refusing to send credentials") != NULL)
			return NULL;    /* the message says what to change */
		return "check the user name and the password (or token) command";
	case ERR_TLS:
		if (strstr(e->msg, "STARTTLS") != NULL)
			return "the server's STARTTLS is missing or broken: use tls: implicit "
			       "(port 993) if it offers that";
		return "check the host name, or trust the certificate with tls_ca_file or tls_fingerprint";
	case ERR_NET:
	case ERR_TIMEOUT:
		return "check host, port and tls in the config, and the network";
	case ERR_LOCKED:
		return "another ferry is syncing this account; wait for it, or add --wait "
		       "(\"ferry status\" works meanwhile)";
	case ERR_EXEC:
		return "run the command by hand to see what it prints";
	default:
		return NULL;
	}
}

void account_report_error(const struct cfg_account *a, const struct err *e)
{
	const char *hint = hint_for(e);
	char prefix[300];
	int n = snprintf(prefix, sizeof prefix, "account \"%s\": ", a->name);

	/* The engine's messages already name the account; do not say it twice. */
	if (n > 0 && (size_t)n < sizeof prefix && strncmp(e->msg, prefix, (size_t)n) == 0)
		fprintf(stderr, "ferry: %s\n", e->msg);
	else
		fprintf(stderr, "ferry: account \"%s\": %s\n", a->name, e->msg);
	if (hint)
		fprintf(stderr, "ferry: hint: %s\n", hint);
}

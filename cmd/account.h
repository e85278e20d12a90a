/*
 * account.h - what every command needs before it works on an account:
 * the configuration loaded, the accounts the user named picked out, and an
 * IMAP client set up from an account's `remote:` section.
 *
 * Ownership: struct run_ctx owns the loaded config until run_ctx_release();
 * the account pointers in it point into that config.
 */
#ifndef FERRY_ACCOUNT_H
#define FERRY_ACCOUNT_H

#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "client.h"
#include "config.h"
#include "err.h"

struct run_ctx {
	const struct cli *cli;
	struct cfg *cfg;
	const struct cfg_account **accounts;    /* the ones this run works on */
	size_t naccounts;
	/* For account-qualified targets ("work/INBOX"): the mailbox part, per account. */
	const char ***mailboxes;
	size_t *nmailboxes;
};

/*
 * Load the config (-c FILE or the default path) and select accounts: the
 * names in cli->targets (ACCOUNT or ACCOUNT/MAILBOX for sync), or all.
 * Prints the config's warnings.  ERR_CONFIG (exit 2) for a bad file or an
 * unknown account name.
 */
int run_ctx_init(struct run_ctx *rc, const struct cli *cli, struct err *e);
void run_ctx_release(struct run_ctx *rc);

/*
 * Where one login's secret comes from: the account, and the helper command
 * started early, if any.  The client gets it as secret_ctx
 * (account_client_opts).  Once the connection is made, before the greeting,
 * the helper of an account with exactly one secret command (password_cmd
 * without oauth2_token_cmd, or the reverse) and no `password:` is started,
 * so that it runs while the server gets ready; it is not started when the
 * connection cannot be made.  When the client then asks for that secret,
 * the helper's answer is taken (errors as if it had been run then); when
 * it does not ask (PREAUTH, a mechanism needing another secret, a failure
 * before authentication), account_secrets_release() kills the helper's
 * process group and reaps it.  Release once the login is over.
 */
struct secret_job;
struct account_secrets {
	const struct cfg_account *a;
	struct secret_job *job;         /* started early, not yet taken */
	bool job_token;                 /* job is oauth2_token_cmd, not password_cmd */
	/*
	 * Set by the caller before the first login that needs it: the secret
	 * is kept (in memory, wiped by account_secrets_release) for the
	 * further connections of the same run, instead of asking the
	 * command again for each.
	 */
	bool keep;
	char *kept;
	bool kept_token;
};
void account_secrets_init(struct account_secrets *s, const struct cfg_account *a);
void account_secrets_release(struct account_secrets *s);

/* The password or token for the client (ctx: struct account_secrets), fetched only when it asks. */
int account_secret(void *ctx, enum imap_secret_kind kind, struct buf *out, struct err *e);

/*
 * Fill client options from the account (strings point into the account,
 * fp_text must outlive the options; secrets, initialised for a, must
 * outlive the login).  mechs_buf holds the mapped auth list.
 */
void account_client_opts(const struct cfg_account *a, struct account_secrets *secrets,
			 struct imap_client_opts *opts,
			 enum imap_auth_mech mechs_buf[CFG_AUTH_COUNT], char fp_text[110]);

/* "account \"work\": " prefix, then the error, on stderr; with a hint for the user. */
void account_report_error(const struct cfg_account *a, const struct err *e);

#endif

/*
 * secret.h - obtain an account's password or OAuth2 token.
 *
 * A command (password_cmd, oauth2_token_cmd) runs as `/bin/sh -c COMMAND`
 * in its own process group, with stdin from /dev/null and ferry's
 * environment.  Its first line of stdout is the secret: at most
 * SECRET_LINE_MAX bytes, trailing CR/LF removed, never empty, no NUL byte.
 * The rest of stdout is read and discarded.  Up to SECRET_STDERR_MAX bytes
 * of stderr are kept, and the first line of them (control characters
 * escaped) goes into error messages: only stderr, never stdout, can
 * appear in an error, so a command that prints the secret and then fails
 * does not leak it.
 *
 * The command must finish within the timeout (SECRET_TIMEOUT seconds for
 * the account helpers: long enough for a pinentry prompt, short enough
 * that a hung helper does not hang a cron job).  On timeout, or when the
 * first line is too long, the whole process group is killed with SIGKILL
 * and reaped.  Once the shell has exited, output still held open by a
 * background child is not waited for.
 *
 * Every failure is ERR_EXEC with a message such as
 *     password_cmd for account "work" exited with status 1: gpg: decryption failed
 *     password_cmd for account "work" timed out after 60 s
 *
 * Ownership: *secret_out is the caller's; release it with free_secret().
 */
#ifndef FERRY_SECRET_H
#define FERRY_SECRET_H

#include <stdbool.h>

#include "config.h"
#include "err.h"

#define SECRET_LINE_MAX 16384
#define SECRET_STDERR_MAX 4096
#define SECRET_TIMEOUT 60       /* seconds */

/*
 * Run `command` and return its first line of stdout.  `what` names the
 * command in messages ("password_cmd for account \"work\"").
 */
int secret_run(const char *command, const char *what, unsigned timeout_s,
	       char **secret_out, struct err *e);

/*
 * secret_run() in two halves, so that the command can run while the caller
 * waits for something else: secret_start() starts it (its time limit runs
 * from now), secret_finish() waits for it and returns its first line as
 * secret_run() does (same errors), secret_cancel() kills its process group
 * (SIGKILL), reaps it and wipes what it printed.  Finish and cancel free
 * the job; exactly one of them must be called.
 */
struct secret_job;
int secret_start(const char *command, const char *what, unsigned timeout_s,
		 struct secret_job **job_out, struct err *e);
int secret_finish(struct secret_job *job, char **secret_out, struct err *e);
void secret_cancel(struct secret_job *job);

/*
 * Start the account's password_cmd (token: oauth2_token_cmd) with the
 * account helpers' time limit; ERR_AUTH if the account has no such command.
 */
int secret_start_for_account(const struct cfg_account *a, bool token,
			     struct secret_job **job_out, struct err *e);

/*
 * The account's password: a copy of `password:`, or the output of
 * password_cmd.  ERR_AUTH when the account has neither (it uses OAuth).
 */
int secret_password(const struct cfg_account *a, char **secret_out, struct err *e);

/* The account's OAuth2 access token from oauth2_token_cmd; ERR_AUTH if none. */
int secret_oauth2_token(const struct cfg_account *a, char **secret_out, struct err *e);

#endif

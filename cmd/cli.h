/*
 * cli.h - ferry's command line (SPEC §1).
 *
 *     ferry [-c FILE] [-v|-q] [--json] COMMAND [ARGS]
 *
 * Global options may stand before or after the command.  Parsing is pure:
 * it reads argv and fills a struct cli; it prints nothing.  Usage errors
 * come back as ERR_USAGE (exit code 2) with a message naming the argument.
 *
 * Ownership: the strings in struct cli point into argv and live as long as
 * argv does; the `targets` array is heap memory released by cli_release().
 */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum cli_command {
	CLI_NONE = 0,
	CLI_SYNC,
	CLI_STATUS,
	CLI_CHECK,
	CLI_HELP,
	CLI_VERSION,
};

struct cli {
	enum cli_command command;
	const char *config_path;    /* -c FILE, or NULL for the default */
	int verbosity;              /* -q: -1, default 0, -v: 1, -vv: 2 */
	bool json;
	/* sync */
	bool dry_run, pull, push, force, wait;
	/* check; list_accounts: print the account names only (shell completion) */
	bool offline, list_accounts;
	/* sync: ACCOUNT[/MAILBOX]...; status, check: at most one ACCOUNT; help: COMMAND */
	const char **targets;
	size_t ntargets;
};

int cli_parse(int argc, char **argv, struct cli *out, struct err *e);
/*
 * After cli_parse() failed: whether --json stands anywhere among the options
 * (before a "--"), and the first command named (CLI_NONE if none), so that
 * the usage error can still be the one JSON object a monitor reads.
 */
bool cli_json_asked(int argc, char **argv, enum cli_command *cmd);
void cli_release(struct cli *c);

const char *cli_command_name(enum cli_command cmd);
/* The help text for a command (CLI_NONE: the overview). Static storage. */
const char *cli_help_text(enum cli_command cmd);
/* Look up a command by name; CLI_NONE if unknown. */
enum cli_command cli_command_from_name(const char *name);

#endif

#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static const struct {
	const char *name;
	enum cli_command cmd;
} commands[] = {
	{ "sync", CLI_SYNC },
	{ "status", CLI_STATUS },
	{ "check", CLI_CHECK },
	{ "help", CLI_HELP },
};

static const char help_overview[] =
	"usage: ferry [-c FILE] [-v|-q] [--json] COMMAND [ARGS]\n"
	"\n"
	"Keep a local Maildir and an IMAP account in step, in both directions.\n"
	"\n"
	"commands:\n"
	"  sync [ACCOUNT[/MAILBOX]...]   sync all accounts, or those named\n"
	"  status [ACCOUNT]              show the last sync and pending local changes (offline)\n"
	"  check [ACCOUNT]               validate the config, connect, log in, list mailboxes\n"
	"  help [COMMAND]                show help for a command\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default $XDG_CONFIG_HOME/ferry/config.yaml)\n"
	"  -v, --verbose       more output and the protocol trace; -vv: all debug lines\n"
	"  -q, --quiet         print only errors\n"
	"      --json          print one JSON object per run on stdout\n"
	"  -V, --version       print the version and exit\n"
	"  -h, --help          show help for the command given, or an overview\n"
	"\n"
	"exit codes: 0 synced, 1 partial failure, 2 usage or configuration error,\n"
	"3 authentication failed, 4 connection or TLS failure, 5 safety stop,\n"
	"6 another run holds the account's lock\n";

static const char help_sync[] =
	"usage: ferry sync [--dry-run] [--pull|--push] [--force] [--wait] [ACCOUNT[/MAILBOX]...]\n"
	"\n"
	"Sync every configured account, or only the accounts and mailboxes named.\n"
	"\n"
	"  --dry-run   print the plan and change nothing on either side\n"
	"  --pull      only bring server changes to the Maildir in this run\n"
	"  --push      only bring Maildir changes to the server in this run\n"
	"  --force     go past the safety stop on mass deletions\n"
	"  --wait      wait for another run's lock instead of exiting with code 6\n";

static const char help_status[] =
	"usage: ferry status [ACCOUNT]\n"
	"\n"
	"Show, without any network access, the last sync time of each mailbox,\n"
	"its message count and the local changes waiting to be pushed.\n";

static const char help_check[] =
	"usage: ferry check [--offline] [--list-accounts] [ACCOUNT]\n"
	"\n"
	"Validate the configuration, connect, verify TLS, authenticate, and list\n"
	"the server's capabilities and mailboxes.  Changes nothing.\n"
	"\n"
	"  --offline         only validate the configuration\n"
	"  --list-accounts   print the names of the configured accounts, one per line\n";

static const char help_help[] =
	"usage: ferry help [COMMAND]\n"
	"\n"
	"Show help for COMMAND, or an overview.\n";

const char *cli_command_name(enum cli_command cmd)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].cmd == cmd)
			return commands[i].name;
	return cmd == CLI_VERSION ? "version" : "";
}

enum cli_command cli_command_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].cmd;
	return CLI_NONE;
}

const char *cli_help_text(enum cli_command cmd)
{
	switch (cmd) {
	case CLI_SYNC:
		return help_sync;
	case CLI_STATUS:
		return help_status;
	case CLI_CHECK:
		return help_check;
	case CLI_HELP:
		return help_help;
	default:
		return help_overview;
	}
}

/* Options that only one command takes: which, and where to store them. */
static bool *command_flag(struct cli *c, const char *arg, enum cli_command *owner_out)
{
	static const struct {
		const char *name;
		enum cli_command owner;
		size_t offset;
	} flags[] = {
		{ "--dry-run", CLI_SYNC, offsetof(struct cli, dry_run) },
		{ "--pull", CLI_SYNC, offsetof(struct cli, pull) },
		{ "--push", CLI_SYNC, offsetof(struct cli, push) },
		{ "--force", CLI_SYNC, offsetof(struct cli, force) },
		{ "--wait", CLI_SYNC, offsetof(struct cli, wait) },
		{ "--offline", CLI_CHECK, offsetof(struct cli, offline) },
		{ "--list-accounts", CLI_CHECK, offsetof(struct cli, list_accounts) },
	};
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (strcmp(arg, flags[i].name) == 0) {
			*owner_out = flags[i].owner;
			return (bool *)((char *)c + flags[i].offset);
		}
	}
	return NULL;
}

static int set_verbosity(struct cli *c, int v, struct err *e)
{
	if ((v < 0 && c->verbosity > 0) || (v > 0 && c->verbosity < 0))
		return err_set(e, ERR_USAGE, "-v and -q cannot be used together");
	c->verbosity = v < 0 ? -1 : c->verbosity + v;
	return 0;
}

static int parse_option(struct cli *c, int argc, char **argv, int *i, struct err *e)
{
	const char *arg = argv[*i];
	enum cli_command owner;
	bool *flag;

	if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) {
		if (*i + 1 >= argc)
			return err_set(e, ERR_USAGE, "option \"%s\" needs a file name", arg);
		c->config_path = argv[++*i];
		return 0;
	}
	if (strncmp(arg, "--config=", 9) == 0) {
		c->config_path = arg + 9;
		return 0;
	}
	if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0)
		return set_verbosity(c, 1, e);
	if (strcmp(arg, "-vv") == 0)
		return set_verbosity(c, 2, e);
	if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0)
		return set_verbosity(c, -1, e);
	if (strcmp(arg, "--json") == 0) {
		c->json = true;
		return 0;
	}
	if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
		if (c->command == CLI_NONE)
			c->command = CLI_VERSION;
		return 0;
	}
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
		/* "ferry sync --help" is "ferry help sync". */
		if (c->command != CLI_NONE && c->command != CLI_HELP && c->ntargets == 0) {
			c->targets = xrealloc(c->targets, sizeof(*c->targets));
			c->targets[0] = cli_command_name(c->command);
			c->ntargets = 1;
		}
		c->command = CLI_HELP;
		return 0;
	}
	flag = command_flag(c, arg, &owner);
	if (flag == NULL)
		return err_set(e, ERR_USAGE, "unknown option \"%s\"; see \"ferry help\"", arg);
	if (c->command != CLI_NONE && c->command != owner && c->command != CLI_HELP)
		return err_set(e, ERR_USAGE, "option \"%s\" belongs to \"ferry %s\", not \"ferry %s\"",
			       arg, cli_command_name(owner), cli_command_name(c->command));
	*flag = true;
	return 0;
}

static int check_combination(const struct cli *c, struct err *e)
{
	if (c->command == CLI_NONE)
		return err_set(e, ERR_USAGE, "no command given; see \"ferry help\"");
	if (c->pull && c->push)
		return err_set(e, ERR_USAGE, "--pull and --push cannot be used together");
	if ((c->dry_run || c->pull || c->push || c->force || c->wait) && c->command != CLI_SYNC &&
	    c->command != CLI_HELP)
		return err_set(e, ERR_USAGE, "--dry-run, --pull, --push, --force and --wait belong to \"ferry sync\"");
	if ((c->offline || c->list_accounts) && c->command != CLI_CHECK && c->command != CLI_HELP)
		return err_set(e, ERR_USAGE, "--offline and --list-accounts belong to \"ferry check\"");
	if ((c->command == CLI_STATUS || c->command == CLI_CHECK || c->command == CLI_HELP) &&
	    c->ntargets > 1)
		return err_set(e, ERR_USAGE, "\"ferry %s\" takes at most one argument",
			       cli_command_name(c->command));
	if (c->command == CLI_VERSION && c->ntargets > 0)
		return err_set(e, ERR_USAGE, "unexpected argument \"%s\"", c->targets[0]);
	if (c->command == CLI_HELP && c->ntargets == 1 &&
	    cli_command_from_name(c->targets[0]) == CLI_NONE)
		return err_set(e, ERR_USAGE, "no such command \"%s\"; see \"ferry help\"", c->targets[0]);
	return 0;
}

int cli_parse(int argc, char **argv, struct cli *out, struct err *e)
{
	bool only_args = false;
	int i;

	memset(out, 0, sizeof(*out));
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!only_args && strcmp(arg, "--") == 0) {
			only_args = true;
			continue;
		}
		if (!only_args && arg[0] == '-' && arg[1] != '\0') {
			if (parse_option(out, argc, argv, &i, e) < 0)
				goto fail;
			continue;
		}
		if (out->command == CLI_NONE || out->command == CLI_VERSION) {
			enum cli_command cmd = cli_command_from_name(arg);

			if (cmd == CLI_NONE) {
				err_set(e, ERR_USAGE, "unknown command \"%s\"; see \"ferry help\"", arg);
				goto fail;
			}
			out->command = cmd;
			continue;
		}
		out->targets = xrealloc(out->targets, sizeof(*out->targets) * (out->ntargets + 1));
		out->targets[out->ntargets++] = arg;
	}
	if (check_combination(out, e) < 0)
		goto fail;
	return 0;
fail:
	cli_release(out);
	return -1;
}

bool cli_json_asked(int argc, char **argv, enum cli_command *cmd)
{
	bool json = false;
	int i;

	*cmd = CLI_NONE;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--") == 0)
			break;
		if (strcmp(arg, "--json") == 0)
			json = true;
		else if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0)
			i++;    /* its file name is no command */
		else if (arg[0] != '-' && *cmd == CLI_NONE)
			*cmd = cli_command_from_name(arg);
	}
	return json;
}

void cli_release(struct cli *c)
{
	free(c->targets);
	c->targets = NULL;
	c->ntargets = 0;
}

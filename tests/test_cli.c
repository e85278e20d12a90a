/* The command line of SPEC §1: what is accepted, and what is a usage error. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int parse(struct cli *c, struct err *e, const char *line)
{
	char buf[512];
	char *argv[32];
	int argc = 0;
	char *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", line);
	argv[argc++] = "ferry";
	for (tok = strtok_r(buf, " ", &save); tok && argc < 31; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	/* argv points into buf: copy what the tests read before returning. */
	{
		static char keep[512];
		int i;
		size_t off = 0;

		for (i = 1; i < argc; i++) {
			size_t n = strlen(argv[i]) + 1;

			memcpy(keep + off, argv[i], n);
			argv[i] = keep + off;
			off += n;
		}
	}
	return cli_parse(argc, argv, c, e);
}

Test(cli, sync_with_all_options_and_targets)
{
	struct cli c;
	struct err e;

	cr_assert_eq(parse(&c, &e, "-c /tmp/f.yaml -q sync --dry-run --pull --force --wait work personal/INBOX"), 0, "%s", e.msg);
	cr_assert_eq(c.command, CLI_SYNC);
	cr_assert_str_eq(c.config_path, "/tmp/f.yaml");
	cr_assert_eq(c.verbosity, -1);
	cr_assert(c.dry_run && c.pull && c.force && c.wait && !c.push);
	cr_assert_eq(c.ntargets, 2);
	cr_assert_str_eq(c.targets[0], "work");
	cr_assert_str_eq(c.targets[1], "personal/INBOX");
	cli_release(&c);
}

Test(cli, global_options_may_follow_the_command)
{
	struct cli c;
	struct err e;

	cr_assert_eq(parse(&c, &e, "check work --json -vv --config=x.yaml --offline"), 0, "%s", e.msg);
	cr_assert_eq(c.command, CLI_CHECK);
	cr_assert(c.json && c.offline);
	cr_assert_eq(c.verbosity, 2);
	cr_assert_str_eq(c.config_path, "x.yaml");
	cli_release(&c);
}

Test(cli, repeated_v_adds_up)
{
	struct cli c;
	struct err e;

	cr_assert_eq(parse(&c, &e, "-v -v status"), 0);
	cr_assert_eq(c.verbosity, 2);
	cli_release(&c);
}

Test(cli, usage_errors_are_err_usage)
{
	static const char *const bad[] = {
		"",                          /* no command */
		"frobnicate",                /* unknown command */
		"sync --pull --push",        /* exclusive */
		"sync --bogus",              /* unknown option */
		"status --dry-run",          /* option of another command */
		"check --wait",
		"sync --offline",
		"status a b",                /* too many arguments */
		"check a b",
		"-v -q sync",                /* contradictory */
		"sync -c",                   /* missing value */
		"help nosuchcommand",
		"--version extra",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cli c;
		struct err e;

		err_clear(&e);
		cr_assert_eq(parse(&c, &e, bad[i]), -1, "accepted \"%s\"", bad[i]);
		cr_assert_eq(e.code, ERR_USAGE, "\"%s\": %s", bad[i], e.msg);
		cr_assert_eq(err_exit_code(&e), 2);
		cr_assert_neq(e.msg[0], '\0');
	}
}

Test(cli, help_forms)
{
	struct cli c;
	struct err e;

	cr_assert_eq(parse(&c, &e, "help sync"), 0);
	cr_assert_eq(c.command, CLI_HELP);
	cr_assert_str_eq(c.targets[0], "sync");
	cli_release(&c);
	cr_assert_eq(parse(&c, &e, "sync --help"), 0);
	cr_assert_eq(c.command, CLI_HELP);
	cr_assert_eq(c.ntargets, 1);
	cr_assert_str_eq(c.targets[0], "sync");
	cli_release(&c);
	cr_assert_eq(parse(&c, &e, "--version"), 0);
	cr_assert_eq(c.command, CLI_VERSION);
	cli_release(&c);
	cr_assert(strstr(cli_help_text(CLI_SYNC), "--dry-run") != NULL);
	cr_assert(strstr(cli_help_text(CLI_CHECK), "--offline") != NULL);
	cr_assert(strstr(cli_help_text(CLI_NONE), "exit codes") != NULL);
}

Test(cli, list_accounts_belongs_to_check)
{
	struct cli c;
	struct err e;

	cr_assert_eq(parse(&c, &e, "-c x.yaml check --list-accounts"), 0, "%s", e.msg);
	cr_assert_eq(c.command, CLI_CHECK);
	cr_assert(c.list_accounts && !c.offline);
	cli_release(&c);
	err_clear(&e);
	cr_assert_eq(parse(&c, &e, "sync --list-accounts"), -1);
	cr_assert_eq(e.code, ERR_USAGE);
	cr_assert(strstr(e.msg, "ferry check") != NULL, "%s", e.msg);
	err_clear(&e);
	cr_assert_eq(parse(&c, &e, "--list-accounts status"), -1);
	cr_assert_eq(e.code, ERR_USAGE);
}

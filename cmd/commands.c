#include "commands.h"

#include <stdio.h>

#include "commands_int.h"

/*
 * `ferry check --list-accounts`: the selected account names, one per line,
 * for shell completion.  The config is loaded (and so validated) already;
 * nothing else is read and nothing is contacted.
 */
static int list_accounts(const struct run_ctx *rc)
{
	size_t i;

	for (i = 0; i < rc->naccounts; i++)
		printf("%s\n", rc->accounts[i]->name);
	return 0;
}

int command_run(const struct cli *cli)
{
	struct run_ctx rc;
	struct err e;
	int code;

	err_clear(&e);
	if (run_ctx_init(&rc, cli, &e) < 0) {
		fprintf(stderr, "ferry: %s\n", e.msg);
		return err_exit_code(&e);
	}
	switch (cli->command) {
	case CLI_CHECK:
		code = cli->list_accounts ? list_accounts(&rc) : command_check(&rc);
		break;
	case CLI_STATUS:
		code = command_status(&rc);
		break;
	default:
		code = command_sync(&rc);
		break;
	}
	run_ctx_release(&rc);
	return code;
}

#include "commands.h"

#include <stdio.h>
#include <time.h>

#include "commands_int.h"
#include "json.h"

void command_print_json_failure(enum cli_command command, const struct err *e, int code)
{
	struct json j, errs;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	json_init(&j, 1u << 20);
	json_init(&errs, 1u << 20);
	json_array_begin(&errs);
	json_error_entry(&errs, e, code, NULL, NULL);
	json_object_begin(&j);
	json_header(&j,
		    command == CLI_SYNC || command == CLI_STATUS || command == CLI_CHECK
			    ? cli_command_name(command)
			    : NULL,
		    time(NULL));
	json_key(&j, "accounts");
	json_array_begin(&j);
	json_array_end(&j);
	json_footer(&j, &errs, &t0, code);
	printf("%s\n", json_cstr(&j));
	json_release(&errs);
	json_release(&j);
}

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
		if (cli->json)
			command_print_json_failure(cli->command, &e, err_exit_code(&e));
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

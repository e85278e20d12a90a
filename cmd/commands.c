#include "commands.h"

#include <stdio.h>

#include "commands_int.h"

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
		code = command_check(&rc);
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

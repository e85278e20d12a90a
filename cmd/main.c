/*
 * main.c - ferry's entry point: parse the command line, set up logging,
 * run one command, turn its outcome into an exit code (SPEC §1).
 */
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "err.h"
#include "log.h"
#include "version.h"

static void set_log_level(const struct cli *c)
{
	if (c->verbosity < 0)
		log_set_level(LOG_ERROR);
	else if (c->verbosity == 1) {
		log_set_level(LOG_INFO);
		log_enable_category(LOG_CAT_NET);   /* -v: the protocol trace */
	}
	else if (c->verbosity >= 2)
		log_set_level(LOG_DEBUG);
	else
		log_set_level(LOG_NOTICE);
}

int main(int argc, char **argv)
{
	struct cli cli;
	struct err e;
	int code;

	err_clear(&e);
	if (cli_parse(argc, argv, &cli, &e) < 0) {
		enum cli_command named;

		fprintf(stderr, "ferry: %s\n", e.msg);
		if (cli_json_asked(argc, argv, &named))
			command_print_json_failure(named, &e, 2);
		return 2;
	}
	set_log_level(&cli);
	switch (cli.command) {
	case CLI_VERSION:
		printf("ferry %s\n", ferry_version());
		code = 0;
		break;
	case CLI_HELP:
		fputs(cli_help_text(cli.ntargets ? cli_command_from_name(cli.targets[0]) : CLI_NONE),
		      stdout);
		code = 0;
		break;
	default:
		code = command_run(&cli);
		break;
	}
	cli_release(&cli);
	return code;
}

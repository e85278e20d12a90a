/*
 * commands.h - the commands behind `ferry sync`, `status` and `check`.
 *
 * Each takes the parsed command line, does its work, prints its output and
 * returns the process exit code of SPEC §1.
 */
#ifndef FERRY_COMMANDS_H
#define FERRY_COMMANDS_H

#include "cli.h"

/* Run cli->command (sync, status or check). */
int command_run(const struct cli *cli);
/*
 * --json when there is nothing to run (a usage error, a config that cannot
 * be loaded): print the one object, with no account and `e` as its error.
 * `command` is sync, status or check; any other is printed as null.
 */
void command_print_json_failure(enum cli_command command, const struct err *e, int code);

#endif

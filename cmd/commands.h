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

#endif

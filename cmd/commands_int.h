/* commands_int.h - the commands, each given a loaded config; see commands.h. */
#ifndef FERRY_COMMANDS_INT_H
#define FERRY_COMMANDS_INT_H

#include "account.h"
#include "xalloc.h"

int command_check(struct run_ctx *rc);
int command_status(struct run_ctx *rc);
int command_sync(struct run_ctx *rc);

#endif

/*
 * sync.c - `ferry sync` and (until the engine lands) `ferry status`.
 */
#include <stdio.h>

#include "commands_int.h"

static int not_yet(struct run_ctx *rc, const char *what)
{
	fprintf(stderr, "ferry: \"ferry %s\" is not available in this build yet\n", what);
	(void)rc;
	return 1;
}

int command_sync(struct run_ctx *rc)
{
	return not_yet(rc, "sync");
}

int command_status(struct run_ctx *rc)
{
	return not_yet(rc, "status");
}

/*
 * step.c - the test-only crash hook of the engine (engine.h sync_step).
 */
#include "engine.h"

#include <signal.h>
#include <stdlib.h>

/* Process-wide by design: the hook counts what one run of this process does. */
static unsigned long steps_taken;
static unsigned long steps_crash_at;

void sync_steps_restart(void)
{
	const char *v = getenv("FERRY_TEST_CRASH_AT");
	char *end = NULL;
	unsigned long n = 0;

	steps_taken = 0;
	if (v != NULL && *v != '\0') {
		n = strtoul(v, &end, 10);
		if (end == NULL || *end != '\0')
			n = 0;
	}
	steps_crash_at = n;
}

void sync_step(const char *what)
{
	(void)what;
	steps_taken++;
	if (steps_crash_at != 0 && steps_taken == steps_crash_at)
		raise(SIGKILL);
}

unsigned long sync_steps_taken(void)
{
	return steps_taken;
}

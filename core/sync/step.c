/*
 * step.c - the test-only crash hook of the engine (engine.h sync_step).
 */
#include "engine.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Process-wide by design: the hook counts what one run of this process does. */
static unsigned long steps_taken;
static unsigned long steps_crash_at;
static char crash_on_what[32];          /* FERRY_TEST_CRASH_ON=WHAT:N */
static unsigned long crash_on_n, crash_on_seen;

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
	crash_on_what[0] = '\0';
	crash_on_n = crash_on_seen = 0;
	v = getenv("FERRY_TEST_CRASH_ON");
	if (v != NULL && strchr(v, ':') != NULL && (size_t)(strchr(v, ':') - v) < sizeof(crash_on_what)) {
		size_t len = (size_t)(strchr(v, ':') - v);

		memcpy(crash_on_what, v, len);
		crash_on_what[len] = '\0';
		end = NULL;
		crash_on_n = strtoul(v + len + 1, &end, 10);
		if (end == NULL || *end != '\0')
			crash_on_n = 0;
	}
}

void sync_step(const char *what)
{
	steps_taken++;
	if (steps_crash_at != 0 && steps_taken == steps_crash_at)
		raise(SIGKILL);
	if (crash_on_n != 0 && strcmp(what, crash_on_what) == 0 && ++crash_on_seen == crash_on_n)
		raise(SIGKILL);
}

unsigned long sync_steps_taken(void)
{
	return steps_taken;
}

/*
 * progress.h - the live progress line of `ferry sync` on a terminal
 * (SPEC §1): on stderr, redrawn in place ("\r", the text, then "ESC [ K"
 * to clear the rest of the line), at most once per interval (250 ms), e.g.
 *
 *     pulling 45/200 msgs  1.2 MB/3.6 MB  850 KB/s  work/INBOX
 *
 * Counts come first so that a narrow terminal cuts the name, not the
 * numbers; the line never reaches the last column (no wrap).  It is shown
 * only when progress_wanted() says so: stderr is a terminal (and TERM is not
 * "dumb"), and none of -q, --json, -v/-vv (the log lines would push it
 * around) or --dry-run (nothing is transferred) was given.  Never in a
 * pipe.  The first draw waits one interval, so a quick sync shows nothing.
 * It moves within a message too: the engine reports each chunk of a body
 * downloaded or uploaded.
 *
 * Test-only knob: FERRY_PROGRESS_INTERVAL_MS=N in the environment sets the
 * interval (0: draw at every event); it does not turn the line on where
 * progress_wanted() says no.
 *
 * The line is erased (progress_clear) before anything else is printed:
 * cmd/sync.c clears it before the summary lines, and progress_init()
 * registers it with log_set_before_line() so warnings erase it first.
 *
 * Ownership: struct progress is the caller's (usually on the stack), from
 * progress_init() to progress_release(); it copies nothing it is given but
 * the account name pointer, which must outlive it.
 */
#ifndef FERRY_PROGRESS_H
#define FERRY_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cli.h"
#include "sync/engine.h"

#define PROGRESS_INTERVAL_MS 250u
#define PROGRESS_DEFAULT_WIDTH 80u

struct progress {
	int fd;                         /* where the line goes (stderr) */
	bool enabled;
	bool shown;                     /* a line is on the terminal now */
	bool started;                   /* t0 set: the first event came */
	unsigned interval_ms;
	struct timespec t0, last;       /* first event, last draw (monotonic) */
	const char *account;
};

/* Whether a progress line belongs on `fd` for this command line. */
bool progress_wanted(const struct cli *cli, int fd);

void progress_init(struct progress *p, int fd, bool enabled);
/* Erase the line if shown; unregister from the logger. */
void progress_release(struct progress *p);
/* Start an account's transfers (resets the clock). */
void progress_begin(struct progress *p, const char *account);
/* The engine's callback (opts->progress; ctx: struct progress *). */
void progress_event(void *ctx, const struct sync_progress *sp);
/* Erase the line if one is shown. */
void progress_clear(struct progress *p);

/*
 * Pure formatting, for the renderer and the tests.
 *
 * progress_bytes(): "512 B", "12 KB", "3.4 MB", "45 MB", "1.2 GB" (units
 * of 1024).  progress_format(): the line for sp after `seconds` of
 * transfer, at most width - 1 columns (a column: one UTF-8 character;
 * wide characters count as one), control characters in names shown as
 * '?'; the rate is left out before a tenth of a second has passed.
 * Writes a NUL-terminated string into out (size > 0) and returns its
 * length in bytes.
 */
void progress_bytes(uint64_t n, char *out, size_t size);
size_t progress_format(const char *account, const struct sync_progress *sp, double seconds,
		       unsigned width, char *out, size_t size);

#endif

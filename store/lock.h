/*
 * lock.h - the account lock: one ferry run per account at a time (SPEC 4.9).
 *
 * The lock is flock(LOCK_EX) on the file STATE_DIR/lock.  The kernel drops it
 * when the process exits, however it exits (kill -9, crash), so a stale lock
 * cannot outlive its holder and needs no clean-up.  The file also holds the
 * holder's pid as decimal text, for diagnostics only: the pid is never used
 * to decide anything.
 *
 * Caveats:
 * - flock locks belong to the open file description.  The descriptor is
 *   opened O_CLOEXEC so that child processes (password_cmd, oauth2_token_cmd)
 *   never inherit the lock and cannot keep it alive after ferry exits.
 * - After fork() a child shares the parent's lock; a child must not call
 *   lock_release() on the parent's behalf (closing its copy of the
 *   descriptor does not release the parent's lock, but LOCK_UN would).
 * - On network file systems flock may be emulated or absent; the state folder
 *   belongs on a local disk (so does the LMDB environment next to it).
 */
#ifndef FERRY_LOCK_H
#define FERRY_LOCK_H

#include <stdbool.h>

#include "err.h"

struct lock {
	int fd;         /* -1 when not held */
	char *path;     /* STATE_DIR/lock, owned; NULL when not held */
};

#define LOCK_INIT { -1, NULL }

/*
 * Take the lock of the account whose state lives in `state_dir`.
 *
 * Creates `state_dir` (and missing parents) with mode 0700 and the lock file
 * with mode 0600 if needed.  Existing folders keep their mode.
 *
 * wait == false: if another process holds the lock, fail at once.
 * wait == true:  block until the holder releases it (or exits).  The wait has
 *                no timeout; a signal that interrupts it (a handler installed
 *                without SA_RESTART) ends the wait with an error.
 *
 * On success `out` holds the lock until lock_release(); the file contains
 * this process's pid.
 *
 * Errors:
 *   ERR_LOCKED  held by another run: "account is locked by another ferry run
 *               (pid N); use --wait to wait for it" (retry = true); also when
 *               an interrupted wait gives up.
 *   ERR_IO      the folder or the file cannot be created or opened, or flock
 *               itself failed (message names the path, e->sys the errno).
 */
int lock_acquire(const char *state_dir, bool wait, struct lock *out,
		 struct err *e);

/*
 * Release the lock and free `l`'s memory; `l` becomes LOCK_INIT.  The lock
 * file is left in place (removing it would race with a waiter that already
 * opened it).  Safe on a lock that is not held.
 */
void lock_release(struct lock *l);

/*
 * Create `path` and its missing parents with mode 0700 (like mkdir -p).
 * Existing folders are left as they are.  Shared with state.c.
 * Errors: ERR_IO naming the folder that could not be created.
 */
int lock_mkdirs(const char *path, struct err *e);

#endif

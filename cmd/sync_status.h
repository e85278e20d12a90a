/*
 * sync_status.h - local changes not yet pushed, for `ferry status`.
 *
 * Compares one mailbox's Maildir folder with what the state recorded at
 * the last sync, reading only directory listings (no message bodies, no
 * network): files added, files gone (deleted or moved away), and flag or
 * keyword changes.
 */
#ifndef FERRY_SYNC_STATUS_H
#define FERRY_SYNC_STATUS_H

#include <stddef.h>

#include "arena.h"
#include "config.h"
#include "err.h"
#include "state.h"

struct sync_pending {
	size_t added;
	size_t removed;
	size_t flagged;
};

/*
 * Fill *out for mailbox `mb` of account `a`, reading records through `txn`
 * (read-only).  Temporary data goes to `ar`.  -1 with ERR_IO when the
 * folder cannot be read; a folder that does not exist counts all its
 * records as removed.
 */
int sync_pending_local(const struct cfg_account *a, struct state_txn *txn,
		       const struct state_mailbox *mb, struct arena *ar, struct sync_pending *out,
		       struct err *e);

#endif

/*
 * rename.h - folder renames (SPEC 4.4, issue 4 point 4), found by a pure
 * function: (the run's mailbox pairs with their listings, the base
 * records, hints from rename intents a killed run left, the direction)
 * -> the renames to make.  No I/O, no clock, no randomness.
 *
 * Words
 *   A pair is *known* when it was synced before: a side existed at the
 *   last sync, or it has records.  Any other pair is *fresh*: its folders
 *   appeared since (pairing made it this run, or a killed run did).
 *   A known pair *vanished* on a side when its folder existed there at the
 *   last sync and does not now.
 *
 * Rules
 *   - A known pair that vanished on one side is renamed on that side into
 *     a fresh pair that exists there when the fresh folder holds the known
 *     pair's messages: remote, records whose UID is listed there with the
 *     recorded UIDVALIDITY (sizes and fingerprints agreeing where both are
 *     known), or whose fingerprint is listed there; local, records whose
 *     unique name is in the folder.  It must hold at least one and at
 *     least half of those the pair recorded on that side.  The rest are
 *     refilled, never deleted: `remote_partial` / `local_partial` tell the
 *     caller to record that side as not having existed before planning.
 *   - A known pair with no message on that side needs other evidence: the
 *     same UIDVALIDITY (remote), the same cur/ directory (local: device
 *     and inode), its parent renamed the same way on that side in this
 *     list, or a hint.  Nothing of this: not a rename (the vanished folder
 *     is re-created, SPEC 4.6).
 *   - A fresh pair that exists on both sides is taken only by a known pair
 *     that vanished on both sides and matches on both.  Each fresh pair is
 *     taken once, the best match first (most messages found).
 *   - Renamed on the server: the local folder is renamed to the fresh
 *     pair's local name (`rename_local`).  Renamed locally: the server's
 *     mailbox is renamed to the fresh pair's remote name (`rename_remote`).
 *     Renamed on both sides to different names: the server's name wins
 *     (the local folder is renamed to it).  A target name that is taken
 *     keeps that side's current name (the pair's names then differ), and
 *     so does a pair whose names differed already (a local "Sent" paired
 *     with the server's "Sent Items"): renamed on one side, the other side
 *     keeps its own name.
 *   - A RENAME on the server renames the mailbox's inferiors too: a known
 *     pair below a mailbox this list renames on the server follows it
 *     (`remote_by_parent`: no command of its own), and its local folder is
 *     renamed with it when its names were the same on both sides.
 *   - INBOX (either side, any case) is never renamed, nor renamed into.
 *   - Direction: a rename that would have to write a side the direction
 *     does not write is `deferred`: the caller leaves both pairs out of
 *     this run (the next two-way run makes it).
 *   Order: parents before their children (by depth of the name).
 *
 * Ownership: the input is borrowed for the call; the result and its
 * strings (which may point into the input) live in `a` and in the input.
 */
#ifndef FERRY_SYNC_RENAME_H
#define FERRY_SYNC_RENAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "plan.h"

/* One mailbox pair of the run. */
struct sync_rename_box {
	uint32_t id;
	const char *remote_name, *local_name;
	bool remote_exists, local_exists;       /* now */
	bool remote_existed, local_existed;     /* at the last sync */
	uint32_t uidvalidity_base;              /* recorded, 0: none */
	uint32_t uidvalidity_now;               /* listed now, 0: not listed */
	uint64_t dir_dev, dir_ino;              /* local cur/: at the last sync (known
						   pairs) or now (fresh); 0: unknown */
	const struct sync_remote_msg *remote;   /* complete listing (fresh pairs) */
	size_t nremote;
	const struct sync_local_msg *local;
	size_t nlocal;
};

/* A rename intent of a killed run: `from` was being renamed into these. */
struct sync_rename_hint {
	uint32_t from, into_remote, into_local;
};

struct sync_rename_input {
	const struct sync_rename_box *boxes;
	size_t nboxes;
	const struct sync_record *records;
	size_t nrecords;
	const struct sync_rename_hint *hints;
	size_t nhints;
	char sep;                       /* hierarchy separator, 0: flat */
	enum sync_direction direction;
};

struct sync_rename {
	uint32_t from;                  /* the known pair; keeps its id and records */
	uint32_t into_remote;           /* fresh pair whose remote folder it takes, or 0 */
	uint32_t into_local;            /* fresh pair whose local folder it takes, or 0 */
	const char *remote_cur, *remote_new;    /* where the remote folder is, and its final name */
	const char *local_cur, *local_new;
	bool rename_remote;             /* RENAME remote_cur remote_new */
	bool remote_by_parent;          /* ... done by a parent's RENAME earlier in the list */
	bool rename_local;              /* rename local folder local_cur to local_new */
	bool remote_partial, local_partial;     /* some records missing there: refill */
	bool deferred;                  /* needs a side the direction does not write */
};

/*
 * Find the renames.  *out (in `a`) holds *n_out entries, in the order to
 * carry them out.  Always succeeds.
 */
void sync_renames_find(const struct sync_rename_input *in, struct arena *a,
		       struct sync_rename **out, size_t *n_out);

#endif

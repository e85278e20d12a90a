/*
 * state.h - ferry's sync state: one LMDB environment per account.
 *
 * The state remembers, per mailbox pair, where the last sync left off
 * (UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT, the local scan marker) and, per
 * message, the remote UID, the local unique name, the flags both sides agreed
 * on (the base), the size and a content fingerprint.  It also keeps a journal
 * of intents: a side effect (download, upload, move, expunge) is recorded
 * before it happens and cleared once its outcome is committed, so that a run
 * killed at any instant can be resumed (SPEC 4.8).  The on-disk schema is
 * described in doc/state.md.
 *
 * Caveats (read these first):
 * - One struct state per environment per process.  Opening the same path
 *   twice in one process is unsafe in LMDB (closing one handle drops the
 *   other's locks).  Never use a struct state across fork(): the child must
 *   open its own.
 * - A struct state and its transactions are used by one thread at a time
 *   (ferry runs one poll() loop).  The environment is opened MDB_NOTLS, so
 *   several read transactions may be open at once, plus one write
 *   transaction.
 * - Other processes may read while a sync writes (`ferry status` opens the
 *   state read-only): readers see the last committed snapshot and never
 *   block the writer.  Only one writer at a time: take the account lock
 *   (lock.h) before opening for writing.
 * - Durability: every commit is synced to disk (LMDB's default; ferry never
 *   sets MDB_NOSYNC).  Callers make a file durable (fsync of the file and its
 *   folder) BEFORE committing the record that says it exists; the state may
 *   lag the mailboxes, never lead them.
 * - Map size: LMDB maps the file at a fixed size.  The state grows it on
 *   demand: a write that runs out of room fails with state_err_map_full(e)
 *   true; the failed transaction is gone (commit and abort end it) and the map
 *   has been doubled once the last transaction of this struct state ended.
 *   The caller redoes the whole batch in a new transaction.  state_write()
 *   does exactly that around a callback; prefer it.  A write transaction is
 *   also begun only after growing the map if it is more than 3/4 used, so
 *   redoing is rare.
 * - Memory returned by the look-up functions is allocated from the caller's
 *   arena and stays valid until that arena is reset or released; it never
 *   points into LMDB's map, so it survives the transaction.
 * - Records are decoded strictly (versioned, little-endian, every length
 *   checked): a damaged record fails with ERR_STATE naming the state path,
 *   never with an over-read.
 *
 * Damaged, foreign or newer state: state_open() refuses it with ERR_STATE and
 * a message naming the path.  To rebuild: move the state folder aside (or
 * delete it) and run `ferry sync` again.  With no state, ferry treats the run
 * as a first run against existing mail: messages on both sides are matched by
 * fingerprint (Message-ID and body hash) and recorded, nothing is downloaded
 * or uploaded twice and nothing is deleted (SPEC 4.7).  Flag changes made
 * since the last sync merge as if both sides' flags were new (a union).
 *
 * Errors common to all functions below: ERR_STATE with e->lib set to the LMDB
 * code when LMDB fails (I/O errors inside LMDB included), ERR_STATE for a
 * damaged record, ERR_INTERNAL for misuse detectable only at run time (an id
 * that does not exist where one must).  Scope is ERR_SCOPE_ACCOUNT.
 */
#ifndef FERRY_STATE_H
#define FERRY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "err.h"

/* The schema this ferry writes.  Older schemas are migrated on open. */
#define STATE_SCHEMA_VERSION 1

/* Bounds on strings kept in the state (bytes, excluding the NUL). */
#define STATE_NAME_MAX 255          /* local unique name (a file name part) */
#define STATE_MAILBOX_NAME_MAX 480  /* remote or local mailbox name, UTF-8 */
#define STATE_MSGID_MAX 998         /* Message-ID, as found in the header */
#define STATE_KEYWORD_MAX 255       /* one keyword */
#define STATE_KEYWORDS_MAX 4096     /* keywords per message */
#define STATE_MARKER_MAX 65536      /* opaque scan marker */

#define STATE_HASH_LEN 32

struct state;           /* opaque: an open environment */
struct state_txn;       /* opaque: a read or write transaction */

/* Base flags of a message (the system flags and $Forwarded). */
enum state_flags {
	STATE_FLAG_SEEN = 1u << 0,
	STATE_FLAG_ANSWERED = 1u << 1,
	STATE_FLAG_FLAGGED = 1u << 2,
	STATE_FLAG_DRAFT = 1u << 3,
	STATE_FLAG_DELETED = 1u << 4,
	STATE_FLAG_FORWARDED = 1u << 5,     /* $Forwarded, Maildir 'P' */
};

/* Special-use role of a mailbox (RFC 6154), or none. */
enum state_role {
	STATE_ROLE_NONE = 0,
	STATE_ROLE_INBOX,
	STATE_ROLE_ALL,
	STATE_ROLE_ARCHIVE,
	STATE_ROLE_DRAFTS,
	STATE_ROLE_FLAGGED,
	STATE_ROLE_JUNK,
	STATE_ROLE_SENT,
	STATE_ROLE_TRASH,
	STATE_ROLE_COUNT_,      /* not a role */
};

/*
 * A mailbox pair.  Identified by a small integer `id` that never changes:
 * a rename on either side updates the name and keeps the id (and every
 * message record of the mailbox).  An empty name means "not (yet) on that
 * side"; a non-empty name is unique among the account's mailboxes on its
 * side.  Names are compared byte for byte: the caller normalises what IMAP
 * treats as equal (INBOX in any case) before storing or looking up.
 */
struct state_mailbox {
	uint32_t id;                 /* assigned by state_mailbox_add(); >= 1 */
	const char *remote_name;     /* IMAP name, UTF-8 ("" or NULL = none) */
	const char *local_name;      /* local folder name ("" or NULL = none) */
	uint32_t uidvalidity;        /* 0 = not known yet */
	uint32_t uidnext;
	uint64_t highestmodseq;      /* 0 = server has no CONDSTORE */
	uint32_t msg_count;          /* messages at the last sync */
	int64_t last_sync;           /* unix time of the last successful sync, 0 = never */
	enum state_role role;
	const void *marker;          /* opaque scan marker (the Maildir store's) */
	size_t marker_len;           /* <= STATE_MARKER_MAX */
};

/*
 * A message record.  Its `id` is a record id that stays when the message
 * moves to another mailbox (so does the local unique name).
 *
 * Local unique names are NOT required to be unique per account: a copy of a
 * file keeping its name may live in two folders.  They are unique per
 * mailbox.  The name index answers "which records have this name" (a move
 * shows as a name that left mailbox A and appeared in B) and "which record
 * of mailbox M has this name".
 *
 * The fingerprint is the Message-ID plus a 32-byte body hash, both of the
 * full message as on the server (a placeholder keeps the full message's
 * fingerprint).  An all-zero body hash means "not known" and is not indexed.
 * The hash function is the sync engine's choice; the state stores bytes.
 */
struct state_msg {
	uint64_t id;                 /* assigned by state_msg_add(); >= 1 */
	uint32_t mailbox;            /* mailbox id */
	uint32_t uid;                /* 0 = not on the server yet */
	const char *name;            /* local unique name; "" or NULL = not local yet */
	uint32_t flags;              /* enum state_flags, the base */
	const char *const *keywords; /* base keywords, `nkeywords` strings */
	size_t nkeywords;            /* <= STATE_KEYWORDS_MAX */
	uint64_t size;               /* RFC822.SIZE */
	const char *message_id;      /* "" or NULL = none */
	uint8_t body_hash[STATE_HASH_LEN];
	bool placeholder;            /* stored locally as headers only (max_size) */
};

enum state_intent_kind {
	STATE_INTENT_DOWNLOAD = 1,   /* fetch remote uid into local folder */
	STATE_INTENT_UPLOAD,         /* APPEND local name to the server */
	STATE_INTENT_MOVE_REMOTE,    /* IMAP MOVE uid from mailbox to target */
	STATE_INTENT_MOVE_LOCAL,     /* rename local name from mailbox to target */
	STATE_INTENT_EXPUNGE_REMOTE, /* expunge uid on the server */
	STATE_INTENT_DELETE_LOCAL,   /* delete the local file */
	STATE_INTENT_RENAME_FOLDER,  /* rename mailbox pair `mailbox` (either side)
				      * to the names of pair `target` (remote
				      * side) and pair `uid` (local side; 0:
				      * none), which it then absorbs */
	STATE_INTENT_REPLACE_LOCAL,  /* the whole copy `name` delivered into
				      * `mailbox` in place of the placeholder
				      * file of record `msg` (remote `uid`) */
	STATE_INTENT_KIND_COUNT_,    /* not a kind */
};

/*
 * A pending intent: written before a side effect, in the same transaction as
 * the bookkeeping that decided it; cleared in the transaction that records
 * the outcome.  Intents found on open were interrupted; the sync engine
 * decides how to finish or undo each (for an upload, search the target for
 * the fingerprint among UIDs >= uidnext).
 */
struct state_intent {
	uint64_t id;                 /* assigned by state_intent_add(); >= 1 */
	enum state_intent_kind kind;
	uint32_t mailbox;            /* source mailbox id */
	uint32_t target;             /* target mailbox id of a move, else 0 */
	uint32_t uid;                /* remote UID involved, or 0 */
	uint32_t uidnext;            /* UIDNEXT of the mailbox receiving a new
				      * message (upload, move target) before it,
				      * or 0 */
	uint64_t msg;                /* record id involved, or 0 */
	int64_t created;             /* unix time */
	const char *name;            /* local unique name, or "" / NULL */
	const char *message_id;      /* fingerprint part, or "" / NULL */
	uint8_t body_hash[STATE_HASH_LEN];
};

struct state_options {
	bool read_only;              /* for `ferry status`: no writes, no creation */
	size_t map_size;             /* initial map size in bytes, 0 = default (64 MiB) */
};

/* ---- environment ---------------------------------------------------- */

/*
 * Open (creating if needed) the state in folder `dir`.  `opts` may be NULL
 * (read-write, default map size).
 *
 * Read-write: creates `dir` and missing parents 0700 and the LMDB files 0600,
 * initialises a new environment, and runs schema migrations of an older one.
 * Read-only: creates nothing; a missing state is not an error.
 *
 * Returns 0 with *st_out set, 1 (read-only only) when there is no state at
 * `dir` (*st_out = NULL), or -1:
 *   ERR_STATE  "state at "DIR" was written by a newer ferry (schema N, this
 *              ferry knows M)"; or damaged / not ferry's, with the rebuild
 *              advice; or read-only on an older schema that needs migrating.
 *   ERR_IO     the folder cannot be created, or the LMDB files cannot be
 *              opened (an errno: permissions, a file in the way; e->sys).
 * The caller holds the account lock when opening read-write.
 */
int state_open(const char *dir, const struct state_options *opts,
	       struct state **st_out, struct err *e);

/* Close.  No transaction may be open.  NULL is fine. */
void state_close(struct state *st);

/* The folder the state lives in; valid until state_close(). */
const char *state_path(const struct state *st);

/* The schema version found on disk at open (before migration). */
unsigned state_schema_on_disk(const struct state *st);

/* Current map size in bytes. */
size_t state_map_size(const struct state *st);

/* ---- transactions --------------------------------------------------- */

/*
 * Begin a transaction.  Write transactions are serialised by LMDB (a second
 * one in another process waits); a struct state has at most one write
 * transaction at a time (assert).  Read transactions see a snapshot.
 * When another process has grown the map beyond ours (MDB_MAP_RESIZED), the
 * new size is adopted and the begin retried, provided no other transaction
 * of this struct state is open; otherwise that is the error.
 * Errors: ERR_STATE (LMDB, e.g. the reader table is full).
 */
int state_txn_begin(struct state *st, bool write, struct state_txn **txn_out,
		    struct err *e);

/*
 * Commit and end the transaction (`txn` is freed whether or not it
 * succeeds).  On failure nothing of the transaction is kept; if the map was
 * full, state_err_map_full(e) is true and the map has grown: redo the batch.
 */
int state_txn_commit(struct state_txn *txn, struct err *e);

/*
 * Mark a write transaction as holding only what a system crash may take
 * back (the time of a run that changed nothing else): its commit writes
 * and flushes the data pages as usual but does not flush LMDB's meta page
 * (MDB_NOMETASYNC for that one commit), saving one synchronous write.  The
 * database stays consistent; after a system crash it may be as before this
 * commit.  The next ordinary commit flushes it with its own.
 */
void state_txn_relax(struct state_txn *txn);

/* Abort and end the transaction; grows the map if it ran full.  NULL is fine. */
void state_txn_abort(struct state_txn *txn);

/*
 * True when `e` comes from a write that ran out of map space: the
 * transaction must be aborted (or was ended by commit) and redone.
 * Once a helper returns this, every later helper in the same transaction
 * fails the same way.
 */
bool state_err_map_full(const struct err *e);

/*
 * Run `fn` in a write transaction and commit; if the map runs full (in `fn`
 * or at commit), grow it and run `fn` again from the start in a fresh
 * transaction, up to 16 times.  `fn` must therefore only change state
 * through `txn` (or be otherwise idempotent).  Returns `fn`'s -1 (after
 * aborting) or the commit's result.
 */
int state_write(struct state *st,
		int (*fn)(struct state_txn *txn, void *ctx, struct err *e),
		void *ctx, struct err *e);

/* ---- mailboxes ------------------------------------------------------ */

/*
 * Record a new mailbox pair; assigns mb->id.  Names must be free on their
 * side, else ERR_INTERNAL.  Names longer than STATE_MAILBOX_NAME_MAX or a
 * marker over STATE_MARKER_MAX: ERR_LIMIT.
 */
int state_mailbox_add(struct state_txn *txn, struct state_mailbox *mb,
		      struct err *e);

/*
 * Replace mailbox mb->id (which must exist, else ERR_INTERNAL) with `mb`;
 * renames on either side move the name index entries.  A name taken by
 * another mailbox: ERR_INTERNAL.
 */
int state_mailbox_update(struct state_txn *txn, const struct state_mailbox *mb,
			 struct err *e);

/*
 * Delete mailbox `id` with all its message records.  Pending intents that
 * name it are kept (the engine clears them).  Returns 0, or 1 if there was
 * no such mailbox.
 */
int state_mailbox_del(struct state_txn *txn, uint32_t id, struct err *e);

/* Look-ups: 1 found (*mb_out filled, strings in `a`), 0 not found, -1 error. */
int state_mailbox_get(struct state_txn *txn, uint32_t id, struct arena *a,
		      struct state_mailbox *mb_out, struct err *e);
int state_mailbox_find_remote(struct state_txn *txn, const char *remote_name,
			      struct arena *a, struct state_mailbox *mb_out,
			      struct err *e);
int state_mailbox_find_local(struct state_txn *txn, const char *local_name,
			     struct arena *a, struct state_mailbox *mb_out,
			     struct err *e);

/* All mailboxes in id order; the array and strings live in `a`. */
int state_mailbox_list(struct state_txn *txn, struct arena *a,
		       struct state_mailbox **list_out, size_t *n_out,
		       struct err *e);

/* ---- messages ------------------------------------------------------- */

/*
 * Record a new message; assigns m->id.  The mailbox must exist
 * (ERR_INTERNAL).  A non-zero uid already recorded in the mailbox, or a name
 * already recorded in the mailbox: ERR_INTERNAL.  Bounds: ERR_LIMIT.
 */
int state_msg_add(struct state_txn *txn, struct state_msg *m, struct err *e);

/*
 * Replace record m->id (which must exist: ERR_INTERNAL) with `m`; every index
 * follows (uid, name, fingerprint, mailbox).  Same uniqueness rules as add.
 */
int state_msg_update(struct state_txn *txn, const struct state_msg *m,
		     struct err *e);

/* Delete record `id` and its index entries.  0 done, 1 no such record. */
int state_msg_del(struct state_txn *txn, uint64_t id, struct err *e);

/*
 * Look-ups: 1 found (*m_out filled, memory in `a`), 0 not found, -1 error.
 * find_uid and find_name look in one mailbox (a non-zero id); uid 0 and an
 * empty name are never found.  An index entry that points to no record is
 * damage (ERR_STATE).
 */
int state_msg_get(struct state_txn *txn, uint64_t id, struct arena *a,
		  struct state_msg *m_out, struct err *e);
int state_msg_find_uid(struct state_txn *txn, uint32_t mailbox, uint32_t uid,
		       struct arena *a, struct state_msg *m_out, struct err *e);
int state_msg_find_name(struct state_txn *txn, uint32_t mailbox,
			const char *name, struct arena *a,
			struct state_msg *m_out, struct err *e);

/*
 * Every record with local unique name `name`, in any mailbox, ordered by
 * mailbox id then record id.  *list_out and its contents live in `a`;
 * *n_out may be 0.
 */
int state_msg_find_name_all(struct state_txn *txn, const char *name,
			    struct arena *a, struct state_msg **list_out,
			    size_t *n_out, struct err *e);

/*
 * Every record whose fingerprint equals (`message_id`, `body_hash`): the body
 * hash must match and the Message-IDs must be equal (NULL and "" are equal),
 * in any mailbox if `mailbox` is 0, else in that mailbox.  Ordered by
 * mailbox id then record id.  An all-zero hash matches nothing.
 */
int state_msg_find_fp(struct state_txn *txn, uint32_t mailbox,
		      const char *message_id,
		      const uint8_t body_hash[STATE_HASH_LEN], struct arena *a,
		      struct state_msg **list_out, size_t *n_out,
		      struct err *e);

/*
 * Iterate over the records of one mailbox in UID order, records not yet on
 * the server (uid 0) first, starting at UID `min_uid`.  The iterator holds
 * an LMDB cursor: release it before the transaction ends, and do not change
 * the mailbox's records in the same transaction while iterating.
 */
struct state_iter {
	void *cursor_;               /* private */
	struct state_txn *txn_;
	uint32_t mailbox_;
	bool started_, done_;
	uint32_t min_uid_;
};

int state_msg_iter_init(struct state_iter *it, struct state_txn *txn,
			uint32_t mailbox, uint32_t min_uid, struct err *e);
/* 1 with *m_out filled (memory in `a`; reset `a` between calls to bound
 * memory), 0 at the end, -1 error. */
int state_msg_iter_next(struct state_iter *it, struct arena *a,
			struct state_msg *m_out, struct err *e);
void state_msg_iter_release(struct state_iter *it);

/* The highest UID among the mailbox's records (0: none has a UID), from the
 * uid index alone (no record is read). */
int state_msg_max_uid(struct state_txn *txn, uint32_t mailbox, uint32_t *uid_out,
		      struct err *e);

/* All records of a mailbox in UID order (uid 0 first); memory in `a`. */
int state_msg_list(struct state_txn *txn, uint32_t mailbox, struct arena *a,
		   struct state_msg **list_out, size_t *n_out, struct err *e);

/* ---- journal of intents --------------------------------------------- */

/* Append an intent; assigns in->id (increasing).  Bounds: ERR_LIMIT. */
int state_intent_add(struct state_txn *txn, struct state_intent *in,
		     struct err *e);

/* Clear intent `id` once its outcome is committed.  0 done, 1 no such intent. */
int state_intent_clear(struct state_txn *txn, uint64_t id, struct err *e);

/* Pending intents in the order they were added; memory in `a`. */
int state_intent_list(struct state_txn *txn, struct arena *a,
		      struct state_intent **list_out, size_t *n_out,
		      struct err *e);

#endif

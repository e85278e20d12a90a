/*
 * plan.h - the pure sync planner: (base records, local snapshot, remote
 * snapshot or delta, policy) -> an ordered list of actions.
 *
 * No I/O, no clock, no randomness.  One call plans ONE ACCOUNT: every
 * mailbox pair of the account is passed at once, because moves cross
 * mailboxes.  The executor fills the input from the Maildir scan, the IMAP
 * listing and the LMDB state, runs the actions in order, and writes the
 * record effect of each action after its side effect.
 *
 * Ownership
 *   The input (struct sync_input and everything it points to) belongs to
 *   the caller and must stay valid and unchanged until sync_plan_release():
 *   the plan points into it (names, keyword strings).  Everything else the
 *   plan holds lives in the plan's own arena and dies with
 *   sync_plan_release().
 *
 * Caveats (the choices this planner makes; SPEC §4 rule numbers in [])
 *   - Flags [2]: with a base, each flag (system flag or keyword) takes the
 *     value of the side that changed it; if both changed it they changed it
 *     the same way (a flag can only be added by a side when the base lacks
 *     it, and only removed when the base has it), so a three-way merge has
 *     no conflicts.  Without a base (first run, lost state) the flags are
 *     the union of both sides, except \Deleted, which is kept only when
 *     both sides have it: a deletion mark is never spread.  (After a
 *     UIDVALIDITY change a relinked record keeps its base.)
 *   - Keywords compare case-insensitively (IMAP); the executor should pass
 *     them in one canonical spelling.
 *   - Deletions [3]: a deletion beats a flag change on the other side.  With
 *     expunge off nothing is ever deleted: the surviving copy stays and the
 *     record becomes one-sided (uid 0 or name NULL), so it is neither
 *     deleted nor transferred again.  For an archive mirror (pull, expunge
 *     off) a message expunged on the server therefore stays on disk.
 *   - One-sided records: a base record with uid 0 (or name NULL) says "this
 *     message deliberately has no remote (local) copy".  If a message with
 *     the same fingerprint appears on that side in the same mailbox it is
 *     linked, not transferred.  An executor that could not learn a UID
 *     (no UIDPLUS) may store 0; the next plan relinks by fingerprint.
 *   - Moves [4]: a record whose local file left its folder is found again
 *     by unique name, then by fingerprint, in any folder; a record whose UID
 *     vanished is found again by fingerprint in any remote folder.  A move
 *     beats a deletion on the other side (the message is transferred into
 *     its new folder).  Moved to different folders on both sides: the
 *     server's placement wins (local move).  Without a base, a local and a
 *     remote message with the same fingerprint in different folders are
 *     also linked, the server's folder winning.
 *   - Fingerprints: entries with an unknown fingerprint match only by key
 *     (UID, unique name).  When an unknown fingerprint could matter (a new
 *     entry while the account has something it could match), the plan
 *     holds no actions but a list of fingerprint requests: compute them,
 *     mark those that cannot be had SYNC_FP_UNAVAILABLE, and plan again.
 *   - Folders [5]: a folder that exists on one side only is created on the
 *     other, unless it existed on the other side at the last sync, that
 *     side deleted it, delete_folders is on and this side's folder is empty
 *     once this plan's moves out of it ran (a message the other side moved
 *     elsewhere before deleting the folder follows it): then it is deleted
 *     here too, after those moves.  Folder renames are found before
 *     planning (rename.h; the engine merges the pairs), so a renamed
 *     folder reaches the planner as the same pair under its new name.
 *   - Safety [6]: a folder that vanished whole does not delete anything on
 *     the other side: it is re-created and refilled.  Before re-creating it
 *     the plan records it as not existing, and a record whose side was in a
 *     folder that did not exist at the last sync is refilled, never read as
 *     a deletion, so an interrupted refill resumes.  A mailbox where the
 *     plan would delete (on either side, counting each message once) more
 *     than safety_max_delete percent of the messages the base knows there,
 *     and at least SYNC_SAFETY_FLOOR of them, gets a verdict and keeps all
 *     its messages, unless force.  An existing but empty side with many
 *     base records is stopped by this rule too (reason "... is empty");
 *     emptying a folder of fewer than SYNC_SAFETY_FLOOR messages propagates.
 *   - UIDVALIDITY change, lost state [7]: remote UIDs of the mailbox are
 *     forgotten and re-matched by fingerprint; unmatched messages are
 *     transferred, never deleted.  The new UIDVALIDITY is recorded only when
 *     every record of the mailbox is renumbered by this plan; a record left
 *     pending keeps the old value in force, so the next run re-matches.
 *   - Direction: pull never changes the server, push never changes the
 *     local side.  Changes on the side that may not be written stay
 *     pending (not propagated, not reverted) and the base is kept such that
 *     a later two-way run still sees them: in pull mode the new base is the
 *     server's flags, in push mode the local flags.
 *   - Placeholders [10]: a download of a message larger than max_size
 *     (non-zero) that is not \Flagged is a placeholder.  A placeholder whose
 *     local copy is \Flagged, or that now fits max_size, is fetched whole.
 *     A placeholder is never uploaded: if its remote copy is gone it stays
 *     local-only.  Whether the local copy is a placeholder is read from the
 *     local listing when the file is there, else from the record.  A
 *     placeholder moved locally is fetched whole only on the run after its
 *     server move (the new UID is not known before).
 *
 * Ordering (safe to stop after any action): lost-folder states and folder
 * creations; transfers; remote flag stores (batched) and local flag
 * renames; moves (and whole fetches of placeholders); record-only updates;
 * deletions (a remote expunge batch is followed by the records it
 * forgets); folder deletions; mailbox states.  A record effect is attached
 * to the last action that touches the record, never before its side
 * effect.  Re-planning after an interruption, even one between a side
 * effect and its record, converges to the same result (tested).
 */
#ifndef FERRY_SYNC_PLAN_H
#define FERRY_SYNC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "err.h"

#define SYNC_FP_LEN 32          /* SHA-256 of the header section and size (core/sync/fp.h); opaque here */
#define SYNC_SAFETY_FLOOR 10    /* a safety stop needs at least this many deletions */

enum sync_flag {
	SYNC_F_SEEN = 1u << 0,
	SYNC_F_ANSWERED = 1u << 1,
	SYNC_F_FLAGGED = 1u << 2,
	SYNC_F_DRAFT = 1u << 3,
	SYNC_F_DELETED = 1u << 4,
};
#define SYNC_F_ALL 0x1fu

/* System flags plus keywords (any order, duplicates allowed in input). */
struct sync_flags {
	unsigned sys;                   /* enum sync_flag bits */
	size_t nkw;
	const char *const *kw;
};

enum sync_fp_state {
	SYNC_FP_UNKNOWN = 0,            /* not computed; the plan may ask for it */
	SYNC_FP_KNOWN,
	SYNC_FP_UNAVAILABLE,            /* tried and failed: never asked again */
};

struct sync_fp {
	enum sync_fp_state state;
	unsigned char bytes[SYNC_FP_LEN];
};

/*
 * A file in a local folder (cur/ and new/); `name` is the unique part.
 * A placeholder file (rule 4.10) says so; its fingerprint is the one in its
 * record (its body is not the message's), or unavailable.
 */
struct sync_local_msg {
	const char *name;
	struct sync_flags flags;
	struct sync_fp fp;
	uint64_t size;
	bool placeholder;
};

/* A message in a remote folder. */
struct sync_remote_msg {
	uint32_t uid;
	struct sync_flags flags;
	struct sync_fp fp;
	uint64_t size;
};

/* What both sides agreed on at the last sync, for one message. */
struct sync_record {
	uint32_t mailbox;               /* sync_mailbox.id */
	uint32_t uid;                   /* 0: no remote copy */
	const char *name;               /* NULL: no local copy */
	struct sync_flags flags;        /* the base */
	struct sync_fp fp;
	uint64_t size;                  /* the full message's size */
	bool placeholder;               /* the local copy is headers only */
};

/*
 * One mailbox pair.  The local listing is always complete.  The remote one
 * is complete unless remote_delta: then `remote` holds only new or changed
 * messages and `vanished` the expunged UIDs; a record not mentioned is
 * unchanged.  A delta is refused when UIDVALIDITY changed.
 */
struct sync_mailbox {
	uint32_t id;                    /* unique within the account */
	const char *remote_name;
	const char *local_name;
	bool local_exists, remote_exists;       /* now */
	bool local_existed, remote_existed;     /* at the last sync */
	uint32_t uidvalidity_base;      /* 0: unknown (never synced) */
	uint32_t uidvalidity_now;       /* 0 when the remote folder is missing */
	bool remote_delta;
	const struct sync_local_msg *local;
	size_t nlocal;
	const struct sync_remote_msg *remote;
	size_t nremote;
	const uint32_t *vanished;
	size_t nvanished;
};

enum sync_direction { SYNC_BOTH = 0, SYNC_PULL, SYNC_PUSH };

struct sync_policy {
	enum sync_direction direction;
	bool expunge;
	bool delete_folders;
	bool force;                     /* pass the safety stop */
	uint64_t max_size;              /* 0: no limit */
	unsigned safety_max_delete;     /* percent, 0..100 */
};

struct sync_input {
	const struct sync_mailbox *mailboxes;
	size_t nmailboxes;
	const struct sync_record *records;
	size_t nrecords;
	struct sync_policy policy;
};

enum sync_side { SYNC_LOCAL = 0, SYNC_REMOTE = 1 };

enum sync_action_kind {
	SYNC_ACT_CREATE_FOLDER,         /* side, mailbox */
	SYNC_ACT_DOWNLOAD,              /* uid in mailbox -> local mailbox; placeholder;
	                                   replace: the local file in mailbox it
	                                   supersedes (a placeholder fetched whole) */
	SYNC_ACT_UPLOAD,                /* name in mailbox -> remote mailbox */
	SYNC_ACT_FLAGS_REMOTE,          /* uids in mailbox: +add -remove */
	SYNC_ACT_FLAGS_LOCAL,           /* name in mailbox: set flags (rename) */
	SYNC_ACT_MOVE_REMOTE,           /* uid from mailbox to to_mailbox */
	SYNC_ACT_MOVE_LOCAL,            /* name from mailbox to to_mailbox */
	SYNC_ACT_RECORD,                /* record only: link, update or forget */
	SYNC_ACT_EXPUNGE_REMOTE,        /* uids in mailbox */
	SYNC_ACT_DELETE_LOCAL,          /* name in mailbox */
	SYNC_ACT_DELETE_FOLDER,         /* side, mailbox (empty) */
	SYNC_ACT_MAILBOX_STATE,         /* record the pair's existence and UIDVALIDITY */
	SYNC_ACT_KIND_COUNT
};

enum sync_rec_op {
	SYNC_REC_NONE = 0,
	SYNC_REC_PUT,                   /* write `rec` in place of records[base] (or new) */
	SYNC_REC_DEL,                   /* forget records[base] */
};

struct sync_action {
	enum sync_action_kind kind;
	enum sync_side side;            /* folder actions */
	uint32_t mailbox;               /* where the message or folder is now */
	uint32_t to_mailbox;            /* moves: destination; else == mailbox */
	uint32_t uid;                   /* download, move remote */
	const char *name;               /* upload, flags local, move local, delete local */
	const uint32_t *uids;           /* flags remote, expunge remote (ascending) */
	size_t nuids;
	struct sync_flags flags;        /* download, upload, flags local: flags to set */
	struct sync_flags add, remove;  /* flags remote */
	bool placeholder;               /* download: headers and a note only */
	const char *replace;            /* download: local file in mailbox to supersede */
	uint64_t size;
	/*
	 * Record effect, written after the side effect.  base: index into
	 * sync_input.records, or -1 for a new record.  In `rec`, uid 0 after an
	 * upload or a remote move, and name NULL after a download, mean "fill in
	 * what the side effect produced" (APPENDUID/COPYUID, the file's name);
	 * so does an unknown fp after a download (the fetched message's).
	 * SYNC_ACT_MAILBOX_STATE: local_existed, remote_existed, uidvalidity
	 * (0: read it from the folder, which this plan created).
	 */
	enum sync_rec_op rec_op;
	long base;
	struct sync_record rec;
	bool local_existed, remote_existed;
	uint32_t uidvalidity;
};

/* A mailbox where rule 4.6 refused the deletions. */
struct sync_verdict {
	uint32_t mailbox;
	const char *name;               /* the remote name */
	size_t would_delete;
	size_t total;
	const char *reason;             /* in the plan's arena */
};

/* A fingerprint the planner needs before it can plan. */
struct sync_fp_request {
	uint32_t mailbox;
	enum sync_side side;
	uint32_t uid;                   /* SYNC_REMOTE */
	const char *name;               /* SYNC_LOCAL */
};

struct sync_plan {
	struct arena arena;
	struct sync_action *actions;
	size_t nactions;
	struct sync_verdict *verdicts;
	size_t nverdicts;
	struct sync_fp_request *fp_requests;    /* non-empty: no actions, plan again */
	size_t nfp_requests;
};

void sync_plan_init(struct sync_plan *p);
void sync_plan_release(struct sync_plan *p);

/*
 * Plan `in` into `p` (initialised; any previous plan is dropped).  Errors:
 * ERR_STATE for inconsistent input (duplicate UID or name in a mailbox, two
 * records for one message, a record of an unknown mailbox, a delta listing
 * after a UIDVALIDITY change).  On error `p` is empty.
 */
int sync_plan_build(struct sync_plan *p, const struct sync_input *in, struct err *e);

/* A short stable name ("download", "flags-remote" ...), for logs and --dry-run. */
const char *sync_action_kind_name(enum sync_action_kind kind);

/* Whether two flag sets are equal (keywords as sets, case-insensitive). */
bool sync_flags_equal(const struct sync_flags *a, const struct sync_flags *b);

#endif

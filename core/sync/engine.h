/*
 * engine.h - `ferry sync` for one account: pairs the server's mailboxes with
 * the local Maildir folders, detects changes on both sides, plans them
 * (plan.h) and carries them out with crash-safe bookkeeping (state.h).
 *
 * A run, in order:
 *   1. take the account lock (lock.h, STATE_DIR/lock; ERR_LOCKED if held,
 *      unless opts->wait_lock), unless the caller took it beforehand with
 *      sync_account_lock() (cmd/ does, before it connects), and open the
 *      state read-write;
 *   2. LIST the server, list the local folders, pair them: a pair the state
 *      knows keeps its id; a new server mailbox with a special-use role pairs
 *      with an unpaired local folder named after the role ("Sent" for \Sent,
 *      "Trash", "Drafts", "Junk", "Archive") when the local side already has
 *      one and no folder of the server's name; otherwise both sides use the
 *      server's name.  Mailboxes `selected` refuses are left alone entirely.
 *      New pairs are added to the state (one commit);
 *   3. finish or drop intents left by a killed run (see "Intents");
 *   4. STATUS pre-check of every remote mailbox (sync_remote_status_all);
 *      change listing per mailbox (sync_remote_scan: QRESYNC, CONDSTORE or a
 *      full listing); a scan of every local folder (maildir_scan);
 *   4b. folder renames (see "Folder renames" below): found from the pairs
 *      and listings (rename.h), carried out, and each renamed pair merged
 *      with the fresh pairs it absorbs;
 *   5. plan (sync_plan_build), computing the fingerprints it asks for
 *      (local: the file; remote: sync_remote_fetch_fps), and plan again;
 *   6. dry run: describe the plan in the report (lines and counts) and
 *      stop: nothing is written, not even the state;
 *   7. otherwise run the actions in plan order (the plan is account-wide:
 *      its phases cross mailboxes); finally, in one commit, record for
 *      every mailbox that did not fail: UIDNEXT, message count and
 *      HIGHESTMODSEQ from its scan (changes made by this run show up again
 *      next time as no-ops; HIGHESTMODSEQ only for a two-way run without a
 *      safety verdict, else 0, which asks for a full listing next time), the
 *      local scan marker (below) and the time of the sync.  UIDVALIDITY and
 *      the folders' existence are recorded by the plan's mailbox-state
 *      actions.  A failed mailbox keeps what the last run recorded.
 *
 * Intents (SPEC 4.8): before a batch of downloads, a run of uploads, a batch of
 * remote moves or local moves, remote expunges or local deletions, one
 * intent per message is committed; then the side effect; then the records
 * it produced and the clearing of its intents in ONE commit.  Downloads are
 * written to tmp/, fsynced, renamed, the folder fsynced once per batch, and
 * only then recorded.  On start, pending intents are resolved: an upload is
 * looked for on the server by fingerprint among UIDs >= the UIDNEXT recorded
 * before it, and its record gets that UID; a placeholder replacement is
 * finished (see "Placeholders"); a folder rename stays pending as a hint
 * for the rename phase, which clears it; every other kind is dropped,
 * because the planner then finds the half-done work by fingerprint (a
 * downloaded file or a moved message with no record is linked, never
 * transferred again; see plan.h Caveats "Moves" and "One-sided records").
 *
 * Folder renames (SPEC 4.4; rules in rename.h): after the scans, a known
 * pair whose folder vanished on one side and a fresh pair whose folder
 * there holds its messages (remote: the same UIDs under the recorded
 * UIDVALIDITY, or fingerprints; local: the files' unique names; an empty
 * folder: the same UIDVALIDITY, the same cur/ inode, its parent renamed
 * alike, or a killed run's intent) are one folder, renamed.  The other
 * side follows with one IMAP RENAME (children follow on the server) or
 * one rename(2) of the directory (verbatim children move with it;
 * maildir++ children are renamed one by one): no message is transferred
 * or touched.  Renamed on both sides: the server's name wins.  Each
 * rename: a RENAME_FOLDER intent (the pair and the fresh pairs it
 * absorbs) is committed, then the side effect(s), then ONE commit deletes
 * the fresh pairs, gives the pair its new names and clears the intent.  A
 * side where some of the pair's messages are missing is recorded as not
 * having existed, so the plan refills them and never reads them as
 * deletions.  Killed in between, the next run finds the pair vanished on
 * both sides and the fresh pair on both holding its messages: a re-key.
 * INBOX is never renamed.  A rename that a one-way run may not make (pull:
 * on the server; push: locally) leaves both pairs out of that run.  After
 * a RENAME the mailbox's UIDVALIDITY is checked, and the mailbox listed
 * again if the server changed it (Dovecot keeps it and the UIDs).
 *
 * Error scopes: account-wide failures (lock, state, LIST, a dead
 * connection: ERR_NET, ERR_TLS, ERR_TIMEOUT, ERR_PROTO, ERR_LIMIT; also
 * ERR_STATE, ERR_AUTH, ERR_INTERNAL from any step) stop the run and are returned (-1, e filled, scope ERR_SCOPE_ACCOUNT).  A failure
 * confined to one mailbox (a NO from the server, a local I/O error) is
 * recorded in that mailbox's report entry, the mailbox's remaining actions
 * are skipped, and the run goes on; at the end the first such error is
 * returned (scope ERR_SCOPE_MAILBOX).  A safety verdict (plan.h rule 4.6)
 * keeps every message of that mailbox; the mailbox's other changes are
 * carried out, its report entry says `safety`, and unless another error
 * comes first the run returns -1 with ERR_SAFETY (exit code 5).
 *
 * Local change detection: at the end of a run each folder is scanned once
 * more and, if its files match the records exactly, the scan marker is kept
 * in the state; the next run then checks the folder with a few stat calls
 * (maildir_check_unchanged) and, if nothing changed, plans from the records
 * without reading the folder (scanned later only if an action needs a file).
 *
 * Placeholders (SPEC 4.10, policy.max_size; plan.h Caveats): a download
 * the plan marks `placeholder` fetches only BODY.PEEK[HEADER]
 * (sync_remote_download_headers) and writes the header section followed by
 * one note line ("[ferry: this message is N bytes, over max_size; flag it
 * to download it in full]").  Its record gets the placeholder bit, the
 * whole message's fingerprint (header hash and RFC822.SIZE) and size.  A
 * local file is recognised as a placeholder by that record: a file whose
 * unique name is the name of a placeholder record (in any folder, so a
 * placeholder moved locally stays one) is listed with the placeholder bit
 * and the record's fingerprint and size, never its own.  A whole fetch
 * (a download with `replace`) streams the whole message into tmp/,
 * commits a REPLACE_LOCAL intent naming the new file (its unique name
 * before delivery) and the record, delivers it into cur/, makes it
 * durable, removes the placeholder file, and then moves the record to the
 * new file and clears the intents in one commit.  A run killed anywhere
 * in between is finished on the next start: if the whole copy is in the
 * folder it is made durable, the placeholder file removed and the record
 * moved to it (no second fetch, no stray copy read as new mail); if it
 * never left tmp/, the intent is dropped and the plan fetches it again.
 *
 * The remote: the caller opens it (sync_remote_new + sync_remote_open)
 * and frees it after the call.  After a connection error (ERR_NET, ERR_TLS,
 * ERR_TIMEOUT, ERR_PROTO, ERR_LIMIT) it is dead: free it, do not reuse it.
 *
 * Ownership: opts and everything it points to are borrowed for the call.
 * The report is the caller's: sync_report_init() before, sync_report_release()
 * after; everything in it is owned by it.
 *
 * Test hook: sync_step() below.
 */
#ifndef FERRY_SYNC_ENGINE_H
#define FERRY_SYNC_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "maildir.h"
#include "plan.h"
#include "remote.h"

struct lock;

/*
 * Where the run's message transfers (downloads and uploads, both ways
 * together) stand.  Totals come from the plan when it starts running;
 * bytes are message bytes as the server counts them (CRLF), placeholders
 * counted by their headers as they arrive (their total: 0).  Given to
 * opts->progress when a transfer starts, per chunk of a downloaded body,
 * and when a message is done.  Valid only during the call; `mailbox`
 * is the server's name of the mailbox being transferred (UTF-8, from the
 * server: may hold any byte but NUL).
 */
struct sync_progress {
	const char *mailbox;
	bool upload;                    /* the current transfer goes to the server */
	size_t msgs_done, msgs_total;
	uint64_t bytes_done, bytes_total;
};

struct sync_account_opts {
	const char *account;            /* for messages: account "NAME": ... */
	const char *state_dir;          /* the account's state folder (lock + LMDB) */
	bool wait_lock;                 /* wait for another run instead of ERR_LOCKED */
	bool locked;                    /* the caller holds the lock (sync_account_lock) */
	const char *maildir_root;
	const char *maildir_inbox;      /* NULL: ROOT/INBOX */
	enum maildir_layout layout;
	struct sync_policy policy;      /* direction, expunge, delete_folders, force,
	                                   safety_max_delete, max_size (see above) */
	/* Which mailboxes to sync (include/exclude); NULL: all.  Called with the
	 * UTF-8 name (the server's, or the local folder's for a local-only
	 * folder) and the hierarchy separator.  A refused mailbox is not
	 * looked at: a message moved into it from a synced mailbox reads as
	 * deleted there, one moved out of it as new mail; a folder
	 * renamed to a refused name is no rename (it vanished: refilled). */
	bool (*selected)(void *ctx, const char *utf8_name, char sep);
	void *selected_ctx;
	/* `since:` (SPEC §2): 0, or a UTC midnight.  Messages older than that
	 * day (on the server: INTERNALDATE before it, found by UID SEARCH
	 * BEFORE; locally: a file's mtime, which is its INTERNALDATE, before
	 * it) are ignored: not listed for the planner, so neither transferred
	 * nor deleted, and their records are left out of the plan, untouched,
	 * so an old message is never read as deleted on the side where it is
	 * hidden.  Costs one UID SEARCH per remote mailbox that changed and a
	 * stat per file of a local folder that changed. */
	time_t since;
	bool dry_run;
	struct sync_remote *remote;     /* open and logged in; borrowed */
	/*
	 * `connections:` (SPEC §2): the most connections the run may use,
	 * `remote` included (0 or 1: only `remote`).  With more, and
	 * open_remote given, the messages of several mailboxes are
	 * downloaded at once (exec.c; doc/sync.md "Several connections"):
	 * when the plan has a download run worth it (several mailboxes, 1 MiB
	 * or more; a loopback server: at most half the online CPUs), each
	 * further connection is opened on a thread of its own:
	 * open_remote(ctx, e) returns an adapter open and logged in like
	 * `remote`, or NULL with e filled (the run goes on without it); it
	 * must be safe to call from several threads at once.  The engine
	 * waits for those threads, logs the adapters out and frees them
	 * before it returns.
	 */
	unsigned connections;
	struct sync_remote *(*open_remote)(void *ctx, struct err *e);
	void *open_remote_ctx;
	/* Optional: told where message transfers stand (see struct
	 * sync_progress); NULL: nobody listens.  Called from the run's own
	 * thread, often (per chunk of a message body), so it must be cheap and
	 * decide itself how often to show anything.  It must not call back
	 * into the engine. */
	void (*progress)(void *ctx, const struct sync_progress *p);
	void *progress_ctx;
};

/* Counts of changes made on ONE side. */
struct sync_side_counts {
	size_t added;                   /* downloads (local) / uploads (remote) */
	size_t flags;                   /* messages whose flags were set */
	size_t moved;
	size_t deleted;
	size_t folders;                 /* folders created, deleted or renamed */
	uint64_t bytes;                 /* message bytes written to this side */
};

/*
 * One mailbox pair.  After a real run the counts are what was done; after
 * a dry run, what would be done.  A move is counted in the destination's
 * entry.  `records` counts record-only updates (links found by
 * fingerprint, forgotten messages).
 */
struct sync_mailbox_report {
	char *remote_name;
	char *local_name;
	struct sync_side_counts local;  /* changes made in the Maildir */
	struct sync_side_counts remote; /* changes made on the server */
	size_t records;                 /* record-only updates */
	bool local_unchanged;           /* the folder was not read: unchanged since the last run */
	bool failed;                    /* err holds why; later actions skipped */
	struct err err;
	bool safety;                    /* deletions refused (verdict below) */
	size_t would_delete, total;
	char *safety_reason;
};

struct sync_report {
	struct sync_mailbox_report *mailboxes;  /* one per synced pair */
	size_t nmailboxes;
	size_t nactions;                /* planned actions (dry run: not run) */
	size_t done;                    /* actions carried out */
	/* Dry run: one line per planned action, e.g. "download INBOX uid 12",
	 * "flags-remote Archive 2 uid(s)", "move-local INBOX NAME -> Work";
	 * folder renames come first: "rename-remote OLD -> NEW",
	 * "rename-local OLD -> NEW" (counted in nactions). */
	char **plan_lines;
	size_t nplan_lines;
	bool safety;                    /* some mailbox got a verdict */
};

void sync_report_init(struct sync_report *rep);
void sync_report_release(struct sync_report *rep);

/*
 * Take the account lock of step 1 ahead of the run (opts->state_dir,
 * opts->wait_lock); the caller then sets opts->locked, and releases `out`
 * with lock_release() after sync_account_run.  cmd/ takes it before it
 * connects: a run that cannot have the lock then neither runs
 * password_cmd nor logs in, and one that waits for it (--wait) holds no
 * idle connection meanwhile, which the server could drop.  Errors as
 * sync_account_run's for the lock: ERR_LOCKED or ERR_IO, scope
 * ERR_SCOPE_ACCOUNT, prefixed with the account.
 */
int sync_account_lock(const struct sync_account_opts *opts, struct lock *out, struct err *e);

/*
 * Sync one account (see the top of this file).  Returns 0 when every
 * selected mailbox synced, -1 otherwise (e: the account error, else the
 * first mailbox error, else ERR_SAFETY).  The report is filled as far as
 * the run got, also on error.
 */
int sync_account_run(const struct sync_account_opts *opts, struct sync_report *report_out,
		     struct err *e);

/*
 * Test-only crash hook (SYNC-DESIGN.md).  The engine calls it just before
 * every side effect and just after every state commit, and also just after
 * each side effect that has records to commit (transfers, moves,
 * deletions), so that a kill can land in the window between a side effect
 * and its record: the window the intents exist for.  With
 * FERRY_TEST_CRASH_AT=N in the environment, the N-th call of a run raises
 * SIGKILL.  sync_account_run() restarts the count (and re-reads the
 * environment) when it starts and, with FERRY_TEST_STEPS=1, prints
 * "ferry-test: steps=N" to stderr when it ends.  With FERRY_TEST_CRASH_ON=
 * WHAT:N, the N-th call with `what` equal to WHAT raises SIGKILL (e.g.
 * "upload:3": before the third chunk of uploads is sent).  The counter is process
 * state (the one global of the engine), for this test hook only.
 */
void sync_step(const char *what);
void sync_steps_restart(void);
unsigned long sync_steps_taken(void);

#endif

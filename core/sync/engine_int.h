/*
 * engine_int.h - what engine.c (discovery, planning) and exec.c (running
 * the plan) share.  Private to core/sync.
 */
#ifndef FERRY_SYNC_ENGINE_INT_H
#define FERRY_SYNC_ENGINE_INT_H

#include <stddef.h>

#include "engine.h"
#include "rename.h"
#include "state.h"

/* The engine's bytes in state_mailbox.marker. */
#define ENG_MARKER_MAGIC 0x46655932u    /* "FeY2" */
struct eng_marker {
	uint32_t magic;
	uint32_t local_existed, remote_existed;
	uint32_t has_scan;              /* `scan` matches the records exactly */
	struct maildir_scan_marker scan;
};
/* The size of the marker of version 1 scan markers (no digest): still
 * read, for its existed flags; its scan is then not trusted. */
#define ENG_MARKER_V1_SIZE (offsetof(struct eng_marker, scan) + \
			    offsetof(struct maildir_scan_marker, files))
/* The stored bytes of a mailbox's marker into *out (zeroed but for the
 * magic when they are none of ours); true if they were. */
bool eng_marker_load(const struct state_mailbox *sm, struct eng_marker *out);

/* One mailbox pair of this run; index == its index in the plan input. */
struct eng_mbox {
	struct state_mailbox sm;        /* strings in the run arena */
	bool local_existed, remote_existed;
	bool local_exists, remote_exists;
	bool have_prev_scan;            /* prev_scan: the marker of the last run */
	struct maildir_scan_marker prev_scan;
	bool local_from_state;          /* folder unchanged: listing from the records */
	struct imap_status_data status;
	bool have_listing;
	struct sync_remote_listing listing;     /* in the run arena */
	struct maildir_folder f;
	bool f_open;
	struct maildir_snapshot snap;
	bool have_snap;
	struct sync_local_msg *local;   /* the planner's local listing */
	size_t nlocal;
	struct sync_remote_msg *remote; /* copy of the listing, fps filled */
	size_t nremote;
	uint32_t *old_uids;             /* since: remote UIDs ignored (ascending) */
	size_t nold_uids;
	const char **old_names;         /* since: local unique names ignored (sorted) */
	size_t nold_names;
	size_t rep;                     /* index in the report */
	bool failed;                    /* out of the rest of the run (set alone, without
					   eng_mbox_fail: left out silently, e.g. a rename
					   deferred by the direction) */
	bool absorbed;                  /* a fresh pair a rename took (engine_rename.c) */
	bool idle;                      /* nothing to do on either side (idle.c): left out */
	bool idle_rescanned;            /* idle by reading the names: prev_scan is the new
					   marker, to be stored */
	/* Its records: g->recs[rec0 .. rec0 + nrecs), from load_records() until the
	 * scans end (the plan's input is filtered after them). */
	size_t rec0, nrecs;
	uint32_t max_known;             /* highest recorded UID (when listed ahead) */
	struct sync_remote_scan_ahead *ahead;   /* remote listing in flight (engine.c) */
	bool no_ahead;                  /* not to be listed ahead: scanned on its own */
};

struct dl_batch;
struct eng_lane_open;

struct eng {
	const struct sync_account_opts *o;
	struct sync_report *rep;
	struct state *st;
	struct maildir md;
	bool md_open;
	struct sync_remote *r;
	/* exec.c: the further connections of parallel downloads (o->connections) */
	struct eng_lane_open *xo;       /* [nxo], each opened by its own thread */
	size_t nxo;
	char sep;
	struct arena a;                 /* run lifetime */
	struct eng_mbox *mb;
	size_t nmb;
	struct sync_record *recs;       /* plan input records */
	uint64_t *rec_ids;              /* state ids, parallel */
	char **rec_msgids;              /* Message-IDs known, parallel */
	size_t nrecs;
	size_t *ph_recs;                /* indexes of placeholder records with a name */
	size_t nph_recs;
	bool ph_ready;                  /* ph_recs built (after load_records) */
	size_t *kw_recs;                /* records with a name and keywords, by name */
	size_t nkw_recs;
	bool kw_ready;
	struct sync_mailbox *in_mb;     /* plan input mailboxes */
	struct sync_input in;
	struct sync_plan plan;
	struct sync_progress prog;      /* progress.c */
	struct sync_rename_hint *hints; /* rename intents of a killed run (ids parallel) */
	uint64_t *hint_ids;
	size_t nhints;
	char **rn_lines;                /* dry run: the renames, described */
	size_t nrn_lines;
	struct dl_batch *dl_tails;      /* exec.c: download streams still settling, oldest first */
	uint64_t *dl_ids;               /* exec.c: per plan action, its DOWNLOAD intent committed
					 * ahead (0: none, UINT64_MAX: taken by its stream) */
};

/* exec.c: wait for the further connections' openings, log them out, free them. */
void eng_close_lanes(struct eng *g);

/* idle.c: mark the mailboxes with nothing to do (after the STATUS pre-check). */
int eng_mark_idle(struct eng *g, struct err *e);

/* engine.c */
struct eng_mbox *eng_mbox_by_id(struct eng *g, uint32_t id);
int eng_local_folder(struct eng *g, struct eng_mbox *m, bool create, struct err *e);
void eng_flags_to_maildir(const struct sync_flags *fl, uint32_t *mflags_out);
int eng_flags_keywords(struct maildir_folder *f, const struct sync_flags *fl,
		       uint32_t *mask_out, struct err *e);
const struct maildir_entry *eng_local_entry(struct eng *g, struct eng_mbox *m, const char *uniq);
void eng_mbox_fail(struct eng *g, struct eng_mbox *m, const struct err *why);
bool eng_err_fatal(const struct err *e);
/*
 * The note a placeholder file holds after its header section (doc/sync.md
 * "Placeholders"): written into buf (NUL-terminated); its length.  The
 * same text identifies a placeholder file when no record says it is one
 * (lost state).
 */
size_t eng_placeholder_note(char *buf, size_t size, uint64_t whole_size);
#define ENG_PLACEHOLDER_NOTE_MAX 200
/* Whether a STATUS of the known mailboxes can tell anything (the server offers CONDSTORE). */
bool eng_status_wanted(struct eng *g);
int eng_commit(struct eng *g, int (*fn)(struct state_txn *txn, void *ctx, struct err *e),
	       void *ctx, struct err *e);
int eng_rec_effect(struct eng *g, struct state_txn *txn, const struct sync_action *act,
		   const char *msgid, struct err *e);

/* One line saying what an action does (xmalloc'd). */
char *eng_describe(struct eng *g, const struct sync_action *a);

int eng_scan_remote(struct eng *g, struct eng_mbox *m, struct err *e);

/* engine_rename.c: find folder renames (rename.h) after the scans and
 * carry them out (dry run: describe them), merging each renamed pair with
 * the fresh pairs it absorbs; before the plan. */
int eng_renames(struct eng *g, struct err *e);

/* pair.c: list both sides, pair them (g->mb), add new pairs to the state
 * (ids only, on a dry run). */
int eng_discover(struct eng *g, struct err *e);

/* progress.c: opts->progress, if set.  eng_progress_start: totals from
 * the plan, and the remote's upload hook set (APPEND data counted as it
 * is read); eng_progress_end: the hook removed.  eng_progress_bytes: `n`
 * more bytes of a transfer into or out of m (0: a transfer starts);
 * eng_progress_msg: one message of m done (`bytes`: its bytes not yet
 * counted). */
void eng_progress_start(struct eng *g);
void eng_progress_end(struct eng *g);
/* An upload of act into m starts; `size`: its bytes (the plan may not have known them). */
void eng_progress_upload(struct eng *g, const struct sync_action *act, const struct eng_mbox *m,
			 uint64_t size);
void eng_progress_bytes(struct eng *g, const struct eng_mbox *m, bool upload, uint64_t n);
void eng_progress_msg(struct eng *g, const struct eng_mbox *m, bool upload, uint64_t bytes);

/* exec.c */
int eng_execute(struct eng *g, struct err *e);
int eng_replay_intents(struct eng *g, struct err *e);

#endif

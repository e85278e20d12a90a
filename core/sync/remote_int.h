/*
 * remote_int.h - private to the remote adapter (remote.c: session,
 * selection, commands, flags; remote_mbox.c: STATUS pre-check, folders;
 * remote_scan.c: change detection;
 * remote_xfer.c: fingerprints, downloads, uploads; remote_write.c: flags,
 * moves, expunges).  Not for other modules.
 */
#ifndef FERRY_SYNC_REMOTE_INT_H
#define FERRY_SYNC_REMOTE_INT_H

#include "imap/conn.h"
#include "remote.h"

#define REMOTE_CMD_MAX (1024u * 1024u)      /* a command without literal data */
#define REMOTE_SET_MAX 16384u               /* one UID set in a command */
#define REMOTE_NAME_MAX 4096u               /* a mailbox name on the wire */

/* What the literal sink router does with the next literal. */
enum remote_sink_mode {
	REMOTE_SINK_OFF = 0,            /* keep literals in memory; a detached literal */
	REMOTE_SINK_BODY,               /* BODY[] -> the caller's download sink */
	REMOTE_SINK_HEADER,             /* BODY[HEADER] -> a fingerprint context */
};

/* A streamed literal in flight or waiting for the rest of its FETCH response. */
struct remote_lit {
	struct remote_lit *next, *prev;  /* r->lits */
	enum remote_sink_mode mode;
	void *user;                     /* BODY: the caller's handle */
	void *fp;                       /* HEADER: struct sync_fp_ctx * */
	bool ended;
};

struct sync_remote {
	struct imap_client *cl;
	struct imap_literal_sink sink;  /* given to the client's connection */
	struct sync_remote_caps caps;
	bool examine;                   /* EXAMINE, never SELECT (a dry run) */
	char *selected;                 /* UTF-8 name of the selected mailbox, or NULL */
	struct imap_select_info sel;    /* what the SELECT said */
	unsigned long selects;          /* SELECT commands sent (tests, stats) */
	enum remote_sink_mode sink_mode;
	const struct sync_remote_sink *user_sink;   /* REMOTE_SINK_BODY */
	const char *body_item;          /* REMOTE_SINK_BODY: "BODY[]" or "BODY[HEADER]" */
	struct remote_lit *lits;        /* streamed literals not yet claimed */
	struct remote_uv *uvs;          /* each mailbox's UIDVALIDITY, from its first SELECT */
	size_t nuvs, cap_uvs;
	void (*upload_progress)(void *ctx, uint64_t n);        /* see remote.h */
	void *upload_progress_ctx;
};

/* A mailbox's UIDVALIDITY as its first SELECT of the session saw it (sync_remote_expect...). */
struct remote_uv {
	char *name;                     /* UTF-8 */
	uint32_t uidvalidity;
};

/* The UIDVALIDITY the session first saw for `name` (remote_select_wait), or 0. */
uint32_t remote_known_uidvalidity(const struct sync_remote *r, const char *name);

/*
 * Forget what the session saw of `name` and of every name that begins
 * with it (its inferiors, and a few siblings such as "Archive" for "A":
 * forgetting only means the next SELECT records afresh): we deleted or
 * renamed it.
 */
void remote_forget_uidvalidity(struct sync_remote *r, const char *name);

/* The connection (ERR_NET if not connected). */
int remote_conn(struct sync_remote *r, struct imap_conn **c_out, struct err *e);
/* Append `name` (UTF-8) as a mailbox astring, encoded for this session. */
int remote_add_mailbox(struct sync_remote *r, struct buf *b, const char *name, struct err *e);
/* Flags for imap_cmd_add_string() on this session. */
unsigned remote_str_flags(const struct sync_remote *r);
/* Submit b and wait for the tagged response; handler optional; *cmd_out (may be NULL) to free. */
int remote_run(struct sync_remote *r, const struct buf *b, imap_untagged_fn fn, void *ctx,
	       struct imap_cmd **cmd_out, struct err *e);
/* Submit without waiting. */
struct imap_cmd *remote_submit(struct sync_remote *r, const struct buf *b, imap_untagged_fn fn,
			       void *ctx, struct err *e);
/* Make `name` the selected mailbox (plain SELECT) unless it already is. */
int remote_select(struct sync_remote *r, const char *name, struct err *e);
/*
 * SELECT `name` (always sent), with optional parameters ("(CONDSTORE)"); fn
 * gets the untagged responses that are not SELECT data (FETCH, VANISHED).
 */
int remote_select_with(struct sync_remote *r, const char *name, const char *params,
		       imap_untagged_fn fn, void *ctx, struct err *e);
/*
 * remote_select_with() in two halves, so that commands can be pipelined
 * behind the SELECT, and several SELECTs with theirs: remote_select_submit()
 * sends it (the selection is forgotten at once), remote_select_wait() waits
 * for its answer.  What the SELECT said goes to s->sel, never to r->sel
 * while it is in flight; wait copies it to r->sel and makes `name` the
 * selection only if it succeeded and no later SELECT was sent since (a
 * failed latest SELECT leaves none).  The SELECT's handler (and fn) takes
 * untagged responses only once every command sent before it has completed
 * (remote_selecting_reached): until then they belong to those commands.
 * `s` is the caller's, and must stay in place from submit to wait; wait
 * frees what submit took.
 */
struct remote_selecting {
	struct sync_remote *r;
	imap_untagged_fn fn;
	void *ctx;
	struct imap_cmd *cmd;
	struct imap_select_info sel;    /* this SELECT's answer */
	unsigned long seq;              /* r->selects once sent: the latest while equal */
	bool waited;                    /* remote_select_wait() ran */
};
int remote_select_submit(struct sync_remote *r, const char *name, const char *params,
			 imap_untagged_fn fn, void *ctx, struct remote_selecting *s,
			 struct err *e);
int remote_select_wait(struct remote_selecting *s, const char *name, struct err *e);
/*
 * Whether the server has reached s's SELECT: every command sent before it
 * has completed.  Handlers of commands pipelined behind the SELECT take
 * untagged responses only then.
 */
bool remote_selecting_reached(const struct remote_selecting *s);
/* Whether s's SELECT has been answered (its mailbox is selected, or it failed). */
bool remote_selecting_done(const struct remote_selecting *s);
/*
 * The SELECT s (answered, or reached with its untagged data in) of
 * `name`: 0 if its UIDVALIDITY is the one the session first saw for
 * `name` (or either is unknown), else -1 with ERR_SERVER in e.
 * remote_select_wait() checks it (and the first SELECT of a name records
 * it); handlers of FETCHes pipelined behind a SELECT check it before
 * taking an answer.
 */
int remote_selecting_check(const struct remote_selecting *s, const char *name, struct err *e);
/* Forget the selection (after a failed SELECT, DELETE ...). */
void remote_unselected(struct sync_remote *r);

/* "(\Seen kw ...)" from flags (never \Recent); ERR_USAGE for a keyword that is not an atom. */
int remote_add_flag_list(struct buf *b, const struct sync_flags *f, struct err *e);
/* Read a FLAGS list into f; keywords are copied into a (which must not be NULL when any exist). */
int remote_parse_flags(const struct imap_arg *list, struct arena *a, struct sync_flags *f,
		       struct err *e);
/*
 * Run "prefix SET suffix" for UID sets covering uids[0..n) (ascending), at
 * most max_uids per set (0: as many as fit), all pipelined; waits for all.
 */
int remote_run_uid_sets(struct sync_remote *r, const char *prefix, const char *suffix,
			const uint32_t *uids, size_t n, size_t max_uids, imap_untagged_fn fn,
			void *ctx, struct err *e);
/* A command's tagged OK response (for codes such as COPYUID); -1 fails. */
typedef int (*remote_tagged_fn)(void *ctx, const struct imap_resp *resp, struct err *e);
int remote_run_uid_sets_ex(struct sync_remote *r, const char *prefix, const char *suffix,
			   const uint32_t *uids, size_t n, size_t max_uids, imap_untagged_fn fn,
			   remote_tagged_fn tagged, void *ctx, struct err *e);
/* Commands submitted and not yet waited for, oldest first. */
struct remote_cmds {
	struct imap_cmd **v;
	size_t n, cap;
};
/* Submit "prefix SET suffix" as remote_run_uid_sets() does, without waiting; appended to q. */
int remote_submit_uid_sets(struct sync_remote *r, const char *prefix, const char *suffix,
			   const uint32_t *uids, size_t n, size_t max_uids, imap_untagged_fn fn,
			   void *ctx, struct remote_cmds *q, struct err *e);
/*
 * Wait for every command of q in order (tagged optional, called for each
 * while all went well), free them and empty q; the first error is kept.
 */
int remote_cmds_wait(struct sync_remote *r, struct remote_cmds *q, remote_tagged_fn tagged,
		     void *ctx, struct err *e);
/* Ascending, no duplicates, no 0 (ERR_INTERNAL otherwise). */
int remote_check_uids(const uint32_t *uids, size_t n, struct err *e);
/* UID of a "* N FETCH" response (0 if none / malformed). */
uint32_t remote_fetch_uid(const struct imap_resp *resp);
/* Take a streamed literal out of r->lits (the caller frees it, or lit_release()). */
void remote_lit_claim(struct sync_remote *r, struct remote_lit *l);
/* Free a claimed (or unlinked) literal, aborting what it still holds. */
void remote_lit_release(struct sync_remote *r, struct remote_lit *l);
/* End of an operation: abort the caller's handles of unclaimed literals (see remote.c). */
void remote_lits_abort_all(struct sync_remote *r);

#endif

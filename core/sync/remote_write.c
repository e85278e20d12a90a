/*
 * remote_write.c - changes to messages on the server: flag stores, moves
 * (MOVE, or COPY + \Deleted + expunge) and expunges.
 *
 * Expunging only our messages: with UIDPLUS, UID EXPUNGE of exactly our
 * UIDs.  Without it, a bare EXPUNGE would also remove every other message
 * the user marked \Deleted, so UID SEARCH DELETED finds those first; when
 * there are any, their mark is taken off for the EXPUNGE and put back
 * right after (UID STORE -FLAGS.SILENT, EXPUNGE, UID STORE +FLAGS.SILENT).
 * Killed between the two stores, those messages stay, without their mark
 * (nothing is lost; the next run carries the change to the Maildir).  A
 * message marked \Deleted by someone else between the SEARCH and the
 * EXPUNGE would still be removed: IMAP4rev1 without UIDPLUS offers no way
 * to close that window.
 */
#include "remote_int.h"

#include <stdlib.h>
#include <string.h>

#include "cmp.h"
#include "imap/cmd.h"
#include "xalloc.h"

/*
 * Select `name` (unless selected) for commands that change it, waiting
 * for the answer: remote_select_wait() has then checked its UIDVALIDITY
 * (remote.h).  Never pipelined ahead of those commands: a mailbox made
 * again under the same name since the scan would take the STORE \Deleted
 * and EXPUNGE meant for other messages.  The cost is a round trip per
 * mailbox.  A mailbox the server opened read-only ([READ-ONLY]: e.g.
 * its files are not writable for the server) takes STORE and EXPUNGE with
 * an OK and changes nothing (Dovecot does so): that must not pass for
 * done, so it fails here.
 */
static int select_writable(struct sync_remote *r, const char *name, struct err *e)
{
	if (remote_select(r, name, e) < 0)
		return -1;
	if (r->sel.read_only)
		return err_set(e, ERR_SERVER, "mailbox \"%s\" is read-only on the server", name);
	return 0;
}

/* Submit the UID STOREs of ops (to the mailbox selected by then), appended to q. */
static int store_ops_submit(struct sync_remote *r, const struct sync_remote_store_op *ops,
			    size_t nops, struct remote_cmds *q, struct err *e)
{
	struct buf suffix = BUF_INIT(REMOTE_CMD_MAX);
	size_t i;
	int rc = 0, pass;

	for (i = 0; i < nops && rc == 0; i++) {
		for (pass = 0; pass < 2 && rc == 0; pass++) {
			const struct sync_flags *f = pass == 0 ? ops[i].add : ops[i].remove;

			if (ops[i].n == 0 || f == NULL || (f->sys == 0 && f->nkw == 0))
				continue;
			buf_reset(&suffix);
			rc = buf_adds(&suffix, pass == 0 ? " +FLAGS.SILENT " : " -FLAGS.SILENT ",
				      e) < 0 ||
			     remote_add_flag_list(&suffix, f, e) < 0 ? -1
				: remote_submit_uid_sets(r, "UID STORE ", buf_cstr(&suffix), ops[i].uids,
							 ops[i].n, 0, NULL, NULL, q, e);
		}
	}
	buf_release(&suffix);
	return rc;
}

static size_t store_ops_total(const struct sync_remote_store_op *ops, size_t nops)
{
	size_t total = 0;

	for (size_t i = 0; i < nops; i++)
		total += ops[i].n;
	return total;
}

int sync_remote_store_many(struct sync_remote *r, const char *name,
			   const struct sync_remote_store_op *ops, size_t nops, struct err *e)
{
	struct remote_cmds q = { 0 };
	int rc;

	if (store_ops_total(ops, nops) == 0)
		return 0;
	if (select_writable(r, name, e) < 0)
		return err_prefix(e, "setting flags in mailbox \"%s\"", name);
	rc = store_ops_submit(r, ops, nops, &q, e);
	if (rc < 0) {
		struct err e2;

		(void)remote_cmds_wait(r, &q, NULL, NULL, &e2);
	} else {
		rc = remote_cmds_wait(r, &q, NULL, NULL, e);
	}
	if (rc < 0)
		return err_prefix(e, "setting flags in mailbox \"%s\"", name);
	return 0;
}

int sync_remote_store(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
		      const struct sync_flags *add, const struct sync_flags *remove,
		      struct err *e)
{
	const struct sync_remote_store_op op = { uids, n, add, remove };

	return sync_remote_store_many(r, name, &op, 1, e);
}

/* ---- expunging our messages only -------------------------------------------------- */

struct deleted_ctx {
	const uint32_t *uids;
	size_t n;
	uint32_t *others;               /* \Deleted messages that are not ours */
	size_t nothers, cap;
};

static bool uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (uids[mid] == uid)
			return true;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int deleted_untagged(void *ctx, const struct imap_resp *resp, struct err *e)
{
	struct deleted_ctx *dc = ctx;
	uint32_t uid;
	size_t i;

	if (resp->kind != IMAP_RESP_UNTAGGED || resp->name == NULL || strcmp(resp->name, "SEARCH") != 0)
		return 0;
	for (i = 0; i < resp->nargs; i++) {
		if (!imap_arg_u32(&resp->args[i], &uid))
			return err_set(e, ERR_PROTO, "server sent a malformed SEARCH response");
		if (!uid_in(dc->uids, dc->n, uid)) {
			dc->others = xgrow(dc->others, &dc->cap, dc->nothers + 1, sizeof(*dc->others));
			dc->others[dc->nothers++] = uid;
		}
	}
	return 1;
}

static int run_text(struct sync_remote *r, const char *text, imap_untagged_fn fn, void *ctx,
		    struct err *e)
{
	struct buf b = BUF_INIT(256);
	int rc = buf_adds(&b, text, e) < 0 ? -1 : remote_run(r, &b, fn, ctx, NULL, e);

	buf_release(&b);
	return rc;
}

/* Expunge the (already \Deleted) uids of the selected mailbox, and only those. */
static int expunge_marked(struct sync_remote *r, const uint32_t *uids, size_t n, struct err *e)
{
	struct deleted_ctx dc = { uids, n, NULL, 0, 0 };
	int rc;

	if (r->caps.uidplus)
		return remote_run_uid_sets(r, "UID EXPUNGE ", "", uids, n, 0, NULL, NULL, e);
	if (run_text(r, "UID SEARCH DELETED", deleted_untagged, &dc, e) < 0) {
		free(dc.others);
		return -1;
	}
	if (dc.nothers == 0)
		return run_text(r, "EXPUNGE", NULL, NULL, e);
	qsort(dc.others, dc.nothers, sizeof(*dc.others), cmp_u32);
	rc = remote_run_uid_sets(r, "UID STORE ", " -FLAGS.SILENT (\\Deleted)", dc.others,
				 dc.nothers, 0, NULL, NULL, e);
	if (rc == 0) {
		struct err e2;

		rc = run_text(r, "EXPUNGE", NULL, NULL, e);
		err_clear(&e2);
		/* the marks go back whatever the EXPUNGE did */
		if (remote_run_uid_sets(r, "UID STORE ", " +FLAGS.SILENT (\\Deleted)", dc.others,
					dc.nothers, 0, NULL, NULL, &e2) < 0 && rc == 0) {
			*e = e2;
			rc = -1;
		}
	}
	free(dc.others);
	return rc;
}

int sync_remote_expunge(struct sync_remote *r, const char *name, const uint32_t *uids, size_t n,
			struct err *e)
{
	const struct sync_flags del = { SYNC_F_DELETED, 0, NULL };

	if (n == 0)
		return 0;
	if (r->caps.uidplus) {
		struct sync_remote_pending *p;

		if (sync_remote_expunge_submit(r, name, uids, n, &p, e) < 0)
			return -1;
		return sync_remote_pending_wait(r, p, e);
	}
	if (sync_remote_store(r, name, uids, n, &del, NULL, e) < 0 ||
	    expunge_marked(r, uids, n, e) < 0)
		return err_prefix(e, "expunging in mailbox \"%s\"", name);
	return 0;
}

/* ---- commands for several mailboxes, pipelined ------------------------------------------ */

/*
 * One mailbox's commands in flight: its UID commands, submitted once its
 * SELECT (unless it was the selected mailbox already) has been answered
 * and checked (select_writable); the answers are read later, so the
 * commands of several mailboxes are on the wire together, each behind
 * its checked SELECT.
 */
struct sync_remote_pending {
	char *name;                     /* UTF-8, for errors */
	const char *what;               /* "expunging", "setting flags" */
	struct remote_cmds q;           /* the UID commands */
};

static struct sync_remote_pending *pending_new(const char *name, const char *what)
{
	struct sync_remote_pending *p = xcalloc(1, sizeof(*p));

	p->name = xstrdup(name);
	p->what = what;
	return p;
}

/* Wait for what p sent, report the first error, free p. */
static int pending_finish(struct sync_remote *r, struct sync_remote_pending *p, struct err *e)
{
	int rc = remote_cmds_wait(r, &p->q, NULL, NULL, e);

	if (rc < 0)
		err_prefix(e, "%s in mailbox \"%s\"", p->what, p->name);
	free(p->name);
	free(p);
	return rc;
}

/*
 * A submit went wrong after some of p was sent: wait for that, free p;
 * e keeps the submit's error.
 */
static int pending_abort(struct sync_remote *r, struct sync_remote_pending *p, struct err *e)
{
	struct err e2;

	err_prefix(e, "%s in mailbox \"%s\"", p->what, p->name);
	(void)pending_finish(r, p, &e2);
	return -1;
}

void sync_remote_send(struct sync_remote *r)
{
	struct imap_conn *c;
	struct err e2;

	/* a failure fails the connection: every command completes with it, and wait reports it */
	if (remote_conn(r, &c, &e2) == 0)
		(void)imap_conn_process(c, 0, &e2);
}

bool sync_remote_can_pipeline_expunges(const struct sync_remote *r)
{
	return r->caps.uidplus;
}

int sync_remote_expunge_submit(struct sync_remote *r, const char *name, const uint32_t *uids,
			       size_t n, struct sync_remote_pending **p_out, struct err *e)
{
	struct sync_remote_pending *p;

	*p_out = NULL;
	if (!r->caps.uidplus)
		return err_set(e, ERR_INTERNAL, "pipelined expunge without UIDPLUS");
	p = pending_new(name, "expunging");
	if (n > 0) {
		/* UID EXPUNGE removes only those of our UIDs that carry \Deleted,
		 * so it is harmless after a failed STORE. */
		if (remote_check_uids(uids, n, e) < 0 || select_writable(r, p->name, e) < 0 ||
		    remote_submit_uid_sets(r, "UID STORE ", " +FLAGS.SILENT (\\Deleted)", uids, n, 0,
					   NULL, NULL, &p->q, e) < 0 ||
		    remote_submit_uid_sets(r, "UID EXPUNGE ", "", uids, n, 0, NULL, NULL, &p->q, e) < 0)
			return pending_abort(r, p, e);
	}
	*p_out = p;
	return 0;
}

int sync_remote_store_submit(struct sync_remote *r, const char *name,
			     const struct sync_remote_store_op *ops, size_t nops,
			     struct sync_remote_pending **p_out, struct err *e)
{
	struct sync_remote_pending *p = pending_new(name, "setting flags");

	*p_out = NULL;
	if (store_ops_total(ops, nops) > 0) {
		if (select_writable(r, p->name, e) < 0 || store_ops_submit(r, ops, nops, &p->q, e) < 0)
			return pending_abort(r, p, e);
	}
	*p_out = p;
	return 0;
}

int sync_remote_pending_wait(struct sync_remote *r, struct sync_remote_pending *p, struct err *e)
{
	return pending_finish(r, p, e);
}

/* ---- moves ------------------------------------------------------------------------------ */

struct move_ctx {
	const uint32_t *uids;
	size_t n;
	uint32_t *new_uids;             /* may be NULL */
	bool trust;                     /* UIDPLUS offered: COPYUID is meant */
	uint32_t uidvalidity;           /* the target's, as the session saw it (0: unknown) */
};

/* "[COPYUID uidvalidity src-set dst-set]": pair the sets up. */
static int copyuid(struct move_ctx *mc, const struct imap_resp *resp, struct err *e)
{
	uint32_t *src = NULL, *dst = NULL, uv = 0;
	size_t nsrc = 0, ndst = 0, i, lo, hi;
	const char *s, *d;
	size_t slen, dlen;
	int rc = 0;

	if (resp == NULL || resp->code == NULL || strcmp(resp->code, "COPYUID") != 0 ||
	    mc->new_uids == NULL || !mc->trust)
		return 0;
	if (resp->ncode_args != 3 || !imap_arg_u32(&resp->code_args[0], &uv) ||
	    (s = imap_arg_str(&resp->code_args[1], &slen)) == NULL ||
	    (d = imap_arg_str(&resp->code_args[2], &dlen)) == NULL)
		return err_set(e, ERR_PROTO, "server sent a malformed COPYUID code");
	/* the target made again since the session saw it: its new UIDs are
	 * not the ones our records speak of (left 0: found by fingerprint) */
	if (mc->uidvalidity != 0 && uv != mc->uidvalidity)
		return 0;
	/* Never more UIDs than we moved: a bound on what the server can make us allocate. */
	if (imap_seqset_expand(s, slen, 0, mc->n, &src, &nsrc, e) < 0 ||
	    imap_seqset_expand(d, dlen, 0, mc->n, &dst, &ndst, e) < 0) {
		rc = -1;
	} else if (nsrc != ndst) {
		rc = err_set(e, ERR_PROTO, "server sent a COPYUID code with sets of different sizes");
	} else {
		for (i = 0; i < nsrc; i++) {
			lo = 0;
			hi = mc->n;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (mc->uids[mid] < src[i])
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < mc->n && mc->uids[lo] == src[i])
				mc->new_uids[lo] = dst[i];
		}
	}
	free(src);
	free(dst);
	return rc;
}

static int move_untagged(void *ctx, const struct imap_resp *resp, struct err *e)
{
	/* MOVE reports COPYUID in an untagged OK before the expunges. */
	if (resp->kind == IMAP_RESP_UNTAGGED && resp->status == IMAP_STATUS_OK && resp->code &&
	    strcmp(resp->code, "COPYUID") == 0)
		return copyuid(ctx, resp, e) < 0 ? -1 : 1;
	return 0;
}

static int move_tagged(void *ctx, const struct imap_resp *resp, struct err *e)
{
	return copyuid(ctx, resp, e);
}

int sync_remote_move(struct sync_remote *r, const char *from, const uint32_t *uids, size_t n,
		     const char *to, uint32_t *new_uids_out, struct err *e)
{
	struct move_ctx mc = { uids, n, new_uids_out, r->caps.uidplus,
			       remote_known_uidvalidity(r, to) };
	const struct sync_flags del = { SYNC_F_DELETED, 0, NULL };
	struct buf suffix = BUF_INIT(REMOTE_CMD_MAX);
	int rc;

	if (new_uids_out && n)
		memset(new_uids_out, 0, n * sizeof(*new_uids_out));
	if (n == 0)
		return 0;
	if (remote_check_uids(uids, n, e) < 0)
		return -1;
	if (select_writable(r, from, e) < 0)
		return err_prefix(e, "moving from \"%s\" to \"%s\"", from, to);
	rc = buf_addc(&suffix, ' ', e) < 0 || remote_add_mailbox(r, &suffix, to, e) < 0 ? -1 : 0;
	if (rc == 0 && r->caps.move)
		rc = remote_run_uid_sets_ex(r, "UID MOVE ", buf_cstr(&suffix), uids, n, 0,
					    move_untagged, move_tagged, &mc, e);
	else if (rc == 0)
		rc = remote_run_uid_sets_ex(r, "UID COPY ", buf_cstr(&suffix), uids, n, 0,
					    NULL, move_tagged, &mc, e) < 0 ||
		     sync_remote_store(r, from, uids, n, &del, NULL, e) < 0 ||
		     expunge_marked(r, uids, n, e) < 0 ? -1 : 0;
	buf_release(&suffix);
	if (rc < 0)
		return err_prefix(e, "moving from \"%s\" to \"%s\"", from, to);
	return 0;
}

/*
 * engine_rename.c - folder renames (rename.h) carried out before the plan.
 *
 * After the scans, sync_renames_find() says which known pair was renamed
 * into which fresh pair.  Each rename with a side effect is run as:
 * intent (STATE_INTENT_RENAME_FOLDER: the pair, and the fresh pairs whose
 * names it takes) -> IMAP RENAME and/or one rename(2) of the local
 * directory -> ONE commit that deletes the fresh pairs, gives the known
 * pair its new names (a side with missing messages recorded as not having
 * existed, so the plan refills them) and clears the intent.  A pure
 * re-key (both sides renamed alike) is that commit alone.  In memory the
 * known pair then takes over the fresh pairs' listings and scans, and the
 * fresh pairs leave the run (and the report).
 *
 * Killed after a side effect and before its commit, the next run sees the
 * known pair vanished on both sides and the fresh pair present on both,
 * holding its messages: a re-key; the intent's hint makes that hold for
 * empty folders too.  The hints are cleared once this phase has run.
 */
#include "engine_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "xalloc.h"

/* ---------------------------------------------------------------- input */

/* Per mailbox (index in g->mb): whether it has records.  xcalloc'd. */
static bool *records_of(const struct eng *g)
{
	bool *has = xcalloc(g->nmb + 1, sizeof(*has));
	size_t j = 0;

	/* records come grouped by mailbox, in g->mb order (load_records) */
	for (size_t i = 0; i < g->nrecs; i++) {
		if (j < g->nmb && g->mb[j].sm.id == g->recs[i].mailbox) {
			has[j] = true;
			continue;
		}
		for (j = 0; j < g->nmb && g->mb[j].sm.id != g->recs[i].mailbox; j++)
			;
		if (j < g->nmb)
			has[j] = true;
	}
	return has;
}

static void box_of(const struct eng_mbox *m, struct sync_rename_box *b)
{
	memset(b, 0, sizeof(*b));
	b->id = m->sm.id;
	b->remote_name = m->sm.remote_name;
	b->local_name = m->sm.local_name;
	b->remote_exists = m->remote_exists;
	b->local_exists = m->local_exists;
	b->remote_existed = m->remote_existed;
	b->local_existed = m->local_existed;
	b->uidvalidity_base = m->sm.uidvalidity;
	b->uidvalidity_now = m->have_listing ? m->listing.uidvalidity : 0;
	if (m->have_snap) {
		b->dir_dev = m->snap.marker.cur.dev;
		b->dir_ino = m->snap.marker.cur.ino;
	} else if (m->have_prev_scan) {
		b->dir_dev = m->prev_scan.cur.dev;
		b->dir_ino = m->prev_scan.cur.ino;
	}
	b->remote = m->remote;
	b->nremote = m->nremote;
	b->local = m->local;
	b->nlocal = m->nlocal;
}

static int on_fp(void *ctx, uint32_t uid, const struct sync_fp *fp, const char *message_id,
		 uint64_t size, struct err *e)
{
	struct eng_mbox *m = ctx;

	size_t lo = 0, hi = m->nremote;

	(void)message_id;
	(void)size;
	(void)e;
	while (lo < hi) {       /* the listing is in UID order */
		size_t mid = lo + (hi - lo) / 2;

		if (m->remote[mid].uid == uid) {
			m->remote[mid].fp = *fp;
			m->remote[mid].fp.state = SYNC_FP_KNOWN;
			break;
		}
		if (m->remote[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/*
 * While a known remote folder has vanished, fetch the fingerprints of the
 * fresh remote folders (headers only): with another UIDVALIDITY they are
 * the only way to match, and with the same one they confirm that equal
 * UIDs are the same messages (servers other than Dovecot may give many
 * mailboxes one UIDVALIDITY).  Renames are rare; so is this cost.
 */
static int fps_for_renames(struct eng *g, struct err *e)
{
	bool *has = records_of(g);
	bool need = false;

	for (size_t k = 0; k < g->nmb && !need; k++) {
		const struct eng_mbox *p = &g->mb[k];

		need = !p->failed && p->remote_existed && !p->remote_exists && has[k];
	}
	for (size_t i = 0; need && i < g->nmb; i++) {
		struct eng_mbox *q = &g->mb[i];
		uint32_t *uids;
		size_t n = 0;
		int rc;

		if (q->failed || !q->remote_exists || q->nremote == 0 || q->remote_existed ||
		    q->local_existed || has[i])
			continue;
		uids = xcalloc(q->nremote + 1, sizeof(*uids));
		for (size_t k = 0; k < q->nremote; k++)
			if (q->remote[k].fp.state == SYNC_FP_UNKNOWN)
				uids[n++] = q->remote[k].uid;
		rc = n ? sync_remote_fetch_fps(g->r, q->sm.remote_name, uids, n, on_fp, q, e) : 0;
		free(uids);
		if (rc < 0) {
			if (eng_err_fatal(e)) {
				free(has);
				return -1;
			}
			eng_mbox_fail(g, q, e);
			err_clear(e);
		}
	}
	free(has);
	return 0;
}

/* ---------------------------------------------------------------- commits */

struct rn_commit {
	struct eng *g;
	struct eng_mbox *p;             /* NULL: only clear intents */
	const struct sync_rename *r;
	struct state_intent *add;       /* an intent to add, or NULL */
	uint32_t del[2];
	size_t ndel;
	const uint64_t *clear;
	size_t nclear;
};

static int rn_commit_fn(struct state_txn *txn, void *ctx, struct err *e)
{
	struct rn_commit *c = ctx;
	struct eng_marker mk = { .magic = ENG_MARKER_MAGIC };
	struct state_mailbox cur;
	struct arena a;
	int rc;

	if (c->add != NULL) {
		c->add->id = 0;
		if (state_intent_add(txn, c->add, e) < 0)
			return -1;
	}
	for (size_t i = 0; i < c->ndel; i++)
		if (state_mailbox_del(txn, c->del[i], e) < 0)
			return -1;
	for (size_t i = 0; i < c->nclear; i++)
		if (state_intent_clear(txn, c->clear[i], e) < 0)
			return -1;
	if (c->p == NULL)
		return 0;
	arena_init(&a, 1024);
	rc = state_mailbox_get(txn, c->p->sm.id, &a, &cur, e);
	if (rc <= 0) {
		arena_release(&a);
		return rc < 0 ? -1 : err_set(e, ERR_INTERNAL, "mailbox %u is not in the state",
					      (unsigned)c->p->sm.id);
	}
	eng_marker_load(&cur, &mk);
	if (c->r->remote_partial)
		mk.remote_existed = 0;
	if (c->r->local_partial)
		mk.local_existed = 0;
	cur.marker = &mk;
	cur.marker_len = sizeof(mk);
	cur.remote_name = c->r->remote_new;
	cur.local_name = c->r->local_new;
	rc = state_mailbox_update(txn, &cur, e);
	arena_release(&a);
	return rc;
}

/* ---------------------------------------------------------------- in memory */

static void take_remote(struct eng_mbox *p, struct eng_mbox *q)
{
	p->remote_exists = q->remote_exists;
	p->status = q->status;
	p->have_listing = q->have_listing;
	p->listing = q->listing;
	p->remote = q->remote;
	p->nremote = q->nremote;
	p->old_uids = q->old_uids;
	p->nold_uids = q->nold_uids;
}

static void take_local(struct eng_mbox *p, struct eng_mbox *q)
{
	if (p->f_open)
		maildir_folder_close(&p->f);
	if (p->have_snap)
		maildir_snapshot_release(&p->snap);
	p->f = q->f;
	p->f_open = q->f_open;
	q->f_open = false;
	p->snap = q->snap;
	p->have_snap = q->have_snap;
	q->have_snap = false;
	p->local = q->local;
	p->nlocal = q->nlocal;
	p->local_exists = q->local_exists;
	p->local_from_state = q->local_from_state;
	p->old_names = q->old_names;
	p->nold_names = q->nold_names;
}

static void merge(struct eng *g, struct eng_mbox *p, struct eng_mbox *qr, struct eng_mbox *ql,
		  const struct sync_rename *r)
{
	struct sync_mailbox_report *rep = &g->rep->mailboxes[p->rep];

	if (qr != NULL)
		take_remote(p, qr);
	if (ql != NULL)
		take_local(p, ql);
	if (r->rename_local && p->f_open && !g->o->dry_run) {  /* its path moved: reopened on need */
		maildir_folder_close(&p->f);
		p->f_open = false;
	}
	if (r->remote_partial)
		p->remote_existed = false;
	if (r->local_partial)
		p->local_existed = false;
	p->sm.remote_name = arena_strdup(&g->a, r->remote_new);
	p->sm.local_name = arena_strdup(&g->a, r->local_new);
	free(rep->remote_name);
	free(rep->local_name);
	rep->remote_name = xstrdup(r->remote_new);
	rep->local_name = xstrdup(r->local_new);
	if (qr != NULL && qr != p)
		qr->absorbed = qr->failed = true;
	if (ql != NULL && ql != p)
		ql->absorbed = ql->failed = true;
}

/* The fresh pairs a rename took leave the run and the report. */
static void drop_absorbed(struct eng *g)
{
	struct sync_report *rep = g->rep;
	size_t k = 0;

	for (size_t i = 0; i < g->nmb; i++) {
		struct eng_mbox *m = &g->mb[i];

		if (!m->absorbed) {
			g->mb[k++] = *m;
			continue;
		}
		if (m->have_snap)
			maildir_snapshot_release(&m->snap);
		if (m->f_open)
			maildir_folder_close(&m->f);
		free(rep->mailboxes[m->rep].remote_name);
		free(rep->mailboxes[m->rep].local_name);
		free(rep->mailboxes[m->rep].safety_reason);
		rep->mailboxes[m->rep].remote_name = NULL;
		rep->mailboxes[m->rep].local_name = NULL;
		rep->mailboxes[m->rep].safety_reason = NULL;
	}
	g->nmb = k;
	k = 0;
	for (size_t i = 0; i < rep->nmailboxes; i++) {
		if (rep->mailboxes[i].remote_name == NULL)
			continue;
		for (size_t j = 0; j < g->nmb; j++)
			if (g->mb[j].rep == i)
				g->mb[j].rep = k;
		rep->mailboxes[k++] = rep->mailboxes[i];
	}
	rep->nmailboxes = k;
}

/* ---------------------------------------------------------------- one rename */

static void describe(struct eng *g, const char *what, const char *from, const char *to)
{
	g->rn_lines = xrealloc(g->rn_lines, (g->nrn_lines + 1) * sizeof(*g->rn_lines));
	g->rn_lines[g->nrn_lines++] = xasprintf("%s %s -> %s", what, from, to);
}

/* After the server renamed it, is the listing still good (same UIDVALIDITY)? */
static int check_listing(struct eng *g, struct eng_mbox *p, struct err *e)
{
	struct imap_status_data st = { 0 };
	const char *name = p->sm.remote_name;

	if (!p->have_listing)
		return 0;
	if (sync_remote_status_all(g->r, &name, 1, &st, e) < 0)
		return -1;
	p->status = st;
	if ((st.have & IMAP_STATUS_HAVE_UIDVALIDITY) && st.uidvalidity == p->listing.uidvalidity)
		return 0;
	log_msg(LOG_INFO, LOG_CAT_SYNC, "mailbox \"%s\": UIDVALIDITY changed by the rename; "
		"listing it again", name);
	p->have_listing = false;
	return eng_scan_remote(g, p, e);
}

static int side_effects(struct eng *g, const struct sync_rename *r, struct err *e)
{
	if (r->rename_remote && !r->remote_by_parent) {
		sync_step("rename-remote");
		if (sync_remote_rename(g->r, r->remote_cur, r->remote_new, e) < 0)
			return -1;
	}
	if (r->rename_local) {
		int rc;

		sync_step("rename-local");
		rc = maildir_folder_rename(&g->md, r->local_cur, r->local_new, e);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			/* gone: moved with its parent (verbatim layout), or lost */
			struct maildir_folder f;

			rc = maildir_folder_open(&g->md, r->local_new, false, &f, e);
			if (rc < 0)
				return -1;
			if (rc == 1)
				return err_set(e, ERR_IO, "local folder \"%s\" vanished while it was "
					       "renamed to \"%s\"", r->local_cur, r->local_new);
			maildir_folder_close(&f);
		}
	}
	if ((r->rename_remote && !r->remote_by_parent) || r->rename_local)
		sync_step("renamed");
	return 0;
}

static int run_one(struct eng *g, const struct sync_rename *r, struct err *e)
{
	struct eng_mbox *p = eng_mbox_by_id(g, r->from);
	struct eng_mbox *qr = r->into_remote ? eng_mbox_by_id(g, r->into_remote) : NULL;
	struct eng_mbox *ql = r->into_local ? eng_mbox_by_id(g, r->into_local) : NULL;
	bool effects = (r->rename_remote && !r->remote_by_parent) || r->rename_local;
	struct rn_commit c = { .g = g, .p = p, .r = r };
	struct state_intent in;
	uint64_t id = 0;

	if (p == NULL || p->failed || (qr && qr->failed) || (ql && ql->failed))
		return 0;
	if (r->deferred) {
		log_msg(LOG_NOTICE, LOG_CAT_SYNC, "account \"%s\": mailbox \"%s\" was renamed to "
			"\"%s\"; left alone until a two-way run", g->o->account ? g->o->account : "",
			p->sm.remote_name, r->rename_remote ? r->remote_new : r->remote_cur);
		p->failed = true;
		if (qr != NULL)
			qr->failed = true;
		if (ql != NULL)
			ql->failed = true;
		return 0;
	}
	log_msg(LOG_INFO, LOG_CAT_SYNC, "account \"%s\": mailbox \"%s\" (local \"%s\") renamed to "
		"\"%s\" (local \"%s\")", g->o->account ? g->o->account : "", p->sm.remote_name,
		p->sm.local_name, r->remote_new, r->local_new);
	if (g->o->dry_run) {
		if (r->rename_remote && !r->remote_by_parent)
			describe(g, "rename-remote", r->remote_cur, r->remote_new);
		if (r->rename_local)
			describe(g, "rename-local", r->local_cur, r->local_new);
		merge(g, p, qr, ql, r);
		return 0;
	}
	if (effects) {
		memset(&in, 0, sizeof(in));
		in.kind = STATE_INTENT_RENAME_FOLDER;
		in.mailbox = p->sm.id;
		in.target = r->into_remote;
		in.uid = r->into_local;
		in.created = (int64_t)time(NULL);
		c.add = &in;
		c.p = NULL;
		if (eng_commit(g, rn_commit_fn, &c, e) < 0)
			return -1;
		id = in.id;
		c.add = NULL;
		c.p = p;
		if (side_effects(g, r, e) < 0)
			return -1;
	}
	if (qr && qr != p)
		c.del[c.ndel++] = qr->sm.id;
	if (ql && ql != p && ql != qr)
		c.del[c.ndel++] = ql->sm.id;
	c.clear = &id;
	c.nclear = id != 0;
	if (eng_commit(g, rn_commit_fn, &c, e) < 0)
		return -1;
	if (r->rename_remote && !r->remote_by_parent)
		g->rep->mailboxes[p->rep].remote.folders++;
	if (r->rename_local)
		g->rep->mailboxes[p->rep].local.folders++;
	merge(g, p, qr, ql, r);
	if (r->rename_remote && check_listing(g, p, e) < 0)
		return -1;
	return 0;
}

static void fail_all(struct eng *g, const struct sync_rename *r, const struct err *why)
{
	struct eng_mbox *p = eng_mbox_by_id(g, r->from);

	if (p != NULL)
		eng_mbox_fail(g, p, why);
	for (int side = 0; side < 2; side++) {
		uint32_t id = side ? r->into_local : r->into_remote;
		struct eng_mbox *q = id ? eng_mbox_by_id(g, id) : NULL;

		if (q != NULL && q != p)
			q->failed = true;
	}
}

/* Whether a rename before v[i] that was carried out renamed a parent of
 * v[i]'s remote mailbox on the server. */
static bool parent_done(const struct eng *g, const struct sync_rename *v, const bool *done, size_t i)
{
	for (size_t k = 0; k < i; k++) {
		size_t n = strlen(v[k].remote_cur);

		if (done[k] && v[k].rename_remote && g->sep != '\0' &&
		    strncmp(v[i].remote_cur, v[k].remote_cur, n) == 0 && v[i].remote_cur[n] == g->sep)
			return true;
	}
	return false;
}

/* Leave a rename's pairs out of this run, silently. */
static void skip(struct eng *g, const struct sync_rename *r)
{
	const uint32_t ids[3] = { r->from, r->into_remote, r->into_local };

	for (size_t k = 0; k < 3; k++) {
		struct eng_mbox *m = ids[k] ? eng_mbox_by_id(g, ids[k]) : NULL;

		if (m != NULL)
			m->failed = true;
	}
}

/* ---------------------------------------------------------------- the phase */

int eng_renames(struct eng *g, struct err *e)
{
	struct sync_rename_box *boxes = xcalloc(g->nmb + 1, sizeof(*boxes));
	struct sync_rename_input in = { 0 };
	struct sync_rename *v;
	bool *done = NULL;              /* per rename: carried out */
	size_t n = 0, nv;
	int rc = -1;

	if (fps_for_renames(g, e) < 0)
		goto out;
	for (size_t i = 0; i < g->nmb; i++)
		if (!g->mb[i].failed)
			box_of(&g->mb[i], &boxes[n++]);
	in.boxes = boxes;
	in.nboxes = n;
	in.records = g->recs;
	in.nrecords = g->nrecs;
	in.hints = g->hints;
	in.nhints = g->nhints;
	in.sep = g->sep;
	in.direction = g->o->policy.direction;
	sync_renames_find(&in, &g->a, &v, &nv);
	done = xcalloc(nv + 1, sizeof(*done));
	for (size_t i = 0; i < nv; i++) {
		if (v[i].remote_by_parent && !parent_done(g, v, done, i)) {
			skip(g, &v[i]);         /* the server did not rename it: as it was */
			continue;
		}
		if (run_one(g, &v[i], e) == 0) {
			done[i] = !v[i].deferred;
			continue;
		}
		if (eng_err_fatal(e))
			goto out;
		fail_all(g, &v[i], e);
		err_clear(e);
	}
	if (g->nhints > 0 && !g->o->dry_run) {
		struct rn_commit c = { .g = g, .clear = g->hint_ids, .nclear = g->nhints };

		if (eng_commit(g, rn_commit_fn, &c, e) < 0)
			goto out;
		g->nhints = 0;
	}
	drop_absorbed(g);
	rc = 0;
out:
	free(boxes);
	free(done);
	return rc;
}

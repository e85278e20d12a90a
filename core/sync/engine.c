/*
 * engine.c - one account's sync: discovery (pairing, scans), planning with
 * fingerprint requests, the report, the final mailbox states.  The actions
 * themselves run in exec.c.
 */
#include "engine_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cmp.h"
#include "fp.h"
#include "lock.h"
#include "log.h"
#include "xalloc.h"

#define ENG_PLAN_ROUNDS 4
#define ENG_FORWARDED "$Forwarded"

/* ---------------------------------------------------------------- report */

void sync_report_init(struct sync_report *rep)
{
	memset(rep, 0, sizeof(*rep));
}

void sync_report_release(struct sync_report *rep)
{
	for (size_t i = 0; i < rep->nmailboxes; i++) {
		free(rep->mailboxes[i].remote_name);
		free(rep->mailboxes[i].local_name);
		free(rep->mailboxes[i].safety_reason);
	}
	free(rep->mailboxes);
	for (size_t i = 0; i < rep->nplan_lines; i++)
		free(rep->plan_lines[i]);
	free(rep->plan_lines);
	memset(rep, 0, sizeof(*rep));
}

/* ---------------------------------------------------------------- helpers */

struct eng_mbox *eng_mbox_by_id(struct eng *g, uint32_t id)
{
	for (size_t i = 0; i < g->nmb; i++)
		if (g->mb[i].sm.id == id)
			return &g->mb[i];
	return NULL;
}

bool eng_err_fatal(const struct err *e)
{
	switch (e->code) {
	case ERR_NET: case ERR_TLS: case ERR_TIMEOUT: case ERR_PROTO: case ERR_LIMIT:
	case ERR_STATE: case ERR_INTERNAL: case ERR_AUTH:
		return true;
	default:
		return false;
	}
}

void eng_mbox_fail(struct eng *g, struct eng_mbox *m, const struct err *why)
{
	struct sync_mailbox_report *r = &g->rep->mailboxes[m->rep];

	m->failed = true;
	if (!r->failed) {
		r->failed = true;
		r->err = *why;
		r->err.scope = ERR_SCOPE_MAILBOX;
		err_prefix(&r->err, "mailbox \"%s\"", m->sm.remote_name);
	}
	/* The report carries the error to the user (summary line and final
	 * message); the log line is for -v, where it shows when it happened. */
	log_msg(LOG_INFO, LOG_CAT_SYNC, "account \"%s\": mailbox \"%s\": %s", g->o->account,
		m->sm.remote_name, why->msg);
}

int eng_commit(struct eng *g, int (*fn)(struct state_txn *txn, void *ctx, struct err *e),
	       void *ctx, struct err *e)
{
	if (state_write(g->st, fn, ctx, e) < 0)
		return -1;
	sync_step("commit");
	return 0;
}

int eng_local_folder(struct eng *g, struct eng_mbox *m, bool create, struct err *e)
{
	int rc;

	if (m->f_open)
		return 0;
	/* A name the disk cannot hold (too long, refused: doc/maildir.md) fails
	 * this mailbox alone, as a local I/O error would, not the account. */
	{
		char *path = NULL;

		if (maildir_name_to_path(&g->md, m->sm.local_name, &path, e) < 0) {
			e->code = ERR_IO;
			return err_prefix(e, "cannot be a folder on disk");
		}
		free(path);
	}
	rc = maildir_folder_open(&g->md, m->sm.local_name, create, &m->f, e);
	if (rc < 0)
		return -1;
	if (rc == 1)
		return 1;
	m->f_open = true;
	return 0;
}

/*
 * The scanned file with unique name `uniq`, or NULL.  A folder whose
 * listing came from the records (unchanged since the last run) is scanned
 * now, on first need; a scan that fails reads as "gone" (the next run sees
 * the file again).
 */
const struct maildir_entry *eng_local_entry(struct eng *g, struct eng_mbox *m, const char *uniq)
{
	struct err e;

	/* (a folder this run renamed is closed: reopened here at its new path) */
	if (m->local_exists && !m->f_open && eng_local_folder(g, m, false, &e) != 0)
		return NULL;
	if (!m->have_snap && m->f_open && maildir_scan(&m->f, &m->snap, &e) == 0)
		m->have_snap = true;
	if (!m->have_snap)
		return NULL;
	return maildir_snapshot_find(&m->snap, uniq);
}

/* Maildir letters of a flag set (keywords other than $Forwarded aside). */
void eng_flags_to_maildir(const struct sync_flags *fl, uint32_t *mflags_out)
{
	uint32_t m = 0;

	if (fl->sys & SYNC_F_SEEN)
		m |= MAILDIR_FLAG_SEEN;
	if (fl->sys & SYNC_F_ANSWERED)
		m |= MAILDIR_FLAG_REPLIED;
	if (fl->sys & SYNC_F_FLAGGED)
		m |= MAILDIR_FLAG_FLAGGED;
	if (fl->sys & SYNC_F_DRAFT)
		m |= MAILDIR_FLAG_DRAFT;
	if (fl->sys & SYNC_F_DELETED)
		m |= MAILDIR_FLAG_TRASHED;
	for (size_t i = 0; i < fl->nkw; i++)
		if (strcasecmp(fl->kw[i], ENG_FORWARDED) == 0)
			m |= MAILDIR_FLAG_PASSED;
	*mflags_out = m;
}

/* Keyword letters for the keywords of `fl` (assigning new ones). */
int eng_flags_keywords(struct maildir_folder *f, const struct sync_flags *fl,
		       uint32_t *mask_out, struct err *e)
{
	const char **names = xcalloc(fl->nkw + 1, sizeof(*names));
	size_t n = 0;
	int rc = 0;

	*mask_out = 0;
	for (size_t i = 0; i < fl->nkw; i++)
		if (strcasecmp(fl->kw[i], ENG_FORWARDED) != 0)
			names[n++] = fl->kw[i];
	if (n > 0)
		rc = maildir_keywords_assign(f, names, n, mask_out, NULL, e);
	free(names);
	return rc;
}

static void flags_from_maildir(const struct maildir_snapshot *snap, const struct maildir_entry *ent,
			       struct arena *a, struct sync_flags *out)
{
	const char **kw = NULL;
	size_t n = maildir_entry_keyword_names(snap, ent, a, &kw);
	const char **all = arena_alloc(a, (n + 1) * sizeof(*all));

	memset(out, 0, sizeof(*out));
	if (ent->flags & MAILDIR_FLAG_SEEN)
		out->sys |= SYNC_F_SEEN;
	if (ent->flags & MAILDIR_FLAG_REPLIED)
		out->sys |= SYNC_F_ANSWERED;
	if (ent->flags & MAILDIR_FLAG_FLAGGED)
		out->sys |= SYNC_F_FLAGGED;
	if (ent->flags & MAILDIR_FLAG_DRAFT)
		out->sys |= SYNC_F_DRAFT;
	if (ent->flags & MAILDIR_FLAG_TRASHED)
		out->sys |= SYNC_F_DELETED;
	for (size_t i = 0; i < n; i++)
		all[i] = kw[i];
	if (ent->flags & MAILDIR_FLAG_PASSED)
		all[n++] = ENG_FORWARDED;
	out->kw = all;
	out->nkw = n;
}

static void flags_from_state(const struct state_msg *sm, struct arena *a, struct sync_flags *out)
{
	const char **all = arena_alloc(a, (sm->nkeywords + 1) * sizeof(*all));
	size_t n = 0;

	out->sys = sm->flags & SYNC_F_ALL;
	for (size_t i = 0; i < sm->nkeywords; i++)
		all[n++] = sm->keywords[i];
	if (sm->flags & STATE_FLAG_FORWARDED)
		all[n++] = ENG_FORWARDED;
	out->kw = all;
	out->nkw = n;
}

/* The state form of a plan record (strings borrowed). */
static void record_to_state(const struct sync_record *r, const char *msgid, struct arena *a,
			    struct state_msg *out)
{
	const char **kw = arena_alloc(a, (r->flags.nkw + 1) * sizeof(*kw));
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	out->mailbox = r->mailbox;
	out->uid = r->uid;
	out->name = r->name;
	out->flags = r->flags.sys & SYNC_F_ALL;
	for (size_t i = 0; i < r->flags.nkw; i++) {
		if (strcasecmp(r->flags.kw[i], ENG_FORWARDED) == 0)
			out->flags |= STATE_FLAG_FORWARDED;
		else
			kw[n++] = r->flags.kw[i];
	}
	out->keywords = kw;
	out->nkeywords = n;
	out->size = r->size;
	out->message_id = msgid;
	if (r->fp.state == SYNC_FP_KNOWN)
		memcpy(out->body_hash, r->fp.bytes, STATE_HASH_LEN);
	out->placeholder = r->placeholder;
}

/*
 * After a UIDVALIDITY change the plan relinks records one by one to UIDs of
 * the new numbering, so a relinked record's new UID may still be held by
 * another record of the mailbox whose old UID is not renumbered yet.  That
 * old UID means nothing any more (the planner ignores the remote UIDs of a
 * mailbox whose UIDVALIDITY changed): take it from the other record (uid 0)
 * in the same transaction, before `sm` is written.  Such a record is
 * relinked later in the plan; if the run stops first, the next plan links it
 * by fingerprint (a record with uid 0 matches a remote message of the same
 * fingerprint in its mailbox), and the new UIDVALIDITY is not recorded
 * until every record carries a new UID.  (Known edge: a record cleared so
 * whose remote copy is gone by the next run is then read as local-only,
 * not uploaded again.)  Outside a UIDVALIDITY change a collision is a real
 * inconsistency and the state refuses it.
 */
static int release_stale_uid(struct eng *g, struct state_txn *txn, const struct state_msg *sm,
			     struct arena *a, struct err *e)
{
	struct eng_mbox *m = eng_mbox_by_id(g, sm->mailbox);
	struct state_msg other;
	int rc;

	if (sm->uid == 0 || m == NULL || !m->have_listing || m->sm.uidvalidity == 0 ||
	    m->listing.uidvalidity == 0 || m->listing.uidvalidity == m->sm.uidvalidity)
		return 0;
	rc = state_msg_find_uid(txn, sm->mailbox, sm->uid, a, &other, e);
	if (rc <= 0 || other.id == sm->id)
		return rc < 0 ? -1 : 0;
	other.uid = 0;
	return state_msg_update(txn, &other, e);
}

/*
 * Write an action's record effect in `txn`.  `act->rec` must already carry
 * what the side effect produced (uid, name, fp).
 */
int eng_rec_effect(struct eng *g, struct state_txn *txn, const struct sync_action *act,
		   const char *msgid, struct err *e)
{
	struct state_msg sm;
	struct arena a;
	int rc = 0;

	if (act->rec_op == SYNC_REC_NONE)
		return 0;
	if (act->rec_op == SYNC_REC_DEL) {
		if (act->base >= 0 && g->rec_ids[act->base] != 0)
			rc = state_msg_del(txn, g->rec_ids[act->base], e) < 0 ? -1 : 0;
		return rc;
	}
	arena_init(&a, 4096);
	if (msgid == NULL && act->base >= 0)
		msgid = g->rec_msgids[act->base];
	record_to_state(&act->rec, msgid, &a, &sm);
	if (act->base >= 0 && g->rec_ids[act->base] != 0)
		sm.id = g->rec_ids[act->base];
	if (release_stale_uid(g, txn, &sm, &a, e) < 0) {
		arena_release(&a);
		return -1;
	}
	if (sm.id != 0) {
		rc = state_msg_update(txn, &sm, e);
	} else {
		rc = state_msg_add(txn, &sm, e);
	}
	arena_release(&a);
	return rc;
}

/* ---------------------------------------------------------------- report entries */

static void report_mailboxes(struct eng *g)
{
	struct sync_report *rep = g->rep;

	rep->mailboxes = xcalloc(g->nmb + 1, sizeof(*rep->mailboxes));
	rep->nmailboxes = g->nmb;
	for (size_t i = 0; i < g->nmb; i++) {
		rep->mailboxes[i].remote_name = xstrdup(g->mb[i].sm.remote_name);
		rep->mailboxes[i].local_name = xstrdup(g->mb[i].sm.local_name);
		g->mb[i].rep = i;
	}
}

/* ---------------------------------------------------------------- scans */

/* The local listing of an unchanged folder: its records. */
static void local_from_records(struct eng *g, struct eng_mbox *m)
{
	m->local = arena_zalloc(&g->a, (m->nrecs + 1) * sizeof(*m->local));
	for (size_t i = m->rec0; i < m->rec0 + m->nrecs; i++) {
		const struct sync_record *r = &g->recs[i];
		struct sync_local_msg *lm = &m->local[m->nlocal];

		if (r->mailbox != m->sm.id || r->name == NULL)
			continue;
		lm->name = r->name;
		lm->flags = r->flags;
		lm->fp = r->fp;
		lm->size = r->size;
		lm->placeholder = r->placeholder;
		m->nlocal++;
	}
	m->local_from_state = true;
	g->rep->mailboxes[m->rep].local_unchanged = true;
}

/*
 * A local file is a placeholder when a record with its unique name (in any
 * folder: it may have been moved) says so (engine.h, "Placeholders").  Its
 * fingerprint and size are then the whole message's, from the record; its
 * bytes are not the message's.
 */
static void mark_placeholder(struct eng *g, struct sync_local_msg *lm)
{
	if (!g->ph_ready) {     /* the placeholder records, once (usually none) */
		g->ph_recs = arena_alloc(&g->a, (g->nrecs + 1) * sizeof(*g->ph_recs));
		for (size_t i = 0; i < g->nrecs; i++)
			if (g->recs[i].placeholder && g->recs[i].name != NULL)
				g->ph_recs[g->nph_recs++] = i;
		g->ph_ready = true;
	}
	for (size_t k = 0; k < g->nph_recs; k++) {
		const struct sync_record *r = &g->recs[g->ph_recs[k]];

		if (strcmp(r->name, lm->name) != 0)
			continue;
		lm->placeholder = true;
		lm->size = r->size;
		lm->fp = r->fp;
		if (lm->fp.state != SYNC_FP_KNOWN)
			lm->fp.state = SYNC_FP_UNAVAILABLE;
		return;
	}
}

static void add_letterless_keywords(struct eng *g, struct eng_mbox *m, struct sync_local_msg *lm);

static int scan_local(struct eng *g, struct eng_mbox *m, struct err *e)
{
	bool unchanged = false;
	size_t n;
	int rc;

	if (!m->local_exists)
		return 0;
	rc = eng_local_folder(g, m, false, e);
	if (rc < 0)
		return -1;
	if (rc == 1) {          /* gone since the listing */
		m->local_exists = false;
		return 0;
	}
	if (m->have_prev_scan && maildir_check_unchanged(&m->f, &m->prev_scan, &unchanged, e) < 0)
		return -1;
	if (unchanged) {
		local_from_records(g, m);
		return 0;
	}
	/* Left-overs of interrupted deliveries (Maildir's 36 hours). */
	if (!g->o->dry_run && maildir_folder_clean_tmp(&m->f, 36 * 3600, NULL, e) < 0)
		return -1;
	if (maildir_scan(&m->f, &m->snap, e) < 0)
		return -1;
	m->have_snap = true;
	n = m->snap.count;
	m->local = arena_zalloc(&g->a, (n + 1) * sizeof(*m->local));
	for (size_t i = 0; i < n; i++) {
		const struct maildir_entry *ent = &m->snap.entries[i];
		struct sync_local_msg *lm = &m->local[m->nlocal];

		if (ent->odd & MAILDIR_ODD_DUPLICATE)
			continue;       /* a second file with one unique name: left alone */
		lm->name = ent->uniq;
		flags_from_maildir(&m->snap, ent, &g->a, &lm->flags);
		add_letterless_keywords(g, m, lm);
		lm->size = ent->size == MAILDIR_SIZE_UNKNOWN ? 0 : ent->size;
		mark_placeholder(g, lm);
		m->nlocal++;
	}
	return 0;
}

static int cmp_kw_rec(const void *a, const void *b, void *ctx)
{
	const struct eng *g = ctx;

	return strcmp(g->recs[*(const size_t *)a].name, g->recs[*(const size_t *)b].name);
}

static bool has_kw(const struct sync_flags *f, const char *name)
{
	for (size_t i = 0; i < f->nkw; i++)
		if (strcmp(f->kw[i], name) == 0)
			return true;
	return false;
}

/*
 * Keywords a file cannot carry: those its folder's dovecot-keywords has no
 * letter for (beyond 26 letters; or a message moved in by a mail client
 * from a folder that had one).  They live in the message's record (found
 * by unique name, in any folder) and are added to the file's flags, so
 * that their absence on disk never reads as a removal (doc/maildir.md
 * "Keywords").  A keyword with a letter that the file lacks is a removal.
 */
static void add_letterless_keywords(struct eng *g, struct eng_mbox *m, struct sync_local_msg *lm)
{
	size_t lo = 0, hi;
	const struct sync_record *r;
	const char **all;
	size_t n;

	if (!g->kw_ready) {
		g->kw_recs = arena_alloc(&g->a, (g->nrecs + 1) * sizeof(*g->kw_recs));
		for (size_t i = 0; i < g->nrecs; i++) {
			const struct sync_record *x = &g->recs[i];

			if (x->name != NULL && x->flags.nkw > 0 &&
			    !(x->flags.nkw == 1 && strcmp(x->flags.kw[0], ENG_FORWARDED) == 0))
				g->kw_recs[g->nkw_recs++] = i;
		}
		qsort_r(g->kw_recs, g->nkw_recs, sizeof(*g->kw_recs), cmp_kw_rec, g);
		g->kw_ready = true;
	}
	hi = g->nkw_recs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(g->recs[g->kw_recs[mid]].name, lm->name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == g->nkw_recs || strcmp(g->recs[g->kw_recs[lo]].name, lm->name) != 0)
		return;
	r = &g->recs[g->kw_recs[lo]];
	all = NULL;
	n = lm->flags.nkw;
	for (size_t i = 0; i < r->flags.nkw; i++) {
		const char *k = r->flags.kw[i];
		bool lettered = strcmp(k, ENG_FORWARDED) == 0;

		for (size_t l = 0; !lettered && l < MAILDIR_KEYWORDS_MAX; l++)
			lettered = m->snap.keywords[l] != NULL && strcmp(m->snap.keywords[l], k) == 0;
		if (lettered || has_kw(&lm->flags, k))
			continue;
		if (all == NULL) {
			all = arena_alloc(&g->a, (lm->flags.nkw + r->flags.nkw + 1) * sizeof(*all));
			for (size_t j = 0; j < lm->flags.nkw; j++)
				all[j] = lm->flags.kw[j];
		}
		all[n++] = k;
	}
	if (all != NULL) {
		lm->flags.kw = all;
		lm->flags.nkw = n;
	}
}

/* The mailbox's known UIDs (ascending) and their recorded sizes, in g's arena. */
static int known_uids(struct eng *g, struct eng_mbox *m, uint32_t **uids_out,
		      uint64_t **sizes_out, size_t *n_out)
{
	size_t n = 0;
	uint32_t *u = arena_alloc(&g->a, (m->nrecs + 1) * sizeof(*u));
	uint64_t *sz = arena_alloc(&g->a, (m->nrecs + 1) * sizeof(*sz));

	for (size_t i = m->rec0; i < m->rec0 + m->nrecs; i++)
		if (g->recs[i].mailbox == m->sm.id && g->recs[i].uid != 0) {
			sz[n] = g->recs[i].size;
			u[n++] = g->recs[i].uid;
		}
	/* state_msg_list gives UID order per mailbox, uid 0 first */
	*uids_out = u;
	*sizes_out = sz;
	*n_out = n;
	return 0;
}

/* What the state knows of m's remote side (arrays in g's arena); false: nothing. */
static bool remote_known(struct eng *g, struct eng_mbox *m, struct sync_remote_known *k)
{
	uint32_t *uids;
	uint64_t *sizes;
	size_t nuids;

	memset(k, 0, sizeof(*k));
	if (m->sm.uidvalidity == 0)
		return false;
	known_uids(g, m, &uids, &sizes, &nuids);
	k->uidvalidity = m->sm.uidvalidity;
	k->highestmodseq = m->sm.highestmodseq;
	k->uidnext = m->sm.uidnext;
	k->messages = m->sm.msg_count;
	k->uids = uids;
	k->nuids = nuids;
	k->sizes = sizes;
	k->status = m->status.have ? &m->status : NULL;
	return true;
}

int eng_scan_remote(struct eng *g, struct eng_mbox *m, struct err *e)
{
	struct sync_remote_known k;
	struct sync_remote_listing *l = &m->listing;
	struct sync_remote_scan_ahead *ahead = m->ahead;
	int rc;

	if (!m->remote_exists)
		return 0;
	m->ahead = NULL;
	if (ahead != NULL)
		rc = sync_remote_scan_finish(ahead, remote_known(g, m, &k) ? &k : NULL, l, e);
	else
		rc = sync_remote_scan(g->r, m->sm.remote_name, remote_known(g, m, &k) ? &k : NULL,
				      &g->a, l, e);
	if (rc < 0)
		return -1;
	m->have_listing = true;
	m->remote = l->msgs;
	m->nremote = l->nmsgs;
	if (l->uidvalidity == 0 && m->status.have & IMAP_STATUS_HAVE_UIDVALIDITY)
		l->uidvalidity = m->status.uidvalidity;
	if (l->uidnext == 0)
		l->uidnext = m->status.uidnext ? m->status.uidnext : m->sm.uidnext;
	if (l->messages == 0 && l->method == SYNC_REMOTE_UNCHANGED)
		l->messages = m->sm.msg_count;
	if (l->highestmodseq == 0 && l->method == SYNC_REMOTE_UNCHANGED)
		l->highestmodseq = m->sm.highestmodseq;
	return 0;
}

bool eng_status_wanted(struct eng *g)
{
	return sync_remote_caps(g->r)->condstore;
}

/*
 * The STATUS of every known mailbox the discovery did not bring, for the
 * idle check (idle.c) and the scan's "unchanged" test: both need
 * HIGHESTMODSEQ, so none is asked without CONDSTORE (the full listing's
 * SELECT gives UIDVALIDITY and UIDNEXT).
 */
static int status_all(struct eng *g, struct err *e)
{
	const char **names = xcalloc(g->nmb + 1, sizeof(*names));
	struct imap_status_data *st = xcalloc(g->nmb + 1, sizeof(*st));
	size_t *idx = xcalloc(g->nmb + 1, sizeof(*idx));
	size_t n = 0;
	int rc = 0;

	/* Mailboxes whose STATUS came with the discovery's LIST-STATUS are not asked again. */
	const unsigned have = IMAP_STATUS_HAVE_MESSAGES | IMAP_STATUS_HAVE_UIDNEXT |
			      IMAP_STATUS_HAVE_UIDVALIDITY;

	for (size_t i = 0; eng_status_wanted(g) && i < g->nmb; i++)
		if (g->mb[i].remote_exists && g->mb[i].sm.uidvalidity != 0 &&
		    (g->mb[i].status.have & have) != have) {
			idx[n] = i;
			names[n++] = g->mb[i].sm.remote_name;
		}
	if (n > 0)
		rc = sync_remote_status_all(g->r, names, n, st, e);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (st[i].have)
			g->mb[idx[i]].status = st[i];
	free(names);
	free(st);
	free(idx);
	return rc;
}

/* ---------------------------------------------------------------- records */

static int load_records(struct eng *g, struct err *e)
{
	struct state_txn *txn;
	size_t cap = 0;

	if (state_txn_begin(g->st, false, &txn, e) < 0)
		return -1;
	for (size_t i = 0; i < g->nmb; i++) {
		struct state_msg *list;
		size_t n;

		g->mb[i].rec0 = g->nrecs;
		if (g->mb[i].failed || g->mb[i].idle)
			continue;
		if (state_msg_list(txn, g->mb[i].sm.id, &g->a, &list, &n, e) < 0) {
			state_txn_abort(txn);
			return -1;
		}
		for (size_t j = 0; j < n; j++) {
			struct sync_record *r;
			static const uint8_t zero[STATE_HASH_LEN];

			if (g->nrecs == cap) {
				cap = cap ? cap * 2 : 64;
				g->recs = xrealloc(g->recs, cap * sizeof(*g->recs));
				g->rec_ids = xrealloc(g->rec_ids, cap * sizeof(*g->rec_ids));
				g->rec_msgids = xrealloc(g->rec_msgids, cap * sizeof(*g->rec_msgids));
			}
			r = &g->recs[g->nrecs];
			memset(r, 0, sizeof(*r));
			r->mailbox = list[j].mailbox;
			r->uid = list[j].uid;
			r->name = (list[j].name && *list[j].name) ? list[j].name : NULL;
			flags_from_state(&list[j], &g->a, &r->flags);
			if (memcmp(list[j].body_hash, zero, STATE_HASH_LEN) != 0) {
				r->fp.state = SYNC_FP_KNOWN;
				memcpy(r->fp.bytes, list[j].body_hash, SYNC_FP_LEN);
			}
			r->size = list[j].size;
			r->placeholder = list[j].placeholder;
			g->rec_ids[g->nrecs] = list[j].id;
			g->rec_msgids[g->nrecs] = (char *)(list[j].message_id ? list[j].message_id : "");
			g->nrecs++;
		}
		g->mb[i].nrecs = g->nrecs - g->mb[i].rec0;
	}
	state_txn_abort(txn);
	return 0;
}

/* ---------------------------------------------------------------- planning */

static void build_input(struct eng *g)
{
	size_t n = 0;

	g->in_mb = arena_zalloc(&g->a, (g->nmb + 1) * sizeof(*g->in_mb));
	for (size_t i = 0; i < g->nmb; i++) {
		struct eng_mbox *m = &g->mb[i];
		struct sync_mailbox *s = &g->in_mb[n];

		if (m->failed || m->idle)
			continue;
		s->id = m->sm.id;
		s->remote_name = m->sm.remote_name;
		s->local_name = m->sm.local_name;
		s->local_exists = m->local_exists;
		s->remote_exists = m->remote_exists;
		s->local_existed = m->local_existed;
		s->remote_existed = m->remote_existed;
		s->uidvalidity_base = m->sm.uidvalidity;
		s->uidvalidity_now = m->have_listing ? m->listing.uidvalidity : 0;
		s->remote_delta = m->have_listing && !m->listing.complete;
		s->local = m->local;
		s->nlocal = m->nlocal;
		s->remote = m->remote;
		s->nremote = m->nremote;
		if (m->have_listing) {
			s->vanished = m->listing.vanished;
			s->nvanished = m->listing.nvanished;
		}
		n++;
	}
	g->in.mailboxes = g->in_mb;
	g->in.nmailboxes = n;
	g->in.records = g->recs;
	g->in.nrecords = g->nrecs;
	g->in.policy = g->o->policy;
}

static struct sync_local_msg *local_msg(struct eng_mbox *m, const char *name, size_t *idx)
{
	for (size_t i = 0; i < m->nlocal; i++)
		if (strcmp(m->local[i].name, name) == 0) {
			*idx = i;
			return &m->local[i];
		}
	return NULL;
}

size_t eng_placeholder_note(char *buf, size_t size, uint64_t whole_size)
{
	int n = snprintf(buf, size, "[ferry: this message is %llu bytes, over max_size; "
			 "flag it to download it in full]\n", (unsigned long long)whole_size);

	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/*
 * A file whose body (after the header section's empty line) is exactly a
 * placeholder note: a placeholder ferry wrote, found without its record
 * (lost state).  Then its fingerprint and size are the whole message's:
 * the header hashed with the size the note gives.  1 if so (*v, *size_out
 * set), 0 if not, -1 on a read error.  Only small files are looked at: a
 * placeholder is its header section and one line.
 */
#define PLACEHOLDER_FILE_MAX (1u << 20)

/* Whether the file of `size` bytes ends with "\n\n" and a placeholder note. */
static bool ends_with_placeholder_note(int fd, size_t size)
{
	static const char head[] = "\n\n[ferry: this message is ";
	char tail[ENG_PLACEHOLDER_NOTE_MAX + 2], note[ENG_PLACEHOLDER_NOTE_MAX];
	size_t want = size < sizeof(tail) - 1 ? size : sizeof(tail) - 1;
	unsigned long long whole;
	ssize_t n = pread(fd, tail, want, (off_t)(size - want));
	char *at;

	if (n != (ssize_t)want || memchr(tail, '\0', want) != NULL)
		return false;
	tail[want] = '\0';
	for (at = strstr(tail, head); at != NULL && strstr(at + 1, head) != NULL;)
		at = strstr(at + 1, head);
	return at != NULL && sscanf(at + 2, "[ferry: this message is %llu bytes", &whole) == 1 &&
	       eng_placeholder_note(note, sizeof(note), whole) == (size_t)(tail + want - at - 2) &&
	       memcmp(at + 2, note, (size_t)(tail + want - at - 2)) == 0;
}

static int placeholder_file(int fd, struct sync_fp_value *v, uint64_t *size_out, struct err *e)
{
	struct stat st;
	char *text, *body, note[ENG_PLACEHOLDER_NOTE_MAX];
	unsigned long long whole;
	size_t got = 0, hlen;
	struct sync_fp_ctx c;
	int rc = 0;

	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > PLACEHOLDER_FILE_MAX)
		return 0;
	if (!ends_with_placeholder_note(fd, (size_t)st.st_size))
		return 0;       /* the common case: one small read, then the file is hashed as it is */
	text = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, text + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	text[got] = '\0';
	body = got == (size_t)st.st_size ? strstr(text, "\n\n") : NULL;
	if (body != NULL && memchr(text, '\0', got) == NULL) {
		body += 2;
		hlen = (size_t)(body - text);
		if (sscanf(body, "[ferry: this message is %llu bytes", &whole) == 1 &&
		    whole > got && eng_placeholder_note(note, sizeof(note), whole) == got - hlen &&
		    memcmp(body, note, got - hlen) == 0 && sync_fp_init(&c, e) == 0) {
			sync_fp_update_header(&c, text, hlen);
			sync_fp_final_size(&c, whole, v);
			*size_out = whole;
			rc = 1;
		} else if (e->code != ERR_NONE) {
			rc = -1;
		}
	}
	free(text);
	return rc;
}

static void fp_local(struct eng *g, const struct sync_fp_request *rq)
{
	struct eng_mbox *m = eng_mbox_by_id(g, rq->mailbox);
	struct sync_local_msg *lm;
	const struct maildir_entry *ent;
	struct sync_fp_value v;
	struct err e;
	uint64_t size;
	size_t i;
	int fd = -1;

	if (m == NULL || (lm = local_msg(m, rq->name, &i)) == NULL)
		return;
	lm->fp.state = SYNC_FP_UNAVAILABLE;
	ent = eng_local_entry(g, m, rq->name);
	if (ent == NULL || maildir_entry_open(&m->f, ent, &fd, &e) != 0)
		return;
	err_clear(&e);
	if (placeholder_file(fd, &v, &size, &e) == 1) {
		lm->placeholder = true;
		lm->size = size;
		lm->fp.state = SYNC_FP_KNOWN;
		memcpy(lm->fp.bytes, v.bytes, SYNC_FP_LEN);
	} else if (sync_fp_fd(fd, &v, &e) == 0) {
		lm->fp.state = SYNC_FP_KNOWN;
		memcpy(lm->fp.bytes, v.bytes, SYNC_FP_LEN);
	}
	close(fd);
}

static struct sync_remote_msg *remote_msg(struct eng_mbox *m, uint32_t uid)
{
	size_t lo = 0, hi = m->nremote;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->remote[mid].uid == uid)
			return &m->remote[mid];
		if (m->remote[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int on_remote_fp(void *ctx, uint32_t uid, const struct sync_fp *fp, const char *message_id,
			uint64_t size, struct err *e)
{
	struct sync_remote_msg *rm = remote_msg(ctx, uid);

	if (rm != NULL) {
		rm->fp = *fp;
		rm->fp.state = SYNC_FP_KNOWN;
	}
	return 0;
}

/* The UIDs of mailbox `m` whose remote fingerprints the plan asked for (ascending, in g's arena). */
static size_t fp_remote_uids(struct eng *g, struct eng_mbox *m, const struct sync_plan *p,
			     uint32_t **uids_out)
{
	uint32_t *uids;
	size_t n = 0;

	for (size_t i = 0; i < p->nfp_requests; i++)
		if (p->fp_requests[i].side == SYNC_REMOTE && p->fp_requests[i].mailbox == m->sm.id)
			n++;
	*uids_out = NULL;
	if (n == 0)
		return 0;
	uids = arena_alloc(&g->a, n * sizeof(*uids));
	n = 0;
	for (size_t i = 0; i < p->nfp_requests; i++)
		if (p->fp_requests[i].side == SYNC_REMOTE && p->fp_requests[i].mailbox == m->sm.id)
			uids[n++] = p->fp_requests[i].uid;
	if (n > 1)
		qsort(uids, n, sizeof(*uids), cmp_u32);
	*uids_out = uids;
	return n;
}

/* Every remote fingerprint still unknown in m is unavailable: never asked again. */
static void fp_remote_give_up(struct eng_mbox *m)
{
	for (size_t j = 0; j < m->nremote; j++)
		if (m->remote[j].fp.state == SYNC_FP_UNKNOWN)
			m->remote[j].fp.state = SYNC_FP_UNAVAILABLE;
}

/*
 * The remote fingerprints the plan asked for, every mailbox's requests in
 * one pipelined pass (sync_remote_fetch_fps_many); a mailbox whose part
 * fails fails alone (a dead connection fails the run).
 */
static int satisfy_fp_requests(struct eng *g, const struct sync_plan *p, struct err *e)
{
	struct sync_remote_fp_job *jobs = xcalloc(g->nmb + 1, sizeof(*jobs));
	size_t *mb = xcalloc(g->nmb + 1, sizeof(*mb));
	size_t nj = 0;
	int rc = 0;

	for (size_t i = 0; i < p->nfp_requests; i++)
		if (p->fp_requests[i].side == SYNC_LOCAL)
			fp_local(g, &p->fp_requests[i]);
	for (size_t i = 0; i < g->nmb; i++) {
		struct eng_mbox *m = &g->mb[i];
		uint32_t *uids;
		size_t n;

		if (m->failed || !m->have_listing || (n = fp_remote_uids(g, m, p, &uids)) == 0)
			continue;
		jobs[nj] = (struct sync_remote_fp_job){ .name = m->sm.remote_name, .uids = uids,
							.n = n, .fn = on_remote_fp, .ctx = m };
		mb[nj++] = i;
	}
	sync_remote_fetch_fps_many(g->r, jobs, nj);
	for (size_t j = 0; j < nj; j++) {
		struct eng_mbox *m = &g->mb[mb[j]];

		if (jobs[j].rc != 0) {
			if (eng_err_fatal(&jobs[j].err)) {
				*e = jobs[j].err;
				rc = -1;
				break;
			}
			eng_mbox_fail(g, m, &jobs[j].err);
			fp_remote_give_up(m);
			continue;
		}
		/* Asked and not answered (gone meanwhile): never ask again. */
		for (size_t i = 0; i < jobs[j].n; i++) {
			struct sync_remote_msg *rm = remote_msg(m, jobs[j].uids[i]);

			if (rm != NULL && rm->fp.state == SYNC_FP_UNKNOWN)
				rm->fp.state = SYNC_FP_UNAVAILABLE;
		}
	}
	free(jobs);
	free(mb);
	return rc;
}

static int make_plan(struct eng *g, struct err *e)
{
	for (int round = 0; round < ENG_PLAN_ROUNDS; round++) {
		if (sync_plan_build(&g->plan, &g->in, e) < 0)
			return -1;
		if (g->plan.nfp_requests == 0)
			return 0;
		if (satisfy_fp_requests(g, &g->plan, e) < 0)
			return -1;
	}
	return err_set(e, ERR_INTERNAL, "the planner still asks for fingerprints after %d rounds",
		       ENG_PLAN_ROUNDS);
}

/* ---------------------------------------------------------------- dry run */

static const char *mbox_name(struct eng *g, uint32_t id)
{
	struct eng_mbox *m = eng_mbox_by_id(g, id);

	return m ? m->sm.remote_name : "?";
}

char *eng_describe(struct eng *g, const struct sync_action *a)
{
	struct buf b = BUF_INIT(4096);
	char *s;

	buf_addf(&b, NULL, "%s %s", sync_action_kind_name(a->kind), mbox_name(g, a->mailbox));
	switch (a->kind) {
	case SYNC_ACT_CREATE_FOLDER: case SYNC_ACT_DELETE_FOLDER:
		buf_adds(&b, a->side == SYNC_LOCAL ? " (local)" : " (server)", NULL);
		break;
	case SYNC_ACT_DOWNLOAD:
		buf_addf(&b, NULL, " uid %" PRIu32, a->uid);
		break;
	case SYNC_ACT_MOVE_REMOTE:
		buf_addf(&b, NULL, " uid %" PRIu32 " -> %s", a->uid, mbox_name(g, a->to_mailbox));
		break;
	case SYNC_ACT_MOVE_LOCAL:
		buf_addf(&b, NULL, " %s -> %s", a->name, mbox_name(g, a->to_mailbox));
		break;
	case SYNC_ACT_UPLOAD: case SYNC_ACT_FLAGS_LOCAL: case SYNC_ACT_DELETE_LOCAL:
		buf_addf(&b, NULL, " %s", a->name);
		break;
	case SYNC_ACT_FLAGS_REMOTE: case SYNC_ACT_EXPUNGE_REMOTE:
		buf_addf(&b, NULL, " %zu uid(s)", a->nuids);
		break;
	default:
		break;
	}
	s = buf_detach(&b, NULL);
	return s ? s : xstrdup("");
}

/* Dry run: the counts a run would reach. */
static void tally(struct eng *g, const struct sync_action *a)
{
	struct eng_mbox *m = eng_mbox_by_id(g, a->mailbox);
	struct eng_mbox *t = eng_mbox_by_id(g, a->to_mailbox);
	struct sync_mailbox_report *r;

	if (m == NULL)
		return;
	r = &g->rep->mailboxes[(t ? t : m)->rep];
	switch (a->kind) {
	case SYNC_ACT_CREATE_FOLDER: case SYNC_ACT_DELETE_FOLDER:
		(a->side == SYNC_LOCAL ? &r->local : &r->remote)->folders++;
		break;
	case SYNC_ACT_DOWNLOAD: r->local.added++; r->local.bytes += a->size; break;
	case SYNC_ACT_UPLOAD: r->remote.added++; r->remote.bytes += a->size; break;
	case SYNC_ACT_FLAGS_REMOTE: r->remote.flags += a->nuids; break;
	case SYNC_ACT_FLAGS_LOCAL: r->local.flags++; break;
	case SYNC_ACT_MOVE_REMOTE: r->remote.moved++; break;
	case SYNC_ACT_MOVE_LOCAL: r->local.moved++; break;
	case SYNC_ACT_RECORD: r->records++; break;
	case SYNC_ACT_EXPUNGE_REMOTE: r->remote.deleted += a->nuids; break;
	case SYNC_ACT_DELETE_LOCAL: r->local.deleted++; break;
	default: break;
	}
}

static void dry_run_lines(struct eng *g)
{
	struct sync_report *rep = g->rep;

	rep->plan_lines = xcalloc(g->nrn_lines + g->plan.nactions + 1, sizeof(*rep->plan_lines));
	for (size_t i = 0; i < g->nrn_lines; i++) {
		rep->plan_lines[rep->nplan_lines++] = g->rn_lines[i];
		g->rn_lines[i] = NULL;
	}
	rep->nactions += g->nrn_lines;
	for (size_t i = 0; i < g->plan.nactions; i++) {
		rep->plan_lines[rep->nplan_lines++] = eng_describe(g, &g->plan.actions[i]);
		tally(g, &g->plan.actions[i]);
	}
}

static void report_verdicts(struct eng *g)
{
	for (size_t i = 0; i < g->plan.nverdicts; i++) {
		const struct sync_verdict *v = &g->plan.verdicts[i];
		struct eng_mbox *m = eng_mbox_by_id(g, v->mailbox);
		struct sync_mailbox_report *r;

		if (m == NULL)
			continue;
		r = &g->rep->mailboxes[m->rep];
		r->safety = true;
		r->would_delete = v->would_delete;
		r->total = v->total;
		free(r->safety_reason);
		r->safety_reason = xstrdup(v->reason ? v->reason : "too many deletions");
		g->rep->safety = true;
	}
}

/* ---------------------------------------------------------------- final mailbox states */

struct final_ctx {
	struct eng *g;
	int64_t now;
	bool changed;           /* more than the time (and an idle folder's marker) moved */
};

bool eng_marker_load(const struct state_mailbox *sm, struct eng_marker *out)
{
	uint32_t magic = 0;

	memset(out, 0, sizeof(*out));
	out->magic = ENG_MARKER_MAGIC;
	if (sm->marker == NULL || (sm->marker_len != sizeof(*out) && sm->marker_len != ENG_MARKER_V1_SIZE))
		return false;
	memcpy(&magic, sm->marker, sizeof(magic));
	if (magic != ENG_MARKER_MAGIC)
		return false;
	memcpy(out, sm->marker, sm->marker_len);
	return true;
}

/* Whether an entry carries exactly a record's flags and keywords. */
static bool entry_matches(const struct maildir_snapshot *snap, const struct maildir_entry *ent,
			  const struct state_msg *r, struct arena *a)
{
	struct sync_flags f;
	const char **kw;
	size_t nkw = maildir_entry_keyword_names(snap, ent, a, &kw);
	uint32_t want = r->flags & (SYNC_F_ALL | STATE_FLAG_FORWARDED), have;

	flags_from_maildir(snap, ent, a, &f);
	have = f.sys | ((ent->flags & MAILDIR_FLAG_PASSED) ? STATE_FLAG_FORWARDED : 0);
	if (have != want || nkw != r->nkeywords)
		return false;
	for (size_t i = 0; i < nkw; i++) {
		bool found = false;

		for (size_t j = 0; j < r->nkeywords && !found; j++)
			found = strcmp(kw[i], r->keywords[j]) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* Whether any action of the plan touched mailbox `id` (records included). */
static bool mbox_touched(const struct eng *g, uint32_t id)
{
	for (size_t i = 0; i < g->plan.nactions; i++)
		if (g->plan.actions[i].mailbox == id || g->plan.actions[i].to_mailbox == id)
			return true;
	return false;
}

/* The folder's scan marker if its files are exactly its records, else none. */
static int final_marker(struct eng *g, struct state_txn *txn, struct eng_mbox *m,
			struct eng_marker *mk, struct err *e)
{
	struct maildir_snapshot snap;
	struct state_msg *list;
	size_t n, named = 0;
	struct arena a;
	bool ok = true, unchanged = false;

	/*
	 * Listed from its records (the marker held) and touched by no action:
	 * files and records are as the marker says, if the folder still passes
	 * the check (a mail client may have written since).  Keeps the marker
	 * without reading the folder again.
	 */
	if (m->local_from_state && mk->has_scan && !mbox_touched(g, m->sm.id) && m->f_open &&
	    maildir_check_unchanged(&m->f, &mk->scan, &unchanged, e) == 0 && unchanged)
		return 0;
	err_clear(e);
	mk->has_scan = 0;
	memset(&mk->scan, 0, sizeof(mk->scan));
	if (!m->local_exists || eng_local_folder(g, m, false, e) != 0)
		return 0;
	arena_init(&a, 4096);
	if (state_msg_list(txn, m->sm.id, &a, &list, &n, e) < 0) {
		arena_release(&a);
		return -1;
	}
	if (maildir_scan(&m->f, &snap, e) < 0) {
		arena_release(&a);
		return 0;       /* no marker: the next run reads the folder */
	}
	for (size_t i = 0; ok && i < n; i++) {
		const struct maildir_entry *ent;

		if (list[i].name == NULL || list[i].name[0] == '\0')
			continue;
		named++;
		ent = maildir_snapshot_find(&snap, list[i].name);
		ok = ent != NULL && !(ent->odd & MAILDIR_ODD_DUPLICATE) &&
		     entry_matches(&snap, ent, &list[i], &a);
	}
	if (ok && named == snap.count) {
		mk->has_scan = 1;
		mk->scan = snap.marker;
	}
	maildir_snapshot_release(&snap);
	arena_release(&a);
	return 0;
}

static int write_final(struct state_txn *txn, void *ctx, struct err *e)
{
	struct final_ctx *fc = ctx;
	struct eng *g = fc->g;

	fc->changed = false;
	for (size_t i = 0; i < g->nmb; i++) {
		struct eng_mbox *m = &g->mb[i];
		const struct sync_mailbox_report *r = &g->rep->mailboxes[m->rep];
		struct state_mailbox cur, old;
		struct arena a;
		struct eng_marker mk = { .magic = ENG_MARKER_MAGIC };
		int rc;

		if (m->failed)
			continue;
		arena_init(&a, 1024);
		rc = state_mailbox_get(txn, m->sm.id, &a, &cur, e);
		if (rc <= 0) {
			arena_release(&a);
			if (rc < 0)
				return -1;
			continue;
		}
		if (m->idle) {          /* idle.c: all kept, only the time moves */
			if (m->idle_rescanned && eng_marker_load(&cur, &mk) && mk.has_scan) {
				mk.scan = m->prev_scan;         /* the same files, a newer read */
				cur.marker = &mk;
				cur.marker_len = sizeof(mk);
			}
			cur.last_sync = fc->now;
			rc = state_mailbox_update(txn, &cur, e);
			arena_release(&a);
			if (rc < 0)
				return -1;
			continue;
		}
		old = cur;
		if (m->have_listing && cur.uidvalidity == m->listing.uidvalidity) {
			cur.uidnext = m->listing.uidnext;
			cur.msg_count = m->listing.messages;
			cur.highestmodseq = (g->o->policy.direction == SYNC_BOTH && !r->safety)
					    ? m->listing.highestmodseq : 0;
		} else {
			cur.highestmodseq = 0;
		}
		eng_marker_load(&cur, &mk);
		if (final_marker(g, txn, m, &mk, e) < 0) {
			arena_release(&a);
			return -1;
		}
		cur.marker = &mk;
		cur.marker_len = sizeof(mk);
		cur.last_sync = fc->now;
		if (cur.uidnext != old.uidnext || cur.msg_count != old.msg_count ||
		    cur.highestmodseq != old.highestmodseq || old.marker_len != sizeof(mk) ||
		    memcmp(old.marker, &mk, sizeof(mk)) != 0)
			fc->changed = true;
		rc = state_mailbox_update(txn, &cur, e);
		arena_release(&a);
		if (rc < 0)
			return -1;
	}
	/* Only the time moved: it may be lost to a system crash (state_txn_relax). */
	if (!fc->changed)
		state_txn_relax(txn);
	return 0;
}

/* ---------------------------------------------------------------- the run */

/*
 * Remote listings started ahead, so that the server lists the next
 * mailboxes while the records are read and this mailbox is scanned
 * locally: up to SCAN_AHEAD in flight, in the order of g->mb, from *next
 * on.  Without CONDSTORE (sync_remote_scan_start: a complete listing each,
 * the split at m->max_known) they start before the records are loaded;
 * with CONDSTORE / QRESYNC (sync_remote_scan_start_known: the delta's
 * SELECT parameters are built from the records) once they are.  A mailbox
 * the pre-check finds unchanged is not started (it needs no command).  A
 * start that fails stops the run: the mailbox is then scanned on its own
 * (when nothing else is in flight), which reports the error.  Not with
 * `since` (its searches select mailboxes between the scans).
 */
#define SCAN_AHEAD 16

static bool ahead_wanted(struct eng *g)
{
	return g->o->since == 0;
}

/* m->max_known of the mailboxes that may be listed ahead, from the uid index. */
static int max_known_uids(struct eng *g, struct err *e)
{
	struct state_txn *txn;
	int rc = 0;

	if (!ahead_wanted(g) || !sync_remote_scan_can_start(g->r))
		return 0;
	if (state_txn_begin(g->st, false, &txn, e) < 0)
		return -1;
	for (size_t i = 0; rc == 0 && i < g->nmb; i++) {
		struct eng_mbox *m = &g->mb[i];

		/* load_records() reads none of a failed mailbox's: nothing known */
		if (!m->idle && !m->failed && m->remote_exists && m->sm.uidvalidity != 0)
			rc = state_msg_max_uid(txn, m->sm.id, &m->max_known, e);
	}
	state_txn_abort(txn);
	return rc;
}

/* Start m's listing (m->ahead stays NULL when the pre-check needs none). */
static int start_ahead(struct eng *g, struct eng_mbox *m, struct err *e)
{
	struct sync_remote_known k;

	if (sync_remote_scan_can_start(g->r))
		return sync_remote_scan_start(g->r, m->sm.remote_name, m->sm.uidvalidity,
					      m->max_known, &g->a, &m->ahead, e);
	return sync_remote_scan_start_known(g->r, m->sm.remote_name,
					    remote_known(g, m, &k) ? &k : NULL, &g->a, &m->ahead, e);
}

/* `records`: load_records() has run (a delta's start needs them). */
static void scan_ahead(struct eng *g, size_t *next, size_t *inflight, bool records)
{
	if (!records && !sync_remote_scan_can_start(g->r))
		return;
	while (ahead_wanted(g) && *next < g->nmb && *inflight < SCAN_AHEAD) {
		struct eng_mbox *m = &g->mb[*next];
		struct err e;

		if (m->idle || !m->remote_exists) {     /* no remote scan (scan_all) */
			(*next)++;
			continue;
		}
		err_clear(&e);
		if (m->no_ahead || start_ahead(g, m, &e) < 0) {
			m->no_ahead = true;
			return;
		}
		if (m->ahead != NULL)
			(*inflight)++;
		(*next)++;
	}
}

/* The listings still in flight (an error ended the scans): dropped. */
static void abandon_ahead(struct eng *g)
{
	for (size_t i = 0; i < g->nmb; i++) {
		sync_remote_scan_abandon(g->mb[i].ahead);
		g->mb[i].ahead = NULL;
	}
}

static void eng_release(struct eng *g)
{
	abandon_ahead(g);
	eng_close_lanes(g);
	for (size_t i = 0; i < g->nmb; i++) {
		if (g->mb[i].have_snap)
			maildir_snapshot_release(&g->mb[i].snap);
		if (g->mb[i].f_open)
			maildir_folder_close(&g->mb[i].f);
	}
	free(g->mb);
	free(g->recs);
	free(g->rec_ids);
	free(g->rec_msgids);
	for (size_t i = 0; i < g->nrn_lines; i++)
		free(g->rn_lines[i]);
	free(g->rn_lines);
	sync_plan_release(&g->plan);
	if (g->md_open)
		maildir_release(&g->md);
	if (g->st)
		state_close(g->st);
	arena_release(&g->a);
}

/* ---------------------------------------------------------------- since: */

static int cmp_str_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_old_uid(const struct eng_mbox *m, uint32_t uid)
{
	return uid != 0 && m->nold_uids &&
	       bsearch(&uid, m->old_uids, m->nold_uids, sizeof(uint32_t), cmp_u32) != NULL;
}

static bool is_old_name(const struct eng_mbox *m, const char *name)
{
	return name != NULL && m->nold_names &&
	       bsearch(&name, m->old_names, m->nold_names, sizeof(char *), cmp_str_key) != NULL;
}

/* The remote messages of m older than `since:` (m->old_uids). */
static int since_remote(struct eng *g, struct eng_mbox *m, struct err *e)
{
	if (!m->have_listing || m->listing.method == SYNC_REMOTE_UNCHANGED ||
	    (m->nremote == 0 && m->listing.nvanished == 0 && !m->listing.complete))
		return 0;
	if (sync_remote_search_before(g->r, m->sm.remote_name, g->o->since, &g->a, &m->old_uids,
				      &m->nold_uids, e) < 0)
		return -1;
	return 0;
}

/* The local files of m whose mtime is before `since:` (m->old_names). */
static int since_local(struct eng *g, struct eng_mbox *m, struct err *e)
{
	if (!m->have_snap)
		return 0;       /* unchanged folder: its listing is the records (filtered later) */
	m->old_names = arena_alloc(&g->a, (m->nlocal + 1) * sizeof(char *));
	for (size_t i = 0; i < m->nlocal; i++) {
		const struct maildir_entry *ent = maildir_snapshot_find(&m->snap, m->local[i].name);
		struct stat sb;
		int dfd;

		if (ent == NULL)
			continue;
		dfd = ent->sub == MAILDIR_SUB_CUR ? m->f.cur_fd : m->f.new_fd;
		if (fstatat(dfd, ent->name, &sb, 0) < 0) {
			if (errno == ENOENT)
				continue;       /* gone since the scan: the plan sees it missing next run */
			return err_sys(e, ERR_IO, errno, "cannot stat \"%s\" in folder \"%s\"",
				       ent->name, m->sm.local_name);
		}
		if (sb.st_mtime < g->o->since)
			m->old_names[m->nold_names++] = m->local[i].name;
	}
	if (m->nold_names > 1)
		qsort(m->old_names, m->nold_names, sizeof(char *), cmp_str_key);
	return 0;
}

/*
 * Hide what `since:` ignores from the plan: a record with an old side is
 * left out (untouched in the state), and so are both of its sides, so that
 * the side that is not old is neither read as new nor as deleted; then the
 * old messages themselves leave the listings.
 */
static void since_apply(struct eng *g)
{
	bool *drop = xcalloc(g->nrecs + 1, sizeof(bool));
	size_t *nd = xcalloc(g->nmb + 1, sizeof(size_t));

	for (size_t i = 0; i < g->nrecs; i++) {
		struct eng_mbox *m = eng_mbox_by_id(g, g->recs[i].mailbox);

		if (m != NULL && (is_old_uid(m, g->recs[i].uid) || is_old_name(m, g->recs[i].name))) {
			drop[i] = true;
			nd[m - g->mb]++;
		}
	}
	for (size_t mi = 0; mi < g->nmb; mi++) {
		struct eng_mbox *m = &g->mb[mi];
		uint32_t *u = arena_alloc(&g->a, (m->nold_uids + nd[mi] + 1) * sizeof(*u));
		const char **nm = arena_alloc(&g->a, (m->nold_names + nd[mi] + 1) * sizeof(*nm));
		size_t nu = m->nold_uids, nn = m->nold_names, k = 0;

		if (nd[mi] == 0 && nu == 0 && nn == 0)
			continue;
		if (nu)
			memcpy(u, m->old_uids, nu * sizeof(*u));
		if (nn)
			memcpy(nm, m->old_names, nn * sizeof(*nm));
		for (size_t i = 0; i < g->nrecs; i++) {
			if (!drop[i] || g->recs[i].mailbox != m->sm.id)
				continue;
			if (g->recs[i].uid != 0)
				u[nu++] = g->recs[i].uid;
			if (g->recs[i].name != NULL)
				nm[nn++] = g->recs[i].name;
		}
		qsort(u, nu, sizeof(*u), cmp_u32);
		qsort(nm, nn, sizeof(*nm), cmp_str_key);
		m->old_uids = u;
		m->nold_uids = nu;
		m->old_names = nm;
		m->nold_names = nn;
		for (size_t i = 0; i < m->nremote; i++)
			if (!is_old_uid(m, m->remote[i].uid))
				m->remote[k++] = m->remote[i];
		m->nremote = k;
		k = 0;
		for (size_t i = 0; i < m->nlocal; i++)
			if (!is_old_name(m, m->local[i].name))
				m->local[k++] = m->local[i];
		m->nlocal = k;
	}
	free(drop);
	free(nd);
}

static int scan_all(struct eng *g, struct err *e)
{
	size_t next = 0, inflight = 0;

	if (status_all(g, e) < 0 || eng_mark_idle(g, e) < 0 || max_known_uids(g, e) < 0)
		return -1;
	scan_ahead(g, &next, &inflight, false); /* the server lists while the records load */
	if (load_records(g, e) < 0)
		return -1;
	for (size_t i = 0; i < g->nmb; i++) {
		struct eng_mbox *m = &g->mb[i];

		if (next < i)
			next = i;
		scan_ahead(g, &next, &inflight, true);
		if (m->idle)
			continue;
		if (m->ahead != NULL)
			inflight--;
		if (scan_local(g, m, e) < 0 || eng_scan_remote(g, m, e) < 0 ||
		    (g->o->since != 0 && (since_local(g, m, e) < 0 || since_remote(g, m, e) < 0))) {
			sync_remote_scan_abandon(m->ahead);     /* scan_local failed first */
			m->ahead = NULL;
			if (eng_err_fatal(e)) {
				abandon_ahead(g);
				return -1;
			}
			eng_mbox_fail(g, m, e);
			err_clear(e);
		}
	}
	if (g->o->since != 0)
		since_apply(g);
	if (eng_renames(g, e) < 0)
		return -1;
	/* Records of failed mailboxes are left out of the plan. */
	size_t k = 0;

	for (size_t i = 0; i < g->nrecs; i++) {
		struct eng_mbox *m = eng_mbox_by_id(g, g->recs[i].mailbox);

		if (m == NULL || m->failed)
			continue;
		/* since: a record of an ignored message stays as it is */
		if (is_old_uid(m, g->recs[i].uid) || is_old_name(m, g->recs[i].name))
			continue;
		g->recs[k] = g->recs[i];
		g->rec_ids[k] = g->rec_ids[i];
		g->rec_msgids[k] = g->rec_msgids[i];
		k++;
	}
	g->nrecs = k;
	return 0;
}

static int run_locked(struct eng *g, struct err *e)
{
	if (g->o->dry_run)
		sync_remote_set_examine(g->r, true);
	if (state_open(g->o->state_dir, NULL, &g->st, e) < 0)
		return -1;
	if (eng_discover(g, e) < 0)
		return -1;
	report_mailboxes(g);
	if (!g->o->dry_run && eng_replay_intents(g, e) < 0)
		return -1;
	if (scan_all(g, e) < 0)
		return -1;
	build_input(g);
	if (make_plan(g, e) < 0)
		return -1;
	g->rep->nactions = g->plan.nactions;
	report_verdicts(g);
	if (g->o->dry_run) {
		dry_run_lines(g);
		return 0;
	}
	if (eng_execute(g, e) < 0)
		return -1;
	struct final_ctx fc = { .g = g, .now = (int64_t)time(NULL) };

	return eng_commit(g, write_final, &fc, e);
}

/* The run's result: the account error, else a mailbox error, else safety. */
static int run_result(struct eng *g, int rc, struct err *e)
{
	if (rc < 0) {
		if (e->scope < ERR_SCOPE_ACCOUNT)
			e->scope = ERR_SCOPE_ACCOUNT;
		return -1;
	}
	for (size_t i = 0; i < g->rep->nmailboxes; i++)
		if (g->rep->mailboxes[i].failed) {
			*e = g->rep->mailboxes[i].err;
			return -1;
		}
	if (g->rep->safety) {
		for (size_t i = 0; i < g->rep->nmailboxes; i++) {
			const struct sync_mailbox_report *r = &g->rep->mailboxes[i];

			if (r->safety)
				return err_set(e, ERR_SAFETY, "mailbox \"%s\": %s; use --force to allow",
					       r->remote_name, r->safety_reason);
		}
	}
	return 0;
}

int sync_account_lock(const struct sync_account_opts *opts, struct lock *out, struct err *e)
{
	err_clear(e);
	if (lock_acquire(opts->state_dir, opts->wait_lock, out, e) == 0)
		return 0;
	e->scope = ERR_SCOPE_ACCOUNT;
	return err_prefix(e, "account \"%s\"", opts->account ? opts->account : "");
}

int sync_account_run(const struct sync_account_opts *opts, struct sync_report *report_out,
		     struct err *e)
{
	struct eng g;
	struct lock lk = LOCK_INIT;
	int rc;

	sync_steps_restart();
	err_clear(e);
	memset(&g, 0, sizeof(g));
	g.o = opts;
	g.rep = report_out;
	g.r = opts->remote;
	arena_init(&g.a, 65536);
	sync_plan_init(&g.plan);
	rc = opts->locked ? 0 : lock_acquire(opts->state_dir, opts->wait_lock, &lk, e);
	if (rc == 0)
		rc = run_locked(&g, e);
	rc = run_result(&g, rc, e);
	if (rc < 0 && e->code != ERR_SAFETY)
		err_prefix(e, "account \"%s\"", opts->account ? opts->account : "");
	eng_release(&g);
	lock_release(&lk);
	if (getenv("FERRY_TEST_STEPS") && strcmp(getenv("FERRY_TEST_STEPS"), "1") == 0)
		fprintf(stderr, "ferry-test: steps=%lu\n", sync_steps_taken());
	return rc;
}

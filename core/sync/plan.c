/*
 * plan.c - the pure sync planner (see plan.h for the rules it embodies).
 *
 * The planner works in passes over one account:
 *   1. items: every message now present on each side, as one list per side
 *      (a remote delta is completed with the unchanged records);
 *   2. claim: each base record finds its messages by key (name, UID) in
 *      its mailbox, giving a per-side status PRESENT, GONE (deleted by the
 *      user), LOST (folder missing or not there at the last sync,
 *      UIDVALIDITY changed: to refill, never to delete) or NONE (one-sided
 *      record); if an unknown fingerprint could matter, stop here and ask;
 *   3. match: records that lost a side look for it elsewhere (moves) by
 *      name and fingerprint; unclaimed messages on both sides are linked by
 *      fingerprint (first run, lost state, interrupted transfer);
 *   4. folders, records and new messages are decided into phase lists;
 *   5. the safety rule filters deletions, remote flag stores are batched,
 *      and the phase lists are concatenated in their safe order.
 * Working memory is on the heap and freed before returning; the actions,
 * verdicts and requests live in the plan's arena.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmp.h"
#include "sync/plan.h"
#include "xalloc.h"

enum status { ST_NONE = 0, ST_GONE, ST_LOST, ST_PRESENT };

enum phase {
	PH_CREATE, PH_TRANSFER, PH_FLAGS_REMOTE, PH_FLAGS_LOCAL, PH_MOVE,
	PH_RECORD, PH_DELETE, PH_FOLDER_DELETE, PH_STATE, PH_COUNT
};

/* One message present now on one side. */
struct item {
	size_t mbox;                    /* index into the mailbox array */
	uint32_t uid;                   /* remote */
	const char *name;               /* local */
	struct sync_flags flags;
	const struct sync_fp *fp;
	uint64_t size;
	bool placeholder;               /* local: headers only */
	bool claimed;
};

struct item_list {
	struct item *v;
	size_t n, cap;
	size_t *by_fp;                  /* indexes of items with a known fp, sorted by fp */
	size_t nfp;
	size_t *by_name;                /* local only: indexes sorted by name */
};

/* A base record, or a link made by this plan (r == NULL). */
struct rec_work {
	const struct sync_record *r;
	long base;                      /* index in the input, -1 for a link */
	size_t mbox;
	enum status st[2];
	struct item *it[2];
	struct sync_flags base_flags;   /* r->flags, normalised */
	bool written;                   /* the plan writes or forgets this record */
};

struct mbx_work {
	const struct sync_mailbox *m;
	bool reset;                     /* UIDVALIDITY changed */
	bool create[2];                 /* folder created by this plan */
	bool delete_folder[2];
	size_t nitems[2];
	size_t nleave[2];               /* of those, moved out to another folder by this plan */
	size_t total;                   /* base records in this mailbox */
	size_t ndelete;                 /* deletion candidates */
};

/* A remote flag store before batching. */
struct flag_op {
	size_t mbox;
	uint32_t uid;
	struct sync_flags add, remove;
};

/* A deletion waiting for the safety rule. */
struct del_cand {
	size_t mbox;
	enum sync_side side;
	struct rec_work *w;
};

struct action_list {
	struct sync_action *v;
	size_t n, cap;
};

struct planner {
	const struct sync_input *in;
	const struct sync_policy *pol;
	struct arena *a;
	struct sync_plan *p;
	struct mbx_work *mb;
	size_t nmb;
	struct item_list items[2];
	struct rec_work *recs;
	size_t nrecs, caprecs;
	struct flag_op *fops;
	size_t nfops, capfops;
	struct del_cand *dels;
	size_t ndels, capdels;
	struct action_list ph[PH_COUNT];
};

/*
 * ---------------------------------------------------------------- flags
 *
 * Inside the planner every flag set is normalised (keywords sorted and
 * de-duplicated, case-insensitively), so that set operations stay
 * O(n log n) however many keywords a server sends.
 */

static int cmp_kw(const void *a, const void *b)
{
	return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* `f` must be normalised. */
static bool kw_has(const struct sync_flags *f, const char *k)
{
	return f->nkw && bsearch(&k, f->kw, f->nkw, sizeof(*f->kw), cmp_kw);
}

/* Sorted, de-duplicated keywords of up to three sets, in the arena. */
static size_t kw_union(struct arena *a, const struct sync_flags *const *sets,
		       size_t nsets, const char ***out)
{
	size_t n = 0, k = 0;
	const char **v;

	for (size_t i = 0; i < nsets; i++)
		if (sets[i])
			n += sets[i]->nkw;
	v = ARENA_NEW_ARRAY(a, const char *, n ? n : 1);
	for (size_t i = 0; i < nsets; i++)
		for (size_t j = 0; sets[i] && j < sets[i]->nkw; j++)
			v[k++] = sets[i]->kw[j];
	if (k > 1)
		qsort(v, k, sizeof(*v), cmp_kw);
	n = 0;
	for (size_t i = 0; i < k; i++)
		if (n == 0 || strcasecmp(v[n - 1], v[i]) != 0)
			v[n++] = v[i];
	*out = v;
	return n;
}

static struct sync_flags flags_norm(struct arena *a, const struct sync_flags *f)
{
	const struct sync_flags *sets[1] = { f };
	struct sync_flags n = { f->sys & SYNC_F_ALL, 0, NULL };
	const char **kw;

	n.nkw = kw_union(a, sets, 1, &kw);
	n.kw = kw;
	return n;
}

/* Equality of two normalised sets. */
static bool flags_same(const struct sync_flags *a, const struct sync_flags *b)
{
	if (a->sys != b->sys || a->nkw != b->nkw)
		return false;
	for (size_t i = 0; i < a->nkw; i++)
		if (strcasecmp(a->kw[i], b->kw[i]) != 0)
			return false;
	return true;
}

bool sync_flags_equal(const struct sync_flags *a, const struct sync_flags *b)
{
	struct arena tmp;
	struct sync_flags x, y;
	bool same;

	arena_init(&tmp, 1024);
	x = flags_norm(&tmp, a);
	y = flags_norm(&tmp, b);
	same = flags_same(&x, &y);
	arena_release(&tmp);
	return same;
}

/* One flag, three-way: the side that changed it wins (both: same way). */
static bool merge_bit(bool has_base, bool b, bool l, bool r, bool is_deleted)
{
	if (!has_base)
		return is_deleted ? (l && r) : (l || r);
	if (l != b)
		return l;
	return r;
}

/* Merge local `l` and remote `r` against `base` (NULL: no base). */
static struct sync_flags flags_merge(struct arena *a, const struct sync_flags *base,
				     const struct sync_flags *l, const struct sync_flags *r)
{
	const struct sync_flags *sets[3] = { base, l, r };
	struct sync_flags m = { 0, 0, NULL };
	const char **cand, **kw;
	size_t n;

	for (unsigned bit = 1; bit <= SYNC_F_DELETED; bit <<= 1)
		if (merge_bit(base != NULL, base && (base->sys & bit), l->sys & bit,
			      r->sys & bit, bit == SYNC_F_DELETED))
			m.sys |= bit;
	n = kw_union(a, sets, 3, &cand);
	kw = ARENA_NEW_ARRAY(a, const char *, n ? n : 1);
	for (size_t i = 0; i < n; i++)
		if (merge_bit(base != NULL, base && kw_has(base, cand[i]),
			      kw_has(l, cand[i]), kw_has(r, cand[i]), false))
			kw[m.nkw++] = cand[i];
	m.kw = kw;
	return m;
}

/* Keywords of `a` missing from `b`, with system bits, normalised. */
static struct sync_flags flags_minus(struct arena *a, const struct sync_flags *x,
				     const struct sync_flags *y)
{
	const struct sync_flags *sets[1] = { x };
	struct sync_flags d = { x->sys & ~y->sys, 0, NULL };
	const char **cand, **kw;
	size_t n = kw_union(a, sets, 1, &cand);

	kw = ARENA_NEW_ARRAY(a, const char *, n ? n : 1);
	for (size_t i = 0; i < n; i++)
		if (!kw_has(y, cand[i]))
			kw[d.nkw++] = cand[i];
	d.kw = kw;
	return d;
}

/* Order of normalised flag sets, for batching. */
static int flags_cmp(const struct sync_flags *a, const struct sync_flags *b)
{
	if (a->sys != b->sys)
		return a->sys < b->sys ? -1 : 1;
	if (a->nkw != b->nkw)
		return a->nkw < b->nkw ? -1 : 1;
	for (size_t i = 0; i < a->nkw; i++) {
		int c = strcasecmp(a->kw[i], b->kw[i]);

		if (c)
			return c;
	}
	return 0;
}

/* The flags each side should end with, and the new base (see plan.h). */
struct targets {
	struct sync_flags side[2];
	struct sync_flags base;
};

static void flag_targets(struct planner *pl, const struct sync_flags *base,
			 const struct sync_flags *l, const struct sync_flags *r,
			 struct targets *t)
{
	struct sync_flags m = flags_merge(pl->a, base, l, r);

	switch (pl->pol->direction) {
	case SYNC_PULL:
		t->side[SYNC_LOCAL] = m;
		t->side[SYNC_REMOTE] = *r;
		t->base = *r;
		break;
	case SYNC_PUSH:
		t->side[SYNC_LOCAL] = *l;
		t->side[SYNC_REMOTE] = m;
		t->base = *l;
		break;
	default:
		t->side[SYNC_LOCAL] = t->side[SYNC_REMOTE] = t->base = m;
		break;
	}
}

/* ---------------------------------------------------------------- helpers */

static bool writable(const struct planner *pl, enum sync_side s)
{
	if (pl->pol->direction == SYNC_PULL)
		return s == SYNC_LOCAL;
	if (pl->pol->direction == SYNC_PUSH)
		return s == SYNC_REMOTE;
	return true;
}

static bool side_exists(const struct mbx_work *m, enum sync_side s)
{
	return s == SYNC_LOCAL ? m->m->local_exists : m->m->remote_exists;
}

static bool side_existed(const struct mbx_work *m, enum sync_side s)
{
	return s == SYNC_LOCAL ? m->m->local_existed : m->m->remote_existed;
}

/* The folder on side s will exist once the plan's creations ran. */
static bool folder_ready(const struct mbx_work *m, enum sync_side s)
{
	return (side_exists(m, s) && !m->delete_folder[s]) || m->create[s];
}

static struct sync_action *emit(struct planner *pl, enum phase ph,
				enum sync_action_kind kind, size_t mbox)
{
	struct action_list *l = &pl->ph[ph];
	struct sync_action *act;

	l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
	act = &l->v[l->n++];
	memset(act, 0, sizeof(*act));
	act->kind = kind;
	act->mailbox = act->to_mailbox = pl->mb[mbox].m->id;
	act->base = -1;
	return act;
}

static void attach_rec(struct sync_action *act, enum sync_rec_op op,
		       struct rec_work *w, const struct sync_record *rec)
{
	act->rec_op = op;
	act->base = w ? w->base : -1;
	if (w)
		w->written = true;
	if (rec)
		act->rec = *rec;
}

static int cmp_fp(const struct sync_fp *a, const struct sync_fp *b)
{
	return memcmp(a->bytes, b->bytes, SYNC_FP_LEN);
}

static bool fp_known(const struct sync_fp *f)
{
	return f && f->state == SYNC_FP_KNOWN;
}

/* ---------------------------------------------------------------- items */

static struct item *item_add(struct item_list *l, size_t mbox)
{
	struct item *it;

	l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
	it = &l->v[l->n++];
	memset(it, 0, sizeof(*it));
	it->mbox = mbox;
	return it;
}

static int cmp_item_key(const struct item *a, const struct item *b)
{
	if (a->mbox != b->mbox)
		return a->mbox < b->mbox ? -1 : 1;
	if (a->name || b->name)
		return strcmp(a->name, b->name);
	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

static int cmp_item_qsort(const void *a, const void *b)
{
	return cmp_item_key(a, b);
}

/*
 * The remote listing of a delta mailbox, completed with unchanged records:
 * every record neither listed nor vanished.
 */
static void add_delta_records(struct planner *pl, size_t mi)
{
	const struct sync_mailbox *m = pl->mb[mi].m;
	size_t n = m->nremote + m->nvanished;
	uint32_t *seen = xcalloc(n + 1, sizeof(*seen));

	for (size_t j = 0; j < m->nremote; j++)
		seen[j] = m->remote[j].uid;
	if (m->nvanished)
		memcpy(seen + m->nremote, m->vanished, m->nvanished * sizeof(*seen));
	qsort(seen, n, sizeof(*seen), cmp_u32);
	for (size_t i = 0; i < pl->in->nrecords; i++) {
		const struct sync_record *r = &pl->in->records[i];
		struct item *it;

		if (r->mailbox != m->id || r->uid == 0 ||
		    bsearch(&r->uid, seen, n, sizeof(*seen), cmp_u32))
			continue;
		it = item_add(&pl->items[SYNC_REMOTE], mi);
		it->uid = r->uid;
		it->flags = flags_norm(pl->a, &r->flags);
		it->fp = &r->fp;
		it->size = r->size;
	}
	free(seen);
}

static void collect_items(struct planner *pl, size_t mi)
{
	const struct sync_mailbox *m = pl->mb[mi].m;

	for (size_t j = 0; m->local_exists && j < m->nlocal; j++) {
		struct item *it = item_add(&pl->items[SYNC_LOCAL], mi);

		it->name = m->local[j].name;
		it->flags = flags_norm(pl->a, &m->local[j].flags);
		it->fp = &m->local[j].fp;
		it->size = m->local[j].size;
		it->placeholder = m->local[j].placeholder;
	}
	for (size_t j = 0; m->remote_exists && j < m->nremote; j++) {
		struct item *it = item_add(&pl->items[SYNC_REMOTE], mi);

		it->uid = m->remote[j].uid;
		it->flags = flags_norm(pl->a, &m->remote[j].flags);
		it->fp = &m->remote[j].fp;
		it->size = m->remote[j].size;
	}
	if (m->remote_exists && m->remote_delta)
		add_delta_records(pl, mi);
}

static int cmp_by_fp(const void *a, const void *b, void *ctx)
{
	const struct item_list *l = ctx;
	const struct item *x = &l->v[*(const size_t *)a];
	const struct item *y = &l->v[*(const size_t *)b];
	int c = cmp_fp(x->fp, y->fp);

	if (c == 0)
		c = cmp_item_key(x, y);
	return c;
}

static int cmp_by_name(const void *a, const void *b, void *ctx)
{
	const struct item_list *l = ctx;
	const struct item *x = &l->v[*(const size_t *)a];
	const struct item *y = &l->v[*(const size_t *)b];
	int c = strcmp(x->name, y->name);

	if (c == 0)
		c = cmp_item_key(x, y);
	return c;
}

/* Whether l is already in key order (a remote listing usually is). */
static bool items_sorted(const struct item_list *l)
{
	for (size_t i = 1; i < l->n; i++)
		if (cmp_item_key(&l->v[i - 1], &l->v[i]) > 0)
			return false;
	return true;
}

/*
 * Sort a side by key and refuse duplicates.  The fp and name indexes are
 * built on first use (index_fp, index_name): a run in which every record
 * finds its messages by key needs neither.
 */
static int index_items(struct planner *pl, enum sync_side s, struct err *e)
{
	struct item_list *l = &pl->items[s];

	if (l->n > 1 && !items_sorted(l))
		qsort(l->v, l->n, sizeof(*l->v), cmp_item_qsort);
	for (size_t i = 0; i < l->n; i++) {
		if (i > 0 && cmp_item_key(&l->v[i - 1], &l->v[i]) == 0) {
			const struct sync_mailbox *m = pl->mb[l->v[i].mbox].m;

			if (s == SYNC_LOCAL)
				return err_set(e, ERR_STATE, "duplicate local message \"%s\" in \"%s\"",
					       l->v[i].name, m->local_name);
			return err_set(e, ERR_STATE, "duplicate uid %u in \"%s\"",
				       l->v[i].uid, m->remote_name);
		}
		pl->mb[l->v[i].mbox].nitems[s]++;
	}
	return 0;
}

/* The items with a known fingerprint, by fingerprint then key (once; items are final). */
static void index_fp(struct item_list *l)
{
	if (l->by_fp != NULL)
		return;
	l->by_fp = xcalloc(l->n + 1, sizeof(size_t));
	for (size_t i = 0; i < l->n; i++)
		if (fp_known(l->v[i].fp))
			l->by_fp[l->nfp++] = i;
	qsort_r(l->by_fp, l->nfp, sizeof(size_t), cmp_by_fp, l);
}

/* The items by name then key (the local side; once). */
static void index_name(struct item_list *l)
{
	if (l->by_name != NULL)
		return;
	l->by_name = xcalloc(l->n + 1, sizeof(size_t));
	for (size_t i = 0; i < l->n; i++)
		l->by_name[i] = i;
	qsort_r(l->by_name, l->n, sizeof(size_t), cmp_by_name, l);
}

static struct item *find_key(struct item_list *l, size_t mbox, uint32_t uid, const char *name)
{
	struct item key = { .mbox = mbox, .uid = uid, .name = name };

	if (l->n == 0)
		return NULL;
	return bsearch(&key, l->v, l->n, sizeof(*l->v), cmp_item_qsort);
}

/* First index in a sorted index array whose item compares >= probe. */
static size_t lower_bound(const struct item_list *l, const size_t *idx, size_t n,
			  int (*cmp)(const struct item *, const void *), const void *probe)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp(&l->v[idx[mid]], probe) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int cmp_item_fp_probe(const struct item *it, const void *probe)
{
	return cmp_fp(it->fp, probe);
}

static int cmp_item_name_probe(const struct item *it, const void *probe)
{
	return strcmp(it->name, probe);
}

/*
 * An unclaimed item with fingerprint `fp`: in mailbox `mbox` when
 * `same_only`, else preferring `mbox`, then the first in key order.
 */
static struct item *find_fp(struct item_list *l, const struct sync_fp *fp, size_t mbox,
			    bool same_only)
{
	struct item *other = NULL;

	if (!fp_known(fp))
		return NULL;
	index_fp(l);
	for (size_t i = lower_bound(l, l->by_fp, l->nfp, cmp_item_fp_probe, fp);
	     i < l->nfp && cmp_fp(l->v[l->by_fp[i]].fp, fp) == 0; i++) {
		struct item *it = &l->v[l->by_fp[i]];

		if (it->claimed)
			continue;
		if (it->mbox == mbox)
			return it;
		if (!other)
			other = it;
	}
	return same_only ? NULL : other;
}

static struct item *find_name(struct item_list *l, const char *name)
{
	index_name(l);
	for (size_t i = lower_bound(l, l->by_name, l->n, cmp_item_name_probe, name);
	     i < l->n && strcmp(l->v[l->by_name[i]].name, name) == 0; i++)
		if (!l->v[l->by_name[i]].claimed)
			return &l->v[l->by_name[i]];
	return NULL;
}

/* ---------------------------------------------------------------- claims */

static long mbox_index(const struct planner *pl, uint32_t id)
{
	for (size_t i = 0; i < pl->nmb; i++)
		if (pl->mb[i].m->id == id)
			return (long)i;
	return -1;
}

static struct rec_work *rec_add(struct planner *pl)
{
	struct rec_work *w;

	pl->recs = xgrow(pl->recs, &pl->caprecs, pl->nrecs + 1, sizeof(*pl->recs));
	w = &pl->recs[pl->nrecs++];
	memset(w, 0, sizeof(*w));
	w->base = -1;
	return w;
}

static void claim(struct rec_work *w, enum sync_side s, struct item *it)
{
	it->claimed = true;
	w->it[s] = it;
	w->st[s] = ST_PRESENT;
}

/* Status of one side of a base record, claiming its item by key. */
static int claim_side(struct planner *pl, struct rec_work *w, enum sync_side s, struct err *e)
{
	const struct mbx_work *m = &pl->mb[w->mbox];
	const struct sync_record *r = w->r;
	struct item *it;

	if (s == SYNC_LOCAL ? r->name == NULL : r->uid == 0) {
		w->st[s] = ST_NONE;
		return 0;
	}
	if (!side_exists(m, s) || (s == SYNC_REMOTE && m->reset)) {
		w->st[s] = ST_LOST;
		return 0;
	}
	it = find_key(&pl->items[s], w->mbox, s == SYNC_REMOTE ? r->uid : 0,
		      s == SYNC_LOCAL ? r->name : NULL);
	if (!it) {
		/* a folder that did not exist at the last sync cannot have lost it */
		w->st[s] = side_existed(m, s) ? ST_GONE : ST_LOST;
		return 0;
	}
	if (it->claimed)
		return err_set(e, ERR_STATE, "two records for one message in \"%s\"",
			       m->m->remote_name);
	claim(w, s, it);
	return 0;
}

static int claim_records(struct planner *pl, struct err *e)
{
	for (size_t i = 0; i < pl->in->nrecords; i++) {
		const struct sync_record *r = &pl->in->records[i];
		long mi = mbox_index(pl, r->mailbox);
		struct rec_work *w;

		if (mi < 0)
			return err_set(e, ERR_STATE, "record for unknown mailbox %u", r->mailbox);
		w = rec_add(pl);
		w->r = r;
		w->base = (long)i;
		w->base_flags = flags_norm(pl->a, &r->flags);
		w->mbox = (size_t)mi;
		pl->mb[mi].total++;
		if (claim_side(pl, w, SYNC_LOCAL, e) < 0 || claim_side(pl, w, SYNC_REMOTE, e) < 0)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- matching */

static bool lost_or_gone(enum status st)
{
	return st == ST_GONE || st == ST_LOST;
}

/*
 * Records that lost a side find it elsewhere: moves, renames, new UIDs.
 * Names first for every record, so that a fingerprint match never takes a
 * file another record can claim by name.
 */
static void match_moves(struct planner *pl)
{
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < pl->nrecs; i++) {
			struct rec_work *w = &pl->recs[i];
			enum sync_side s = pass == 2 ? SYNC_REMOTE : SYNC_LOCAL;
			struct item *it;

			if (!lost_or_gone(w->st[s]))
				continue;
			if (pass == 0)
				it = find_name(&pl->items[s], w->r->name);
			else
				it = find_fp(&pl->items[s], &w->r->fp, w->mbox, false);
			if (it)
				claim(w, s, it);
		}
	}
}

/* One-sided records take a same-folder copy that appeared on the other side. */
static void match_one_sided(struct planner *pl)
{
	for (size_t i = 0; i < pl->nrecs; i++) {
		struct rec_work *w = &pl->recs[i];

		for (int s = 0; s < 2; s++) {
			struct item *it;

			if (w->st[s] != ST_NONE)
				continue;
			it = find_fp(&pl->items[s], &w->r->fp, w->mbox, true);
			if (it)
				claim(w, (enum sync_side)s, it);
		}
	}
}

/* Unclaimed local and remote messages with one fingerprint become a link. */
static bool any_unclaimed(const struct item_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (!l->v[i].claimed)
			return true;
	return false;
}

static void match_new(struct planner *pl, bool same_only)
{
	struct item_list *ll = &pl->items[SYNC_LOCAL];

	if (!any_unclaimed(ll) || !any_unclaimed(&pl->items[SYNC_REMOTE]))
		return;         /* nothing to link */
	index_fp(ll);
	for (size_t i = 0; i < ll->nfp; i++) {
		struct item *li = &ll->v[ll->by_fp[i]];
		struct item *ri;
		struct rec_work *w;

		if (li->claimed)
			continue;
		ri = find_fp(&pl->items[SYNC_REMOTE], li->fp, li->mbox, same_only);
		if (!ri)
			continue;
		w = rec_add(pl);
		w->mbox = ri->mbox;
		claim(w, SYNC_LOCAL, li);
		claim(w, SYNC_REMOTE, ri);
	}
}

/* ---------------------------------------------------------------- fingerprints */

/* What an unknown fingerprint on one side could be matched against. */
struct fp_need {
	bool orphans;                   /* a record lost this side somewhere */
	bool *one_sided;                /* per mailbox: a record lacks this side */
	bool other_unclaimed;           /* an unclaimed message on the other side */
};

static void fp_need_init(const struct planner *pl, enum sync_side s, struct fp_need *fn)
{
	enum sync_side o = s == SYNC_LOCAL ? SYNC_REMOTE : SYNC_LOCAL;

	fn->orphans = fn->other_unclaimed = false;
	fn->one_sided = xcalloc(pl->nmb + 1, sizeof(bool));
	for (size_t i = 0; i < pl->nrecs; i++) {
		const struct rec_work *w = &pl->recs[i];

		fn->orphans |= lost_or_gone(w->st[s]);
		if (w->st[s] == ST_NONE)
			fn->one_sided[w->mbox] = true;
	}
	for (size_t i = 0; i < pl->items[o].n && !fn->other_unclaimed; i++)
		fn->other_unclaimed = !pl->items[o].v[i].claimed;
}

static bool fp_wanted(const struct fp_need *fn, const struct item *it)
{
	return !it->claimed && it->fp->state == SYNC_FP_UNKNOWN &&
	       (fn->orphans || fn->other_unclaimed || fn->one_sided[it->mbox]);
}

static void request_fps(struct planner *pl)
{
	struct fp_need fn[2];
	size_t n = 0;

	for (int s = 0; s < 2; s++) {
		fp_need_init(pl, (enum sync_side)s, &fn[s]);
		for (size_t i = 0; i < pl->items[s].n; i++)
			n += fp_wanted(&fn[s], &pl->items[s].v[i]);
	}
	if (n)
		pl->p->fp_requests = ARENA_NEW_ARRAY(pl->a, struct sync_fp_request, n);
	for (int s = 0; s < 2 && n; s++)
		for (size_t i = 0; i < pl->items[s].n; i++) {
			const struct item *it = &pl->items[s].v[i];
			struct sync_fp_request *q;

			if (!fp_wanted(&fn[s], it))
				continue;
			q = &pl->p->fp_requests[pl->p->nfp_requests++];
			q->mailbox = pl->mb[it->mbox].m->id;
			q->side = (enum sync_side)s;
			q->uid = it->uid;
			q->name = it->name;
		}
	free(fn[0].one_sided);
	free(fn[1].one_sided);
}

/* ---------------------------------------------------------------- folders */

/*
 * Before a lost folder is re-created, record that it did not exist: if the
 * run stops while refilling, the next plan sees the records of that side
 * as lost (to refill), not as messages the user deleted.
 */
static void forget_folder(struct planner *pl, size_t mi, enum sync_side s)
{
	const struct sync_mailbox *m = pl->mb[mi].m;
	struct sync_action *act = emit(pl, PH_CREATE, SYNC_ACT_MAILBOX_STATE, mi);

	act->local_existed = s == SYNC_LOCAL ? false : m->local_existed;
	act->remote_existed = s == SYNC_REMOTE ? false : m->remote_existed;
	act->uidvalidity = m->uidvalidity_base;
}

static void decide_folders(struct planner *pl, size_t mi)
{
	struct mbx_work *m = &pl->mb[mi];

	for (int s = 0; s < 2; s++) {
		enum sync_side o = s == SYNC_LOCAL ? SYNC_REMOTE : SYNC_LOCAL;

		if (side_exists(m, (enum sync_side)s) || !side_exists(m, o))
			continue;
		/* empty once this plan's moves ran: else the next plan deletes it */
		if (side_existed(m, (enum sync_side)s) && pl->pol->delete_folders &&
		    m->nitems[o] == m->nleave[o]) {
			if (writable(pl, o)) {
				m->delete_folder[o] = true;
				emit(pl, PH_FOLDER_DELETE, SYNC_ACT_DELETE_FOLDER, mi)->side = o;
			}
		} else if (writable(pl, (enum sync_side)s)) {
			m->create[s] = true;
			if (side_existed(m, (enum sync_side)s))
				forget_folder(pl, mi, (enum sync_side)s);
			emit(pl, PH_CREATE, SYNC_ACT_CREATE_FOLDER, mi)->side = (enum sync_side)s;
		}
	}
}

/*
 * After a UIDVALIDITY change the new value may only be recorded once every
 * record of the mailbox carries a UID of the new numbering; a record the
 * plan leaves alone (pending, safety stop) keeps the old value in force.
 */
static bool stale_uids(const struct planner *pl, size_t mi)
{
	if (!pl->mb[mi].reset)
		return false;
	for (size_t i = 0; i < pl->nrecs; i++) {
		const struct rec_work *w = &pl->recs[i];

		if (w->mbox != mi || !w->r || !w->r->uid || w->written)
			continue;
		if (w->st[SYNC_REMOTE] != ST_PRESENT || w->it[SYNC_REMOTE]->mbox != mi ||
		    w->it[SYNC_REMOTE]->uid != w->r->uid)
			return true;
	}
	return false;
}

static void mailbox_state(struct planner *pl, size_t mi)
{
	const struct mbx_work *m = &pl->mb[mi];
	bool now[2];
	uint32_t uv = m->m->uidvalidity_base;
	struct sync_action *act;

	for (int s = 0; s < 2; s++) {
		enum sync_side o = s == SYNC_LOCAL ? SYNC_REMOTE : SYNC_LOCAL;

		if (side_exists(m, (enum sync_side)s))
			now[s] = !m->delete_folder[s];
		else if (m->create[s])
			now[s] = true;
		else    /* pending on a side we may not write: keep what we knew */
			now[s] = folder_ready(m, o) && side_existed(m, (enum sync_side)s);
	}
	if (m->create[SYNC_REMOTE])
		uv = 0;                 /* the executor reads it from the new folder */
	else if (!now[SYNC_REMOTE])
		uv = 0;
	else if (m->m->remote_exists && m->m->uidvalidity_now && !stale_uids(pl, mi))
		uv = m->m->uidvalidity_now;
	if (now[0] == m->m->local_existed && now[1] == m->m->remote_existed &&
	    uv == m->m->uidvalidity_base && !m->create[SYNC_REMOTE] && !m->create[SYNC_LOCAL])
		return;
	act = emit(pl, PH_STATE, SYNC_ACT_MAILBOX_STATE, mi);
	act->local_existed = now[SYNC_LOCAL];
	act->remote_existed = now[SYNC_REMOTE];
	act->uidvalidity = uv;
}

/* ---------------------------------------------------------------- transfers */

static bool over_max(const struct planner *pl, uint64_t size)
{
	return pl->pol->max_size && size > pl->pol->max_size;
}

static void download(struct planner *pl, const struct item *ri, struct rec_work *w)
{
	struct sync_action *act = emit(pl, PH_TRANSFER, SYNC_ACT_DOWNLOAD, ri->mbox);
	struct sync_record rec = { 0 };

	act->uid = ri->uid;
	act->flags = ri->flags;
	act->size = ri->size;
	act->placeholder = over_max(pl, ri->size) && !(ri->flags.sys & SYNC_F_FLAGGED);
	rec.mailbox = act->mailbox;
	rec.uid = ri->uid;
	rec.flags = ri->flags;
	rec.fp = w && fp_known(&w->r->fp) ? w->r->fp : *ri->fp;
	rec.size = ri->size;
	rec.placeholder = act->placeholder;
	attach_rec(act, SYNC_REC_PUT, w, &rec);
}

static void upload(struct planner *pl, const struct item *li, struct rec_work *w)
{
	struct sync_action *act = emit(pl, PH_TRANSFER, SYNC_ACT_UPLOAD, li->mbox);
	struct sync_record rec = { 0 };

	act->name = li->name;
	act->flags = li->flags;
	act->size = li->size;
	rec.mailbox = act->mailbox;
	rec.name = li->name;
	rec.flags = li->flags;
	rec.fp = w && fp_known(&w->r->fp) ? w->r->fp : *li->fp;
	rec.size = li->size;
	attach_rec(act, SYNC_REC_PUT, w, &rec);
}

/* The record of `w` after it went one-sided or followed its message. */
static void record_put(struct planner *pl, struct rec_work *w, const struct sync_record *nr)
{
	const struct sync_record *r = w->r;
	bool same = r && r->mailbox == nr->mailbox && r->uid == nr->uid &&
		    (r->name == nr->name || (r->name && nr->name && strcmp(r->name, nr->name) == 0)) &&
		    r->placeholder == nr->placeholder && flags_same(&w->base_flags, &nr->flags) &&
		    (fp_known(&r->fp) || !fp_known(&nr->fp));

	if (!same)
		attach_rec(emit(pl, PH_RECORD, SYNC_ACT_RECORD, w->mbox), SYNC_REC_PUT, w, nr);
}

static void record_forget(struct planner *pl, struct rec_work *w)
{
	attach_rec(emit(pl, PH_RECORD, SYNC_ACT_RECORD, w->mbox), SYNC_REC_DEL, w, NULL);
}

/* ---------------------------------------------------------------- records */

static void flags_remote(struct planner *pl, const struct item *ri, const struct sync_flags *to)
{
	struct flag_op *op;

	if (flags_same(&ri->flags, to))
		return;
	pl->fops = xgrow(pl->fops, &pl->capfops, pl->nfops + 1, sizeof(*pl->fops));
	op = &pl->fops[pl->nfops++];
	op->mbox = ri->mbox;
	op->uid = ri->uid;
	op->add = flags_minus(pl->a, to, &ri->flags);
	op->remove = flags_minus(pl->a, &ri->flags, to);
}

static void flags_local(struct planner *pl, const struct item *li, const struct sync_flags *to)
{
	struct sync_action *act;

	if (flags_same(&li->flags, to))
		return;
	act = emit(pl, PH_FLAGS_LOCAL, SYNC_ACT_FLAGS_LOCAL, li->mbox);
	act->name = li->name;
	act->flags = *to;
}

/*
 * Where a message present on both sides should live, and which side must
 * move it (-1: none).  False: the move is pending (direction).
 */
static bool placement(struct planner *pl, const struct rec_work *w, size_t *dest, int *mover)
{
	size_t ml = w->it[SYNC_LOCAL]->mbox, mr = w->it[SYNC_REMOTE]->mbox;

	*dest = mr;
	*mover = -1;
	if (ml == mr)
		return true;
	if (w->r && mr == w->mbox) {    /* only the local side moved */
		*dest = ml;
		*mover = SYNC_REMOTE;
	} else {                        /* the server moved (or both did): it wins */
		*mover = SYNC_LOCAL;
	}
	return writable(pl, (enum sync_side)*mover);
}

/*
 * Count, per folder and side, the messages this plan moves out of it (the
 * moves decide_both emits), so that decide_folders judges a folder by what
 * it holds after the plan, not before.
 */
static void count_leaving(struct planner *pl)
{
	for (size_t i = 0; i < pl->nrecs; i++) {
		const struct rec_work *w = &pl->recs[i];
		size_t dest;
		int mover;

		if (w->st[SYNC_LOCAL] != ST_PRESENT || w->st[SYNC_REMOTE] != ST_PRESENT)
			continue;
		if (placement(pl, w, &dest, &mover) && mover >= 0)
			pl->mb[w->it[mover]->mbox].nleave[mover]++;
	}
}

/* Whether the local copy is a placeholder: the file says so; else the record. */
static bool local_placeholder(const struct rec_work *w)
{
	if (w->it[SYNC_LOCAL])
		return w->it[SYNC_LOCAL]->placeholder;
	return w->r && w->r->placeholder;
}

/* A placeholder whose local copy is flagged, or that now fits, comes whole. */
static bool fetch_whole(const struct planner *pl, const struct rec_work *w, int mover,
			const struct targets *t, uint64_t size)
{
	/* after a remote move the UID to fetch is not known yet: next run */
	return local_placeholder(w) && mover != SYNC_REMOTE && writable(pl, SYNC_LOCAL) &&
	       ((t->side[SYNC_LOCAL].sys & SYNC_F_FLAGGED) || !over_max(pl, size));
}

/*
 * Both sides hold the message: merge flags, follow a move.  The record is
 * written by the last action (the move, the whole fetch, or a record
 * action after all flag changes).
 */
static void decide_both(struct planner *pl, struct rec_work *w)
{
	struct item *li = w->it[SYNC_LOCAL], *ri = w->it[SYNC_REMOTE];
	const struct sync_record *r = w->r;
	struct sync_record nr = { 0 };
	struct sync_action *act = NULL;
	struct targets t;
	size_t dest;
	int mover;
	bool whole;

	if (!placement(pl, w, &dest, &mover))
		return;
	flag_targets(pl, r ? &w->base_flags : NULL, &li->flags, &ri->flags, &t);
	whole = fetch_whole(pl, w, mover, &t, r ? r->size : ri->size);
	nr.mailbox = pl->mb[dest].m->id;
	nr.uid = ri->uid;
	nr.name = li->name;
	nr.flags = t.base;
	nr.fp = r && fp_known(&r->fp) ? r->fp : fp_known(ri->fp) ? *ri->fp : *li->fp;
	nr.size = r ? r->size : ri->size;
	nr.placeholder = local_placeholder(w) && !whole;
	flags_remote(pl, ri, &t.side[SYNC_REMOTE]);
	if (!whole)
		flags_local(pl, li, &t.side[SYNC_LOCAL]);
	if (mover == SYNC_REMOTE) {
		act = emit(pl, PH_MOVE, SYNC_ACT_MOVE_REMOTE, ri->mbox);
		act->uid = ri->uid;
		nr.uid = 0;
	} else if (mover == SYNC_LOCAL) {
		act = emit(pl, PH_MOVE, SYNC_ACT_MOVE_LOCAL, li->mbox);
		act->name = li->name;
	}
	if (act)
		act->to_mailbox = nr.mailbox;
	if (whole) {    /* after a local move: the placeholder is in dest by then */
		act = emit(pl, PH_MOVE, SYNC_ACT_DOWNLOAD, ri->mbox);
		act->uid = ri->uid;
		act->flags = t.side[SYNC_LOCAL];
		act->size = nr.size;
		act->replace = li->name;
		nr.name = NULL;
	}
	if (act)
		attach_rec(act, SYNC_REC_PUT, w, &nr);
	else
		record_put(pl, w, &nr);
}

static void delete_candidate(struct planner *pl, struct rec_work *w, enum sync_side s)
{
	struct del_cand *d;

	pl->dels = xgrow(pl->dels, &pl->capdels, pl->ndels + 1, sizeof(*pl->dels));
	d = &pl->dels[pl->ndels++];
	d->mbox = w->mbox;
	d->side = s;
	d->w = w;
	pl->mb[w->mbox].ndelete++;
}

/* Copy the present side s into side o, in the folder the message is in now. */
static void transfer(struct planner *pl, struct rec_work *w, enum sync_side s, struct sync_record *nr)
{
	const struct item *it = w->it[s];

	if (s == SYNC_REMOTE) {
		download(pl, it, w);
	} else if (local_placeholder(w)) {
		nr->uid = 0;    /* a placeholder is not the message: keep it local-only */
		record_put(pl, w, nr);
	} else {
		upload(pl, it, w);
	}
}

/* Side s holds the message, side o does not (any more). */
static void decide_one(struct planner *pl, struct rec_work *w, enum sync_side s)
{
	enum sync_side o = s == SYNC_LOCAL ? SYNC_REMOTE : SYNC_LOCAL;
	const struct item *it = w->it[s];
	const struct sync_record *r = w->r;
	struct sync_record nr = *r;
	bool moved = it->mbox != w->mbox;

	nr.flags = w->base_flags;
	nr.mailbox = pl->mb[it->mbox].m->id;
	if (s == SYNC_LOCAL)
		nr.name = it->name;
	else
		nr.uid = it->uid;
	if (!fp_known(&nr.fp) && fp_known(it->fp))
		nr.fp = *it->fp;
	if (w->st[o] == ST_NONE) {
		record_put(pl, w, &nr);
	} else if (w->st[o] == ST_LOST || moved) {
		/* refill a lost folder; a move beats a deletion on the other side */
		if (writable(pl, o) && folder_ready(&pl->mb[it->mbox], o))
			transfer(pl, w, s, &nr);
	} else if (!pl->pol->expunge) {
		if (o == SYNC_LOCAL)
			nr.name = NULL;
		else
			nr.uid = 0;
		record_put(pl, w, &nr);
	} else if (writable(pl, s)) {
		delete_candidate(pl, w, s);
	}
}

static void decide_record(struct planner *pl, struct rec_work *w)
{
	bool l = w->st[SYNC_LOCAL] == ST_PRESENT, r = w->st[SYNC_REMOTE] == ST_PRESENT;

	if (l && r)
		decide_both(pl, w);
	else if (l)
		decide_one(pl, w, SYNC_LOCAL);
	else if (r)
		decide_one(pl, w, SYNC_REMOTE);
	else
		record_forget(pl, w);
}

static void decide_new(struct planner *pl)
{
	for (int s = 0; s < 2; s++) {
		enum sync_side o = s == SYNC_LOCAL ? SYNC_REMOTE : SYNC_LOCAL;

		if (!writable(pl, o))
			continue;
		for (size_t i = 0; i < pl->items[s].n; i++) {
			const struct item *it = &pl->items[s].v[i];

			/* a placeholder without a record stays where it is */
			if (it->claimed || it->placeholder || !folder_ready(&pl->mb[it->mbox], o))
				continue;
			if (s == SYNC_LOCAL)
				upload(pl, it, NULL);
			else
				download(pl, it, NULL);
		}
	}
}

/* ---------------------------------------------------------------- safety and deletions */

static bool safety_trips(const struct planner *pl, const struct mbx_work *m)
{
	if (pl->pol->force || m->ndelete < SYNC_SAFETY_FLOOR)
		return false;
	return (uint64_t)m->ndelete * 100 > (uint64_t)pl->pol->safety_max_delete * m->total;
}

static void verdict(struct planner *pl, size_t mi, struct sync_verdict *v)
{
	const struct mbx_work *m = &pl->mb[mi];
	bool empty[2] = { m->nitems[SYNC_LOCAL] == 0, m->nitems[SYNC_REMOTE] == 0 };

	v->mailbox = m->m->id;
	v->name = m->m->remote_name;
	v->would_delete = m->ndelete;
	v->total = m->total;
	if (empty[SYNC_LOCAL] != empty[SYNC_REMOTE])
		v->reason = arena_printf(pl->a, "the %s mailbox is empty; deleting %zu of %zu messages on the %s side needs --force",
					 empty[SYNC_LOCAL] ? "local" : "remote", m->ndelete, m->total,
					 empty[SYNC_LOCAL] ? "remote" : "local");
	else
		v->reason = arena_printf(pl->a, "would delete %zu of %zu messages (more than %u%%)",
					 m->ndelete, m->total, pl->pol->safety_max_delete);
}

static void emit_expunge(struct planner *pl, size_t mi)
{
	size_t n = 0, k = 0;
	uint32_t *uids;
	struct sync_action *act;

	for (size_t i = 0; i < pl->ndels; i++)
		n += pl->dels[i].mbox == mi && pl->dels[i].side == SYNC_REMOTE;
	if (n == 0)
		return;
	uids = ARENA_NEW_ARRAY(pl->a, uint32_t, n);
	for (size_t i = 0; i < pl->ndels; i++)
		if (pl->dels[i].mbox == mi && pl->dels[i].side == SYNC_REMOTE)
			uids[k++] = pl->dels[i].w->it[SYNC_REMOTE]->uid;
	act = emit(pl, PH_DELETE, SYNC_ACT_EXPUNGE_REMOTE, mi);
	act->uids = uids;
	act->nuids = n;
	for (size_t i = 0; i < pl->ndels; i++)
		if (pl->dels[i].mbox == mi && pl->dels[i].side == SYNC_REMOTE)
			attach_rec(emit(pl, PH_DELETE, SYNC_ACT_RECORD, mi), SYNC_REC_DEL,
				   pl->dels[i].w, NULL);
}

static void emit_deletions(struct planner *pl)
{
	size_t nv = 0;

	pl->p->verdicts = ARENA_NEW_ARRAY(pl->a, struct sync_verdict, pl->nmb ? pl->nmb : 1);
	for (size_t mi = 0; mi < pl->nmb; mi++) {
		if (pl->mb[mi].ndelete == 0)
			continue;
		if (safety_trips(pl, &pl->mb[mi])) {
			verdict(pl, mi, &pl->p->verdicts[nv++]);
			continue;
		}
		emit_expunge(pl, mi);
		for (size_t i = 0; i < pl->ndels; i++) {
			const struct del_cand *d = &pl->dels[i];
			struct sync_action *act;

			if (d->mbox != mi || d->side != SYNC_LOCAL)
				continue;
			act = emit(pl, PH_DELETE, SYNC_ACT_DELETE_LOCAL, mi);
			act->name = d->w->it[SYNC_LOCAL]->name;
			attach_rec(act, SYNC_REC_DEL, d->w, NULL);
		}
	}
	pl->p->nverdicts = nv;
}

/* ---------------------------------------------------------------- remote flag batches */

static int cmp_fop(const void *a, const void *b)
{
	const struct flag_op *x = a, *y = b;
	int c;

	if (x->mbox != y->mbox)
		return x->mbox < y->mbox ? -1 : 1;
	if ((c = flags_cmp(&x->add, &y->add)) != 0)
		return c;
	if ((c = flags_cmp(&x->remove, &y->remove)) != 0)
		return c;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static bool same_batch(const struct flag_op *x, const struct flag_op *y)
{
	return x->mbox == y->mbox && flags_cmp(&x->add, &y->add) == 0 &&
	       flags_cmp(&x->remove, &y->remove) == 0;
}

static void emit_flag_batches(struct planner *pl)
{
	if (pl->nfops > 1)
		qsort(pl->fops, pl->nfops, sizeof(*pl->fops), cmp_fop);
	for (size_t i = 0; i < pl->nfops;) {
		size_t j = i;
		uint32_t *uids;
		struct sync_action *act;

		while (j < pl->nfops && same_batch(&pl->fops[i], &pl->fops[j]))
			j++;
		uids = ARENA_NEW_ARRAY(pl->a, uint32_t, j - i);
		for (size_t k = i; k < j; k++)
			uids[k - i] = pl->fops[k].uid;
		act = emit(pl, PH_FLAGS_REMOTE, SYNC_ACT_FLAGS_REMOTE, pl->fops[i].mbox);
		act->uids = uids;
		act->nuids = j - i;
		act->add = pl->fops[i].add;
		act->remove = pl->fops[i].remove;
		i = j;
	}
}

/* ---------------------------------------------------------------- driver */

static int setup_mailboxes(struct planner *pl, struct err *e)
{
	pl->nmb = pl->in->nmailboxes;
	pl->mb = xcalloc(pl->nmb + 1, sizeof(*pl->mb));
	for (size_t i = 0; i < pl->nmb; i++) {
		const struct sync_mailbox *m = &pl->in->mailboxes[i];

		for (size_t j = 0; j < i; j++)
			if (pl->mb[j].m->id == m->id)
				return err_set(e, ERR_STATE, "duplicate mailbox id %u", m->id);
		pl->mb[i].m = m;
		pl->mb[i].reset = m->remote_exists && m->uidvalidity_base && m->uidvalidity_now &&
				  m->uidvalidity_base != m->uidvalidity_now;
		if (pl->mb[i].reset && m->remote_delta)
			return err_set(e, ERR_STATE, "delta listing of \"%s\" after a uidvalidity change",
				       m->remote_name);
	}
	return 0;
}

static void concat_phases(struct planner *pl)
{
	size_t n = 0, k = 0;

	for (int i = 0; i < PH_COUNT; i++)
		n += pl->ph[i].n;
	pl->p->actions = ARENA_NEW_ARRAY(pl->a, struct sync_action, n ? n : 1);
	for (int i = 0; i < PH_COUNT; i++) {
		if (pl->ph[i].n)
			memcpy(&pl->p->actions[k], pl->ph[i].v, pl->ph[i].n * sizeof(struct sync_action));
		k += pl->ph[i].n;
	}
	pl->p->nactions = n;
}

static int plan_run(struct planner *pl, struct err *e)
{
	if (setup_mailboxes(pl, e) < 0)
		return -1;
	for (size_t i = 0; i < pl->nmb; i++)
		collect_items(pl, i);
	if (index_items(pl, SYNC_LOCAL, e) < 0 || index_items(pl, SYNC_REMOTE, e) < 0 ||
	    claim_records(pl, e) < 0)
		return -1;
	request_fps(pl);
	if (pl->p->nfp_requests)
		return 0;
	match_moves(pl);
	match_one_sided(pl);
	match_new(pl, true);
	match_new(pl, false);
	count_leaving(pl);
	for (size_t i = 0; i < pl->nmb; i++)
		decide_folders(pl, i);
	for (size_t i = 0; i < pl->nrecs; i++)
		decide_record(pl, &pl->recs[i]);
	decide_new(pl);
	emit_deletions(pl);
	emit_flag_batches(pl);
	for (size_t i = 0; i < pl->nmb; i++)
		mailbox_state(pl, i);
	concat_phases(pl);
	return 0;
}

static void planner_free(struct planner *pl)
{
	for (int s = 0; s < 2; s++) {
		free(pl->items[s].v);
		free(pl->items[s].by_fp);
		free(pl->items[s].by_name);
	}
	for (int i = 0; i < PH_COUNT; i++)
		free(pl->ph[i].v);
	free(pl->mb);
	free(pl->recs);
	free(pl->fops);
	free(pl->dels);
}

void sync_plan_init(struct sync_plan *p)
{
	memset(p, 0, sizeof(*p));
	arena_init(&p->arena, 16384);
}

void sync_plan_release(struct sync_plan *p)
{
	arena_release(&p->arena);
	memset(p, 0, sizeof(*p));
	arena_init(&p->arena, 16384);
}

int sync_plan_build(struct sync_plan *p, const struct sync_input *in, struct err *e)
{
	struct planner pl;
	int rc;

	sync_plan_release(p);
	memset(&pl, 0, sizeof(pl));
	pl.in = in;
	pl.pol = &in->policy;
	pl.a = &p->arena;
	pl.p = p;
	rc = plan_run(&pl, e);
	planner_free(&pl);
	if (rc < 0)
		sync_plan_release(p);
	return rc;
}

const char *sync_action_kind_name(enum sync_action_kind kind)
{
	static const char *const names[SYNC_ACT_KIND_COUNT] = {
		[SYNC_ACT_CREATE_FOLDER] = "create-folder",
		[SYNC_ACT_DOWNLOAD] = "download",
		[SYNC_ACT_UPLOAD] = "upload",
		[SYNC_ACT_FLAGS_REMOTE] = "flags-remote",
		[SYNC_ACT_FLAGS_LOCAL] = "flags-local",
		[SYNC_ACT_MOVE_REMOTE] = "move-remote",
		[SYNC_ACT_MOVE_LOCAL] = "move-local",
		[SYNC_ACT_RECORD] = "record",
		[SYNC_ACT_EXPUNGE_REMOTE] = "expunge-remote",
		[SYNC_ACT_DELETE_LOCAL] = "delete-local",
		[SYNC_ACT_DELETE_FOLDER] = "delete-folder",
		[SYNC_ACT_MAILBOX_STATE] = "mailbox-state",
	};

	return (unsigned)kind < SYNC_ACT_KIND_COUNT ? names[kind] : "unknown";
}

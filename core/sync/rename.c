/*
 * rename.c - folder renames found from the pairs of a run (rename.h).
 * Pure: no I/O.
 */
#include "rename.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { SIDE_L = SYNC_LOCAL, SIDE_R = SYNC_REMOTE };

/* Per box. */
struct rbox {
	const struct sync_rename_box *b;
	bool known;
	size_t *recs;                   /* indexes into in->records */
	size_t nrecs;
	long match[2];                  /* known: the fresh box taken on that side, or -1 */
	bool partial[2];
	bool taken;                     /* fresh: absorbed */
	bool in_result;
	/* fresh: sorted look-up tables, built on first need */
	bool sorted;
	const struct sync_remote_msg **by_uid, **by_fp;
	size_t nby_fp;
	const char **names;
};

struct work {
	const struct sync_rename_input *in;
	struct arena *a;
	struct rbox *rb;
	size_t n;
};

struct cand {
	size_t p, q;
	unsigned sides;                 /* 1 << side */
	long score;
};

static const char *side_name(const struct sync_rename_box *b, int s)
{
	return s == SIDE_L ? b->local_name : b->remote_name;
}

static bool side_exists(const struct sync_rename_box *b, int s)
{
	return s == SIDE_L ? b->local_exists : b->remote_exists;
}

static bool vanished(const struct sync_rename_box *b, int s)
{
	return s == SIDE_L ? b->local_existed && !b->local_exists
			   : b->remote_existed && !b->remote_exists;
}

static bool is_inbox(const char *name)
{
	return name != NULL && strcasecmp(name, "INBOX") == 0;
}

/* ---------------------------------------------------------------- look-up tables */

static int cmp_uid(const void *x, const void *y)
{
	uint32_t a = (*(const struct sync_remote_msg *const *)x)->uid;
	uint32_t b = (*(const struct sync_remote_msg *const *)y)->uid;

	return a < b ? -1 : a > b;
}

static int cmp_fp(const void *x, const void *y)
{
	return memcmp((*(const struct sync_remote_msg *const *)x)->fp.bytes,
		      (*(const struct sync_remote_msg *const *)y)->fp.bytes, SYNC_FP_LEN);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void build_tables(struct work *w, struct rbox *q)
{
	const struct sync_rename_box *b = q->b;

	if (q->sorted)
		return;
	q->sorted = true;
	q->by_uid = arena_alloc(w->a, (b->nremote + 1) * sizeof(*q->by_uid));
	q->by_fp = arena_alloc(w->a, (b->nremote + 1) * sizeof(*q->by_fp));
	for (size_t i = 0; i < b->nremote; i++) {
		q->by_uid[i] = &b->remote[i];
		if (b->remote[i].fp.state == SYNC_FP_KNOWN)
			q->by_fp[q->nby_fp++] = &b->remote[i];
	}
	if (b->nremote > 1)
		qsort(q->by_uid, b->nremote, sizeof(*q->by_uid), cmp_uid);
	if (q->nby_fp > 1)
		qsort(q->by_fp, q->nby_fp, sizeof(*q->by_fp), cmp_fp);
	q->names = arena_alloc(w->a, (b->nlocal + 1) * sizeof(*q->names));
	for (size_t i = 0; i < b->nlocal; i++)
		q->names[i] = b->local[i].name;
	if (b->nlocal > 1)
		qsort(q->names, b->nlocal, sizeof(*q->names), cmp_str);
}

static const struct sync_remote_msg *find_uid(const struct rbox *q, uint32_t uid)
{
	struct sync_remote_msg key = { .uid = uid };
	const struct sync_remote_msg *kp = &key, *const *hit;

	if (q->b->nremote == 0)
		return NULL;
	hit = bsearch(&kp, q->by_uid, q->b->nremote, sizeof(*q->by_uid), cmp_uid);
	return hit ? *hit : NULL;
}

static bool has_fp(const struct rbox *q, const struct sync_fp *fp)
{
	struct sync_remote_msg key;
	const struct sync_remote_msg *kp = &key;

	if (q->nby_fp == 0 || fp->state != SYNC_FP_KNOWN)
		return false;
	memcpy(key.fp.bytes, fp->bytes, SYNC_FP_LEN);
	return bsearch(&kp, q->by_fp, q->nby_fp, sizeof(*q->by_fp), cmp_fp) != NULL;
}

static bool has_name(const struct rbox *q, const char *name)
{
	if (q->b->nlocal == 0)
		return false;
	return bsearch(&name, q->names, q->b->nlocal, sizeof(*q->names), cmp_str) != NULL;
}

/* ---------------------------------------------------------------- evidence */

static bool hinted(const struct work *w, const struct rbox *p, const struct rbox *q, int s)
{
	for (size_t i = 0; i < w->in->nhints; i++) {
		const struct sync_rename_hint *h = &w->in->hints[i];

		if (h->from == p->b->id && (s == SIDE_L ? h->into_local : h->into_remote) == q->b->id)
			return true;
	}
	return false;
}

static bool remote_found(const struct rbox *p, const struct rbox *q, const struct sync_record *r)
{
	const struct sync_rename_box *pb = p->b, *qb = q->b;

	if (qb->uidvalidity_now != 0 && qb->uidvalidity_now == pb->uidvalidity_base) {
		const struct sync_remote_msg *m = find_uid(q, r->uid);

		if (m != NULL && !(r->size && m->size && r->size != m->size) &&
		    !(r->fp.state == SYNC_FP_KNOWN && m->fp.state == SYNC_FP_KNOWN &&
		      memcmp(r->fp.bytes, m->fp.bytes, SYNC_FP_LEN) != 0))
			return true;
	}
	return has_fp(q, &r->fp);
}

/*
 * How many of p's messages on side s are in fresh q's folder there, or -1
 * when q cannot be p's renamed folder on that side.  `structural`: p's
 * parent was renamed to q's parent on this side.
 */
static long side_score(struct work *w, struct rbox *p, struct rbox *q, int s, bool structural,
		       bool *partial_out)
{
	size_t n = 0, found = 0;
	bool evidence;

	*partial_out = false;
	if (!vanished(p->b, s) || !side_exists(q->b, s) || is_inbox(side_name(p->b, s)) ||
	    is_inbox(side_name(q->b, s)))
		return -1;
	build_tables(w, q);
	for (size_t i = 0; i < p->nrecs; i++) {
		const struct sync_record *r = &w->in->records[p->recs[i]];

		if (s == SIDE_R ? r->uid == 0 : r->name == NULL)
			continue;
		n++;
		if (s == SIDE_R ? remote_found(p, q, r) : has_name(q, r->name))
			found++;
	}
	evidence = structural || hinted(w, p, q, s);
	if (s == SIDE_R)
		evidence |= q->b->uidvalidity_now != 0 && q->b->uidvalidity_now == p->b->uidvalidity_base;
	else
		evidence |= q->b->dir_ino != 0 && q->b->dir_ino == p->b->dir_ino &&
			    q->b->dir_dev == p->b->dir_dev;
	if (n > 0 && found >= 1 && 2 * found >= n) {
		*partial_out = found < n;
		return (long)found;
	}
	if (n == 0 && evidence)
		return 0;
	if (n > 0 && hinted(w, p, q, s)) {
		*partial_out = true;    /* decided by a killed run; what is missing is refilled */
		return 0;
	}
	return -1;
}

/* The candidate p -> q, or false.  q existing on both sides needs both. */
static bool candidate(struct work *w, size_t pi, size_t qi, bool structural, struct cand *c)
{
	struct rbox *p = &w->rb[pi], *q = &w->rb[qi];
	bool part[2] = { false, false };
	long sc[2] = { -1, -1 };

	if (!p->known || q->known || q->taken)
		return false;
	for (int s = 0; s < 2; s++)
		if (side_exists(q->b, s))
			sc[s] = p->match[s] >= 0 ? -1 : side_score(w, p, q, s, structural, &part[s]);
	c->p = pi;
	c->q = qi;
	c->sides = 0;
	c->score = 0;
	for (int s = 0; s < 2; s++) {
		if (!side_exists(q->b, s))
			continue;
		if (sc[s] < 0)
			return false;
		c->sides |= 1u << s;
		c->score += sc[s];
	}
	return c->sides != 0;
}

static void take(struct work *w, const struct cand *c)
{
	struct rbox *p = &w->rb[c->p], *q = &w->rb[c->q];

	for (int s = 0; s < 2; s++)
		if (c->sides & (1u << s)) {
			bool part;

			(void)side_score(w, p, q, s, true, &part);
			p->match[s] = (long)c->q;
			p->partial[s] = part;
		}
	q->taken = true;
}

static int cmp_cand(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	if (a->p != b->p)
		return a->p < b->p ? -1 : 1;
	return a->q < b->q ? -1 : a->q > b->q;
}

/* Matches by the folders' contents (and hints), best first. */
static void match_by_content(struct work *w)
{
	size_t nv = 0, nf = 0, nc = 0;
	struct cand *c;

	for (size_t i = 0; i < w->n; i++) {
		nv += w->rb[i].known;
		nf += !w->rb[i].known;
	}
	c = arena_alloc(w->a, (nv * nf + 1) * sizeof(*c));

	for (size_t pi = 0; pi < w->n; pi++) {
		if (!w->rb[pi].known || !(vanished(w->rb[pi].b, SIDE_L) || vanished(w->rb[pi].b, SIDE_R)))
			continue;
		for (size_t qi = 0; qi < w->n; qi++)
			if (candidate(w, pi, qi, false, &c[nc]))
				nc++;
	}
	if (nc > 1)
		qsort(c, nc, sizeof(*c), cmp_cand);
	for (size_t i = 0; i < nc; i++) {
		struct rbox *p = &w->rb[c[i].p];
		bool free_sides = true;

		for (int s = 0; s < 2; s++)
			if ((c[i].sides & (1u << s)) && p->match[s] >= 0)
				free_sides = false;
		if (free_sides && !w->rb[c[i].q].taken)
			take(w, &c[i]);
	}
}

/* `name` is `prefix` SEP rest: returns rest, else NULL. */
static const char *below(const char *name, const char *prefix, char sep)
{
	size_t n = strlen(prefix);

	if (sep == '\0' || strncmp(name, prefix, n) != 0 || name[n] != sep)
		return NULL;
	return name + n + 1;
}

static long fresh_named(const struct work *w, int s, const char *name)
{
	for (size_t i = 0; i < w->n; i++)
		if (!w->rb[i].known && !w->rb[i].taken && side_exists(w->rb[i].b, s) &&
		    strcmp(side_name(w->rb[i].b, s), name) == 0)
			return (long)i;
	return -1;
}

/* Children of a folder renamed on a side, empty or not, follow it there. */
static void match_by_parent(struct work *w)
{
	bool changed = true;

	for (size_t round = 0; changed && round <= w->n; round++) {
		changed = false;
		for (size_t pi = 0; pi < w->n; pi++) {
			struct rbox *p = &w->rb[pi];

			for (int s = 0; s < 2; s++) {
				const char *x, *y;

				if (!p->known || p->match[s] < 0)
					continue;
				x = side_name(p->b, s);
				y = side_name(w->rb[p->match[s]].b, s);
				for (size_t ci = 0; ci < w->n; ci++) {
					struct rbox *ch = &w->rb[ci];
					const char *rest;
					char *target;
					long qi;
					struct cand c;

					if (!ch->known || ch->match[s] >= 0 || !vanished(ch->b, s) ||
					    (rest = below(side_name(ch->b, s), x, w->in->sep)) == NULL)
						continue;
					target = arena_printf(w->a, "%s%c%s", y, w->in->sep, rest);
					qi = fresh_named(w, s, target);
					if (qi >= 0 && candidate(w, ci, (size_t)qi, true, &c)) {
						take(w, &c);
						changed = true;
					}
				}
			}
		}
	}
}

/* ---------------------------------------------------------------- results */

static bool name_taken(const struct work *w, int s, const char *name, size_t except1, long except2)
{
	if (is_inbox(name))
		return true;
	for (size_t i = 0; i < w->n; i++) {
		if (i == except1 || (long)i == except2)
			continue;
		if (side_exists(w->rb[i].b, s) && strcmp(side_name(w->rb[i].b, s), name) == 0)
			return true;
	}
	return false;
}

static void result_of(struct work *w, size_t pi, struct sync_rename *r)
{
	struct rbox *p = &w->rb[pi];
	const struct sync_rename_box *pb = p->b;
	const struct sync_rename_box *qr = p->match[SIDE_R] >= 0 ? w->rb[p->match[SIDE_R]].b : NULL;
	const struct sync_rename_box *ql = p->match[SIDE_L] >= 0 ? w->rb[p->match[SIDE_L]].b : NULL;

	memset(r, 0, sizeof(*r));
	r->from = pb->id;
	r->into_remote = qr ? qr->id : 0;
	r->into_local = ql ? ql->id : 0;
	r->remote_cur = qr ? qr->remote_name : pb->remote_name;
	r->local_cur = ql ? ql->local_name : pb->local_name;
	r->remote_partial = p->partial[SIDE_R];
	r->local_partial = p->partial[SIDE_L];
	if (qr != NULL) {
		/* renamed on the server (maybe on both sides): its name wins */
		r->remote_new = r->remote_cur;
		r->local_new = qr->local_name;
		if (ql == NULL && strcmp(pb->local_name, pb->remote_name) != 0) {
			r->local_new = r->local_cur;    /* paired under another name: kept */
		} else if (ql == NULL && !pb->local_exists) {
			r->local_cur = r->local_new;    /* nothing on disk to rename */
		} else if (strcmp(r->local_cur, r->local_new) != 0) {
			if (name_taken(w, SIDE_L, r->local_new, pi, p->match[SIDE_L]))
				r->local_new = r->local_cur;
			else
				r->rename_local = true;
		}
	} else {
		/* renamed locally */
		r->local_new = r->local_cur;
		r->remote_new = ql->remote_name;
		if (pb->remote_exists && strcmp(pb->local_name, pb->remote_name) != 0) {
			r->remote_new = r->remote_cur;  /* paired under another name: kept */
		} else if (!pb->remote_exists) {
			r->remote_cur = r->remote_new;
		} else if (strcmp(r->remote_cur, r->remote_new) != 0) {
			if (name_taken(w, SIDE_R, r->remote_new, pi, -1))
				r->remote_new = r->remote_cur;
			else
				r->rename_remote = true;
		}
	}
	r->deferred = (r->rename_remote && w->in->direction == SYNC_PULL) ||
		      (r->rename_local && w->in->direction == SYNC_PUSH);
	p->in_result = true;
}

static size_t depth(const char *name, char sep)
{
	size_t d = 0;

	for (const char *c = name; sep != '\0' && *c; c++)
		d += *c == sep;
	return d;
}

/* Insertion sort by depth of the final remote name, stable (few renames). */
static void sort_results(struct sync_rename *v, size_t n, char sep)
{
	for (size_t i = 1; i < n; i++) {
		struct sync_rename x = v[i];
		size_t j = i;

		while (j > 0 && depth(v[j - 1].remote_new, sep) > depth(x.remote_new, sep)) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

/* Pairs below a mailbox renamed on the server by this list follow it. */
static size_t follow_parents(struct work *w, struct sync_rename *v, size_t n)
{
	char sep = w->in->sep;
	size_t n0 = n;

	for (size_t i = 0; i < n0; i++) {
		const char *x = v[i].remote_cur, *y = v[i].remote_new;

		if (!v[i].rename_remote || v[i].deferred)
			continue;
		for (size_t k = 0; k < n; k++) {
			const char *rest = k == i ? NULL : below(v[k].remote_cur, x, sep);

			if (rest != NULL && v[k].rename_remote &&
			    strcmp(v[k].remote_new, arena_printf(w->a, "%s%c%s", y, sep, rest)) == 0)
				v[k].remote_by_parent = true;
		}
		for (size_t ci = 0; ci < w->n; ci++) {
			struct rbox *ch = &w->rb[ci];
			const struct sync_rename_box *cb = ch->b;
			struct sync_rename *r;
			const char *rest;

			if (!ch->known || ch->in_result || !cb->remote_exists ||
			    (rest = below(cb->remote_name, x, sep)) == NULL)
				continue;
			r = &v[n++];
			memset(r, 0, sizeof(*r));
			r->from = cb->id;
			r->remote_cur = cb->remote_name;
			r->remote_new = arena_printf(w->a, "%s%c%s", y, sep, rest);
			r->rename_remote = true;
			r->remote_by_parent = true;
			r->local_cur = r->local_new = cb->local_name;
			if (cb->local_exists && strcmp(cb->local_name, cb->remote_name) == 0 &&
			    w->in->direction != SYNC_PUSH &&
			    !name_taken(w, SIDE_L, r->remote_new, ci, -1)) {
				r->local_new = r->remote_new;
				r->rename_local = true;
			}
			ch->in_result = true;
		}
	}
	return n;
}

struct box_id {
	uint32_t id;
	size_t idx;
};

static int cmp_box_id(const void *x, const void *y)
{
	uint32_t a = ((const struct box_id *)x)->id, b = ((const struct box_id *)y)->id;

	return a < b ? -1 : a > b;
}

static long box_of(const struct box_id *ids, size_t n, uint32_t id)
{
	struct box_id key = { id, 0 };
	const struct box_id *hit = n ? bsearch(&key, ids, n, sizeof(*ids), cmp_box_id) : NULL;

	return hit ? (long)hit->idx : -1;
}

void sync_renames_find(const struct sync_rename_input *in, struct arena *a,
		       struct sync_rename **out, size_t *n_out)
{
	struct work w = { in, a, NULL, in->nboxes };
	struct box_id *ids;
	struct sync_rename *v;
	size_t n = 0;

	*out = NULL;
	*n_out = 0;
	w.rb = arena_zalloc(a, (in->nboxes + 1) * sizeof(*w.rb));
	for (size_t i = 0; i < in->nboxes; i++) {
		w.rb[i].b = &in->boxes[i];
		w.rb[i].match[0] = w.rb[i].match[1] = -1;
	}
	/* records per box (counted, then placed) */
	ids = arena_alloc(a, (in->nboxes + 1) * sizeof(*ids));
	for (size_t i = 0; i < in->nboxes; i++) {
		ids[i].id = in->boxes[i].id;
		ids[i].idx = i;
	}
	if (in->nboxes > 1)
		qsort(ids, in->nboxes, sizeof(*ids), cmp_box_id);
	for (size_t r = 0; r < in->nrecords; r++) {
		long i = box_of(ids, in->nboxes, in->records[r].mailbox);

		if (i >= 0)
			w.rb[i].nrecs++;
	}
	for (size_t i = 0; i < in->nboxes; i++) {
		const struct sync_rename_box *b = &in->boxes[i];

		w.rb[i].recs = arena_alloc(a, (w.rb[i].nrecs + 1) * sizeof(size_t));
		w.rb[i].known = w.rb[i].nrecs > 0 || b->remote_existed || b->local_existed;
		w.rb[i].nrecs = 0;
	}
	for (size_t r = 0; r < in->nrecords; r++) {
		long i = box_of(ids, in->nboxes, in->records[r].mailbox);

		if (i >= 0)
			w.rb[i].recs[w.rb[i].nrecs++] = r;
	}
	match_by_content(&w);
	match_by_parent(&w);
	v = arena_zalloc(a, (2 * in->nboxes + 1) * sizeof(*v));
	for (size_t i = 0; i < in->nboxes; i++)
		if (w.rb[i].known && (w.rb[i].match[0] >= 0 || w.rb[i].match[1] >= 0))
			result_of(&w, i, &v[n++]);
	sort_results(v, n, in->sep);
	n = follow_parents(&w, v, n);
	sort_results(v, n, in->sep);
	*out = v;
	*n_out = n;
}

/*
 * remote_scan.c - change detection (sync_remote_scan): QRESYNC, CONDSTORE
 * with an expunge check by UID SEARCH, or a complete listing.
 *
 * Expunge check without QRESYNC (the choice documented in remote.h):
 * "UID SEARCH UID 1:maxknown" (with ESEARCH: RETURN (ALL), answered as
 * compact ranges) lists the UIDs up to the highest known one that still
 * exist; every known UID not among them vanished.  No flags are listed.
 */
#include "remote_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cmp.h"
#include "imap/cmd.h"
#include "xalloc.h"

#define SCAN_MAX_RANGES 4000000u        /* ranges in one VANISHED / ESEARCH answer */
#define SCAN_MAX_MSGS 10000000u         /* messages in one listing */
#define KNOWN_UIDS_MAX 65536u           /* QRESYNC known-uids parameter, bytes */

struct scan_entry {
	struct sync_remote_msg m;
	size_t seq;                     /* arrival order: the later response wins */
	bool have_flags, have_size;
};

struct scan_ctx {
	struct sync_remote *r;
	struct arena *a;
	const struct sync_remote_known *known;
	struct scan_entry *ents;
	size_t n, cap;
	bool *gone;                     /* [known->nuids]: vanished */
	bool *present;                  /* [known->nuids]: seen by the expunge check */
	bool size_pass;                 /* only sizes are taken from FETCH */
	uint32_t uid_min;               /* FETCH of UIDs below this is ignored */
	/* A scan ahead's SELECT: nothing is taken before the server reached it. */
	const struct remote_selecting *gate;
	/*
	 * "* OK [CLOSED]" (RFC 7162 3.2.11): what came before it was the
	 * previous mailbox's.  A FETCH or VANISHED taken before a [CLOSED]
	 * that then arrives was not this mailbox's: the listing is redone.
	 */
	bool closed_seen, took_before_closed, misattributed;
	/* Messages the server said it removed (EXPUNGE, VANISHED) while listing. */
	uint64_t removed;
};

static struct scan_entry *entry_for(struct scan_ctx *sc, uint32_t uid)
{
	/* Entries arrive mostly ascending; look from the end first. */
	size_t i;

	for (i = sc->n; i > 0 && i + 8 > sc->n; i--)
		if (sc->ents[i - 1].m.uid == uid)
			return &sc->ents[i - 1];
	if (sc->n == sc->cap)
		sc->ents = xgrow(sc->ents, &sc->cap, sc->n + 1, sizeof(*sc->ents));
	memset(&sc->ents[sc->n], 0, sizeof(sc->ents[0]));
	sc->ents[sc->n].m.uid = uid;
	sc->ents[sc->n].seq = sc->n;
	return &sc->ents[sc->n++];
}

static int scan_fetch(struct scan_ctx *sc, const struct imap_resp *resp, struct err *e)
{
	const struct imap_arg *list = &resp->args[0];
	const struct imap_arg *flags = imap_fetch_item(list, "FLAGS");
	const struct imap_arg *size = imap_fetch_item(list, "RFC822.SIZE");
	uint32_t uid = remote_fetch_uid(resp);
	struct scan_entry *x;
	uint64_t sz;

	if (uid == 0 || uid < sc->uid_min)
		return 1;           /* without UID, or "n:*" answered with a lower UID */
	if (sc->n >= SCAN_MAX_MSGS)
		return err_set(e, ERR_LIMIT, "mailbox listing longer than %u messages", SCAN_MAX_MSGS);
	if (sc->size_pass) {
		/* The entries are sorted by UID now (fetch_sizes); size every copy of uid. */
		size_t lo = 0, hi = sc->n;

		if (size == NULL || !imap_arg_u64(size, &sz))
			return size ? err_set(e, ERR_PROTO, "server sent a malformed RFC822.SIZE") : 1;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (sc->ents[mid].m.uid < uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < sc->n && sc->ents[lo].m.uid == uid; lo++) {
			sc->ents[lo].m.size = sz;
			sc->ents[lo].have_size = true;
		}
		return 1;
	} else {
		x = entry_for(sc, uid);
	}
	if (flags) {
		if (remote_parse_flags(flags, sc->a, &x->m.flags, e) < 0)
			return -1;
		x->have_flags = true;
	}
	if (size) {
		if (!imap_arg_u64(size, &sz))
			return err_set(e, ERR_PROTO, "server sent a malformed RFC822.SIZE");
		x->m.size = sz;
		x->have_size = true;
	}
	return 1;
}

/* Index of uid among the known UIDs, or SIZE_MAX. */
static size_t known_index(const struct sync_remote_known *k, uint32_t uid)
{
	size_t lo = 0, hi = k->nuids;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->uids[mid] == uid)
			return mid;
		if (k->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

/* Mark the known UIDs inside a UID set string in mark[]. */
static int mark_set(struct scan_ctx *sc, const char *s, size_t len, bool *mark, struct err *e)
{
	const struct sync_remote_known *k = sc->known;
	struct imap_seq_range *rg = NULL;
	size_t nrg, i;

	if (k == NULL || k->nuids == 0)
		return 0;
	if (imap_seqset_parse(s, len, k->uids[k->nuids - 1], SCAN_MAX_RANGES, &rg, &nrg, e) < 0)
		return -1;
	for (i = 0; i < nrg; i++) {
		/* First known UID >= first, then walk while <= last. */
		size_t lo = 0, hi = k->nuids;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (k->uids[mid] < rg[i].first)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < k->nuids && k->uids[lo] <= rg[i].last; lo++)
			mark[lo] = true;
	}
	free(rg);
	return 0;
}

/* How many UIDs a VANISHED set names (ranges may count UIDs never used). */
static int count_set(const char *s, size_t len, uint64_t *n_out, struct err *e)
{
	struct imap_seq_range *rg = NULL;
	size_t nrg;

	if (imap_seqset_parse(s, len, UINT32_MAX, SCAN_MAX_RANGES, &rg, &nrg, e) < 0)
		return -1;
	for (size_t i = 0; i < nrg; i++)
		*n_out += (uint64_t)rg[i].last - rg[i].first + 1;
	free(rg);
	return 0;
}

static int scan_vanished(struct scan_ctx *sc, const struct imap_resp *resp, struct err *e)
{
	const struct imap_arg *set = &resp->args[resp->nargs - 1];
	const char *s;
	size_t len;

	if (resp->nargs < 1 || resp->nargs > 2 || (s = imap_arg_str(set, &len)) == NULL)
		return err_set(e, ERR_PROTO, "server sent a malformed VANISHED response");
	if (resp->nargs == 1 && count_set(s, len, &sc->removed, e) < 0)
		return -1;      /* not (EARLIER): removed now, during the listing */
	return mark_set(sc, s, len, sc->gone, e) < 0 ? -1 : 1;
}

static int scan_untagged(void *ctx, const struct imap_resp *resp, struct err *e)
{
	struct scan_ctx *sc = ctx;

	if (resp->kind != IMAP_RESP_UNTAGGED || resp->name == NULL ||
	    (sc->gate != NULL && !remote_selecting_reached(sc->gate)))
		return 0;
	if (resp->code != NULL && strcmp(resp->code, "CLOSED") == 0) {
		sc->misattributed = sc->misattributed || sc->took_before_closed;
		sc->closed_seen = true;
		return 0;
	}
	if (strcmp(resp->name, "FETCH") == 0 && resp->nargs == 1 &&
	    resp->args[0].type == IMAP_ARG_LIST) {
		sc->took_before_closed = sc->took_before_closed || !sc->closed_seen;
		return scan_fetch(sc, resp, e);
	}
	if (strcmp(resp->name, "VANISHED") == 0 && resp->nargs >= 1) {
		sc->took_before_closed = sc->took_before_closed || !sc->closed_seen;
		return scan_vanished(sc, resp, e);
	}
	if (strcmp(resp->name, "EXPUNGE") == 0 && resp->has_number)
		sc->removed++;
	return 0;
}

/* "* SEARCH n n ..." or "* ESEARCH (TAG "x") UID ALL set": the known UIDs still there. */
static int search_untagged(void *ctx, const struct imap_resp *resp, struct err *e)
{
	struct scan_ctx *sc = ctx;
	size_t i, idx;
	uint32_t uid;

	if (resp->kind != IMAP_RESP_UNTAGGED || resp->name == NULL ||
	    (sc->gate != NULL && !remote_selecting_reached(sc->gate)))
		return 0;
	if (strcmp(resp->name, "SEARCH") == 0) {
		for (i = 0; i < resp->nargs; i++) {
			if (!imap_arg_u32(&resp->args[i], &uid))
				return err_set(e, ERR_PROTO, "server sent a malformed SEARCH response");
			if ((idx = known_index(sc->known, uid)) != SIZE_MAX)
				sc->present[idx] = true;
		}
		return 1;
	}
	if (strcmp(resp->name, "ESEARCH") == 0) {
		for (i = 0; i + 1 < resp->nargs; i++) {
			const char *s;
			size_t len;

			if (!imap_arg_is_atom(&resp->args[i], "ALL"))
				continue;
			if ((s = imap_arg_str(&resp->args[i + 1], &len)) == NULL)
				return err_set(e, ERR_PROTO, "server sent a malformed ESEARCH response");
			return mark_set(sc, s, len, sc->present, e) < 0 ? -1 : 1;
		}
		return 1;       /* no ALL: nothing matched */
	}
	return 0;
}

static int run_text(struct sync_remote *r, const char *text, imap_untagged_fn fn, void *ctx,
		    struct err *e)
{
	struct buf b = BUF_INIT(REMOTE_CMD_MAX);
	int rc = buf_adds(&b, text, e) < 0 ? -1 : remote_run(r, &b, fn, ctx, NULL, e);

	buf_release(&b);
	return rc;
}

/* The expunge check of the CONDSTORE method (see the top of the file). */
static int expunge_check(struct scan_ctx *sc, struct err *e)
{
	const struct sync_remote_known *k = sc->known;
	char text[96];
	size_t i;

	if (k->nuids == 0)
		return 0;
	sc->present = xcalloc(k->nuids, sizeof(bool));
	snprintf(text, sizeof(text), "UID SEARCH %sUID 1:%u",
		 sc->r->caps.esearch ? "RETURN (ALL) " : "", k->uids[k->nuids - 1]);
	if (run_text(sc->r, text, search_untagged, sc, e) < 0)
		return -1;
	for (i = 0; i < k->nuids; i++)
		if (!sc->present[i])
			sc->gone[i] = true;
	return 0;
}

static void reset_entries(struct scan_ctx *sc)
{
	sc->n = 0;
	if (sc->gone && sc->known)
		memset(sc->gone, 0, sc->known->nuids * sizeof(bool));
}

/* By UID, then arrival (duplicates stay in the order they came). */
static int cmp_entry(const void *a, const void *b)
{
	const struct scan_entry *x = a, *y = b;

	if (x->m.uid != y->m.uid)
		return x->m.uid < y->m.uid ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * UID FETCH of RFC822.SIZE for the entries that lack it (QRESYNC's changes
 * carry none; sizes_from_known() first takes the recorded ones).
 */
static int fetch_sizes(struct scan_ctx *sc, struct err *e)
{
	uint32_t *uids = NULL;
	size_t i, n = 0;
	int rc;

	for (i = 0; i < sc->n; i++)
		if (!sc->ents[i].have_size)
			n++;
	if (n == 0)
		return 0;
	if (sc->n > 1)
		qsort(sc->ents, sc->n, sizeof(*sc->ents), cmp_entry);
	uids = xmalloc(n * sizeof(*uids));
	for (i = 0, n = 0; i < sc->n; i++)
		if (!sc->ents[i].have_size && (n == 0 || uids[n - 1] != sc->ents[i].m.uid))
			uids[n++] = sc->ents[i].m.uid;
	sc->size_pass = true;
	rc = remote_run_uid_sets(sc->r, "UID FETCH ", " (UID RFC822.SIZE)", uids, n, 0,
				 scan_untagged, sc, e);
	sc->size_pass = false;
	free(uids);
	return rc;
}

/*
 * QRESYNC with known-uids reports changes among those UIDs only (RFC 7162
 * 3.2.5.2); messages that arrived since are fetched by UID range.
 */
static int new_messages(struct scan_ctx *sc, struct err *e)
{
	uint32_t from = sc->known->uidnext ? sc->known->uidnext : 1;
	char text[96];
	int rc;

	if (sc->r->sel.exists == 0 || sc->r->sel.uidnext <= from)
		return 0;
	snprintf(text, sizeof(text), "UID FETCH %u:* (UID FLAGS RFC822.SIZE)", from);
	sc->uid_min = from;
	rc = run_text(sc->r, text, scan_untagged, sc, e);
	sc->uid_min = 0;
	return rc;
}

/* Submit `text` without waiting, answers to fn (*cmd_out: to wait for and free). */
static int submit_text_fn(struct sync_remote *r, const char *text, imap_untagged_fn fn,
			  struct scan_ctx *sc, struct imap_cmd **cmd_out, struct err *e)
{
	struct buf b = BUF_INIT(REMOTE_CMD_MAX);

	*cmd_out = buf_adds(&b, text, e) < 0 ? NULL : remote_submit(r, &b, fn, sc, e);
	buf_release(&b);
	return *cmd_out ? 0 : -1;
}

static int submit_text(struct sync_remote *r, const char *text, struct scan_ctx *sc,
		       struct imap_cmd **cmd_out, struct err *e)
{
	return submit_text_fn(r, text, scan_untagged, sc, cmd_out, e);
}

/*
 * Sizes of the UIDs up to max_known from the records (known->sizes); the
 * rest (not known, or recorded without a size) by fetch_sizes().  A UID's
 * size cannot change (a message is immutable under its UID).
 */
static void take_known_sizes(struct scan_ctx *sc, uint32_t max_known)
{
	const struct sync_remote_known *k = sc->known;
	size_t i, idx;

	for (i = 0; k != NULL && k->sizes != NULL && i < sc->n; i++) {
		struct scan_entry *x = &sc->ents[i];

		if (x->have_size || x->m.uid > max_known ||
		    (idx = known_index(k, x->m.uid)) == SIZE_MAX || k->sizes[idx] == 0)
			continue;
		x->m.size = k->sizes[idx];
		x->have_size = true;
	}
}

static bool sizes_missing(const struct scan_ctx *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		if (!sc->ents[i].have_size)
			return true;
	return false;
}

static int sizes_from_known(struct scan_ctx *sc, uint32_t max_known, struct err *e)
{
	take_known_sizes(sc, max_known);
	return fetch_sizes(sc, e);
}

/*
 * The complete listing.  With the mailbox's records (same UIDVALIDITY, sizes
 * given): "UID FETCH 1:maxknown (UID FLAGS)" and, pipelined, "UID FETCH
 * maxknown+1:4294967295 (UID FLAGS RFC822.SIZE)": sizes are asked only of
 * the new messages, the known ones take the recorded size.  The upper end
 * is the highest UID there can be, not "*": "n:*" above the highest UID
 * still answers the last message, whose size the server may have to read
 * the file for.  Otherwise one "UID FETCH 1:* (UID FLAGS RFC822.SIZE)".
 */
static bool known_listing(const struct sync_remote_known *k)
{
	return k != NULL && k->sizes != NULL && k->nuids > 0;
}

/* The known listing's commands, sent without waiting (cmd[2] to wait for). */
static int submit_known_listing(struct scan_ctx *sc, uint32_t max_known, struct imap_cmd *cmd[2],
				struct err *e)
{
	char text[2][96];
	size_t ncmd = 1;

	cmd[0] = cmd[1] = NULL;
	snprintf(text[0], sizeof(text[0]), "UID FETCH 1:%u (UID FLAGS)", max_known);
	if (max_known < UINT32_MAX) {
		snprintf(text[1], sizeof(text[1]), "UID FETCH %u:%u (UID FLAGS RFC822.SIZE)",
			 max_known + 1, UINT32_MAX);
		ncmd = 2;
	}
	for (size_t i = 0; i < ncmd; i++)
		if (submit_text(sc->r, text[i], sc, &cmd[i], e) < 0)
			return -1;
	return 0;
}

/* Wait for and free the submitted commands; the first error is kept. */
static int wait_cmds(struct sync_remote *r, struct imap_cmd *cmd[2], struct err *e)
{
	struct imap_conn *c = imap_client_conn(r->cl);
	int rc = 0;

	for (size_t i = 0; i < 2; i++) {
		struct err e2;

		if (cmd[i] == NULL)
			continue;
		err_clear(&e2);
		if (imap_conn_wait(c, cmd[i], &e2) < 0 && rc == 0) {
			*e = e2;
			rc = -1;
		}
		imap_cmd_free(cmd[i]);
		cmd[i] = NULL;
	}
	return rc;
}

static int full_listing(struct scan_ctx *sc, bool uidvalidity_changed, struct err *e)
{
	struct imap_cmd *cmd[2];
	struct err e2;
	int rc;

	if (!known_listing(sc->known) || uidvalidity_changed)
		return run_text(sc->r, "UID FETCH 1:* (UID FLAGS RFC822.SIZE)", scan_untagged, sc, e);
	rc = submit_known_listing(sc, sc->known->uids[sc->known->nuids - 1], cmd, e);
	err_clear(&e2);
	if (wait_cmds(sc->r, cmd, &e2) < 0 && rc == 0) {
		*e = e2;
		rc = -1;
	}
	return rc < 0 ? -1 : sizes_from_known(sc, sc->known->uids[sc->known->nuids - 1], e);
}

/*
 * Sorted, deduplicated (the later response wins), into the arena.  A
 * complete listing must hold every message the SELECT counted (EXISTS) but
 * those the server said it removed since: a short one (an Exchange glitch,
 * a broken proxy) would read as the user's expunges and delete local mail.
 */
static int finish_listing(struct scan_ctx *sc, struct sync_remote_listing *out, struct err *e)
{
	const struct sync_remote_known *k = sc->known;
	size_t i, j, nv = 0;

	for (i = 0; i < sc->n; i++)
		sc->ents[i].m.fp.state = SYNC_FP_UNKNOWN;
	if (sc->n > 1)
		qsort(sc->ents, sc->n, sizeof(*sc->ents), cmp_entry);
	out->msgs = sc->n ? arena_alloc(sc->a, sc->n * sizeof(*out->msgs)) : NULL;
	for (i = 0, j = 0; i < sc->n; i++) {
		struct scan_entry *x = &sc->ents[i];

		if (j > 0 && out->msgs[j - 1].uid == x->m.uid) {
			/* Merge: a size-less later entry keeps the earlier size. */
			if (x->have_flags)
				out->msgs[j - 1].flags = x->m.flags;
			if (x->have_size)
				out->msgs[j - 1].size = x->m.size;
			continue;
		}
		/*
		 * Without its size: expunged between the SELECT and the size
		 * FETCH; it shows as vanished next time.  Without flags: only
		 * an unsolicited size, not a listing.
		 */
		if (!x->have_flags || !x->have_size)
			continue;
		out->msgs[j++] = x->m;
	}
	out->nmsgs = j;
	if (out->complete && (uint64_t)j + sc->removed < out->messages)
		return err_set(e, ERR_SERVER, "the server listed %zu messages where it counts %u; "
			       "nothing is deleted on such a listing, the next run looks again",
			       j, out->messages);
	if (out->complete || k == NULL || sc->gone == NULL)
		return 0;
	for (i = 0; i < k->nuids; i++)
		if (sc->gone[i])
			nv++;
	out->vanished = nv ? arena_alloc(sc->a, nv * sizeof(uint32_t)) : NULL;
	for (i = 0, nv = 0; i < k->nuids; i++)
		if (sc->gone[i])
			out->vanished[nv++] = k->uids[i];
	out->nvanished = nv;
	return 0;
}

static int qresync_params(const struct sync_remote_known *k, struct buf *p, struct err *e)
{
	size_t used = 0;
	size_t mark;

	if (buf_addf(p, e, "(QRESYNC (%u %llu", k->uidvalidity,
		     (unsigned long long)k->highestmodseq) < 0)
		return -1;
	if (k->nuids > 0) {
		mark = p->len;
		if (buf_addc(p, ' ', e) < 0 ||
		    imap_seqset_format(k->uids, k->nuids, KNOWN_UIDS_MAX, p, &used, e) < 0)
			return -1;
		if (used < k->nuids)
			buf_truncate(p, mark);  /* too long: the server reports all vanished */
	}
	return buf_adds(p, "))", e);
}

/*
 * The method for `k` on this session and the SELECT's parameters for it
 * (left empty in p when none): QRESYNC with a delta, "(CONDSTORE)" with
 * CONDSTORE (a delta, or a complete listing when nothing is known), else a
 * plain SELECT and a complete listing.
 */
static int scan_params(const struct sync_remote *r, const struct sync_remote_known *k,
		       struct buf *p, enum sync_remote_method *method_out, struct err *e)
{
	bool delta = k && k->uidvalidity != 0 && k->highestmodseq != 0;

	if (r->caps.qresync && delta) {
		*method_out = SYNC_REMOTE_QRESYNC;
		return qresync_params(k, p, e);
	}
	if (r->caps.condstore) {
		*method_out = delta ? SYNC_REMOTE_CONDSTORE : SYNC_REMOTE_FULL;
		return buf_adds(p, "(CONDSTORE)", e);
	}
	*method_out = SYNC_REMOTE_FULL;
	return 0;
}

static int select_for_scan(struct scan_ctx *sc, const char *name, struct sync_remote_listing *out,
			   struct err *e)
{
	struct buf p = BUF_INIT(KNOWN_UIDS_MAX + 128);
	int rc = scan_params(sc->r, sc->known, &p, &out->method, e);

	if (rc == 0)
		rc = remote_select_with(sc->r, name, p.len ? buf_cstr(&p) : NULL, scan_untagged, sc, e);
	buf_release(&p);
	return rc;
}

/* Forget what was taken (the listing is redone). */
static void scan_restart(struct scan_ctx *sc)
{
	reset_entries(sc);
	if (sc->present && sc->known)
		memset(sc->present, 0, sc->known->nuids * sizeof(bool));
	sc->closed_seen = sc->took_before_closed = sc->misattributed = false;
	sc->removed = 0;
}

/* sync_remote_scan() one command after the other (the pre-check done). */
static int scan_serial(struct sync_remote *r, const char *name, const struct sync_remote_known *known,
		       struct arena *a, struct sync_remote_listing *out, struct err *e)
{
	struct scan_ctx sc = { .r = r, .a = a, .known = known };
	const struct imap_select_info *sel = &r->sel;
	char text[96];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (known && known->nuids)
		sc.gone = xcalloc(known->nuids, sizeof(bool));
	if (select_for_scan(&sc, name, out, e) < 0)
		goto done;
	if (sc.misattributed) {
		/* Selected now: a second SELECT's [CLOSED] comes before its data. */
		scan_restart(&sc);
		if (select_for_scan(&sc, name, out, e) < 0)
			goto done;
	}
	out->uidvalidity = sel->uidvalidity;
	out->uidnext = sel->uidnext;
	out->messages = sel->exists;
	out->highestmodseq = sel->nomodseq ? 0 : sel->highestmodseq;
	out->uidvalidity_changed = known && known->uidvalidity != 0 &&
				   known->uidvalidity != sel->uidvalidity;
	if (out->uidvalidity_changed || out->highestmodseq == 0 ||
	    (out->method != SYNC_REMOTE_FULL && known->highestmodseq > out->highestmodseq))
		out->method = SYNC_REMOTE_FULL;     /* no delta can be trusted */
	if (out->method == SYNC_REMOTE_FULL) {
		out->complete = true;
		reset_entries(&sc);
		if (sel->exists > 0 && full_listing(&sc, out->uidvalidity_changed, e) < 0)
			goto done;
	} else if (out->method == SYNC_REMOTE_CONDSTORE) {
		snprintf(text, sizeof(text), "UID FETCH 1:* (UID FLAGS RFC822.SIZE) (CHANGEDSINCE %llu)",
			 (unsigned long long)known->highestmodseq);
		if ((sel->exists > 0 && run_text(r, text, scan_untagged, &sc, e) < 0) ||
		    expunge_check(&sc, e) < 0)
			goto done;
	} else if (new_messages(&sc, e) < 0 ||
		   sizes_from_known(&sc, UINT32_MAX, e) < 0) {       /* QRESYNC */
		goto done;
	}
	rc = finish_listing(&sc, out, e);
done:
	if (rc < 0)
		err_prefix(e, "listing mailbox \"%s\"", name);
	free(sc.ents);
	free(sc.gone);
	free(sc.present);
	return rc;
}

/* The pre-check said nothing changed (see remote.h). */
static bool scan_unchanged(const struct sync_remote_known *known, struct sync_remote_listing *out)
{
	memset(out, 0, sizeof(*out));
	if (known == NULL || known->status == NULL || !sync_remote_unchanged(known->status, known))
		return false;
	out->method = SYNC_REMOTE_UNCHANGED;
	out->uidvalidity = known->status->uidvalidity;
	out->uidnext = known->status->uidnext;
	out->messages = known->status->messages;
	out->highestmodseq = known->status->highestmodseq;
	return true;
}

int sync_remote_scan(struct sync_remote *r, const char *name, const struct sync_remote_known *known,
		     struct arena *a, struct sync_remote_listing *out, struct err *e)
{
	struct sync_remote_scan_ahead *ahead;

	memset(out, 0, sizeof(*out));
	if (known && known->nuids && remote_check_uids(known->uids, known->nuids, e) < 0)
		return -1;
	if (scan_unchanged(known, out))
		return 0;
	if (sync_remote_scan_can_start(r)) {
		uint32_t uidvalidity = known ? known->uidvalidity : 0;

		if (sync_remote_scan_start(r, name, uidvalidity,
					   uidvalidity && known_listing(known)
					   ? known->uids[known->nuids - 1] : 0, a, &ahead, e) < 0)
			return -1;
		return sync_remote_scan_finish(ahead, known, out, e);
	}
	return scan_serial(r, name, known, a, out, e);
}

/* ---------------------------------------------------------------- scan ahead */

/*
 * The SELECT and the listing's commands sent together, without waiting, so
 * that several mailboxes' listings can be in flight at once.  Every
 * handler is gated by the scan's SELECT (see remote_selecting_reached()):
 * a response that arrives before the server reached it is an earlier
 * command's.
 *
 * A complete listing (method FULL: no CONDSTORE, or nothing known): with a
 * recorded UID, the known listing (submit_known_listing(): it assumes the
 * recorded UIDVALIDITY); without, "UID FETCH 1:* (UID FLAGS RFC822.SIZE)".
 * The records (known UIDs and sizes) are needed only by the finish.
 *
 * A delta (sync_remote_scan_start_known(), method QRESYNC or CONDSTORE):
 * the SELECT with the parameters scan_serial() would send, then
 *   QRESYNC: "UID FETCH uidnext:4294967295 (UID FLAGS RFC822.SIZE)" (the
 *     new messages; the upper end is the highest UID there can be, so no
 *     lower UID answers, and an empty range costs the server nothing);
 *   CONDSTORE: "UID FETCH 1:* (UID FLAGS RFC822.SIZE) (CHANGEDSINCE m)"
 *     and the expunge check's UID SEARCH (expunge_check()).
 * The records are needed from the start (the SELECT's parameters, the
 * vanished UIDs are matched as the answers come).  When the SELECT's answer
 * forbids the delta (UIDVALIDITY changed, NOMODSEQ, HIGHESTMODSEQ went
 * back) or a [CLOSED] shows that responses were taken for the wrong
 * mailbox, the answers are dropped and the mailbox scanned again by
 * scan_serial(), exactly as sync_remote_scan() would have.
 */
struct sync_remote_scan_ahead {
	struct sync_remote *r;
	char *name;
	enum sync_remote_method method;
	uint32_t uidvalidity, max_known;
	struct sync_remote_known known;         /* delta: the start's; arrays the caller's */
	struct scan_ctx sc;
	struct remote_selecting s;
	struct imap_cmd *cmd[2];
};

bool sync_remote_scan_can_start(const struct sync_remote *r)
{
	return !r->caps.condstore && !r->caps.qresync;
}

static void ahead_free(struct sync_remote_scan_ahead *x)
{
	imap_cmd_free(x->s.cmd);        /* in flight: detached, dropped on completion */
	for (size_t i = 0; i < 2; i++)
		imap_cmd_free(x->cmd[i]);
	free(x->sc.ents);
	free(x->sc.gone);
	free(x->sc.present);
	free(x->name);
	free(x);
}

static struct sync_remote_scan_ahead *ahead_new(struct sync_remote *r, const char *name,
						 struct arena *a)
{
	struct sync_remote_scan_ahead *x = xcalloc(1, sizeof(*x));

	x->r = r;
	x->name = xstrdup(name);
	x->method = SYNC_REMOTE_FULL;
	x->sc.r = r;
	x->sc.a = a;
	x->sc.gate = &x->s;
	return x;
}

/* The complete listing's SELECT (with params, or none) and FETCHes. */
static int ahead_submit_full(struct sync_remote_scan_ahead *x, const char *params, struct err *e)
{
	struct sync_remote *r = x->r;

	if (remote_select_submit(r, x->name, params, scan_untagged, &x->sc, &x->s, e) < 0)
		return -1;
	return x->max_known != 0 ? submit_known_listing(&x->sc, x->max_known, x->cmd, e)
		: submit_text(r, "UID FETCH 1:* (UID FLAGS RFC822.SIZE)", &x->sc, &x->cmd[0], e);
}

int sync_remote_scan_start(struct sync_remote *r, const char *name, uint32_t uidvalidity,
			   uint32_t max_known, struct arena *a,
			   struct sync_remote_scan_ahead **out, struct err *e)
{
	struct sync_remote_scan_ahead *x;

	*out = NULL;
	if (!sync_remote_scan_can_start(r) || (uidvalidity == 0 && max_known != 0))
		return err_set(e, ERR_INTERNAL, "mailbox \"%s\" cannot be listed ahead", name);
	x = ahead_new(r, name, a);
	x->uidvalidity = uidvalidity;
	x->max_known = max_known;
	if (ahead_submit_full(x, NULL, e) < 0) {
		ahead_free(x);
		return err_prefix(e, "listing mailbox \"%s\"", name);
	}
	*out = x;
	return 0;
}

/* The delta's commands after its SELECT (see the top of this section). */
static int ahead_submit_delta(struct sync_remote_scan_ahead *x, struct err *e)
{
	const struct sync_remote_known *k = &x->known;
	char text[128];

	if (x->method == SYNC_REMOTE_QRESYNC) {
		snprintf(text, sizeof(text), "UID FETCH %u:%u (UID FLAGS RFC822.SIZE)",
			 k->uidnext ? k->uidnext : 1, UINT32_MAX);
		return submit_text(x->r, text, &x->sc, &x->cmd[0], e);
	}
	snprintf(text, sizeof(text), "UID FETCH 1:* (UID FLAGS RFC822.SIZE) (CHANGEDSINCE %llu)",
		 (unsigned long long)k->highestmodseq);
	if (submit_text(x->r, text, &x->sc, &x->cmd[0], e) < 0)
		return -1;
	if (k->nuids == 0)
		return 0;       /* nothing to check for expunges */
	x->sc.present = xcalloc(k->nuids, sizeof(bool));
	snprintf(text, sizeof(text), "UID SEARCH %sUID 1:%u",
		 x->r->caps.esearch ? "RETURN (ALL) " : "", k->uids[k->nuids - 1]);
	return submit_text_fn(x->r, text, search_untagged, &x->sc, &x->cmd[1], e);
}

int sync_remote_scan_start_known(struct sync_remote *r, const char *name,
				 const struct sync_remote_known *known, struct arena *a,
				 struct sync_remote_scan_ahead **out, struct err *e)
{
	struct buf p = BUF_INIT(KNOWN_UIDS_MAX + 128);
	struct sync_remote_listing unchanged;
	struct sync_remote_scan_ahead *x;
	int rc;

	*out = NULL;
	if (known && known->nuids && remote_check_uids(known->uids, known->nuids, e) < 0)
		return -1;
	if (scan_unchanged(known, &unchanged))
		return 0;
	if (sync_remote_scan_can_start(r)) {
		uint32_t uidvalidity = known ? known->uidvalidity : 0;

		return sync_remote_scan_start(r, name, uidvalidity,
					      uidvalidity && known_listing(known)
					      ? known->uids[known->nuids - 1] : 0, a, out, e);
	}
	x = ahead_new(r, name, a);
	x->uidvalidity = known ? known->uidvalidity : 0;
	rc = scan_params(r, known, &p, &x->method, e);
	if (rc == 0 && x->method == SYNC_REMOTE_FULL) {
		/* CONDSTORE, nothing to compare with: the records are the finish's */
		x->max_known = x->uidvalidity && known_listing(known) ? known->uids[known->nuids - 1] : 0;
		rc = ahead_submit_full(x, p.len ? buf_cstr(&p) : NULL, e);
	} else if (rc == 0) {
		x->known = *known;              /* a delta: known is not NULL */
		x->sc.known = &x->known;
		if (known->nuids)
			x->sc.gone = xcalloc(known->nuids, sizeof(bool));
		rc = remote_select_submit(r, name, buf_cstr(&p), scan_untagged, &x->sc, &x->s, e);
		if (rc == 0)
			rc = ahead_submit_delta(x, e);
	}
	buf_release(&p);
	if (rc < 0) {
		ahead_free(x);
		return err_prefix(e, "listing mailbox \"%s\"", name);
	}
	*out = x;
	return 0;
}

/*
 * A command for the scan's mailbox after its answers: if a later SELECT was
 * sent since, the mailbox is selected again first (everything sent before
 * has been answered once that SELECT is), and *sel becomes that SELECT's.
 */
static int ahead_reselect(struct sync_remote_scan_ahead *x, const struct imap_select_info **sel,
			  struct err *e)
{
	if (x->s.seq == x->r->selects)
		return 0;
	if (remote_select_with(x->r, x->name, NULL, NULL, NULL, e) < 0)
		return -1;
	*sel = &x->r->sel;
	return 0;
}

/* The UIDVALIDITY changed: the answers are dropped and the mailbox listed afresh. */
static int ahead_relist(struct sync_remote_scan_ahead *x, const struct imap_select_info **sel,
			struct err *e)
{
	reset_entries(&x->sc);
	if (ahead_reselect(x, sel, e) < 0)
		return -1;
	return (*sel)->exists > 0 ? full_listing(&x->sc, true, e) : 0;
}

/*
 * Sizes: the recorded ones up to max_known, then a FETCH for the rest (in
 * the mailbox, selected again if need be).  1: its UIDVALIDITY moved
 * meanwhile (nothing fetched).
 */
static int ahead_fetch_sizes(struct sync_remote_scan_ahead *x, uint32_t max_known,
			     const struct imap_select_info **sel, struct err *e)
{
	uint32_t uidvalidity = (*sel)->uidvalidity;

	take_known_sizes(&x->sc, max_known);
	if (!sizes_missing(&x->sc))
		return 0;
	if (ahead_reselect(x, sel, e) < 0)
		return -1;
	if ((*sel)->uidvalidity != uidvalidity)
		return 1;
	return fetch_sizes(&x->sc, e);
}

/* A complete listing's sizes; had the UIDVALIDITY moved, the listing is redone. */
static int ahead_sizes(struct sync_remote_scan_ahead *x, const struct imap_select_info **sel,
		       struct err *e)
{
	int rc = ahead_fetch_sizes(x, x->max_known, sel, e);

	if (rc <= 0)
		return rc;
	reset_entries(&x->sc);
	return (*sel)->exists > 0 ? full_listing(&x->sc, true, e) : 0;
}

/* Wait for cmd[i] (freed); its error kept in *e only when `matters` and none is yet. */
static int ahead_wait_one(struct sync_remote_scan_ahead *x, size_t i, bool matters, int rc,
			  struct err *e)
{
	struct err e2;

	if (x->cmd[i] == NULL)
		return rc;
	err_clear(&e2);
	if (imap_conn_wait(imap_client_conn(x->r->cl), x->cmd[i], &e2) < 0 && matters && rc == 0) {
		*e = e2;
		rc = -1;
	}
	imap_cmd_free(x->cmd[i]);
	x->cmd[i] = NULL;
	return rc;
}

/* True if the SELECT's answer forbids the delta asked (scan_serial()'s test). */
static bool delta_refused(const struct sync_remote_scan_ahead *x)
{
	const struct imap_select_info *sel = &x->s.sel;
	uint64_t modseq = sel->nomodseq ? 0 : sel->highestmodseq;

	return x->known.uidvalidity != sel->uidvalidity || modseq == 0 ||
	       x->known.highestmodseq > modseq || x->sc.misattributed;
}

/*
 * A delta's finish.  Its FETCHes fail in an empty mailbox without harm;
 * the expunge check's failure fails the scan.  When the delta is refused,
 * *redo_out is set: the caller scans again with scan_serial() (its SELECT
 * and all).
 */
static int finish_delta(struct sync_remote_scan_ahead *x, struct sync_remote_listing *out,
			bool *redo_out, struct err *e)
{
	const struct imap_select_info *sel = &x->s.sel;
	struct scan_ctx *sc = &x->sc;
	struct err e2;
	int rc;

	err_clear(&e2);
	rc = remote_select_wait(&x->s, x->name, &e2) < 0 ? -1 : 0;
	if (rc < 0)
		*e = e2;
	rc = ahead_wait_one(x, 0, sel->exists > 0, rc, e);
	rc = ahead_wait_one(x, 1, true, rc, e);
	if (rc == 0 && delta_refused(x)) {
		*redo_out = true;
		return 0;
	}
	if (rc < 0)
		return -1;
	out->method = x->method;
	if (x->method == SYNC_REMOTE_CONDSTORE) {
		for (size_t i = 0; sc->present && i < x->known.nuids; i++)
			if (!sc->present[i])
				sc->gone[i] = true;
	} else if ((rc = ahead_fetch_sizes(x, UINT32_MAX, &sel, e)) != 0) {
		*redo_out = rc > 0;
		return rc < 0 ? -1 : 0;
	}
	out->uidvalidity = sel->uidvalidity;
	out->uidnext = sel->uidnext;
	out->messages = sel->exists;
	out->highestmodseq = sel->nomodseq ? 0 : sel->highestmodseq;
	return finish_listing(sc, out, e);
}

/* Whether `known` is what a delta was started with (same records). */
static bool same_known(const struct sync_remote_known *a, const struct sync_remote_known *b)
{
	return b != NULL && a->uidvalidity == b->uidvalidity && a->highestmodseq == b->highestmodseq &&
	       a->uidnext == b->uidnext && a->nuids == b->nuids &&
	       (a->nuids == 0 || (memcmp(a->uids, b->uids, a->nuids * sizeof(*a->uids)) == 0 &&
				  (a->sizes == NULL) == (b->sizes == NULL)));
}

/*
 * When the SELECT fails, so do the FETCHes (no mailbox is selected): its
 * error is the one reported.  In an empty mailbox a FETCH's failure is
 * ignored: the listing is known to be empty.
 */
int sync_remote_scan_finish(struct sync_remote_scan_ahead *x, const struct sync_remote_known *known,
			    struct sync_remote_listing *out, struct err *e)
{
	const struct imap_select_info *sel = &x->s.sel;
	struct err e2;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (x->method != SYNC_REMOTE_FULL) {
		bool redo = false;

		if (!same_known(&x->known, known))
			rc = err_set(e, ERR_INTERNAL, "the records do not match the listing started");
		else
			rc = finish_delta(x, out, &redo, e);
		if (redo) {
			rc = scan_serial(x->r, x->name, known, x->sc.a, out, e);
			ahead_free(x);
			return rc;
		}
		goto done;
	}
	out->method = SYNC_REMOTE_FULL;
	out->complete = true;
	if (known != NULL ? known->uidvalidity != x->uidvalidity : x->uidvalidity != 0)
		rc = err_set(e, ERR_INTERNAL, "the records do not match the listing started");
	else if (known != NULL && remote_check_uids(known->uids, known->nuids, e) < 0)
		rc = -1;
	x->sc.known = known;
	err_clear(&e2);
	if (remote_select_wait(&x->s, x->name, &e2) < 0 && rc == 0) {
		*e = e2;
		rc = -1;
	}
	err_clear(&e2);
	if (wait_cmds(x->r, x->cmd, &e2) < 0 && rc == 0 && sel->exists > 0) {
		*e = e2;
		rc = -1;
	}
	if (rc == 0 && ((x->uidvalidity != 0 && sel->uidvalidity != x->uidvalidity) ||
			x->sc.misattributed))
		rc = ahead_relist(x, &sel, e);
	else if (rc == 0)
		rc = ahead_sizes(x, &sel, e);
	if (rc == 0) {
		out->uidvalidity = sel->uidvalidity;
		out->uidnext = sel->uidnext;
		out->messages = sel->exists;
		out->highestmodseq = sel->nomodseq ? 0 : sel->highestmodseq;
		out->uidvalidity_changed = x->uidvalidity != 0 && x->uidvalidity != sel->uidvalidity;
		rc = finish_listing(&x->sc, out, e);
	}
done:
	if (rc < 0)
		err_prefix(e, "listing mailbox \"%s\"", x->name);
	ahead_free(x);
	return rc;
}

void sync_remote_scan_abandon(struct sync_remote_scan_ahead *x)
{
	if (x != NULL)
		ahead_free(x);
}

/* ---------------------------------------------------------------- since: */

struct before_ctx {
	uint32_t *uids;
	size_t n, cap;
};

static int before_untagged(void *ctx, const struct imap_resp *resp, struct err *e)
{
	struct before_ctx *bc = ctx;
	uint32_t uid;

	if (resp->kind != IMAP_RESP_UNTAGGED || resp->name == NULL ||
	    strcmp(resp->name, "SEARCH") != 0)
		return 0;
	for (size_t i = 0; i < resp->nargs; i++) {
		if (!imap_arg_u32(&resp->args[i], &uid) || uid == 0)
			return err_set(e, ERR_PROTO, "server sent a malformed SEARCH response");
		if (bc->n >= SCAN_MAX_MSGS)
			return err_set(e, ERR_LIMIT, "server sent more than %u UIDs in a SEARCH response",
				       SCAN_MAX_MSGS);
		if (bc->n == bc->cap)
			bc->uids = xgrow(bc->uids, &bc->cap, bc->n + 1, sizeof(*bc->uids));
		bc->uids[bc->n++] = uid;
	}
	return 1;
}

int sync_remote_search_before(struct sync_remote *r, const char *name, time_t since,
			      struct arena *a, uint32_t **uids_out, size_t *n_out, struct err *e)
{
	static const char *const mon[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct before_ctx bc = { 0 };
	struct tm tm;
	char text[64];
	size_t k = 0;

	*uids_out = NULL;
	*n_out = 0;
	if (gmtime_r(&since, &tm) == NULL)
		return err_set(e, ERR_INTERNAL, "since date out of range");
	snprintf(text, sizeof(text), "UID SEARCH BEFORE %d-%s-%04d", tm.tm_mday, mon[tm.tm_mon],
		 tm.tm_year + 1900);
	if (remote_select(r, name, e) < 0 || run_text(r, text, before_untagged, &bc, e) < 0) {
		free(bc.uids);
		return err_prefix(e, "searching mailbox \"%s\"", name);
	}
	if (bc.n > 1)
		qsort(bc.uids, bc.n, sizeof(*bc.uids), cmp_u32);
	*uids_out = arena_alloc(a, (bc.n + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < bc.n; i++)
		if (k == 0 || (*uids_out)[k - 1] != bc.uids[i])
			(*uids_out)[k++] = bc.uids[i];
	*n_out = k;
	free(bc.uids);
	return 0;
}
